/* Drives an MCP stdio server directly over its pipes: a window of W tools/call requests
 * in flight, refilled as answers arrive, for a fixed duration. Prints calls/s and the
 * p50/p99 latency. This is the "upstream directly" row of the benchmark table: the
 * ceiling any gateway in front of this upstream could reach.
 *   pipe_bench SECONDS WINDOW COMMAND [ARGS...] */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: pipe_bench SECONDS WINDOW COMMAND [ARGS...]\n");
    return 2;
  }
  double secs = atof(argv[1]);
  int window = atoi(argv[2]);
  int in[2], out[2];
  if (pipe(in) || pipe(out)) return 1;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    close(in[1]);
    close(out[0]);
    execvp(argv[3], argv + 3);
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  FILE *w = fdopen(in[1], "w");
  FILE *r = fdopen(out[0], "r");
  fprintf(w,
          "{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"initialize\",\"params\":{\"protocolVersion\":"
          "\"2025-06-18\","
          "\"capabilities\":{},\"clientInfo\":{\"name\":\"pipe_bench\",\"version\":\"1\"}}}\n");
  fflush(w);
  char *line = NULL;
  size_t cap = 0;
  if (getline(&line, &cap, r) <= 0) return 1;
  size_t max_samples = 50 * 1000 * 1000;
  double *lat = malloc(sizeof(double) * max_samples);
  double *sent = calloc((size_t)window, sizeof(double));
  long done = 0, next = 1;
  double t0 = now(), end = t0 + secs;
  for (int i = 0; i < window; i++) {
    sent[(next - 1) % window] = now();
    fprintf(w,
            "{\"jsonrpc\":\"2.0\",\"id\":%ld,\"method\":\"tools/"
            "call\",\"params\":{\"name\":\"echo\",\"arguments\":{\"message\":\"hello\"}}}\n",
            next);
    next++;
  }
  fflush(w);
  while (getline(&line, &cap, r) > 0) {
    char *p = strstr(line, "\"id\":");
    long id = p ? atol(p + 5) : 0;
    double t = now();
    if (id > 0 && (size_t)done < max_samples) lat[done] = t - sent[(id - 1) % window];
    done++;
    if (t < end) {
      sent[(next - 1) % window] = t;
      fprintf(w,
              "{\"jsonrpc\":\"2.0\",\"id\":%ld,\"method\":\"tools/"
              "call\",\"params\":{\"name\":\"echo\",\"arguments\":{\"message\":\"hello\"}}}\n",
              next);
      next++;
      /* Flush once the batch of answers already read is handled. */
      if (r->_IO_read_ptr >= r->_IO_read_end) fflush(w);
    } else {
      fflush(w); /* requests still buffered must go out, or their answers never come */
      if (done == next - 1) break;
    }
  }
  double elapsed = now() - t0;
  size_t n = (size_t)done < max_samples ? (size_t)done : max_samples;
  qsort(lat, n, sizeof(double), cmp);
  printf("%.0f %.1f %.1f\n", (double)done / elapsed, lat[n / 2] * 1e6,
         lat[(size_t)(n * 0.99)] * 1e6);
  fclose(w);
  kill(pid, SIGTERM);
  waitpid(pid, NULL, 0);
  return 0;
}
