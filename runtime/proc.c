/* Child process management. Four handles per child (process, stdin, stdout, stderr pipes)
 * plus a timer for the shutdown escalation and the post-exit drain; the struct is freed
 * when all of them have closed and the owner has released it. Zombies cannot remain:
 * libuv reaps the child in its SIGCHLD handler, and a released child still running is
 * escalated to SIGKILL. */
#include "proc.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "stream.h"

#define EXIT_DRAIN_MS 200 /* wait this long for stdout EOF after the child exited */

struct smg_proc_s {
  uv_process_t proc;
  uv_pipe_t in, out, err;
  uv_timer_t timer;
  uv_prepare_t flush; /* writes made during one loop iteration leave in one write(2) */
  smg_buf_t outq;     /* bytes for stdin not yet handed to the kernel */
  int handles_open;
  smg_lines_t out_lines, err_lines;
  smg_proc_line_cb on_line;
  smg_proc_exit_cb on_exit;
  void *data;
  int64_t exit_status;
  int term_signal;
  int pid;
  int stage; /* shutdown escalation: 0 none, 1 stdin closed, 2 SIGTERM sent, 3 SIGKILL sent */
  uint64_t grace_ms;
  unsigned exited : 1, out_eof : 1, err_eof : 1, reported : 1, released : 1, in_closed : 1,
      last_look : 1;
};

static void on_handle_closed(uv_handle_t *h) {
  smg_proc_t *p = h->data;
  if (--p->handles_open > 0) return;
  smg_lines_free(&p->out_lines);
  smg_lines_free(&p->err_lines);
  smg_buf_free(&p->outq);
  free(p);
}

static void close_handle(smg_proc_t *p, uv_handle_t *h) {
  if (!uv_is_closing(h)) uv_close(h, on_handle_closed);
}

static void maybe_free(smg_proc_t *p) {
  if (!p->released || !p->exited || !p->reported) return;
  close_handle(p, (uv_handle_t *)&p->proc);
  close_handle(p, (uv_handle_t *)&p->in);
  close_handle(p, (uv_handle_t *)&p->out);
  close_handle(p, (uv_handle_t *)&p->err);
  close_handle(p, (uv_handle_t *)&p->timer);
  close_handle(p, (uv_handle_t *)&p->flush);
}

static void report_exit(smg_proc_t *p) {
  if (p->reported) return;
  p->reported = 1;
  uv_timer_stop(&p->timer);
  if (!p->released && p->on_exit) p->on_exit(p, p->exit_status, p->term_signal, p->data);
  maybe_free(p);
}

static void on_timer(uv_timer_t *t) {
  smg_proc_t *p = t->data;
  if (p->exited) {
    /* The drain window is over, but a loop that was busy for longer than the window runs
     * this timer before it has polled the pipe even once: look one more time, after a
     * poll (a timer started here cannot run in this same timers phase). */
    if (!p->last_look) {
      p->last_look = 1;
      uv_timer_start(&p->timer, on_timer, 1, 0);
      return;
    }
    report_exit(p);
    return;
  }
  if (p->stage == 1) {
    p->stage = 2;
    smg_log_debug("proc %d: still running after stdin closed, sending SIGTERM", p->pid);
    uv_process_kill(&p->proc, SIGTERM);
    uv_timer_start(&p->timer, on_timer, p->grace_ms, 0);
  } else if (p->stage == 2) {
    p->stage = 3;
    smg_log_warn("proc %d: ignored SIGTERM, sending SIGKILL", p->pid);
    uv_process_kill(&p->proc, SIGKILL);
  }
}

static void on_process_exit(uv_process_t *h, int64_t status, int term_signal) {
  smg_proc_t *p = h->data;
  p->exited = 1;
  p->exit_status = status;
  p->term_signal = term_signal;
  if (p->out_eof)
    report_exit(p);
  else
    uv_timer_start(&p->timer, on_timer, EXIT_DRAIN_MS, 0);
}

static void line_cb_out(void *data, const char *line, size_t len) {
  smg_proc_t *p = data;
  if (!p->released && p->on_line) p->on_line(p, 1, line, len, p->data);
}

/* A stdout line over max_line was dropped: its edges go up as stream 3, so the owner can
 * fail the request it answered now rather than at its timeout. */
static void line_dropped_out(void *data, const char *edges, size_t len) {
  smg_proc_t *p = data;
  if (!p->released && p->on_line) p->on_line(p, 3, edges, len, p->data);
}

static void line_cb_err(void *data, const char *line, size_t len) {
  smg_proc_t *p = data;
  if (!p->released && p->on_line) p->on_line(p, 2, line, len, p->data);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  static char slab[65536]; /* lines are copied out by the splitter before the next read */
  buf->base = slab;
  buf->len = sizeof(slab);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  smg_proc_t *p = s->data;
  int is_out = s == (uv_stream_t *)&p->out;
  if (nread < 0) {
    uv_read_stop(s);
    if (is_out) {
      p->out_eof = 1;
      if (p->exited) report_exit(p);
    } else {
      p->err_eof = 1;
    }
    return;
  }
  smg_lines_t *l = is_out ? &p->out_lines : &p->err_lines;
  size_t before = l->dropped;
  smg_lines_feed(l, buf->base, (size_t)nread, is_out ? line_cb_out : line_cb_err, p);
  if (l->dropped != before)
    smg_log_error("proc %d: dropped a %s line longer than %zu bytes", p->pid,
                  is_out ? "stdout" : "stderr", l->max_line);
}

