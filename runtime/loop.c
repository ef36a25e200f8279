/* Process context setup: finds the binary and the runtime root (lua/, config/, examples/),
 * and owns the libuv loop's lifetime. */
#include "loop.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http_client.h"
#include "log.h"

static int is_dir(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Copies src into the fixed-size root_dir; refuses (returns 0) when it does not fit. */
static int set_root(smg_loop_t *loop, const char *src) {
  size_t n = strlen(src);
  if (n >= sizeof(loop->root_dir)) return 0;
  memcpy(loop->root_dir, src, n + 1);
  return 1;
}

/* The runtime root is, in order: $SMG_ROOT; the directory above the binary when it holds
 * lua/smg (a build tree inside the source tree, or an install prefix with share/smg);
 * the source directory the binary was built from. */
static void find_root(smg_loop_t *loop) {
  const char *env = getenv("SMG_ROOT");
  if (env && *env && set_root(loop, env)) return;
  char dir[sizeof(loop->exe_path)];
  memcpy(dir, loop->exe_path, sizeof(dir));
  char cand[sizeof(dir) + 32];
  char *slash = strrchr(dir, '/');
  for (int up = 0; slash && up < 3; up++) {
    *slash = '\0';
    snprintf(cand, sizeof(cand), "%s/lua/smg", dir);
    if (is_dir(cand) && set_root(loop, dir)) return;
    snprintf(cand, sizeof(cand), "%s/share/smg/lua/smg", dir);
    if (is_dir(cand)) {
      cand[strlen(cand) - strlen("/lua/smg")] = '\0';
      if (set_root(loop, cand)) return;
    }
    slash = strrchr(dir, '/');
  }
  set_root(loop, SMG_SOURCE_DIR);
}

int smg_loop_init(smg_loop_t *loop, const char *argv0) {
  memset(loop, 0, sizeof(*loop));
  loop->immediate_ref = -2; /* LUA_NOREF: no handler until Lua sets one */
  size_t n = sizeof(loop->exe_path);
  if (uv_exepath(loop->exe_path, &n) != 0) {
    if (!realpath(argv0, loop->exe_path))
      snprintf(loop->exe_path, sizeof(loop->exe_path), "%s", argv0);
  }
  find_root(loop);
  int rc = uv_loop_init(&loop->uv);
  if (rc < 0) return rc;
  loop->uv.data = loop;
  return 0;
}

int smg_loop_run(smg_loop_t *loop) {
  return uv_run(&loop->uv, UV_RUN_DEFAULT);
}

static void close_walk_cb(uv_handle_t *h, void *arg) {
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

void smg_free_on_close(uv_handle_t *h) {
  free(h->data);
}

int smg_loop_close(smg_loop_t *loop) {
  if (loop->httpc) {
    smg_http_client_free(loop->httpc);
    loop->httpc = NULL;
  }
  if (loop->httpc_streams) {
    smg_http_client_free(loop->httpc_streams);
    loop->httpc_streams = NULL;
  }
  uv_run(&loop->uv, UV_RUN_NOWAIT);
  uv_walk(&loop->uv, close_walk_cb, NULL);
  uv_run(&loop->uv, UV_RUN_DEFAULT);
  return uv_loop_close(&loop->uv);
}
