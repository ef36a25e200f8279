/* libcurl multi on libuv: curl tells us which sockets to watch (socket callback) and when
 * to wake it (timer callback); we translate libuv poll events into
 * curl_multi_socket_action calls. Connections are kept alive and reused by the multi
 * handle's pool.
 *
 * Calls may be cancelled from inside their own callbacks, where curl forbids removing the
 * easy handle; such calls are only marked, made to fail their next write, and cleaned up
 * after curl_multi_socket_action returns. Likewise a call started from inside a callback
 * (a coroutine resumed by a streamed response that makes its next request) is added to the
 * multi handle only once curl has returned. */
#include "http_client.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr_policy.h"
#include "buf.h"
#include "log.h"
#include "loop.h"

struct smg_http_client_s {
  uv_loop_t *loop;
  CURLM *multi;
  uv_timer_t timer;
  int in_action;
  smg_http_call_t *doomed; /* cancelled inside a callback, cleaned up afterwards */
  smg_http_call_t *to_add; /* started inside a callback, added afterwards */
  smg_http_call_t *calls;  /* every call not yet freed */
};

struct smg_http_call_s {
  smg_http_client_t *client;
  CURL *easy;
  struct curl_slist *headers;
  smg_http_call_cbs_t cbs;
  void *data;
  smg_buf_t head; /* header lines of the response being received */
  size_t received, max_response;
  int headers_sent;
  int cancelled;
  smg_http_call_t *next_doomed, *next_add;
  smg_http_call_t *prev, *next;
  char errbuf[CURL_ERROR_SIZE];
  char refused[128]; /* why a public_only call refused an address (curl rewrites errbuf) */
};

typedef struct {
  uv_poll_t poll;
  curl_socket_t fd;
  smg_http_client_t *client;
} sock_ctx_t;

static void check_done(smg_http_client_t *c);

static void call_free(smg_http_call_t *call) {
  smg_http_client_t *c = call->client;
  if (call->prev)
    call->prev->next = call->next;
  else
    c->calls = call->next;
  if (call->next) call->next->prev = call->prev;
  curl_multi_remove_handle(call->client->multi, call->easy);
  curl_easy_cleanup(call->easy);
  curl_slist_free_all(call->headers);
  smg_buf_free(&call->head);
  free(call);
}

static void reap_doomed(smg_http_client_t *c) {
  while (c->doomed) {
    smg_http_call_t *call = c->doomed;
    c->doomed = call->next_doomed;
    call_free(call);
  }
}

static void add_deferred(smg_http_client_t *c) {
  while (c->to_add) {
    smg_http_call_t *call = c->to_add;
    c->to_add = call->next_add;
    if (call->cancelled) continue; /* on the doomed list; freed there */
    CURLMcode mc = curl_multi_add_handle(c->multi, call->easy);
    if (mc != CURLM_OK) {
      call->cancelled = 1;
      if (call->cbs.on_done) call->cbs.on_done(call, curl_multi_strerror(mc), call->data);
      call_free(call);
    }
  }
}

static void socket_action(smg_http_client_t *c, curl_socket_t fd, int ev) {
  int running;
  c->in_action++;
  curl_multi_socket_action(c->multi, fd, ev, &running);
  check_done(c);
  c->in_action--;
  if (!c->in_action) {
    add_deferred(c);
    reap_doomed(c);
  }
}

static void on_poll(uv_poll_t *h, int status, int events) {
  sock_ctx_t *s = h->data;
  int ev = 0;
  if (status < 0) ev = CURL_CSELECT_ERR;
  if (events & UV_READABLE) ev |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE) ev |= CURL_CSELECT_OUT;
  socket_action(s->client, s->fd, ev);
}

