/* smg.core redis over TLS: the same handle as lua_redis.c (command, close, connected),
 * for a Redis that speaks TLS. hiredis 0.14, the Debian library, has no TLS, so this one
 * keeps hiredis for what it does well (formatting commands, parsing replies) and carries
 * the bytes itself: libuv TCP to a numeric address (smg.redis resolves names off the loop
 * and tries each address), and OpenSSL through memory BIOs (the peer verified against the CA file
 * or the system's, with its name checked; a client certificate when Redis asks for one, as it does
 * by default).
 *
 * One owner: the connection record (malloc'ed, so the libuv handle outlives the Lua
 * userdata); the userdata points at it. One close path: conn_close, which answers every
 * waiting command with "connection lost", calls the disconnect callback once, and closes
 * the TCP handle, whose close callback frees the record. */
#include <hiredis/hiredis.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

#include "loop.h"
#include "lua_redis.h"
#include "lua_vm.h"

typedef struct tls_cmd_s {
  int cb_ref;
  int persistent;
  struct tls_cmd_s *next;
} tls_cmd_t;

enum { ST_CONNECTING, ST_HANDSHAKE, ST_READY, ST_CLOSED };

typedef struct tls_handle_s tls_handle_t;

typedef struct {
  smg_loop_t *loop;
  tls_handle_t *handle; /* the Lua userdata while it points here */
  uv_tcp_t tcp;
  uv_connect_t connect_req;
  SSL_CTX *ctx;
  SSL *ssl;
  BIO *rbio, *wbio; /* network -> OpenSSL, OpenSSL -> network */
  redisReader *reader;
  tls_cmd_t *head, *tail;
  int state;
  int tcp_open; /* the TCP handle was initialized (and must be closed) */
  int connect_ref, disconnect_ref, self_ref;
  char host[256];
} tls_conn_t;

struct tls_handle_s {
  tls_conn_t *c; /* NULL once the connection is closed */
};

static void conn_close(tls_conn_t *c, const char *err);

static void on_tcp_closed(uv_handle_t *h) {
  free(h->data);
}

static void release_refs(tls_conn_t *c, lua_State *L) {
  smg_lua_unref(L, &c->connect_ref);
  smg_lua_unref(L, &c->disconnect_ref);
  smg_lua_unref(L, &c->self_ref);
}

/* Calls the connect callback once: err NULL means ready. */
static void report_connect(tls_conn_t *c, const char *err) {
  if (c->connect_ref == LUA_NOREF) return;
  lua_State *L = smg_lua_enter(c->loop);
  if (!L) return;
  int ref = c->connect_ref;
  c->connect_ref = LUA_NOREF;
  smg_lua_push_ref(L, ref);
  smg_lua_unref(L, &ref);
  if (err)
    lua_pushstring(L, err);
  else
    lua_pushnil(L);
  smg_lua_pcall(L, 1, 0, "redis connect callback");
}

static void on_written(uv_write_t *req, int status) {
  (void)status; /* a failed write shows up as a failed read */
  free(req->data);
  free(req);
}

