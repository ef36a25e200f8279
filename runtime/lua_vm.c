/* LuaJIT VM setup. lua-cjson is linked in and preloaded, so the binary is self-contained;
 * Lua sources come from <root>/lua and plugins from <root>/plugins. Every call from C into
 * Lua goes through smg_lua_pcall, which adds a traceback and logs failures, so a broken
 * callback fails one operation and never the process. */
#include "lua_vm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

int luaopen_cjson(lua_State *L);
int luaopen_cjson_safe(lua_State *L);

static const char LOOP_KEY = 'L';
static const char EXIT_KEY = 'X';

smg_loop_t *smg_lua_loop(lua_State *L) {
  lua_pushlightuserdata(L, (void *)&LOOP_KEY);
  lua_rawget(L, LUA_REGISTRYINDEX);
  smg_loop_t *loop = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return loop;
}

lua_State *smg_lua_enter(smg_loop_t *loop) {
  return loop->L;
}

int smg_lua_ref(lua_State *L, int idx) {
  lua_pushvalue(L, idx);
  return luaL_ref(L, LUA_REGISTRYINDEX);
}

void smg_lua_push_ref(lua_State *L, int ref) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
}

void smg_lua_unref(lua_State *L, int *ref) {
  if (L && *ref != LUA_NOREF && *ref != LUA_REFNIL) luaL_unref(L, LUA_REGISTRYINDEX, *ref);
  *ref = LUA_NOREF;
}

int smg_lua_push_uv_error(lua_State *L, int err) {
  lua_pushnil(L);
  lua_pushfstring(L, "%s: %s", uv_err_name(err), uv_strerror(err));
  lua_pushstring(L, uv_err_name(err));
  return 3;
}

void smg_lua_new_meta(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc) {
  luaL_newmetatable(L, name);
  lua_newtable(L);
  luaL_register(L, NULL, methods);
  lua_setfield(L, -2, "__index");
  if (gc) {
    lua_pushcfunction(L, gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
}

static int traceback(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (!msg) msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  luaL_traceback(L, L, msg, 1);
  return 1;
}

int smg_lua_pcall(lua_State *L, int nargs, int nres, const char *what) {
  int base = lua_gettop(L) - nargs;
  lua_pushcfunction(L, traceback);
  lua_insert(L, base);
  int rc = lua_pcall(L, nargs, nres, base);
  lua_remove(L, base);
  if (rc != 0) {
    smg_log_error("lua error in %s: %s", what, lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  return rc;
}

static void set_path(lua_State *L, const char *root) {
  char buf[16384];
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "path");
  const char *old = lua_tostring(L, -1);
  const char *extra = getenv("SMG_LUA_PATH");
  snprintf(buf, sizeof(buf), "%s%s%s/lua/?.lua;%s/lua/?/init.lua;%s", extra ? extra : "",
           extra ? ";" : "", root, root, old ? old : "");
  lua_pop(L, 1);
  lua_pushstring(L, buf);
  lua_setfield(L, -2, "path");
  lua_pop(L, 1);
}

int smg_lua_open(smg_loop_t *loop) {
  lua_State *L = luaL_newstate();
  if (!L) return -1;
  loop->L = L;
  luaL_openlibs(L);
  lua_pushlightuserdata(L, (void *)&LOOP_KEY);
  lua_pushlightuserdata(L, loop);
  lua_rawset(L, LUA_REGISTRYINDEX);
  set_path(L, loop->root_dir);
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "preload");
  lua_pushcfunction(L, luaopen_cjson);
  lua_setfield(L, -2, "cjson");
  lua_pushcfunction(L, luaopen_cjson_safe);
  lua_setfield(L, -2, "cjson.safe");
  lua_pushcfunction(L, luaopen_smg_core);
  lua_setfield(L, -2, "smg.core");
  lua_pop(L, 2);
  return 0;
}

void smg_lua_close(smg_loop_t *loop) {
  lua_State *L = loop->L;
  if (!L) return;
  loop->L = NULL; /* first: callbacks that __gc (or libuv) triggers from here on stay out */
  lua_close(L);   /* __gc of every handle-owning userdata closes its handles */
}

int smg_lua_exit_code(lua_State *L) {
  lua_pushlightuserdata(L, (void *)&EXIT_KEY);
  lua_rawget(L, LUA_REGISTRYINDEX);
  int code = lua_isnumber(L, -1) ? (int)lua_tointeger(L, -1) : 0;
  lua_pop(L, 1);
  return code;
}

int smg_lua_set_exit_code(lua_State *L, int code) {
  lua_pushlightuserdata(L, (void *)&EXIT_KEY);
  lua_pushinteger(L, code);
  lua_rawset(L, LUA_REGISTRYINDEX);
  return 0;
}

int smg_lua_main(smg_loop_t *loop, int argc, char **argv) {
  lua_State *L = loop->L;
  lua_getglobal(L, "require");
  lua_pushstring(L, "smg.main");
  if (smg_lua_pcall(L, 1, 1, "require smg.main") != 0) return 70;
  lua_getfield(L, -1, "main");
  lua_remove(L, -2);
  lua_createtable(L, argc, 0);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i + 1);
  }
  if (smg_lua_pcall(L, 1, 0, "main") != 0) return 70;
  return 0;
}