static int socket_cb(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp) {
  smg_http_client_t *c = userp;
  sock_ctx_t *s = socketp;
  if (what == CURL_POLL_REMOVE) {
    if (s) {
      uv_poll_stop(&s->poll);
      curl_multi_assign(c->multi, fd, NULL);
      uv_close((uv_handle_t *)&s->poll, smg_free_on_close);
    }
    return 0;
  }
  if (!s) {
    s = calloc(1, sizeof(*s));
    if (!s) return -1;
    s->fd = fd;
    s->client = c;
    if (uv_poll_init_socket(c->loop, &s->poll, fd) < 0) {
      free(s);
      return -1;
    }
    s->poll.data = s;
    curl_multi_assign(c->multi, fd, s);
  }
  int events = 0;
  if (what & CURL_POLL_IN) events |= UV_READABLE;
  if (what & CURL_POLL_OUT) events |= UV_WRITABLE;
  uv_poll_start(&s->poll, events, on_poll);
  return 0;
}

static void on_timeout(uv_timer_t *t) {
  socket_action(t->data, CURL_SOCKET_TIMEOUT, 0);
}

static int timer_cb(CURLM *m, long timeout_ms, void *userp) {
  smg_http_client_t *c = userp;
  if (timeout_ms < 0)
    uv_timer_stop(&c->timer);
  else
    uv_timer_start(&c->timer, on_timeout, (uint64_t)timeout_ms, 0);
  return 0;
}

smg_http_client_t *smg_http_client_new(uv_loop_t *loop, long max_host_connections) {
  static int global_init;
  if (!global_init) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    global_init = 1;
  }
  smg_http_client_t *c = calloc(1, sizeof(*c));
  if (!c) return NULL;
  c->loop = loop;
  c->multi = curl_multi_init();
  uv_timer_init(loop, &c->timer);
  c->timer.data = c;
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
  if (max_host_connections > 0)
    curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, max_host_connections);
  return c;
}

void smg_http_client_free(smg_http_client_t *c) {
  /* Every call still running is abandoned without callbacks. */
  c->doomed = NULL;
  c->to_add = NULL;
  while (c->calls) call_free(c->calls);
  curl_multi_cleanup(c->multi); /* closes sockets: socket_cb REMOVE closes the polls */
  uv_close((uv_handle_t *)&c->timer, smg_free_on_close);
}

static void deliver_headers(smg_http_call_t *call) {
  if (call->headers_sent || call->cancelled) return;
  call->headers_sent = 1;
  long status = 0;
  curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &status);
  if (call->cbs.on_headers)
    call->cbs.on_headers(call, (int)status, call->head.data ? call->head.data : "", call->head.len,
                         call->data);
}

static size_t header_cb(char *p, size_t size, size_t n, void *userp) {
  smg_http_call_t *call = userp;
  size_t len = size * n;
  if (call->cancelled) return 0;
  if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) smg_buf_reset(&call->head); /* 1xx then final */
  if (smg_buf_append(&call->head, p, len, 64 * 1024) < 0) return 0;
  return len;
}

static size_t write_cb(char *p, size_t size, size_t n, void *userp) {
  smg_http_call_t *call = userp;
  size_t len = size * n;
  if (call->cancelled) return 0;
  deliver_headers(call);
  call->received += len;
  if (call->max_response && call->received > call->max_response) {
    snprintf(call->errbuf, sizeof(call->errbuf), "response larger than %zu bytes",
             call->max_response);
    return 0;
  }
  if (!call->cancelled && call->cbs.on_data) call->cbs.on_data(call, p, len, call->data);
  return call->cancelled ? 0 : len;
}

static curl_socket_t open_public_socket(void *userp, curlsocktype purpose,
                                        struct curl_sockaddr *addr) {
  smg_http_call_t *call = userp;
  (void)purpose;
  if (smg_addr_restricted(&addr->addr)) {
    char ip[INET6_ADDRSTRLEN] = "?";
    const void *src = addr->family == AF_INET
                          ? (const void *)&((struct sockaddr_in *)&addr->addr)->sin_addr
                          : (const void *)&((struct sockaddr_in6 *)&addr->addr)->sin6_addr;
    inet_ntop(addr->family, src, ip, sizeof(ip));
    snprintf(call->refused, sizeof(call->refused),
             "refused to connect to %s: a loopback, private or link-local address", ip);
    return CURL_SOCKET_BAD;
  }
  return socket(addr->family, addr->socktype, addr->protocol);
}