/* Sends what OpenSSL has queued for the network. */
static int flush_out(tls_conn_t *c) {
  int pending;
  while ((pending = BIO_pending(c->wbio)) > 0) {
    char *buf = malloc((size_t)pending);
    uv_write_t *req = malloc(sizeof(*req));
    if (!buf || !req) {
      free(buf);
      free(req);
      return -1;
    }
    int n = BIO_read(c->wbio, buf, pending);
    if (n <= 0) {
      free(buf);
      free(req);
      return -1;
    }
    req->data = buf;
    uv_buf_t b = uv_buf_init(buf, (unsigned)n);
    if (uv_write(req, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0) {
      free(buf);
      free(req);
      return -1;
    }
  }
  return 0;
}

static const char *ssl_error(void) {
  static char buf[160];
  unsigned long e = ERR_get_error();
  if (!e) return "TLS error";
  ERR_error_string_n(e, buf, sizeof(buf));
  ERR_clear_error();
  return buf;
}

/* One reply to the command at the head of the queue (a subscription keeps its place). */
static void dispatch(tls_conn_t *c, redisReply *reply) {
  tls_cmd_t *cmd = c->head;
  if (!cmd) return; /* nobody asked: a stray reply is dropped */
  /* The callback may close the connection, which frees a command still queued: what this
   * needs of cmd is read first, and a queued (persistent) one is not touched after. */
  /* A subscription the server refused (an error reply) is not one: it leaves the queue. */
  int persistent = cmd->persistent && reply->type != REDIS_REPLY_ERROR;
  int ref = cmd->cb_ref;
  if (!persistent) {
    c->head = cmd->next;
    if (!c->head) c->tail = NULL;
    free(cmd);
  }
  lua_State *L = smg_lua_enter(c->loop);
  if (L) {
    smg_lua_push_ref(L, ref);
    int n = smg_redis_push_reply(L, reply, 0);
    smg_lua_pcall(L, n, 0, "redis reply callback");
  }
  if (!persistent) smg_lua_unref(L, &ref);
}

static void read_plaintext(tls_conn_t *c) {
  char buf[16384];
  for (;;) {
    int n = SSL_read(c->ssl, buf, sizeof(buf));
    if (n <= 0) {
      int e = SSL_get_error(c->ssl, n);
      if (e == SSL_ERROR_WANT_READ) return;
      conn_close(c, e == SSL_ERROR_ZERO_RETURN ? "connection closed" : ssl_error());
      return;
    }
    if (redisReaderFeed(c->reader, buf, (size_t)n) != REDIS_OK) {
      conn_close(c, "reply parse error");
      return;
    }
    void *reply;
    while (c->state == ST_READY) {
      if (redisReaderGetReply(c->reader, &reply) != REDIS_OK) {
        conn_close(c, "reply parse error");
        return;
      }
      if (!reply) break;
      dispatch(c, reply);
      freeReplyObject(reply);
    }
    if (c->state != ST_READY) return;
  }
}

static void handshake(tls_conn_t *c) {
  int rc = SSL_do_handshake(c->ssl);
  if (flush_out(c) != 0) return conn_close(c, "write failed");
  if (rc == 1) {
    c->state = ST_READY;
    report_connect(c, NULL);
    if (c->state == ST_READY) read_plaintext(c); /* anything that came with the handshake */
    return;
  }
  int e = SSL_get_error(c->ssl, rc);
  if (e == SSL_ERROR_WANT_READ) return;
  long verify = SSL_get_verify_result(c->ssl);
  char msg[200];
  if (verify != X509_V_OK)
    snprintf(msg, sizeof(msg), "TLS: the server's certificate was refused: %s",
             X509_verify_cert_error_string(verify));
  else
    snprintf(msg, sizeof(msg), "TLS handshake failed: %s", ssl_error());
  conn_close(c, msg);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  (void)suggested;
  static char slab[65536]; /* consumed (copied into the BIO) before the next read */
  *buf = uv_buf_init(slab, sizeof(slab));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  tls_conn_t *c = s->data;
  if (n < 0) return conn_close(c, n == UV_EOF ? "connection closed" : uv_strerror((int)n));
  if (n == 0 || c->state == ST_CLOSED) return;
  if (BIO_write(c->rbio, buf->base, (int)n) != (int)n) return conn_close(c, "TLS buffer error");
  if (c->state == ST_HANDSHAKE)
    handshake(c);
  else if (c->state == ST_READY)
    read_plaintext(c);
  if (c->state == ST_READY && flush_out(c) != 0) conn_close(c, "write failed");
}

static void on_connected(uv_connect_t *req, int status) {
  tls_conn_t *c = req->data;
  if (c->state == ST_CLOSED) return;
  if (status < 0) return conn_close(c, uv_strerror(status));
  c->state = ST_HANDSHAKE;
  if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
    return conn_close(c, "cannot read the connection");
  handshake(c);
}

/* Starts the TCP connection to `addr`. Returns 0 | a libuv error. */
static int start_connect(tls_conn_t *c, const struct sockaddr *addr) {
  int rc = uv_tcp_init(&c->loop->uv, &c->tcp);
  if (rc != 0) return rc;
  c->tcp_open = 1;
  c->tcp.data = c;
  uv_tcp_nodelay(&c->tcp, 1);
  uv_tcp_keepalive(&c->tcp, 1, 60); /* a peer gone without a word is noticed */
  c->state = ST_CONNECTING;
  c->connect_req.data = c;
  return uv_tcp_connect(&c->connect_req, &c->tcp, addr, on_connected);
}

/* The one close path (see the top of the file). */
static void conn_close(tls_conn_t *c, const char *err) {
  if (c->state == ST_CLOSED) return;
  int was_ready = c->state == ST_READY;
  c->state = ST_CLOSED;
  if (c->handle) c->handle->c = NULL; /* the handle answers "not connected" from now on */
  c->handle = NULL;
  lua_State *L = smg_lua_enter(c->loop);
  int pinned = 0;
  if (L && c->self_ref != LUA_NOREF) { /* the userdata survives the callbacks */
    smg_lua_push_ref(L, c->self_ref);
    pinned = 1;
  }
  /* The connection is down before its commands hear of it (as hiredis orders it). */
  if (!was_ready) {
    report_connect(c, err ? err : "connect failed");
  } else if (L && c->disconnect_ref != LUA_NOREF) {
    smg_lua_push_ref(L, c->disconnect_ref);
    if (err)
      lua_pushstring(L, err);
    else
      lua_pushnil(L);
    smg_lua_pcall(L, 1, 0, "redis disconnect callback");
  }
  while (c->head) {
    tls_cmd_t *cmd = c->head;
    c->head = cmd->next;
    if (L) {
      smg_lua_push_ref(L, cmd->cb_ref);
      lua_pushnil(L);
      lua_pushstring(L, "connection lost");
      smg_lua_pcall(L, 2, 0, "redis reply callback");
    }
    smg_lua_unref(L, &cmd->cb_ref);
    free(cmd);
  }
  c->tail = NULL;
  release_refs(c, L);
  if (pinned) lua_pop(L, 1);
  if (c->ssl) SSL_free(c->ssl); /* frees both BIOs */
  c->ssl = NULL;
  if (c->ctx) SSL_CTX_free(c->ctx);
  c->ctx = NULL;
  if (c->reader) redisReaderFree(c->reader);
  c->reader = NULL;
  if (c->tcp_open)
    uv_close((uv_handle_t *)&c->tcp, on_tcp_closed);
  else
    free(c);
}

/* Builds the TLS context: the CA file (or the system's), an optional client certificate. */
static const char *setup_tls(tls_conn_t *c, const char *ca, const char *cert, const char *key,
                             const char *server_name) {
  c->ctx = SSL_CTX_new(TLS_client_method());
  if (!c->ctx) return "cannot create a TLS context";
  SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
  if (ca ? SSL_CTX_load_verify_locations(c->ctx, ca, NULL) != 1
         : SSL_CTX_set_default_verify_paths(c->ctx) != 1)
    return "cannot load the CA certificates";
  if (cert && SSL_CTX_use_certificate_chain_file(c->ctx, cert) != 1)
    return "cannot load the client certificate";
  if (key && SSL_CTX_use_PrivateKey_file(c->ctx, key, SSL_FILETYPE_PEM) != 1)
    return "cannot load the client key";
  c->ssl = SSL_new(c->ctx);
  if (!c->ssl) return "cannot create a TLS session";
  c->rbio = BIO_new(BIO_s_mem());
  c->wbio = BIO_new(BIO_s_mem());
  if (!c->rbio || !c->wbio) {
    BIO_free(c->rbio);
    BIO_free(c->wbio);
    return "out of memory";
  }
  SSL_set_bio(c->ssl, c->rbio, c->wbio);
  SSL_set_connect_state(c->ssl);
  const char *name = server_name ? server_name : c->host;
  X509_VERIFY_PARAM *param = SSL_get0_param(c->ssl);
  if (X509_VERIFY_PARAM_set1_ip_asc(param, name) != 1) { /* not an address: a host name */
    SSL_set_tlsext_host_name(c->ssl, name);
    if (SSL_set1_host(c->ssl, name) != 1) return "bad server name";
  }
  c->reader = redisReaderCreate();
  if (!c->reader) return "out of memory";
  return NULL;
}

static const char *opt_string(lua_State *L, int t, const char *k) {
  lua_getfield(L, t, k);
  /* Strings only: a number would be converted on the stack and gone once popped. */
  const char *v = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
  lua_pop(L, 1); /* the string stays alive: it is referenced by the options table */
  return v;
}

/* redis_connect_tls(address, port, {ca_file, cert_file, key_file, server_name},
 *                   on_connect(err), on_disconnect(err)) -> handle | nil, err
 * address: numeric (IPv4 or IPv6); server_name defaults to it. */
static int l_redis_connect_tls(lua_State *L) {
  const char *host = luaL_checkstring(L, 1);
  int port = (int)luaL_checkinteger(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  luaL_checktype(L, 4, LUA_TFUNCTION);
  luaL_checktype(L, 5, LUA_TFUNCTION);
  luaL_argcheck(L, strlen(host) < 256 && port > 0 && port < 65536, 1, "bad host or port");
  struct sockaddr_storage addr;
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)&addr) != 0 &&
      uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr) != 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "not a numeric address: %s", host);
    return 2;
  }
  tls_conn_t *c = calloc(1, sizeof(*c));
  if (!c) return luaL_error(L, "out of memory");
  c->loop = smg_lua_loop(L);
  c->connect_ref = c->disconnect_ref = c->self_ref = LUA_NOREF;
  snprintf(c->host, sizeof(c->host), "%s", host);
  const char *err = setup_tls(c, opt_string(L, 3, "ca_file"), opt_string(L, 3, "cert_file"),
                              opt_string(L, 3, "key_file"), opt_string(L, 3, "server_name"));
  if (err) {
    c->state = ST_CLOSED;
    if (c->ssl) SSL_free(c->ssl);
    if (c->ctx) SSL_CTX_free(c->ctx);
    if (c->reader) redisReaderFree(c->reader);
    free(c);
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
  }
  int rc = start_connect(c, (const struct sockaddr *)&addr);
  if (rc != 0) {
    conn_close(c, NULL);
    lua_pushnil(L);
    lua_pushstring(L, uv_strerror(rc));
    return 2;
  }
  tls_handle_t *h = lua_newuserdata(L, sizeof(*h));
  h->c = c;
  c->handle = h;
  luaL_getmetatable(L, "smg.redis_tls");
  lua_setmetatable(L, -2);
  c->connect_ref = smg_lua_ref(L, 4);
  c->disconnect_ref = smg_lua_ref(L, 5);
  c->self_ref = smg_lua_ref(L, -1);
  return 1;
}

