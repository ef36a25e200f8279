/* Child processes speaking newline-delimited messages on stdin/stdout (MCP stdio servers).
 * stdout and stderr are split into lines; the exit is reported once, after stdout has
 * drained, so a final response written just before exiting is never lost. */
#ifndef SMG_PROC_H
#define SMG_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct smg_proc_s smg_proc_t;

/* stream is 1 (stdout) or 2 (stderr) for a line; 3 for a stdout line longer than max_line,
 * which was dropped: `line` is then its first and last bytes (SMG_LINES_EDGE each). */
typedef void (*smg_proc_line_cb)(smg_proc_t *p, int stream, const char *line, size_t len,
                                 void *data);
typedef void (*smg_proc_exit_cb)(smg_proc_t *p, int64_t status, int term_signal, void *data);

typedef struct {
  const char *file;
  char **args; /* NULL-terminated, args[0] is the program name */
  char **env;  /* NULL-terminated "K=V", or NULL to inherit */
  const char *cwd;
  size_t max_line; /* longest stdout line accepted */
} smg_proc_opts_t;

int smg_proc_spawn(uv_loop_t *loop, const smg_proc_opts_t *opts, smg_proc_line_cb on_line,
                   smg_proc_exit_cb on_exit, void *data, smg_proc_t **out, char *err,
                   size_t errlen);
/* Queues bytes for the child's stdin. UV_EPIPE once stdin is closed or the child is gone. */
int smg_proc_write(smg_proc_t *p, const char *data, size_t len);
size_t smg_proc_write_queue(const smg_proc_t *p);
int smg_proc_pid(const smg_proc_t *p);
int smg_proc_kill(smg_proc_t *p, int signum);
/* The graceful stop of the MCP spec: close stdin, after grace_ms SIGTERM, after another
 * grace_ms SIGKILL. The exit callback still fires. */
void smg_proc_shutdown(smg_proc_t *p, uint64_t grace_ms);
/* The owner lets go: no more callbacks. A still-running child is shut down and reaped;
 * memory is freed when every handle has closed. */
void smg_proc_release(smg_proc_t *p);

#endif