int smg_proc_spawn(uv_loop_t *loop, const smg_proc_opts_t *opts, smg_proc_line_cb on_line,
                   smg_proc_exit_cb on_exit, void *data, smg_proc_t **out, char *err,
                   size_t errlen) {
  smg_proc_t *p = calloc(1, sizeof(*p));
  if (!p) return UV_ENOMEM;
  p->on_line = on_line;
  p->on_exit = on_exit;
  p->data = data;
  p->out_lines.max_line = opts->max_line ? opts->max_line : 64u << 20;
  p->out_lines.on_dropped = line_dropped_out;
  p->err_lines.max_line = 64 * 1024;
  uv_pipe_init(loop, &p->in, 0);
  uv_pipe_init(loop, &p->out, 0);
  uv_pipe_init(loop, &p->err, 0);
  uv_timer_init(loop, &p->timer);
  uv_prepare_init(loop, &p->flush);
  p->proc.data = p->in.data = p->out.data = p->err.data = p->timer.data = p->flush.data = p;
  p->handles_open = 6;

  uv_stdio_container_t stdio[3];
  stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
  stdio[0].data.stream = (uv_stream_t *)&p->in;
  stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
  stdio[1].data.stream = (uv_stream_t *)&p->out;
  stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
  stdio[2].data.stream = (uv_stream_t *)&p->err;
  uv_process_options_t po;
  memset(&po, 0, sizeof(po));
  po.file = opts->file;
  po.args = opts->args;
  po.env = opts->env;
  po.cwd = opts->cwd;
  po.exit_cb = on_process_exit;
  po.stdio = stdio;
  po.stdio_count = 3;
  int rc = uv_spawn(loop, &p->proc, &po);
  if (rc < 0) {
    snprintf(err, errlen, "spawn %s: %s", opts->file, uv_strerror(rc));
    /* Every handle must be closed even when spawn failed. */
    p->released = p->exited = p->reported = 1;
    maybe_free(p);
    return rc;
  }
  p->pid = p->proc.pid;
  uv_read_start((uv_stream_t *)&p->out, on_alloc, on_read);
  uv_read_start((uv_stream_t *)&p->err, on_alloc, on_read);
  *out = p;
  return 0;
}

static void on_stdin_written(uv_stream_t *s, int status) { /* errors surface as the exit */
}

/* Runs just before the loop polls: everything written since the last poll goes out at
 * once, so N concurrent calls to one upstream cost one write(2), not N. */
static void on_flush(uv_prepare_t *h) {
  smg_proc_t *p = h->data;
  uv_prepare_stop(h);
  if (p->outq.len == 0 || p->in_closed || p->exited) {
    smg_buf_reset(&p->outq);
    return;
  }
  uv_buf_t b = uv_buf_init(p->outq.data, (unsigned)p->outq.len);
  smg_stream_write((uv_stream_t *)&p->in, &b, 1, on_stdin_written);
  smg_buf_reset(&p->outq);
}

int smg_proc_write(smg_proc_t *p, const char *data, size_t len) {
  if (p->in_closed || p->exited) return UV_EPIPE;
  if (smg_buf_append(&p->outq, data, len, (size_t)1 << 31) < 0) return UV_ENOMEM;
  if (!uv_is_active((uv_handle_t *)&p->flush)) uv_prepare_start(&p->flush, on_flush);
  return 0;
}

size_t smg_proc_write_queue(const smg_proc_t *p) {
  return uv_stream_get_write_queue_size((const uv_stream_t *)&p->in) + p->outq.len;
}

int smg_proc_pid(const smg_proc_t *p) {
  return p->pid;
}

int smg_proc_kill(smg_proc_t *p, int signum) {
  if (p->exited) return UV_ESRCH;
  return uv_process_kill(&p->proc, signum);
}

void smg_proc_shutdown(smg_proc_t *p, uint64_t grace_ms) {
  if (!p->in_closed) {
    on_flush(&p->flush); /* what was written before the shutdown still goes out */
    p->in_closed = 1;
    close_handle(p, (uv_handle_t *)&p->in);
  }
  if (p->exited || p->stage) return;
  p->stage = 1;
  p->grace_ms = grace_ms;
  uv_timer_start(&p->timer, on_timer, grace_ms, 0);
}

void smg_proc_release(smg_proc_t *p) {
  p->released = 1;
  if (!p->exited) {
    if (!p->stage) smg_proc_shutdown(p, 2000);
    return; /* freed after the exit is reported */
  }
  if (!p->reported)
    report_exit(p);
  else
    maybe_free(p);
}
