/* smg.core redis: an asynchronous Redis connection (hiredis on the libuv loop). Commands take an
 * argv table and call back with the reply converted to Lua; the Lua side (lua/smg/redis.lua) adds
 * yielding calls, timeouts and reconnection. One owner: the Lua handle; hiredis frees the context
 * after the disconnect callback, which is the one close path. */
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>

#include "lua_redis.h"
#include "lua_vm.h"

/* ---- the event adapter ----------------------------------------------------------------
 * hiredis 0.14's bundled libuv adapter drops poll errors, so a refused connection is never
 * noticed and the connect hangs until the caller's timeout. This one hands an error to
 * hiredis as readiness of whatever it waits for (as later hiredis releases do), and hiredis
 * then reads the socket error itself. */
typedef struct {
  redisAsyncContext *ac;
  uv_poll_t poll;
  int events;
} adapter_t;

static void close_deferred(redisAsyncContext *ac);

static void adapter_on_poll(uv_poll_t *h, int status, int events) {
  adapter_t *a = h->data;
  int ev = status < 0 ? a->events : events;
  if (a->ac && (ev & UV_READABLE)) redisAsyncHandleRead(a->ac);
  if (a->ac && (ev & UV_WRITABLE)) redisAsyncHandleWrite(a->ac);
  if (a->ac) close_deferred(a->ac); /* a close asked for inside the connect callback */
}

static void adapter_update(adapter_t *a, int add, int del) {
  a->events = (a->events | add) & ~del;
  if (a->events)
    uv_poll_start(&a->poll, a->events, adapter_on_poll);
  else
    uv_poll_stop(&a->poll);
}

static void adapter_add_read(void *d) {
  adapter_update(d, UV_READABLE, 0);
}
static void adapter_del_read(void *d) {
  adapter_update(d, 0, UV_READABLE);
}
static void adapter_add_write(void *d) {
  adapter_update(d, UV_WRITABLE, 0);
}
static void adapter_del_write(void *d) {
  adapter_update(d, 0, UV_WRITABLE);
}
static void adapter_cleanup(void *d) {
  adapter_t *a = d;
  a->ac = NULL; /* the context is being freed */
  uv_close((uv_handle_t *)&a->poll, smg_free_on_close);
}

static int adapter_attach(redisAsyncContext *ac, uv_loop_t *loop) {
  adapter_t *a = calloc(1, sizeof(*a));
  if (!a) return REDIS_ERR;
  if (uv_poll_init(loop, &a->poll, ac->c.fd) != 0) {
    free(a);
    return REDIS_ERR;
  }
  a->ac = ac;
  a->poll.data = a;
  ac->ev.addRead = adapter_add_read;
  ac->ev.delRead = adapter_del_read;
  ac->ev.addWrite = adapter_add_write;
  ac->ev.delWrite = adapter_del_write;
  ac->ev.cleanup = adapter_cleanup;
  ac->ev.data = a;
  return REDIS_OK;
}

typedef struct {
  redisAsyncContext *ac; /* NULL once disconnected */
  smg_loop_t *loop;
  int connect_ref, disconnect_ref, self_ref;
  int in_connect;    /* inside the connect callback, where hiredis cannot be freed */
  int close_pending; /* close() was called there: done once hiredis has returned */
} lredis_t;

int smg_redis_push_reply(lua_State *L, redisReply *r, int depth) {
  if (!r) {
    lua_pushnil(L);
    lua_pushstring(L, "connection lost");
    return 2;
  }
  switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
      lua_pushlstring(L, r->str, r->len);
      return 1;
    case REDIS_REPLY_INTEGER:
      lua_pushnumber(L, (lua_Number)r->integer);
      return 1;
    case REDIS_REPLY_NIL:
      lua_pushboolean(L, 0); /* a missing key: false, so that nil keeps meaning "error" */
      return 1;
    case REDIS_REPLY_ARRAY:
      if (depth > 16) {
        lua_pushnil(L);
        lua_pushstring(L, "reply nested too deep");
        return 2;
      }
      lua_createtable(L, (int)r->elements, 0);
      for (size_t i = 0; i < r->elements; i++) {
        int n = smg_redis_push_reply(L, r->element[i], depth + 1);
        lua_pop(L, n - 1); /* keep the value (nil on error) */
        lua_rawseti(L, -2, (int)i + 1);
      }
      return 1;
    case REDIS_REPLY_ERROR:
      lua_pushnil(L);
      lua_pushlstring(L, r->str, r->len);
      return 2;
    default:
      lua_pushnil(L);
      lua_pushstring(L, "unexpected reply type");
      return 2;
  }
}

