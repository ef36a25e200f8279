/* smg.core http functions: the HTTP server (one Lua callback per request, request objects
 * with respond / stream methods) and outbound HTTP calls (streaming callbacks). The Lua
 * side (lua/smg/http.lua) builds the coroutine-style API on top. */
#include <stdlib.h>
#include <string.h>

#include "http_client.h"
#include "http_server.h"
#include "log.h"
#include "lua_vm.h"

/* ---- server ------------------------------------------------------------------------------- */

typedef struct {
  smg_http_server_t *srv; /* NULL once closed */
  smg_loop_t *loop;
  int req_ref, abort_ref, self_ref;
} lserver_t;

typedef struct {
  smg_http_req_t *req; /* NULL once released */
  int self_ref;        /* anchored from dispatch until finished or aborted */
} lreq_t;

static void on_request(smg_http_req_t *req, void *data) {
  lserver_t *s = data;
  lua_State *L = smg_lua_enter(s->loop);
  if (!L) {
    smg_http_req_respond(req, 503, "Connection: close\r\n", 19, "", 0);
    return;
  }
  smg_lua_push_ref(L, s->req_ref);
  lreq_t *u = lua_newuserdata(L, sizeof(*u));
  u->req = req;
  luaL_getmetatable(L, "smg.http.req");
  lua_setmetatable(L, -2);
  u->self_ref = smg_lua_ref(L, -1);
  smg_http_req_set_data(req, u);
  if (smg_lua_pcall(L, 1, 0, "http request handler") != 0 && smg_http_req_alive(req)) {
    static const char body[] = "{\"error\":\"internal error\"}";
    smg_http_req_respond(req, 500, "Content-Type: application/json\r\n", 32, body,
                         sizeof(body) - 1);
  }
}

static void on_abort(smg_http_req_t *req, void *data) {
  lserver_t *s = data;
  lreq_t *u = smg_http_req_get_data(req);
  if (!u) return;
  lua_State *L = smg_lua_enter(s->loop);
  if (!L) return;
  if (s->abort_ref != LUA_NOREF) {
    smg_lua_push_ref(L, s->abort_ref);
    smg_lua_push_ref(L, u->self_ref);
    smg_lua_pcall(L, 1, 0, "http abort handler");
  }
  smg_lua_unref(L, &u->self_ref);
}

static lreq_t *check_req(lua_State *L) {
  lreq_t *u = luaL_checkudata(L, 1, "smg.http.req");
  luaL_argcheck(L, u->req != NULL, 1, "request is released");
  return u;
}

static int req_gc(lua_State *L) {
  lreq_t *u = luaL_checkudata(L, 1, "smg.http.req");
  if (u->req) {
    smg_http_req_set_data(u->req, NULL);
    smg_http_req_release(u->req);
    u->req = NULL;
  }
  return 0;
}

static int req_method(lua_State *L) {
  lua_pushstring(L, smg_http_req_method(check_req(L)->req));
  return 1;
}
static int req_path(lua_State *L) {
  lua_pushstring(L, smg_http_req_path(check_req(L)->req));
  return 1;
}
static int req_query(lua_State *L) {
  lua_pushstring(L, smg_http_req_query(check_req(L)->req));
  return 1;
}
static int req_peer(lua_State *L) {
  lua_pushstring(L, smg_http_req_peer(check_req(L)->req));
  return 1;
}
/* req:peer_address(): the peer without its ":port" (what identities and limits key on). */
static int req_peer_address(lua_State *L) {
  const char *p = smg_http_req_peer(check_req(L)->req);
  const char *colon = strrchr(p, ':');
  size_t n = strlen(p);
  if (colon && colon[1] != '\0' && strspn(colon + 1, "0123456789") == strlen(colon + 1))
    n = (size_t)(colon - p);
  lua_pushlstring(L, p, n);
  return 1;
}
static int req_alive(lua_State *L) {
  lreq_t *u = luaL_checkudata(L, 1, "smg.http.req");
  lua_pushboolean(L, u->req && smg_http_req_alive(u->req));
  return 1;
}
/* req:trust(): the request passed authentication; its connection leaves the untrusted limits. */
static int req_trust(lua_State *L) {
  lreq_t *u = luaL_checkudata(L, 1, "smg.http.req");
  if (u->req) smg_http_req_trust(u->req);
  return 0;
}
static int req_body(lua_State *L) {
  size_t len;
  const char *b = smg_http_req_body(check_req(L)->req, &len);
  lua_pushlstring(L, b, len);
  return 1;
}
/* req:json() -> the body decoded | nil, err. Straight from the request's buffer: a body as
 * a Lua string would be interned, and LuaJIT hashes a long string by sampling it, so
 * same-length bodies that differ in a few bytes (their ids) share a hash, and every new
 * one is compared against all of them still in the string table. */
