/* smg.core resolve: host name resolution on libuv's thread pool, so that no connect made
 * on the loop waits for DNS (hiredis's own connect would call getaddrinfo on the loop).
 *
 * One owner: the request record (malloc'ed), freed by its callback; a state that closes
 * meanwhile is not called (smg_lua_enter answers NULL) and only the record is freed. */
#include <stdlib.h>
#include <string.h>

#include "lua_vm.h"

#define SMG_RESOLVE_MAX 8 /* addresses handed back at most */

typedef struct {
  uv_getaddrinfo_t req;
  smg_loop_t *loop;
  int cb_ref;
} resolve_req_t;

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  resolve_req_t *r = req->data;
  lua_State *L = smg_lua_enter(r->loop);
  if (L) {
    smg_lua_push_ref(L, r->cb_ref);
    if (status < 0) {
      lua_pushnil(L);
      lua_pushstring(L, uv_strerror(status));
    } else {
      lua_newtable(L);
      int n = 0;
      for (struct addrinfo *a = res; a && n < SMG_RESOLVE_MAX; a = a->ai_next) {
        char name[64];
        int rc = a->ai_family == AF_INET6
                     ? uv_ip6_name((struct sockaddr_in6 *)a->ai_addr, name, sizeof(name))
                     : uv_ip4_name((struct sockaddr_in *)a->ai_addr, name, sizeof(name));
        if (rc != 0) continue;
        int dup = 0; /* one entry per address, whatever the socket types listed */
        for (int i = 1; i <= n && !dup; i++) {
          lua_rawgeti(L, -1, i);
          dup = strcmp(lua_tostring(L, -1), name) == 0;
          lua_pop(L, 1);
        }
        if (dup) continue;
        lua_pushstring(L, name);
        lua_rawseti(L, -2, ++n);
      }
      if (n == 0) {
        lua_pop(L, 1);
        lua_pushnil(L);
        lua_pushstring(L, "no address");
      } else {
        lua_pushnil(L);
      }
    }
    smg_lua_pcall(L, 2, 0, "resolve callback");
  }
  smg_lua_unref(L, &r->cb_ref);
  if (res) uv_freeaddrinfo(res);
  free(r);
}

/* resolve(host, fn(addresses | nil, err)) -> true | nil, err. The addresses (numeric
 * strings, at most SMG_RESOLVE_MAX, in the resolver's order) come on a later turn. */
static int l_resolve(lua_State *L) {
  const char *host = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  luaL_argcheck(L, strlen(host) < 256, 1, "host name too long");
  resolve_req_t *r = calloc(1, sizeof(*r));
  if (!r) return luaL_error(L, "out of memory");
  r->loop = smg_lua_loop(L);
  r->req.data = r;
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
  int rc = uv_getaddrinfo(&r->loop->uv, &r->req, on_resolved, host, NULL, &hints);
  if (rc != 0) {
    free(r);
    lua_pushnil(L);
    lua_pushstring(L, uv_strerror(rc));
    return 2;
  }
  r->cb_ref = smg_lua_ref(L, 2);
  lua_pushboolean(L, 1);
  return 1;
}

void smg_lua_resolve_register(lua_State *L) {
  lua_pushcfunction(L, l_resolve);
  lua_setfield(L, -2, "resolve");
}
