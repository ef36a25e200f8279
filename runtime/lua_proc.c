/* smg.core spawn: child processes for stdio MCP upstreams (and for tests). The Lua side
 * (lua/smg/upstream/stdio.lua) adds restart, backoff and the MCP client on top. */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "lua_vm.h"
#include "proc.h"

typedef struct {
  smg_proc_t *p; /* NULL once released */
  smg_loop_t *loop;
  int line_ref, exit_ref, self_ref;
  int json; /* stdout lines go to Lua decoded */
} lproc_t;

static void on_line(smg_proc_t *p, int stream, const char *line, size_t len, void *data) {
  lproc_t *u = data;
  lua_State *L = smg_lua_enter(u->loop);
  if (!L) return;
  smg_lua_push_ref(L, u->line_ref);
  lua_pushinteger(L, stream);
  if (u->json && stream == 1) {
    /* Decoded from the pipe's buffer: a line made a Lua string would be interned, and
     * same-length lines of 128 bytes or more that differ in a few bytes (their ids) share
     * LuaJIT's sampled hash. The line itself only when it does not decode to an object or
     * array (for the log). */
    int n = smg_lua_json_decode(L, line, len);
    if (n == 1 && lua_istable(L, -1)) {
      smg_lua_pcall(L, 2, 0, "process output handler");
      return;
    }
    if (n == 1) lua_pushnil(L);
    lua_pushlstring(L, line, len);
    smg_lua_pcall(L, 4, 0, "process output handler");
    return;
  }
  lua_pushlstring(L, line, len);
  smg_lua_pcall(L, 2, 0, "process output handler");
}

static void on_exit_cb(smg_proc_t *p, int64_t status, int sig, void *data) {
  lproc_t *u = data;
  lua_State *L = smg_lua_enter(u->loop);
  if (!L) return;
  smg_lua_push_ref(L, u->self_ref); /* survive the callback */
  smg_lua_push_ref(L, u->exit_ref);
  lua_pushnumber(L, (double)status);
  lua_pushinteger(L, sig);
  smg_lua_pcall(L, 2, 0, "process exit handler");
  /* The child is gone; the userdata may still be used for pid() etc. until collected. */
  smg_lua_unref(L, &u->self_ref);
  lua_pop(L, 1);
}

static lproc_t *check_proc(lua_State *L) {
  lproc_t *u = luaL_checkudata(L, 1, "smg.proc");
  luaL_argcheck(L, u->p != NULL, 1, "process is released");
  return u;
}

static int proc_write(lua_State *L) {
  lproc_t *u = check_proc(L);
  size_t len;
  const char *s = luaL_checklstring(L, 2, &len);
  int rc = smg_proc_write(u->p, s, len);
  if (rc < 0) return smg_lua_push_uv_error(L, rc);
  lua_pushboolean(L, 1);
  return 1;
}

static int proc_pid(lua_State *L) {
  lua_pushinteger(L, smg_proc_pid(check_proc(L)->p));
  return 1;
}

static int proc_write_queue(lua_State *L) {
  lua_pushnumber(L, (double)smg_proc_write_queue(check_proc(L)->p));
  return 1;
}

static int proc_kill(lua_State *L) {
  lproc_t *u = check_proc(L);
  int sig = (int)luaL_optinteger(L, 2, 15);
  int rc = smg_proc_kill(u->p, sig);
  if (rc < 0) return smg_lua_push_uv_error(L, rc);
  lua_pushboolean(L, 1);
  return 1;
}

static int proc_shutdown(lua_State *L) {
  lproc_t *u = check_proc(L);
  smg_proc_shutdown(u->p, (uint64_t)luaL_optnumber(L, 2, 2000));
  return 0;
}

static int proc_release(lua_State *L) {
  lproc_t *u = luaL_checkudata(L, 1, "smg.proc");
  if (!u->p) return 0;
  smg_proc_release(u->p);
  u->p = NULL;
  smg_lua_unref(L, &u->line_ref);
  smg_lua_unref(L, &u->exit_ref);
  smg_lua_unref(L, &u->self_ref);
  return 0;
}

static char **string_array(lua_State *L, int idx, const char *first) {
  int n = lua_istable(L, idx) ? (int)lua_objlen(L, idx) : 0;
  int off = first ? 1 : 0;
  char **arr = calloc((size_t)(n + off + 1), sizeof(char *));
  if (!arr) return NULL;
  if (first) arr[0] = (char *)first;
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, idx, i);
    arr[i - 1 + off] = (char *)lua_tostring(L, -1); /* anchored by the table */
    lua_pop(L, 1);
    if (!arr[i - 1 + off]) {
      free(arr);
      luaL_error(L, "argument %d is not a string", i);
    }
  }
  return arr;
}

/* spawn{file, args = {...}, env = {"K=V", ...}, cwd, max_line, json}, on_line(stream, line),
 * on_exit(status, signal). With json = true a stdout line arrives decoded: on_line(1,
 * object), or on_line(1, value or nil, error or nil, line) when it is not a JSON object or array.
 */
static int l_spawn(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  luaL_checktype(L, 3, LUA_TFUNCTION);
  lua_settop(L, 3);
  lua_getfield(L, 1, "file"); /* 4 */
  const char *file = luaL_checkstring(L, 4);
  lua_getfield(L, 1, "args");     /* 5 */
  lua_getfield(L, 1, "env");      /* 6 */
  lua_getfield(L, 1, "cwd");      /* 7 */
  lua_getfield(L, 1, "max_line"); /* 8 */
  lua_getfield(L, 1, "json");     /* 9 */
  smg_proc_opts_t o;
  memset(&o, 0, sizeof(o));
  o.file = file;
  o.cwd = lua_tostring(L, 7);
  o.max_line = lua_isnumber(L, 8) ? (size_t)lua_tonumber(L, 8) : 0;
  o.args = string_array(L, 5, file);
  o.env = lua_istable(L, 6) ? string_array(L, 6, NULL) : NULL;
  lproc_t *u = lua_newuserdata(L, sizeof(*u));
  memset(u, 0, sizeof(*u));
  luaL_getmetatable(L, "smg.proc");
  lua_setmetatable(L, -2);
  u->loop = smg_lua_loop(L);
  u->json = lua_toboolean(L, 9);
  char err[512];
  int rc =
      smg_proc_spawn(&smg_lua_loop(L)->uv, &o, on_line, on_exit_cb, u, &u->p, err, sizeof(err));
  free(o.args);
  free(o.env);
  if (rc < 0) {
    u->p = NULL;
    lua_pushnil(L);
    lua_pushstring(L, err);
    lua_pushstring(L, uv_err_name(rc));
    return 3;
  }
  u->line_ref = smg_lua_ref(L, 2);
  u->exit_ref = smg_lua_ref(L, 3);
  u->self_ref = smg_lua_ref(L, -1);
  return 1;
}

void smg_lua_proc_register(lua_State *L) {
  static const luaL_Reg m[] = {
      {"write", proc_write}, {"pid", proc_pid},           {"write_queue", proc_write_queue},
      {"kill", proc_kill},   {"shutdown", proc_shutdown}, {"release", proc_release},
      {NULL, NULL}};
  smg_lua_new_meta(L, "smg.proc", m, proc_release);
  lua_pushcfunction(L, l_spawn);
  lua_setfield(L, -2, "spawn");
}
