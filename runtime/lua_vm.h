/* The LuaJIT VM: creation, module paths, protected calls from C callbacks, and the
 * registry anchors that keep Lua objects alive while C holds them. */
#ifndef SMG_LUA_VM_H
#define SMG_LUA_VM_H

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "loop.h"

int smg_lua_open(smg_loop_t *loop);
void smg_lua_close(smg_loop_t *loop);
smg_loop_t *smg_lua_loop(lua_State *L);

/* The only way a C callback reaches Lua: the main state while it is open, NULL from the
 * moment smg_lua_close begins. Binding objects keep their smg_loop_t, never a lua_State,
 * so a libuv, curl or hiredis callback that fires during or after the close (a file
 * watch, a process exit, a cancelled transfer) finds NULL and does only its C cleanup. */
lua_State *smg_lua_enter(smg_loop_t *loop);

/* Calls the function below nargs arguments with a traceback handler. On error the message
 * is logged with `what` and LUA_ERR* is returned; the stack is left as lua_pcall leaves it
 * minus the handler (nres results on success, nothing on error). */
int smg_lua_pcall(lua_State *L, int nargs, int nres, const char *what);

/* Runs the Lua entry point `smg.main`'s main(argv) and returns its requested exit code. */
int smg_lua_main(smg_loop_t *loop, int argc, char **argv);
int smg_lua_exit_code(lua_State *L);

/* Registry anchors: ref the value at idx, push it back, drop it. */
int smg_lua_ref(lua_State *L, int idx);
void smg_lua_push_ref(lua_State *L, int ref);
/* smg_lua_unref accepts L == NULL (the state is gone, and its registry with it). */
void smg_lua_unref(lua_State *L, int *ref);

/* Registers metatable `name` with `methods` as __index and `gc` (may be NULL) as __gc. */
void smg_lua_new_meta(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc);

/* Binding modules. */
int luaopen_smg_core(lua_State *L);
void smg_lua_http_register(lua_State *L);
void smg_lua_proc_register(lua_State *L);
void smg_lua_json_register(lua_State *L);
/* Decodes JSON text onto the stack: pushes the value, or nil and the error; returns 1 or 2.
 * For C callers that hold the text in a buffer: no Lua string is made of it. */
int smg_lua_json_decode(lua_State *L, const char *s, size_t len);
void smg_lua_fs_register(lua_State *L);
void smg_lua_crypto_register(lua_State *L);
void smg_lua_text_register(lua_State *L);
void smg_lua_redis_register(lua_State *L);
void smg_lua_redis_tls_register(lua_State *L);
void smg_lua_resolve_register(lua_State *L);

/* Pushes nil, "ECODE: message", "ECODE" (luv style) and returns 3. */
int smg_lua_push_uv_error(lua_State *L, int err);

#endif
