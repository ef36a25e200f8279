/* Stream helpers shared by the HTTP server, child processes and our own stdio. */
#include "stream.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
  uv_write_t w;
  smg_stream_write_cb cb;
  char data[];
} write_req_t;

static void on_written(uv_write_t *w, int status) {
  write_req_t *wr = (write_req_t *)w;
  smg_stream_write_cb cb = wr->cb;
  uv_stream_t *s = w->handle;
  free(wr);
  if (cb) cb(s, status);
}

int smg_stream_write(uv_stream_t *s, const uv_buf_t *bufs, unsigned n, smg_stream_write_cb cb) {
  size_t total = 0, done = 0;
  for (unsigned i = 0; i < n; i++) total += bufs[i].len;
  /* Writing directly is only safe when nothing is queued ahead of us. */
  if (uv_stream_get_write_queue_size(s) == 0) {
    int r = uv_try_write(s, bufs, n);
    if (r >= 0)
      done = (size_t)r;
    else if (r != UV_EAGAIN && r != UV_ENOSYS)
      return r;
  }
  if (done == total) return 0;
  write_req_t *wr = malloc(sizeof(*wr) + (total - done));
  if (!wr) return UV_ENOMEM;
  wr->cb = cb;
  size_t off = 0, skip = done;
  for (unsigned i = 0; i < n; i++) {
    size_t len = bufs[i].len;
    if (skip >= len) {
      skip -= len;
      continue;
    }
    memcpy(wr->data + off, bufs[i].base + skip, len - skip);
    off += len - skip;
    skip = 0;
  }
  uv_buf_t b = uv_buf_init(wr->data, (unsigned)off);
  int r = uv_write(&wr->w, s, &b, 1, on_written);
  if (r < 0) {
    free(wr);
    return r;
  }
  return 1;
}

#define LINES_KEEP (256u << 10) /* a splitter's buffer above this is freed once its line is out */

static void emit(const char *p, size_t n, smg_lines_cb cb, void *data) {
  if (n && p[n - 1] == '\r') n--;
  if (n) cb(data, p, n);
}

/* The line in progress overflowed: remember its first bytes (what was buffered, then
 * `p`) and the last buffered ones, and discard until its end. The caller then passes `p`
 * to drop_tail. The head is reported at once: a line that never ends (a server streaming
 * garbage forever) must not hold its request until the timeout. */
static void drop_begin(smg_lines_t *l, const char *p, size_t n, void *data) {
  size_t h = l->buf.len < SMG_LINES_EDGE ? l->buf.len : SMG_LINES_EDGE;
  size_t more = SMG_LINES_EDGE - h < n ? SMG_LINES_EDGE - h : n;
  if (h) {
    memcpy(l->edges, l->buf.data, h);
    memcpy(l->edges + SMG_LINES_EDGE, l->buf.data + l->buf.len - h, h);
  }
  if (more) memcpy(l->edges + h, p, more);
  l->head_len = h + more;
  l->tail_len = h;
  l->discarding = 1;
  l->dropped++;
  smg_buf_free(&l->buf); /* up to max_line was buffered: give it back */
  if (l->on_dropped) l->on_dropped(data, l->edges, l->head_len);
}

/* Keeps the last SMG_LINES_EDGE bytes seen of a dropped line. */
static void drop_tail(smg_lines_t *l, const char *p, size_t n) {
  char *tail = l->edges + SMG_LINES_EDGE;
  if (n >= SMG_LINES_EDGE) {
    memcpy(tail, p + n - SMG_LINES_EDGE, SMG_LINES_EDGE);
    l->tail_len = SMG_LINES_EDGE;
    return;
  }
  size_t keep = l->tail_len + n > SMG_LINES_EDGE ? SMG_LINES_EDGE - n : l->tail_len;
  memmove(tail, tail + l->tail_len - keep, keep);
  memcpy(tail + keep, p, n);
  l->tail_len = keep + n;
}

static void drop_end(smg_lines_t *l, void *data) {
  l->discarding = 0;
  if (!l->on_dropped) return;
  /* head and tail side by side, without the gap between them */
  memmove(l->edges + l->head_len, l->edges + SMG_LINES_EDGE, l->tail_len);
  l->on_dropped(data, l->edges, l->head_len + l->tail_len);
}

void smg_lines_feed(smg_lines_t *l, const char *p, size_t n, smg_lines_cb cb, void *data) {
  while (n > 0) {
    const char *nl = memchr(p, '\n', n);
    if (!nl) {
      if (!l->discarding && smg_buf_append(&l->buf, p, n, l->max_line) < 0)
        drop_begin(l, p, n, data);
      if (l->discarding) drop_tail(l, p, n);
      return;
    }
    size_t seg = (size_t)(nl - p);
    if (l->discarding) {
      drop_tail(l, p, seg);
      drop_end(l, data);
    } else if (l->buf.len + seg > l->max_line) {
      drop_begin(l, p, seg, data);
      drop_tail(l, p, seg);
      drop_end(l, data);
    } else if (l->buf.len == 0) {
      emit(p, seg, cb, data); /* whole line in this chunk: no copy */
    } else if (smg_buf_append(&l->buf, p, seg, l->max_line) < 0) {
      drop_begin(l, p, seg, data);
      drop_tail(l, p, seg);
      drop_end(l, data);
    } else {
      /* cb may feed this same splitter again (it does not today), so detach first. */
      smg_buf_t line = l->buf;
      l->buf = (smg_buf_t){0};
      emit(line.data, line.len, cb, data);
      smg_buf_reset(&line);
      /* One big message must not pin its buffer for the life of the stream. */
      if (!l->buf.data && line.cap <= LINES_KEEP)
        l->buf = line;
      else
        smg_buf_free(&line);
    }
    p = nl + 1;
    n -= seg + 1;
  }
}

void smg_lines_free(smg_lines_t *l) {
  smg_buf_free(&l->buf);
}