typedef struct {
  smg_loop_t *loop;
  int cb_ref;
  int persistent; /* SUBSCRIBE: called for every message, until the connection ends */
} lcmd_t;

/* A command's record is freed after its one reply; a subscription's only when hiredis
 * hands it NULL, which it does for every subscription as it frees the context. */
static void on_reply(redisAsyncContext *ac, void *reply, void *privdata) {
  lcmd_t *c = privdata;
  (void)ac;
  int last = !c->persistent || reply == NULL;
  lua_State *L = smg_lua_enter(c->loop);
  if (!L) {
    if (last) free(c);
    return;
  }
  smg_lua_push_ref(L, c->cb_ref);
  int n = smg_redis_push_reply(L, reply, 0);
  smg_lua_pcall(L, n, 0, "redis reply callback");
  if (last) {
    smg_lua_unref(L, &c->cb_ref);
    free(c);
  }
}

/* Drops the Lua anchors; the handle stays usable (as "not connected"). */
static void release(lredis_t *u) {
  u->ac = NULL;
  lua_State *L = smg_lua_enter(u->loop);
  smg_lua_unref(L, &u->connect_ref);
  smg_lua_unref(L, &u->disconnect_ref);
  smg_lua_unref(L, &u->self_ref);
}

static void on_connect(const redisAsyncContext *ac, int status) {
  lredis_t *u = ac->data;
  if (!u) return; /* its userdata was collected (redis_gc) */
  lua_State *L = smg_lua_enter(u->loop);
  if (!L) {
    if (status != REDIS_OK) u->ac = NULL;
    return;
  }
  smg_lua_push_ref(L, u->self_ref); /* survive the callback */
  if (u->connect_ref != LUA_NOREF) {
    smg_lua_push_ref(L, u->connect_ref);
    if (status == REDIS_OK)
      lua_pushnil(L);
    else
      lua_pushstring(L, ac->errstr[0] ? ac->errstr : "connect failed");
    /* hiredis marks no callback here (REDIS_IN_CALLBACK): a close from Lua must wait. */
    u->in_connect = 1;
    smg_lua_pcall(L, 1, 0, "redis connect callback");
    u->in_connect = 0;
  }
  /* A failed connect is final: hiredis frees the context without a disconnect callback. */
  if (status != REDIS_OK) release(u);
  lua_pop(L, 1);
}

static void on_disconnect(const redisAsyncContext *ac, int status) {
  lredis_t *u = ac->data;
  if (!u) return; /* its userdata was collected (redis_gc) */
  lua_State *L = smg_lua_enter(u->loop);
  u->ac = NULL; /* hiredis frees the context when this returns */
  if (!L) return;
  smg_lua_push_ref(L, u->self_ref); /* survive the callback */
  if (u->disconnect_ref != LUA_NOREF) {
    smg_lua_push_ref(L, u->disconnect_ref);
    if (status == REDIS_OK)
      lua_pushnil(L);
    else
      lua_pushstring(L, ac->errstr[0] ? ac->errstr : "disconnected");
    smg_lua_pcall(L, 1, 0, "redis disconnect callback");
  }
  release(u);
  lua_pop(L, 1);
}

/* redis_connect(host, port, on_connect(err), on_disconnect(err)) -> handle | nil, err */
static int l_redis_connect(lua_State *L) {
  const char *host = luaL_checkstring(L, 1);
  int port = (int)luaL_checkinteger(L, 2);
  luaL_checktype(L, 3, LUA_TFUNCTION);
  luaL_checktype(L, 4, LUA_TFUNCTION);
  redisAsyncContext *ac = redisAsyncConnect(host, port);
  if (!ac) {
    lua_pushnil(L);
    lua_pushstring(L, "out of memory");
    return 2;
  }
  if (ac->err) {
    lua_pushnil(L);
    lua_pushstring(L, ac->errstr);
    redisAsyncFree(ac);
    return 2;
  }
  redisEnableKeepAlive(&ac->c); /* a peer gone without a word is noticed */
  if (adapter_attach(ac, &smg_lua_loop(L)->uv) != REDIS_OK) {
    redisAsyncFree(ac);
    lua_pushnil(L);
    lua_pushstring(L, "cannot attach to the event loop");
    return 2;
  }
  lredis_t *u = lua_newuserdata(L, sizeof(*u));
  memset(u, 0, sizeof(*u));
  u->ac = ac;
  u->loop = smg_lua_loop(L);
  luaL_getmetatable(L, "smg.redis");
  lua_setmetatable(L, -2);
  u->connect_ref = smg_lua_ref(L, 3);
  u->disconnect_ref = smg_lua_ref(L, 4);
  u->self_ref = smg_lua_ref(L, -1);
  ac->data = u;
  redisAsyncSetConnectCallback(ac, on_connect);
  redisAsyncSetDisconnectCallback(ac, on_disconnect);
  return 1;
}