static int req_json(lua_State *L) {
  size_t len;
  const char *b = smg_http_req_body(check_req(L)->req, &len);
  return smg_lua_json_decode(L, b, len);
}
/* Pushes {lowercased name = value} of the request's headers whose name starts with
 * `prefix` (case-insensitive; "" for all), or nil when there are none (no table made). */
static void push_headers(lua_State *L, lreq_t *u, const char *prefix, size_t pl) {
  int n = smg_http_req_header_count(u->req);
  int made = 0;
  for (int i = 0; i < n; i++) {
    const char *name, *value;
    size_t nl, vl;
    smg_http_req_header_at(u->req, i, &name, &nl, &value, &vl);
    char lower[256];
    if (nl >= sizeof(lower) || nl < pl) continue;
    /* (Most are not: told by the first letter, before a compare or a copy.) */
    if (pl > 0 && ((name[0] | 0x20) != (prefix[0] | 0x20) || strncasecmp(name, prefix, pl) != 0))
      continue;
    for (size_t k = 0; k < nl; k++)
      lower[k] = (char)((name[k] >= 'A' && name[k] <= 'Z') ? name[k] + 32 : name[k]);
    if (!made) {
      lua_createtable(L, 0, 4);
      made = 1;
    }
    lua_pushlstring(L, lower, nl);
    lua_rawget(L, -2);
    int seen = !lua_isnil(L, -1);
    lua_pop(L, 1);
    if (seen) continue; /* first wins, as for a single name */
    lua_pushlstring(L, lower, nl);
    lua_pushlstring(L, value, vl);
    lua_rawset(L, -3);
  }
  if (!made) lua_pushnil(L);
}

/* req:header(name, ...) -> the value of each named header (the first of that name), or
 * nil; a name ending in '*' gets the table of the headers with that prefix ("*": all of
 * them), nil when there are none. Several at once cost one call (a C call ends LuaJIT's
 * trace). */
static int req_header(lua_State *L) {
  lreq_t *u = check_req(L);
  int n = lua_gettop(L) - 1;
  luaL_checkstring(L, 2);
  luaL_checkstack(L, n + 4, "too many header names");
  for (int i = 0; i < n; i++) {
    size_t nl, len;
    const char *name = luaL_checklstring(L, 2 + i, &nl);
    if (nl > 0 && name[nl - 1] == '*') {
      push_headers(L, u, name, nl - 1);
      continue;
    }
    const char *v = smg_http_req_header(u->req, name, &len);
    if (v)
      lua_pushlstring(L, v, len);
    else
      lua_pushnil(L);
  }
  return n;
}

/* Formats a {name = value} table as header lines, refusing CR/LF (response splitting).
 * A string is taken as already formatted lines (trusted callers on the hot path). */
static void push_header_block(lua_State *L, int idx) {
  if (lua_type(L, idx) == LUA_TSTRING) {
    lua_pushvalue(L, idx);
    return;
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  if (!lua_isnoneornil(L, idx)) {
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
      size_t nl, vl;
      const char *n = lua_tolstring(L, -2, &nl);
      const char *v = lua_tolstring(L, -1, &vl);
      if (!n || !v || strpbrk(n, "\r\n:") || memchr(v, '\r', vl) || memchr(v, '\n', vl)) {
        luaL_error(L, "invalid header %s", n ? n : "?");
      }
      /* luaL_Buffer uses the stack: copy the strings before popping the value. */
      lua_pushfstring(L, "%s: %s\r\n", n, v);
      lua_insert(L, -2);
      lua_pop(L, 1);
      luaL_addvalue(&b);
    }
  }
  luaL_pushresult(&b);
}

static int req_done(lua_State *L, lreq_t *u, int rc) {
  smg_lua_unref(L, &u->self_ref);
  if (rc < 0) return smg_lua_push_uv_error(L, rc);
  lua_pushboolean(L, 1);
  return 1;
}

static int req_respond(lua_State *L) {
  lreq_t *u = check_req(L);
  int status = (int)luaL_checkinteger(L, 2);
  size_t blen = 0;
  const char *body = luaL_optlstring(L, 4, "", &blen);
  lua_settop(L, 4);
  push_header_block(L, 3);
  size_t hlen;
  const char *h = lua_tolstring(L, -1, &hlen);
  int rc = smg_http_req_respond(u->req, status, h, hlen, body, blen);
  return req_done(L, u, rc);
}

