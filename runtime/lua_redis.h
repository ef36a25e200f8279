/* What the Redis bindings share: replies as Lua values. */
#ifndef SMG_LUA_REDIS_H
#define SMG_LUA_REDIS_H

#include <hiredis/hiredis.h>
#include <lua.h>

/* Pushes a reply as Lua values: value | nil, err (a NULL reply: nil, "connection lost").
 * Returns the number pushed. */
int smg_redis_push_reply(lua_State *L, redisReply *r, int depth);

#define SMG_REDIS_MAX_ARGS 64

/* The command table at idx as argv/lens (1 to SMG_REDIS_MAX_ARGS strings or numbers,
 * raising otherwise). The values are left on the stack, to be popped (argc of them) once
 * the command is formatted. Returns argc. */
int smg_redis_argv(lua_State *L, int idx, const char **argv, size_t *lens);

#endif
