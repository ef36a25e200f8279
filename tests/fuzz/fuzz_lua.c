/* libFuzzer target for the parsers written in Lua, run inside the real smg VM: the JSON
 * binding (yyjson <-> Lua, both ways), the JSON-RPC envelope checks, the SSE parser and the
 * config loader. FUZZ_TARGET names the function of tests/fuzz/targets.lua to call; a Lua
 * error escaping it is a bug (these functions must answer bad input with nil, err), so it
 * aborts with the traceback. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "loop.h"
#include "lua_vm.h"

#ifndef FUZZ_TARGET
#error "define FUZZ_TARGET"
#endif

static smg_loop_t loop;
static int fn_ref;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  if (smg_loop_init(&loop, (*argv)[0]) < 0 || smg_lua_open(&loop) != 0) abort();
  (void)argc;
  lua_State *L = loop.L;
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "path");
  lua_pushstring(L, ";" SMG_SOURCE_DIR "/tests/fuzz/?.lua");
  lua_concat(L, 2);
  lua_setfield(L, -2, "path");
  lua_pop(L, 1);
  lua_getglobal(L, "require");
  lua_pushstring(L, "targets");
  if (lua_pcall(L, 1, 1, 0) != 0) {
    fprintf(stderr, "%s\n", lua_tostring(L, -1));
    abort();
  }
  lua_getfield(L, -1, FUZZ_TARGET);
  if (!lua_isfunction(L, -1)) abort();
  fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pop(L, 1);
  return 0;
}

static int traceback(lua_State *L) {
  luaL_traceback(L, L, lua_tostring(L, 1), 1);
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lua_State *L = loop.L;
  lua_pushcfunction(L, traceback);
  lua_rawgeti(L, LUA_REGISTRYINDEX, fn_ref);
  lua_pushlstring(L, (const char *)data, size);
  if (lua_pcall(L, 1, 0, -3) != 0) {
    fprintf(stderr, "Lua error on fuzz input: %s\n", lua_tostring(L, -1));
    abort();
  }
  lua_pop(L, 1);
  /* Keep memory flat across millions of inputs. */
  lua_gc(L, LUA_GCSTEP, 0);
  return 0;
}