static int req_stream_start(lua_State *L) {
  lreq_t *u = check_req(L);
  int status = (int)luaL_checkinteger(L, 2);
  lua_settop(L, 3);
  push_header_block(L, 3);
  size_t hlen;
  const char *h = lua_tolstring(L, -1, &hlen);
  int rc = smg_http_req_stream_start(u->req, status, h, hlen);
  if (rc < 0) return smg_lua_push_uv_error(L, rc);
  lua_pushboolean(L, 1);
  return 1;
}

static int req_write(lua_State *L) {
  lreq_t *u = check_req(L);
  size_t len;
  const char *d = luaL_checklstring(L, 2, &len);
  int rc = smg_http_req_stream_write(u->req, d, len);
  if (rc < 0) return smg_lua_push_uv_error(L, rc);
  lua_pushboolean(L, 1);
  return 1;
}

static int req_finish(lua_State *L) {
  lreq_t *u = check_req(L);
  return req_done(L, u, smg_http_req_stream_end(u->req));
}

static lserver_t *check_server(lua_State *L) {
  lserver_t *s = luaL_checkudata(L, 1, "smg.http.server");
  luaL_argcheck(L, s->srv != NULL, 1, "server is closed");
  return s;
}

static int server_port(lua_State *L) {
  lua_pushinteger(L, smg_http_server_port(check_server(L)->srv));
  return 1;
}

static int server_connections(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)smg_http_server_connections(check_server(L)->srv));
  return 1;
}

/* server:stats() -> { untrusted, refused_per_peer, refused_full, displaced, header_timeouts } */
static int server_stats(lua_State *L) {
  smg_http_server_stats_t st;
  smg_http_server_stats(check_server(L)->srv, &st);
  lua_createtable(L, 0, 5);
  lua_pushinteger(L, (lua_Integer)st.untrusted);
  lua_setfield(L, -2, "untrusted");
  lua_pushnumber(L, (lua_Number)st.refused_per_peer);
  lua_setfield(L, -2, "refused_per_peer");
  lua_pushnumber(L, (lua_Number)st.refused_full);
  lua_setfield(L, -2, "refused_full");
  lua_pushnumber(L, (lua_Number)st.displaced);
  lua_setfield(L, -2, "displaced");
  lua_pushnumber(L, (lua_Number)st.header_timeouts);
  lua_setfield(L, -2, "header_timeouts");
  return 1;
}

static int server_close(lua_State *L) {
  lserver_t *s = luaL_checkudata(L, 1, "smg.http.server");
  if (!s->srv) return 0;
  smg_http_server_close(s->srv);
  s->srv = NULL;
  /* Requests still in flight keep calling back into s: the userdata stays anchored by
   * their handlers' upvalues only, so keep the callbacks until the state closes. */
  smg_lua_unref(L, &s->self_ref);
  return 0;
}

static int server_gc(lua_State *L) {
  lserver_t *s = luaL_checkudata(L, 1, "smg.http.server");
  smg_http_server_t *srv = s->srv;
  server_close(L);
  if (srv) smg_http_server_forget(srv);
  return 0;
}

static double opt_field(lua_State *L, int idx, const char *k, double def) {
  if (lua_isnoneornil(L, idx)) return def;
  lua_getfield(L, idx, k);
  double v = lua_isnumber(L, -1) ? lua_tonumber(L, -1) : def;
  lua_pop(L, 1);
  return v;
}