static void check_done(smg_http_client_t *c) {
  CURLMsg *msg;
  int left;
  while ((msg = curl_multi_info_read(c->multi, &left))) {
    if (msg->msg != CURLMSG_DONE) continue;
    smg_http_call_t *call = NULL;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&call);
    if (!call || call->cancelled) continue;
    CURLcode res = msg->data.result;
    const char *err = NULL;
    if (res != CURLE_OK)
      err = call->refused[0]  ? call->refused
            : call->errbuf[0] ? call->errbuf
                              : curl_easy_strerror(res);
    else
      deliver_headers(call);
    call->cancelled = 1; /* no callback after done */
    if (call->cbs.on_done) call->cbs.on_done(call, err, call->data);
    call->next_doomed = c->doomed;
    c->doomed = call;
  }
}

int smg_http_call_start(smg_http_client_t *c, const smg_http_call_opts_t *o,
                        const smg_http_call_cbs_t *cbs, void *data, smg_http_call_t **out,
                        char *err, size_t errlen) {
  smg_http_call_t *call = calloc(1, sizeof(*call));
  if (!call) return UV_ENOMEM;
  call->client = c;
  call->cbs = *cbs;
  call->data = data;
  call->max_response = o->max_response;
  call->easy = curl_easy_init();
  CURL *e = call->easy;
  curl_easy_setopt(e, CURLOPT_URL, o->url);
  curl_easy_setopt(e, CURLOPT_PRIVATE, call);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, call->errbuf);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, call);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, call);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
  if (o->timeout_ms) curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)o->timeout_ms);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                   (long)(o->connect_timeout_ms ? o->connect_timeout_ms : 10000));
  if (o->client_cert) curl_easy_setopt(e, CURLOPT_SSLCERT, o->client_cert);
  if (o->client_key) curl_easy_setopt(e, CURLOPT_SSLKEY, o->client_key);
  if (o->ca_file) curl_easy_setopt(e, CURLOPT_CAINFO, o->ca_file);
  if (o->public_only) {
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_public_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, call);
    /* A pooled connection was not opened through the check: never reuse one. */
    curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
    /* A proxy from the environment would be the address checked, and it would resolve
     * the target itself: these calls go direct. */
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
  }
  const char *method = o->method ? o->method : "GET";
  if (strcmp(method, "GET") == 0) {
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  } else if (strcmp(method, "HEAD") == 0) {
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  } else {
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  }
  if (o->body) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)o->body_len);
    curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, o->body);
  }
  /* No "Expect: 100-continue" round trip: our peers answer or fail, they never defer. */
  struct curl_slist *h = curl_slist_append(NULL, "Expect:");
  for (const char *const *p = o->headers; p && *p; p++) h = curl_slist_append(h, *p);
  call->headers = h;
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
  CURLMcode mc = CURLM_OK;
  if (c->in_action) {
    call->next_add = c->to_add;
    c->to_add = call;
  } else {
    mc = curl_multi_add_handle(c->multi, e);
  }
  if (mc != CURLM_OK) {
    snprintf(err, errlen, "curl: %s", curl_multi_strerror(mc));
    curl_easy_cleanup(e);
    curl_slist_free_all(h);
    free(call);
    return UV_EINVAL;
  }
  call->next = c->calls;
  if (c->calls) c->calls->prev = call;
  c->calls = call;
  *out = call;
  return 0;
}

void smg_http_call_cancel(smg_http_call_t *call) {
  if (call->cancelled) return;
  call->cancelled = 1;
  smg_http_client_t *c = call->client;
  if (c->in_action) {
    call->next_doomed = c->doomed;
    c->doomed = call;
  } else {
    call_free(call);
  }
}
