/* The one process-wide context: the libuv loop, the Lua VM and the lazily created
 * subsystems hang off it. Code reaches it through handle->data or an explicit argument. */
#ifndef SMG_LOOP_H
#define SMG_LOOP_H

#include <uv.h>

typedef struct lua_State lua_State;
typedef struct smg_http_client_s smg_http_client_t;

typedef struct smg_loop_s {
  uv_loop_t uv;
  lua_State *L;             /* owned: the main Lua state */
  smg_http_client_t *httpc; /* owned, created on first outbound HTTP request */
  /* owned: long-lived streams (SSE GET streams of upstreams) on their own connections, so
   * idle streams can never fill the request pool's per-host cap and starve calls */
  smg_http_client_t *httpc_streams;
  /* "Run this after the loop has polled for I/O" (Node's setImmediate): a check handle
   * runs the Lua handler after the poll phase, an idle handle keeps that poll from
   * blocking meanwhile. Long CPU work yields through it so I/O is never starved, which a
   * zero-delay timer cannot do (libuv runs timers started by a timer in the same phase). */
  uv_check_t immediate;
  uv_idle_t immediate_idle;
  int immediate_ref;    /* the Lua handler; LUA_NOREF until set */
  int immediate_inited; /* handles initialized */
  char exe_path[4096];  /* this binary, so configs can spawn "smg run ..." children */
  char root_dir[4096];  /* directory holding lua/, config/, examples/ */
} smg_loop_t;

int smg_loop_init(smg_loop_t *loop, const char *argv0);
/* Runs until no handle is active. */
int smg_loop_run(smg_loop_t *loop);
/* Closes every remaining handle, then the loop itself; returns uv_loop_close's result. */
int smg_loop_close(smg_loop_t *loop);

/* A uv_close callback for a handle embedded in the malloc'd object its data points to:
 * frees that object once libuv is done with the handle. */
void smg_free_on_close(uv_handle_t *h);

#endif