/* handle:command({argv...}, fn(value | nil, err)[, persistent]) -> true | nil, err */
static int tls_command(lua_State *L) {
  tls_handle_t *h = luaL_checkudata(L, 1, "smg.redis_tls");
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 3, LUA_TFUNCTION);
  tls_conn_t *c = h->c;
  if (!c || c->state != ST_READY) {
    lua_pushnil(L);
    lua_pushstring(L, "not connected");
    return 2;
  }
  const char *argv[SMG_REDIS_MAX_ARGS];
  size_t lens[SMG_REDIS_MAX_ARGS];
  int argc = smg_redis_argv(L, 2, argv, lens);
  char *out = NULL;
  long long len = redisFormatCommandArgv(&out, argc, argv, lens);
  lua_pop(L, argc);
  if (len <= 0 || !out) {
    lua_pushnil(L);
    lua_pushstring(L, "command not formatted");
    return 2;
  }
  int n = SSL_write(c->ssl, out, (int)len);
  redisFreeCommand(out);
  if (n != (int)len || flush_out(c) != 0) {
    conn_close(c, "write failed");
    lua_pushnil(L);
    lua_pushstring(L, "command not sent");
    return 2;
  }
  tls_cmd_t *cmd = calloc(1, sizeof(*cmd));
  if (!cmd) return luaL_error(L, "out of memory");
  cmd->persistent = lua_toboolean(L, 4);
  cmd->cb_ref = smg_lua_ref(L, 3);
  if (c->tail)
    c->tail->next = cmd;
  else
    c->head = cmd;
  c->tail = cmd;
  lua_pushboolean(L, 1);
  return 1;
}

