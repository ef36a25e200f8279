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

static void emit(const char *p, size_t n, smg_lines_cb cb, void *data) {
  if (n && p[n - 1] == '\r') n--;
  if (n) cb(data, p, n);
}

void smg_lines_feed(smg_lines_t *l, const char *p, size_t n, smg_lines_cb cb, void *data) {
  while (n > 0) {
    const char *nl = memchr(p, '\n', n);
    if (!nl) {
      if (l->discarding) return;
      if (smg_buf_append(&l->buf, p, n, l->max_line) < 0) {
        l->discarding = 1;
        l->dropped++;
        smg_buf_reset(&l->buf);
      }
      return;
    }
    size_t seg = (size_t)(nl - p);
    if (l->discarding) {
      l->discarding = 0;
    } else if (l->buf.len == 0) {
      emit(p, seg, cb, data); /* whole line in this chunk: no copy */
    } else if (smg_buf_append(&l->buf, p, seg, l->max_line) < 0) {
      l->dropped++;
      smg_buf_reset(&l->buf);
    } else {
      /* cb may feed this same splitter again (it does not today), so detach first. */
      smg_buf_t line = l->buf;
      l->buf = (smg_buf_t){0};
      emit(line.data, line.len, cb, data);
      smg_buf_reset(&line);
      if (!l->buf.data)
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
