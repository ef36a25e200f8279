#include "sandbox.h"
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

static int set_limit(int resource, const char *value, const char *what, unsigned long long scale) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(value, &end, 10);
  if (errno || *end || v == 0) {
    fprintf(stderr, "smg sandbox-exec: bad %s: %s\n", what, value);
    return -1;
  }
  struct rlimit rl = {.rlim_cur = (rlim_t)(v * scale), .rlim_max = (rlim_t)(v * scale)};
  if (setrlimit(resource, &rl) != 0) {
    fprintf(stderr, "smg sandbox-exec: cannot set %s: %s\n", what, strerror(errno));
    return -1;
  }
  return 0;
}

/* A network namespace of our own: as root directly, else inside a user namespace. */
static int no_network(void) {
  if (unshare(CLONE_NEWNET) == 0) return 0;
  if (errno == EPERM && unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0) return 0;
  fprintf(stderr, "smg sandbox-exec: cannot create a network namespace: %s\n", strerror(errno));
  return -1;
}

int smg_sandbox_exec(int argc, char **argv) {
  int i = 2; /* argv[0] smg, argv[1] sandbox-exec */
  for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
    const char *opt = argv[i];
    const char *val = i + 1 < argc ? argv[i + 1] : NULL;
    int rc = 0;
    if (strcmp(opt, "--no-new-privs") == 0) {
      rc = prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
      if (rc) fprintf(stderr, "smg sandbox-exec: no_new_privs: %s\n", strerror(errno));
    } else if (strcmp(opt, "--no-network") == 0) {
      rc = no_network();
    } else if (val && strcmp(opt, "--memory-mb") == 0) {
      rc = set_limit(RLIMIT_AS, val, "memory limit", 1024ULL * 1024ULL), i++;
    } else if (val && strcmp(opt, "--open-files") == 0) {
      rc = set_limit(RLIMIT_NOFILE, val, "open files limit", 1), i++;
    } else if (val && strcmp(opt, "--processes") == 0) {
      rc = set_limit(RLIMIT_NPROC, val, "process limit", 1), i++;
    } else if (val && strcmp(opt, "--cpu-seconds") == 0) {
      rc = set_limit(RLIMIT_CPU, val, "CPU limit", 1), i++;
    } else if (val && strcmp(opt, "--file-size-mb") == 0) {
      rc = set_limit(RLIMIT_FSIZE, val, "file size limit", 1024ULL * 1024ULL), i++;
    } else {
      fprintf(stderr, "smg sandbox-exec: unknown option %s\n", opt);
      return 2;
    }
    /* Fail closed: a server asked to run confined never runs unconfined. */
    if (rc) return 126;
  }
  if (i + 1 >= argc) {
    fprintf(stderr, "usage: smg sandbox-exec [options] -- command [args...]\n");
    return 2;
  }
  execvp(argv[i + 1], argv + i + 1);
  fprintf(stderr, "smg sandbox-exec: cannot run %s: %s\n", argv[i + 1], strerror(errno));
  return errno == ENOENT ? 127 : 126;
}
