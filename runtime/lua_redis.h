/* What the Redis bindings share: replies as Lua values. */
#ifndef SMG_LUA_REDIS_H
#define SMG_LUA_REDIS_H

#include <hiredis/hiredis.h>
#include <lua.h>

/* Pushes a reply as Lua values: value | nil, err (a NULL reply: nil, "connection lost").
 * Returns the number pushed. */
int smg_redis_push_reply(lua_State *L, redisReply *r, int depth);

#endif
