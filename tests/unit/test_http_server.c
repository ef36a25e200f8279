/* The HTTP server against a raw TCP client on loopback: keep-alive, pipelining (two
 * requests in one packet answered in order), chunked request bodies, and the limits
 * (oversized body 413, oversized headers 431, garbage 400). Ends by asserting that every
 * handle closed. */
#include <string.h>

#include "buf.h"
#include "http_server.h"
#include "test.h"

static uv_loop_t loop;
static smg_http_server_t *srv;
static int requests;

static void on_request(smg_http_req_t *req, void *data) {
  requests++;
  size_t blen;
  const char *body = smg_http_req_body(req, &blen);
  char out[256];
  int n = snprintf(out, sizeof(out), "%s %s q=%s body=%.*s", smg_http_req_method(req),
                   smg_http_req_path(req), smg_http_req_query(req), (int)blen, body);
  smg_http_req_respond(req, 200, "X-Test: 1\r\n", 11, out, (size_t)n);
  smg_http_req_release(req);
}

typedef struct {
  uv_tcp_t tcp;
  uv_connect_t conn;
  const char *send;
  smg_buf_t got;
} client_t;

static void on_client_closed(uv_handle_t *h) {}

static void on_alloc(uv_handle_t *h, size_t s, uv_buf_t *b) {
  static char slab[65536];
  b->base = slab;
  b->len = sizeof(slab);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  client_t *c = s->data;
  if (n < 0) {
    uv_close((uv_handle_t *)s, on_client_closed);
    return;
  }
  smg_buf_append(&c->got, b->base, (size_t)n, 1 << 20);
}

static void on_write(uv_write_t *w, int status) {
  free(w);
}

static void on_connect(uv_connect_t *req, int status) {
  client_t *c = req->data;
  CHECK(status == 0);
  uv_write_t *w = malloc(sizeof(*w));
  uv_buf_t b = uv_buf_init((char *)c->send, (unsigned)strlen(c->send));
  uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, on_write);
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void on_timeout(uv_timer_t *t) {
  smg_http_server_close(srv);
  uv_close((uv_handle_t *)t, NULL);
}

/* Sends `send` on a fresh connection; the server closes it (Connection: close or error). */
static void exchange(client_t *c, const char *send) {
  memset(c, 0, sizeof(*c));
  c->send = send;
  uv_tcp_init(&loop, &c->tcp);
  c->tcp.data = c;
  c->conn.data = c;
  struct sockaddr_in a;
  uv_ip4_addr("127.0.0.1", smg_http_server_port(srv), &a);
  uv_tcp_connect(&c->conn, &c->tcp, (struct sockaddr *)&a, on_connect);
}

static int count(const char *hay, size_t len, const char *needle) {
  int n = 0;
  size_t nl = strlen(needle);
  for (size_t i = 0; i + nl <= len; i++)
    if (memcmp(hay + i, needle, nl) == 0) n++;
  return n;
}

int main(void) {
  uv_loop_init(&loop);
  smg_http_limits_t lim;
  smg_http_limits_default(&lim);
  lim.max_body_bytes = 64;
  lim.max_header_bytes = 512;
  char err[128];
  CHECK(smg_http_server_listen(&loop, "127.0.0.1", 0, &lim, on_request, NULL, NULL, &srv, err,
                               sizeof(err)) == 0);
  client_t pipelined, chunked, big, hdrs, garbage;
  exchange(&pipelined,
           "GET /a?x=1 HTTP/1.1\r\nHost: h\r\n\r\n"
           "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
           "GET /c HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
  exchange(&chunked,
           "POST /d HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
           "2\r\nhe\r\n3\r\nllo\r\n0\r\n\r\n");
  exchange(&big, "POST /e HTTP/1.1\r\nHost: h\r\nContent-Length: 100000\r\n\r\n");
  static char longhdr[2048];
  snprintf(longhdr, sizeof(longhdr), "GET / HTTP/1.1\r\nX-Long: %0900d\r\n\r\n", 7);
  exchange(&hdrs, longhdr);
  exchange(&garbage, "\x01\x02 nonsense\r\n\r\n");
  uv_timer_t t;
  uv_timer_init(&loop, &t);
  uv_timer_start(&t, on_timeout, 500, 0);
  uv_run(&loop, UV_RUN_DEFAULT);

  client_t *clients[] = {&pipelined, &chunked, &big, &hdrs, &garbage};
  for (int i = 0; i < 5; i++) smg_buf_append(&clients[i]->got, "", 1, 1 << 20); /* NUL-terminate */
  CHECK(count(pipelined.got.data, pipelined.got.len, "HTTP/1.1 200 OK") == 3);
  const char *a = strstr(pipelined.got.data, "GET /a q=x=1 body=");
  const char *b = strstr(pipelined.got.data, "POST /b q= body=abc");
  const char *c = strstr(pipelined.got.data, "GET /c q= body=");
  CHECK(a && b && c && a < b && b < c); /* answered in order */
  CHECK(count(pipelined.got.data, pipelined.got.len, "X-Test: 1") == 3);
  CHECK(strstr(chunked.got.data, "body=hello") != NULL);
  CHECK(strstr(big.got.data, "HTTP/1.1 413") == big.got.data);
  CHECK(strstr(hdrs.got.data, "HTTP/1.1 431") == hdrs.got.data);
  CHECK(strstr(garbage.got.data, "HTTP/1.1 400") == garbage.got.data);
  CHECK(requests == 4);
  smg_buf_free(&pipelined.got);
  smg_buf_free(&chunked.got);
  smg_buf_free(&big.got);
  smg_buf_free(&hdrs.got);
  smg_buf_free(&garbage.got);
  CHECK(uv_loop_close(&loop) == 0); /* every handle closed */
  TEST_DONE();
}
