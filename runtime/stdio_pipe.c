/* Our own stdin/stdout. There is exactly one of each per process, so this module keeps
 * its state in one static struct rather than handing out objects. A regular-file stdin
 * cannot be polled, so it is read with uv_fs_read instead. */
#include "stdio_pipe.h"

#include <stdlib.h>
#include <unistd.h>

#include "log.h"
#include "stream.h"

static struct {
  uv_loop_t *loop;
  union {
    uv_pipe_t pipe;
    uv_tty_t tty;
  } in, out;
  int in_kind, out_kind; /* 0 not open, 1 stream, 2 regular file */
  uv_fs_t fs_req;
  char fs_buf[65536];
  int64_t fs_off;
  smg_lines_t lines;
  smg_stdio_line_cb on_line;
  smg_stdio_eof_cb on_eof;
  void *data;
  int reading;
} io;

void smg_stdio_init(uv_loop_t *loop) {
  io.loop = loop;
}

static void line_cb(void *data, const char *line, size_t len) {
  if (io.on_line) io.on_line(line, len, io.data);
}

static void feed(const char *p, size_t n) {
  size_t before = io.lines.dropped;
  smg_lines_feed(&io.lines, p, n, line_cb, NULL);
  if (io.lines.dropped != before)
    smg_log_error("stdio: dropped an input line longer than %zu bytes", io.lines.max_line);
}

static void eof(void) {
  if (!io.reading) return;
  io.reading = 0;
  if (io.on_eof) io.on_eof(io.data);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  buf->base = io.fs_buf;
  buf->len = sizeof(io.fs_buf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  if (nread < 0) {
    uv_read_stop(s);
    eof();
    return;
  }
  feed(buf->base, (size_t)nread);
}

static void fs_read_next(void);

static void on_fs_read(uv_fs_t *req) {
  ssize_t n = req->result;
  uv_fs_req_cleanup(req);
  if (n <= 0 || !io.reading) {
    eof();
    return;
  }
  io.fs_off += n;
  feed(io.fs_buf, (size_t)n);
  fs_read_next();
}

static void fs_read_next(void) {
  if (!io.reading) return;
  uv_buf_t b = uv_buf_init(io.fs_buf, sizeof(io.fs_buf));
  if (uv_fs_read(io.loop, &io.fs_req, 0, &b, 1, io.fs_off, on_fs_read) < 0) eof();
}

static int open_stream(uv_loop_t *loop, int fd, void *h, int *kind, int readable) {
  uv_handle_type t = uv_guess_handle(fd);
  int rc;
  if (t == UV_TTY) {
    rc = uv_tty_init(loop, (uv_tty_t *)h, fd, readable);
  } else if (t == UV_NAMED_PIPE || t == UV_TCP) {
    rc = uv_pipe_init(loop, (uv_pipe_t *)h, 0);
    if (rc == 0) rc = uv_pipe_open((uv_pipe_t *)h, fd);
  } else {
    *kind = 2;
    return 0;
  }
  if (rc == 0) *kind = 1;
  return rc;
}

int smg_stdio_start(uv_loop_t *loop, size_t max_line, smg_stdio_line_cb on_line,
                    smg_stdio_eof_cb on_eof, void *data) {
  io.loop = loop;
  io.on_line = on_line;
  io.on_eof = on_eof;
  io.data = data;
  io.lines.max_line = max_line;
  if (!io.in_kind) {
    int rc = open_stream(loop, 0, &io.in, &io.in_kind, 1);
    if (rc < 0) return rc;
  }
  io.reading = 1;
  if (io.in_kind == 2) {
    fs_read_next();
    return 0;
  }
  return uv_read_start((uv_stream_t *)&io.in, on_alloc, on_read);
}

void smg_stdio_stop(void) {
  if (!io.reading) return;
  io.reading = 0;
  if (io.in_kind == 1) uv_read_stop((uv_stream_t *)&io.in);
}

static void on_written(uv_stream_t *s, int status) {
  if (status < 0 && status != UV_ECANCELED)
    smg_log_error("stdio: write to stdout failed: %s", uv_strerror(status));
}

int smg_stdio_write(const char *data, size_t len) {
  if (!io.out_kind) {
    int rc = open_stream(io.loop, 1, &io.out, &io.out_kind, 0);
    if (rc < 0) return rc;
  }
  if (io.out_kind == 2) { /* a regular file never blocks for long */
    while (len > 0) {
      ssize_t n = write(1, data, len);
      if (n < 0) return UV_EIO;
      data += n;
      len -= (size_t)n;
    }
    return 0;
  }
  uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
  int r = smg_stream_write((uv_stream_t *)&io.out, &b, 1, on_written);
  return r < 0 ? r : 0;
}

size_t smg_stdio_pending(void) {
  return io.out_kind == 1 ? uv_stream_get_write_queue_size((uv_stream_t *)&io.out) : 0;
}

void smg_stdio_close(void) {
  smg_stdio_stop();
  if (io.in_kind == 1 && !uv_is_closing((uv_handle_t *)&io.in))
    uv_close((uv_handle_t *)&io.in, NULL);
  if (io.out_kind == 1 && !uv_is_closing((uv_handle_t *)&io.out))
    uv_close((uv_handle_t *)&io.out, NULL);
  smg_lines_free(&io.lines);
}
