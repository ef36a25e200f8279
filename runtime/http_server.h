/* HTTP/1.1 server on llhttp: keep-alive, pipelining (one request dispatched at a time per
 * connection, later ones wait in the input buffer), chunked request bodies, streamed
 * (chunked) responses for SSE, and limits on every peer-fed buffer and on time. */
#ifndef SMG_HTTP_SERVER_H
#define SMG_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define SMG_HTTP_MAX_HEADERS 100

typedef struct smg_http_server_s smg_http_server_t;
typedef struct smg_http_req_s smg_http_req_t;

typedef struct {
  size_t max_header_bytes;     /* request line + headers; 431 past it */
  size_t max_body_bytes;       /* 413 past it */
  size_t max_connections;      /* further connections are accepted and closed at once */
  uint64_t idle_timeout_ms;    /* keep-alive connection with nothing in flight */
  uint64_t request_timeout_ms; /* from the first byte of a request to its last; 408 */
  size_t max_write_queue;      /* a client that reads slower than this is dropped */
  /* Untrusted connections: those the caller has not yet vouched for with
   * smg_http_req_trust() (no request on them passed authentication). */
  size_t max_untrusted_per_peer; /* from one address; 429 past it */
  size_t reserved_connections;   /* of max_connections, kept for trusted connections */
  uint64_t header_timeout_ms;    /* an untrusted connection's idle time and time to send headers */
} smg_http_limits_t;

/* What the connection limits did, for metrics. */
typedef struct {
  size_t untrusted;          /* open now */
  uint64_t refused_per_peer; /* answered 429: the address had its share */
  uint64_t refused_full;     /* answered 503: untrusted connections had theirs */
  uint64_t displaced;        /* idle or slow untrusted connections closed for a new one */
  uint64_t header_timeouts;  /* untrusted connections cut by header_timeout_ms */
} smg_http_server_stats_t;

void smg_http_limits_default(smg_http_limits_t *l);

/* Called once per complete request. The request stays valid until both the response is
 * finished (or the connection died) and smg_http_req_release() was called. */
typedef void (*smg_http_on_request_cb)(smg_http_req_t *req, void *data);
/* Called when the connection under an unfinished request goes away. */
typedef void (*smg_http_on_abort_cb)(smg_http_req_t *req, void *data);

int smg_http_server_listen(uv_loop_t *loop, const char *host, int port,
                           const smg_http_limits_t *limits, smg_http_on_request_cb on_request,
                           smg_http_on_abort_cb on_abort, void *data, smg_http_server_t **out,
                           char *err, size_t errlen);
/* Drops the callbacks: used when their owner (a Lua state) is going away. */
void smg_http_server_forget(smg_http_server_t *srv);
int smg_http_server_port(const smg_http_server_t *srv);
size_t smg_http_server_connections(const smg_http_server_t *srv);
void smg_http_server_stats(const smg_http_server_t *srv, smg_http_server_stats_t *out);
/* Stops accepting and closes idle connections; busy ones close after their response.
 * The server frees itself once its last connection is gone. */
void smg_http_server_close(smg_http_server_t *srv);

const char *smg_http_req_method(const smg_http_req_t *req);
const char *smg_http_req_path(const smg_http_req_t *req);  /* without the query */
const char *smg_http_req_query(const smg_http_req_t *req); /* "" when absent */
const char *smg_http_req_body(const smg_http_req_t *req, size_t *len);
const char *smg_http_req_peer(const smg_http_req_t *req);
/* Case-insensitive; repeated headers: the first. NULL when absent. */
const char *smg_http_req_header(const smg_http_req_t *req, const char *name, size_t *len);
int smg_http_req_header_count(const smg_http_req_t *req);
void smg_http_req_header_at(const smg_http_req_t *req, int i, const char **name, size_t *nlen,
                            const char **value, size_t *vlen);
int smg_http_req_alive(const smg_http_req_t *req); /* connection still there */
/* The request passed authentication: its connection is trusted from now on (out of the
 * untrusted limits, under the idle and request timeouts instead of the header timeout). */
void smg_http_req_trust(smg_http_req_t *req);
void *smg_http_req_get_data(const smg_http_req_t *req);
void smg_http_req_set_data(smg_http_req_t *req, void *data);

/* extra_headers: preformatted "Name: value\r\n" lines, validated by the caller. */
int smg_http_req_respond(smg_http_req_t *req, int status, const char *extra_headers, size_t hlen,
                         const char *body, size_t blen);
/* Starts a chunked response; each write is one chunk; end sends the last chunk. */
int smg_http_req_stream_start(smg_http_req_t *req, int status, const char *extra_headers,
                              size_t hlen);
int smg_http_req_stream_write(smg_http_req_t *req, const char *data, size_t len);
int smg_http_req_stream_end(smg_http_req_t *req);
/* The caller's reference is gone; frees the request once the response is done. */
void smg_http_req_release(smg_http_req_t *req);

const char *smg_http_status_text(int status);

#endif
