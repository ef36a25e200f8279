/* libFuzzer target: the HTTP/1.1 server (llhttp, limits, pipelining, chunked bodies) fed
 * arbitrary bytes over a real loopback connection. Every complete request is answered at
 * once, so pipelined input exercises keep-alive and the response path too. The harness
 * half-closes its side after writing and runs the loop until the server has closed the
 * connection or a short deadline passed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "http_server.h"

static uv_loop_t loop;
static smg_http_server_t *server;
static int port;

static void on_request(smg_http_req_t *req, void *data) {
  (void)data;
  size_t blen = 0;
  const char *body = smg_http_req_body(req, &blen);
  const char *h = smg_http_req_header(req, "content-type", NULL);
  (void)h;
  smg_http_req_respond(req, 200, "Content-Type: text/plain\r\n", 26, body, blen);
  smg_http_req_release(req);
}

static void on_abort(smg_http_req_t *req, void *data) {
  (void)req;
  (void)data;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  uv_loop_init(&loop);
  smg_http_limits_t lim;
  smg_http_limits_default(&lim);
  lim.max_header_bytes = 4096;
  lim.max_body_bytes = 16384;
  lim.request_timeout_ms = 200;
  lim.idle_timeout_ms = 200;
  char err[256];
  if (smg_http_server_listen(&loop, "127.0.0.1", 0, &lim, on_request, on_abort, NULL, &server, err,
                             sizeof(err)) != 0)
    abort();
  port = smg_http_server_port(server);
  return 0;
}

typedef struct {
  uv_tcp_t tcp;
  uv_connect_t connect;
  uv_write_t write;
  uv_shutdown_t shutdown;
  uv_timer_t deadline;
  uv_buf_t buf;
  int closed;
} client_t;

static void on_client_closed(uv_handle_t *h) {
  client_t *c = h->data;
  c->closed++;
}

static void finish(client_t *c) {
  if (!uv_is_closing((uv_handle_t *)&c->tcp)) uv_close((uv_handle_t *)&c->tcp, on_client_closed);
  if (!uv_is_closing((uv_handle_t *)&c->deadline))
    uv_close((uv_handle_t *)&c->deadline, on_client_closed);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  static char scratch[65536];
  (void)suggested;
  *buf = uv_buf_init(scratch, sizeof(scratch));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  (void)buf;
  if (n < 0) finish(s->data); /* the server closed: done */
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  (void)req, (void)status;
}

static void on_written(uv_write_t *req, int status) {
  client_t *c = req->data;
  if (status < 0) return finish(c);
  c->shutdown.data = c;
  uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_shutdown);
}

static void on_connected(uv_connect_t *req, int status) {
  client_t *c = req->data;
  if (status < 0) return finish(c);
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  c->write.data = c;
  uv_write(&c->write, (uv_stream_t *)&c->tcp, &c->buf, 1, on_written);
}

static void on_deadline(uv_timer_t *t) {
  finish(t->data);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  client_t *c = calloc(1, sizeof(*c));
  c->buf = uv_buf_init(malloc(size ? size : 1), (unsigned)size);
  memcpy(c->buf.base, data, size);
  uv_tcp_init(&loop, &c->tcp);
  c->tcp.data = c;
  uv_timer_init(&loop, &c->deadline);
  c->deadline.data = c;
  uv_timer_start(&c->deadline, on_deadline, 300, 0);
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", port, &addr);
  c->connect.data = c;
  uv_tcp_connect(&c->connect, &c->tcp, (const struct sockaddr *)&addr, on_connected);
  while (c->closed < 2) uv_run(&loop, UV_RUN_ONCE);
  /* Let the server finish with its side of the connection before the next input. */
  while (smg_http_server_connections(server) > 0) uv_run(&loop, UV_RUN_ONCE);
  free(c->buf.base);
  free(c);
  return 0;
}