/* handle:close(): waiting commands get "connection lost", then the disconnect callback. */
static int tls_close(lua_State *L) {
  tls_handle_t *h = luaL_checkudata(L, 1, "smg.redis_tls");
  tls_conn_t *c = h->c;
  if (!c) return 0;
  if (c->state == ST_READY) {
    SSL_shutdown(c->ssl); /* close_notify, best effort */
    flush_out(c);
  }
  conn_close(c, NULL);
  return 0;
}

/* __gc (lua_close included): nothing may call back into this state any more. */
static int tls_gc(lua_State *L) {
  tls_handle_t *h = luaL_checkudata(L, 1, "smg.redis_tls");
  tls_conn_t *c = h->c;
  if (!c) return 0;
  /* Only at lua_close (the connection's own ref keeps the userdata alive otherwise):
   * smg_lua_enter answers NULL from then on, so conn_close calls nothing. */
  c->connect_ref = c->disconnect_ref = c->self_ref = LUA_NOREF;
  for (tls_cmd_t *cmd = c->head; cmd; cmd = cmd->next) cmd->cb_ref = LUA_NOREF;
  conn_close(c, NULL);
  return 0;
}

static int tls_connected(lua_State *L) {
  tls_handle_t *h = luaL_checkudata(L, 1, "smg.redis_tls");
  lua_pushboolean(L, h->c != NULL && h->c->state == ST_READY);
  return 1;
}

void smg_lua_redis_tls_register(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"command", tls_command}, {"close", tls_close}, {"connected", tls_connected}, {NULL, NULL}};
  smg_lua_new_meta(L, "smg.redis_tls", methods, tls_gc);
  lua_pushcfunction(L, l_redis_connect_tls);
  lua_setfield(L, -2, "redis_connect_tls");
}