int smg_redis_argv(lua_State *L, int idx, const char **argv, size_t *lens) {
  int argc = (int)lua_objlen(L, idx);
  luaL_argcheck(L, argc > 0 && argc <= SMG_REDIS_MAX_ARGS, idx, "1 to 64 arguments");
  /* The values stay on the stack until the command is formatted (a number converted to a
   * string would otherwise be garbage once popped). */
  luaL_checkstack(L, argc, "redis arguments");
  for (int i = 0; i < argc; i++) {
    lua_rawgeti(L, idx, i + 1);
    argv[i] = lua_tolstring(L, -1, &lens[i]);
    luaL_argcheck(L, argv[i] != NULL, idx, "arguments must be strings or numbers");
  }
  return argc;
}

/* handle:command({argv...}, fn(value | nil, err)[, persistent]) -> true | nil, err
 * persistent (for SUBSCRIBE of one channel): fn is called with every message, and with
 * nil, "connection lost" once when the connection ends. */
static int redis_command(lua_State *L) {
  lredis_t *u = luaL_checkudata(L, 1, "smg.redis");
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 3, LUA_TFUNCTION);
  if (!u->ac) {
    lua_pushnil(L);
    lua_pushstring(L, "not connected");
    return 2;
  }
  const char *argv[SMG_REDIS_MAX_ARGS];
  size_t lens[SMG_REDIS_MAX_ARGS];
  int argc = smg_redis_argv(L, 2, argv, lens);
  lcmd_t *c = malloc(sizeof(*c));
  if (!c) return luaL_error(L, "out of memory");
  c->loop = u->loop;
  c->persistent = lua_toboolean(L, 4);
  c->cb_ref = smg_lua_ref(L, 3);
  int rc = redisAsyncCommandArgv(u->ac, on_reply, c, argc, argv, lens);
  lua_pop(L, argc);
  if (rc != REDIS_OK) {
    smg_lua_unref(L, &c->cb_ref);
    free(c);
    lua_pushnil(L);
    lua_pushstring(L, "command not sent");
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* Closes now: pending commands get "connection lost" (not their replies: a server that
 * stalls must not keep the socket open), then the disconnect callback releases. Inside a
 * reply callback hiredis defers the free itself (REDIS_IN_CALLBACK). */
static void close_now(lredis_t *u) {
  redisAsyncContext *ac = u->ac;
  if (!ac) return;
  if (!(ac->c.flags & REDIS_CONNECTED)) {
    /* Still connecting: hiredis will call neither callback, so release here. */
    release(u);
  }
  redisAsyncFree(ac);
}

static void close_deferred(redisAsyncContext *ac) {
  lredis_t *u = ac->data;
  if (!u || !u->close_pending) return;
  u->close_pending = 0;
  close_now(u);
}

/* handle:close(): pending commands get "connection lost", then the disconnect callback. */
static int redis_close(lua_State *L) {
  lredis_t *u = luaL_checkudata(L, 1, "smg.redis");
  if (!u->ac) return 0;
  if (u->in_connect) {
    u->close_pending = 1;
    return 0;
  }
  close_now(u);
  return 0;
}

/* __gc (lua_close included): the context must stop pointing at this userdata's memory.
 * Pending commands are answered with NULL, which frees their records (on_reply). */
static int redis_gc(lua_State *L) {
  lredis_t *u = luaL_checkudata(L, 1, "smg.redis");
  redisAsyncContext *ac = u->ac;
  if (!ac) return 0;
  u->ac = NULL;
  ac->data = NULL;
  redisAsyncFree(ac);
  return 0;
}

static int redis_connected(lua_State *L) {
  lredis_t *u = luaL_checkudata(L, 1, "smg.redis");
  lua_pushboolean(L, u->ac != NULL && (u->ac->c.flags & REDIS_CONNECTED));
  return 1;
}

void smg_lua_redis_register(lua_State *L) {
  static const luaL_Reg methods[] = {{"command", redis_command},
                                     {"close", redis_close},
                                     {"connected", redis_connected},
                                     {NULL, NULL}};
  smg_lua_new_meta(L, "smg.redis", methods, redis_gc);
  lua_pushcfunction(L, l_redis_connect);
  lua_setfield(L, -2, "redis_connect");
}