/* http_listen(host, port, limits, on_request, on_abort) */
static int l_http_listen(lua_State *L) {
  const char *host = luaL_checkstring(L, 1);
  int port = (int)luaL_checkinteger(L, 2);
  luaL_checktype(L, 4, LUA_TFUNCTION);
  smg_http_limits_t lim;
  smg_http_limits_default(&lim);
  lim.max_header_bytes = (size_t)opt_field(L, 3, "max_header_bytes", (double)lim.max_header_bytes);
  lim.max_body_bytes = (size_t)opt_field(L, 3, "max_body_bytes", (double)lim.max_body_bytes);
  lim.max_connections = (size_t)opt_field(L, 3, "max_connections", (double)lim.max_connections);
  lim.idle_timeout_ms = (uint64_t)opt_field(L, 3, "idle_timeout_ms", (double)lim.idle_timeout_ms);
  lim.request_timeout_ms =
      (uint64_t)opt_field(L, 3, "request_timeout_ms", (double)lim.request_timeout_ms);
  lim.header_timeout_ms =
      (uint64_t)opt_field(L, 3, "header_timeout_ms", (double)lim.header_timeout_ms);
  lim.max_untrusted_per_peer =
      (size_t)opt_field(L, 3, "max_untrusted_per_peer", (double)lim.max_untrusted_per_peer);
  lim.reserved_connections =
      (size_t)opt_field(L, 3, "reserved_connections", (double)lim.reserved_connections);
  lserver_t *s = lua_newuserdata(L, sizeof(*s));
  memset(s, 0, sizeof(*s));
  luaL_getmetatable(L, "smg.http.server");
  lua_setmetatable(L, -2);
  s->loop = smg_lua_loop(L);
  s->req_ref = smg_lua_ref(L, 4);
  s->abort_ref = lua_isfunction(L, 5) ? smg_lua_ref(L, 5) : LUA_NOREF;
  char err[256];
  int rc = smg_http_server_listen(&smg_lua_loop(L)->uv, host, port, &lim, on_request, on_abort, s,
                                  &s->srv, err, sizeof(err));
  if (rc < 0) {
    smg_lua_unref(L, &s->req_ref);
    smg_lua_unref(L, &s->abort_ref);
    s->srv = NULL;
    lua_pushnil(L);
    lua_pushstring(L, err);
    lua_pushstring(L, uv_err_name(rc));
    return 3;
  }
  s->self_ref = smg_lua_ref(L, -1);
  return 1;
}

/* ---- client ------------------------------------------------------------------------------- */

typedef struct {
  smg_http_call_t *call; /* NULL once done or cancelled */
  smg_loop_t *loop;
  int headers_ref, data_ref, done_ref, self_ref;
} lcall_t;

static void lcall_unref_all(lcall_t *c) {
  lua_State *L = smg_lua_enter(c->loop);
  smg_lua_unref(L, &c->headers_ref);
  smg_lua_unref(L, &c->data_ref);
  smg_lua_unref(L, &c->done_ref);
  smg_lua_unref(L, &c->self_ref);
}

static void call_on_headers(smg_http_call_t *call, int status, const char *h, size_t len, void *d) {
  lcall_t *c = d;
  lua_State *L = smg_lua_enter(c->loop);
  if (!L || c->headers_ref == LUA_NOREF) return;
  smg_lua_push_ref(L, c->headers_ref);
  lua_pushinteger(L, status);
  lua_pushlstring(L, h, len);
  smg_lua_pcall(L, 2, 0, "http response headers callback");
}

static void call_on_data(smg_http_call_t *call, const char *p, size_t n, void *d) {
  lcall_t *c = d;
  lua_State *L = smg_lua_enter(c->loop);
  if (!L || c->data_ref == LUA_NOREF) return;
  smg_lua_push_ref(L, c->data_ref);
  lua_pushlstring(L, p, n);
  smg_lua_pcall(L, 1, 0, "http response data callback");
}

static void call_on_done(smg_http_call_t *call, const char *err, void *d) {
  lcall_t *c = d;
  lua_State *L = smg_lua_enter(c->loop);
  c->call = NULL;
  if (!L) return;
  smg_lua_push_ref(L, c->self_ref); /* keep alive through the callback */
  int done = c->done_ref;
  c->done_ref = LUA_NOREF;
  if (done != LUA_NOREF) {
    smg_lua_push_ref(L, done);
    if (err)
      lua_pushstring(L, err);
    else
      lua_pushnil(L);
    luaL_unref(L, LUA_REGISTRYINDEX, done);
    smg_lua_pcall(L, 1, 0, "http response done callback");
  }
  lcall_unref_all(c);
  lua_pop(L, 1);
}

static int call_cancel(lua_State *L) {
  lcall_t *c = luaL_checkudata(L, 1, "smg.http.call");
  if (c->call) {
    smg_http_call_cancel(c->call);
    c->call = NULL;
    lcall_unref_all(c);
  }
  return 0;
}

/* The request pool: at most 64 connections per host, reused. */
#define REQUEST_HOST_CONNECTIONS 64L

/* http_request{method, url, headers = {"K: v", ...}, body, timeout_ms, max_response,
 *              stream = bool, client_cert, client_key, ca_file, public_only = bool},
 *              on_headers(status, raw), on_data(chunk), on_done(err)
 * stream = true: a long-lived transfer, kept out of the request pool. */
