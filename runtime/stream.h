/* Writing to libuv streams without waiting on the common case, and splitting byte
 * streams into newline-delimited frames (the MCP stdio transport). */
#ifndef SMG_STREAM_H
#define SMG_STREAM_H

#include <uv.h>

#include "buf.h"

typedef void (*smg_stream_write_cb)(uv_stream_t *s, int status);

/* Writes as much as the kernel takes now and copies only the rest into one queued
 * uv_write. Returns 0 when everything went out at once, 1 when a write was queued (cb runs
 * when it completes), or a negative UV error (cb never runs). */
int smg_stream_write(uv_stream_t *s, const uv_buf_t *bufs, unsigned n, smg_stream_write_cb cb);

typedef void (*smg_lines_cb)(void *data, const char *line, size_t len);

#define SMG_LINES_EDGE 256 /* bytes kept of each end of a dropped line */

typedef struct {
  smg_buf_t buf;
  size_t max_line; /* a longer line is dropped whole and reported once */
  int discarding;  /* inside a line that already overflowed */
  size_t dropped;  /* lines dropped because of max_line */
  /* Optional: called when a line starts being dropped, with its first SMG_LINES_EDGE
   * bytes, and again when it ends, with its first and last SMG_LINES_EDGE bytes joined
   * (what a reader needs to tell which request the line answered: an id that comes first
   * is known at once, even when the line never ends). */
  smg_lines_cb on_dropped;
  char edges[2 * SMG_LINES_EDGE];
  size_t head_len, tail_len; /* edges = head, then tail at edges + SMG_LINES_EDGE */
} smg_lines_t;

/* Feeds bytes; calls cb once per complete line, without the "\n" or a trailing "\r".
 * Empty lines are skipped. */
void smg_lines_feed(smg_lines_t *l, const char *p, size_t n, smg_lines_cb cb, void *data);
void smg_lines_free(smg_lines_t *l);

#endif
