/* This process's own stdin/stdout as a line transport (smg serve --stdio, and example
 * servers under smg run). stdin may be a pipe, a TTY or a regular file. */
#ifndef SMG_STDIO_H
#define SMG_STDIO_H

#include <stddef.h>
#include <uv.h>

void smg_stdio_init(uv_loop_t *loop);

typedef void (*smg_stdio_line_cb)(const char *line, size_t len, void *data);
typedef void (*smg_stdio_eof_cb)(void *data);

/* Starts reading stdin; on_eof runs once at end of input (or a read error). */
int smg_stdio_start(uv_loop_t *loop, size_t max_line, smg_stdio_line_cb on_line,
                    smg_stdio_eof_cb on_eof, void *data);
void smg_stdio_stop(void);
/* Writes to stdout; never blocks the loop. */
int smg_stdio_write(const char *data, size_t len);
/* Bytes queued for stdout and not yet written. */
size_t smg_stdio_pending(void);
/* Closes the handles (pending stdout data is flushed first by libuv's close). */
void smg_stdio_close(void);

#endif