static int l_http_request(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 4, LUA_TFUNCTION);
  smg_loop_t *loop = smg_lua_loop(L);
  lua_getfield(L, 1, "stream");
  int stream = lua_toboolean(L, -1);
  lua_pop(L, 1);
  smg_http_client_t **pool = stream ? &loop->httpc_streams : &loop->httpc;
  if (!*pool) *pool = smg_http_client_new(&loop->uv, stream ? 0 : REQUEST_HOST_CONNECTIONS);
  if (!*pool) return luaL_error(L, "cannot create http client");
  smg_http_call_opts_t o;
  memset(&o, 0, sizeof(o));
  lua_getfield(L, 1, "url");
  o.url = luaL_checkstring(L, -1);
  lua_getfield(L, 1, "method");
  o.method = luaL_optstring(L, -1, "GET");
  lua_getfield(L, 1, "body");
  if (!lua_isnil(L, -1)) o.body = luaL_checklstring(L, -1, &o.body_len);
  o.timeout_ms = (uint64_t)opt_field(L, 1, "timeout_ms", 0);
  o.connect_timeout_ms = (uint64_t)opt_field(L, 1, "connect_timeout_ms", 0);
  o.max_response = (size_t)opt_field(L, 1, "max_response", 0);
  lua_getfield(L, 1, "client_cert");
  o.client_cert = luaL_optstring(L, -1, NULL);
  lua_getfield(L, 1, "client_key");
  o.client_key = luaL_optstring(L, -1, NULL);
  lua_getfield(L, 1, "ca_file");
  o.ca_file = luaL_optstring(L, -1, NULL);
  lua_getfield(L, 1, "public_only");
  o.public_only = lua_toboolean(L, -1);
  const char *hdrs[65];
  int nh = 0;
  lua_getfield(L, 1, "headers");
  if (lua_istable(L, -1)) {
    int n = (int)lua_objlen(L, -1);
    luaL_argcheck(L, n <= 64, 1, "at most 64 headers");
    for (int i = 1; i <= n; i++) {
      lua_rawgeti(L, -1, i);
      const char *h = luaL_checkstring(L, -1);
      luaL_argcheck(L, !strpbrk(h, "\r\n"), 1, "header with CR/LF");
      hdrs[nh++] = h; /* stays alive: the table holds it */
      lua_pop(L, 1);
    }
  }
  hdrs[nh] = NULL;
  o.headers = hdrs;
  lcall_t *c = lua_newuserdata(L, sizeof(*c));
  memset(c, 0, sizeof(*c));
  luaL_getmetatable(L, "smg.http.call");
  lua_setmetatable(L, -2);
  c->loop = smg_lua_loop(L);
  c->headers_ref = lua_isfunction(L, 2) ? smg_lua_ref(L, 2) : LUA_NOREF;
  c->data_ref = lua_isfunction(L, 3) ? smg_lua_ref(L, 3) : LUA_NOREF;
  c->done_ref = smg_lua_ref(L, 4);
  c->self_ref = smg_lua_ref(L, -1);
  static const smg_http_call_cbs_t cbs = {call_on_headers, call_on_data, call_on_done};
  char err[256];
  int rc = smg_http_call_start(*pool, &o, &cbs, c, &c->call, err, sizeof(err));
  if (rc < 0) {
    lcall_unref_all(c);
    c->call = NULL;
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
  }
  return 1;
}

void smg_lua_http_register(lua_State *L) {
  static const luaL_Reg req_m[] = {{"method", req_method},
                                   {"path", req_path},
                                   {"query", req_query},
                                   {"peer", req_peer},
                                   {"alive", req_alive},
                                   {"trust", req_trust},
                                   {"body", req_body},
                                   {"json", req_json},
                                   {"header", req_header},
                                   {"peer_address", req_peer_address},
                                   {"respond", req_respond},
                                   {"stream_start", req_stream_start},
                                   {"write", req_write},
                                   {"finish", req_finish},
                                   {NULL, NULL}};
  static const luaL_Reg srv_m[] = {{"port", server_port},
                                   {"connections", server_connections},
                                   {"stats", server_stats},
                                   {"close", server_close},
                                   {NULL, NULL}};
  static const luaL_Reg call_m[] = {{"cancel", call_cancel}, {NULL, NULL}};
  smg_lua_new_meta(L, "smg.http.req", req_m, req_gc);
  smg_lua_new_meta(L, "smg.http.server", srv_m, server_gc);
  smg_lua_new_meta(L, "smg.http.call", call_m, call_cancel);
  lua_pushcfunction(L, l_http_listen);
  lua_setfield(L, -2, "http_listen");
  lua_pushcfunction(L, l_http_request);
  lua_setfield(L, -2, "http_request");
}
