/* HTTP/1.1 server. Each connection owns a TCP handle, a timer and an llhttp parser.
 * Reads land directly in the connection's input buffer (no copy); the parser pauses after
 * each complete request, so at most one request per connection is dispatched at a time
 * and pipelined requests wait, unparsed, until the response before them is finished.
 *
 * A dispatched request is shared by two owners, the connection and the caller (the Lua
 * binding), and freed when both let go: the connection when the response is finished or
 * the socket dies, the caller through smg_http_req_release(). */
#include "http_server.h"

#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "buf.h"
#include "log.h"
#include "stream.h"

#define READ_CHUNK 16384
#define MAX_PIPELINED (1u << 20) /* unparsed bytes buffered behind a busy request */
#define PEER_BUCKETS 1024
/* An untrusted connection with no request in progress may give way to a new one once it
 * is this old: a burst of honest connections, accepted before any of them was read, never
 * displaces its own members; a connection that idles or dribbles its headers does. */
#define DISPLACE_AFTER_MS 250
#define DISPLACE_SCAN 64 /* candidates looked at per new connection: bounded work */

typedef struct smg_http_conn_s smg_http_conn_t;

/* One address's untrusted connections, oldest first. Entries exist only while it has some. */
typedef struct peer_s {
  struct peer_s *next; /* bucket chain */
  smg_http_conn_t *head, *tail;
  size_t untrusted;
  char ip[48];
} peer_t;

struct smg_http_server_s {
  uv_tcp_t tcp;
  smg_http_limits_t limits;
  smg_http_on_request_cb on_request;
  smg_http_on_abort_cb on_abort;
  void *data;
  smg_http_conn_t *conns; /* doubly linked, for drain */
  size_t nconns;
  smg_http_conn_t *ut_head, *ut_tail; /* untrusted connections, oldest first */
  peer_t *peers[PEER_BUCKETS];
  smg_http_server_stats_t stats;
  int closing;
  int tcp_closed;
  int port;
};

typedef struct {
  size_t name_off, name_len, val_off, val_len;
} hdr_span_t;

struct smg_http_conn_s {
  uv_tcp_t tcp;
  uv_timer_t timer;
  int handles_open;
  llhttp_t parser;
  smg_http_server_t *srv;
  smg_http_conn_t *prev, *next;
  smg_buf_t in;   /* bytes read, not yet parsed */
  smg_buf_t head; /* url and header names/values of the request being parsed */
  smg_buf_t body;
  hdr_span_t hdrs[SMG_HTTP_MAX_HEADERS];
  int nhdrs;
  size_t url_len;
  int in_field;
  int error_status;    /* set by a parser callback that rejects the request */
  smg_http_req_t *req; /* dispatched and not finished */
  char peer[64];       /* address:port, for logs */
  char ip[48];         /* address: the unit of the per-peer limit */
  peer_t *peer_entry;  /* while untrusted_listed */
  smg_http_conn_t *ut_prev, *ut_next, *pp_prev, *pp_next;
  uint64_t opened_ms;
  unsigned in_message : 1, keep_alive : 1, closing : 1, reading : 1, processing : 1,
      close_after_write : 1, trusted : 1, untrusted_listed : 1, refused : 1;
  uv_shutdown_t shutdown; /* a refused connection's FIN */
};

struct smg_http_req_s {
  smg_http_conn_t *conn; /* borrowed; NULL once the connection is gone */
  int refs;              /* connection + caller */
  int finished;
  int streaming;
  int keep_alive;
  char method[16];
  char *url; /* owned copy: path, then '\0', query */
  char *query;
  char *hblock; /* owned copy of header bytes */
  hdr_span_t *hdrs;
  int nhdrs;
  char *body;
  size_t body_len;
  void *data;
};

static llhttp_settings_t parser_settings;

void smg_http_limits_default(smg_http_limits_t *l) {
  l->max_header_bytes = 16 * 1024;
  l->max_body_bytes = 4 * 1024 * 1024;
  l->max_connections = 10000;
  l->idle_timeout_ms = 75 * 1000;
  l->request_timeout_ms = 30 * 1000;
  l->max_write_queue = 16 * 1024 * 1024;
  l->max_untrusted_per_peer = 256;
  l->reserved_connections = 1000;
  l->header_timeout_ms = 10 * 1000;
}

const char *smg_http_status_text(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 406:
      return "Not Acceptable";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 413:
      return "Content Too Large";
    case 415:
      return "Unsupported Media Type";
    case 417:
      return "Expectation Failed";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Unknown";
  }
}

/* ---- writing ---------------------------------------------------------------------- */

static void conn_close(smg_http_conn_t *c);

static void on_write_done(uv_stream_t *s, int status) {
  smg_http_conn_t *c = s->data;
  if (c->closing) return;
  if (status < 0)
    conn_close(c);
  else if (c->close_after_write && uv_stream_get_write_queue_size(s) == 0)
    conn_close(c);
}

static int conn_write(smg_http_conn_t *c, uv_buf_t *bufs, unsigned n) {
  if (c->closing) return UV_ECANCELED;
  uv_stream_t *s = (uv_stream_t *)&c->tcp;
  if (uv_stream_get_write_queue_size(s) > c->srv->limits.max_write_queue) {
    smg_log_warn("http: dropping %s: client reads too slowly", c->peer);
    conn_close(c);
    return UV_ENOBUFS;
  }
  int r = smg_stream_write(s, bufs, n, on_write_done);
  if (r < 0)
    conn_close(c);
  else if (r == 0 && c->close_after_write)
    conn_close(c);
  return r < 0 ? r : 0;
}

static char date_header[64];
static time_t date_cached;

static const char *http_date(void) {
  time_t now = time(NULL);
  if (now != date_cached) {
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date_header, sizeof(date_header), "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
    date_cached = now;
  }
  return date_header;
}

/* Status line, Date, framing and Connection. Plain copying: snprintf here cost one to two
 * percent of a proxied request. Callers' buffers (>= 320 bytes) always fit: the status
 * text, the date and the framing are bounded; a head that would not fit is cut. */
static size_t format_head(char *out, size_t cap, int status, int keep_alive, const char *framing) {
  static const char close_hdr[] = "Connection: close\r\n";
  const char *text = smg_http_status_text(status);
  const char *date = http_date();
  size_t tl = strlen(text), dl = strlen(date), fl = strlen(framing);
  size_t cl = keep_alive ? 0 : sizeof(close_hdr) - 1;
  if (status < 100 || status > 999) status = 500;
  if (15 + tl + dl + fl + cl > cap) fl = cl = 0;
  char *p = out;
  memcpy(p, "HTTP/1.1 ", 9);
  p += 9;
  *p++ = (char)('0' + status / 100);
  *p++ = (char)('0' + status / 10 % 10);
  *p++ = (char)('0' + status % 10);
  *p++ = ' ';
  memcpy(p, text, tl);
  p += tl;
  *p++ = '\r';
  *p++ = '\n';
  memcpy(p, date, dl);
  p += dl;
  memcpy(p, framing, fl);
  p += fl;
  memcpy(p, close_hdr, cl);
  p += cl;
  return (size_t)(p - out);
}

/* "Content-Length: <n>\r\n" into out (>= 40 bytes), NUL-terminated. */
static void content_length(char *out, size_t n) {
  char digits[24];
  int k = 0;
  do {
    digits[k++] = (char)('0' + n % 10);
    n /= 10;
  } while (n);
  memcpy(out, "Content-Length: ", 16);
  size_t at = 16;
  while (k) out[at++] = digits[--k];
  memcpy(out + at, "\r\n", 3);
}

#define REFUSE_DRAIN_MS 250 /* how long a refused connection's unread bytes are drained */

static void read_start(smg_http_conn_t *c);

static void on_refuse_timer(uv_timer_t *t) {
  conn_close(t->data);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  (void)req;
  (void)status; /* the connection closes on EOF or when the drain timer fires */
}

/* Sends a complete response outside any dispatched request (parse errors, limits), then
 * closes. retry_after: seconds for a Retry-After header, 0 for none. drain: a connection
 * refused on arrival; the client may have sent its request already, and closing with
 * those bytes unread makes the kernel answer with a reset that destroys the response
 * before the client reads it. So: the response, a FIN after it, and the client's bytes
 * read and dropped until it closes or REFUSE_DRAIN_MS pass. */
static void conn_send_error(smg_http_conn_t *c, int status, int retry_after, int drain) {
  char head[320];
  char body[128];
  int blen = snprintf(body, sizeof(body), "{\"error\":\"%s\"}", smg_http_status_text(status));
  char framing[128];
  if (retry_after > 0)
    snprintf(framing, sizeof(framing),
             "Content-Type: application/json\r\nContent-Length: %d\r\nRetry-After: %d\r\n", blen,
             retry_after);
  else
    snprintf(framing, sizeof(framing), "Content-Type: application/json\r\nContent-Length: %d\r\n",
             blen);
  size_t hl = format_head(head, sizeof(head), status, 0, framing);
  memcpy(head + hl, "\r\n", 2);
  hl += 2;
  uv_buf_t bufs[2] = {uv_buf_init(head, (unsigned)hl), uv_buf_init(body, (unsigned)blen)};
  if (!drain) {
    c->close_after_write = 1;
    conn_write(c, bufs, 2);
    return;
  }
  c->refused = 1;
  if (conn_write(c, bufs, 2) < 0 || c->closing) return;
  if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
    conn_close(c);
    return;
  }
  uv_timer_start(&c->timer, on_refuse_timer, REFUSE_DRAIN_MS, 0);
  c->reading = 1;
  read_start(c);
}

/* ---- request objects ---------------------------------------------------------------- */

static void req_unref(smg_http_req_t *r) {
  if (--r->refs > 0) return;
  free(r->url);
  free(r->hblock);
  free(r->hdrs);
  free(r->body);
  free(r);
}

static void conn_process(smg_http_conn_t *c);
static void conn_arm_idle(smg_http_conn_t *c);
static void conn_arm_request(smg_http_conn_t *c);
static void on_timer(uv_timer_t *t);

/* The response is complete: detach the request and move on to the next one. */
static void req_finish(smg_http_req_t *r) {
  r->finished = 1;
  smg_http_conn_t *c = r->conn;
  if (!c) return;
  r->conn = NULL;
  c->req = NULL;
  req_unref(r);
  if (!r->keep_alive || c->srv->closing) {
    c->close_after_write = 1;
    if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) == 0) conn_close(c);
    return;
  }
  conn_arm_idle(c);
  if (!c->reading && !c->closing) {
    c->reading = 1;
    read_start(c);
  }
  conn_process(c);
}

const char *smg_http_req_method(const smg_http_req_t *r) {
  return r->method;
}
const char *smg_http_req_path(const smg_http_req_t *r) {
  return r->url;
}
const char *smg_http_req_query(const smg_http_req_t *r) {
  return r->query;
}
const char *smg_http_req_body(const smg_http_req_t *r, size_t *len) {
  *len = r->body_len;
  return r->body ? r->body : "";
}
const char *smg_http_req_peer(const smg_http_req_t *r) {
  return r->conn ? r->conn->peer : "";
}
int smg_http_req_alive(const smg_http_req_t *r) {
  return r->conn != NULL;
}
void *smg_http_req_get_data(const smg_http_req_t *r) {
  return r->data;
}
void smg_http_req_set_data(smg_http_req_t *r, void *data) {
  r->data = data;
}
int smg_http_req_header_count(const smg_http_req_t *r) {
  return r->nhdrs;
}

void smg_http_req_header_at(const smg_http_req_t *r, int i, const char **name, size_t *nlen,
                            const char **value, size_t *vlen) {
  *name = r->hblock + r->hdrs[i].name_off;
  *nlen = r->hdrs[i].name_len;
  *value = r->hblock + r->hdrs[i].val_off;
  *vlen = r->hdrs[i].val_len;
}

const char *smg_http_req_header(const smg_http_req_t *r, const char *name, size_t *len) {
  size_t n = strlen(name);
  for (int i = 0; i < r->nhdrs; i++) {
    if (r->hdrs[i].name_len == n && strncasecmp(r->hblock + r->hdrs[i].name_off, name, n) == 0) {
      if (len) *len = r->hdrs[i].val_len;
      return r->hblock + r->hdrs[i].val_off;
    }
  }
  return NULL;
}

int smg_http_req_respond(smg_http_req_t *r, int status, const char *extra, size_t hlen,
                         const char *body, size_t blen) {
  if (r->finished || r->streaming) return UV_EINVAL;
  smg_http_conn_t *c = r->conn;
  if (!c) {
    r->finished = 1;
    return UV_ECONNRESET;
  }
  char head[512];
  char framing[48];
  content_length(framing, blen);
  size_t n = format_head(head, sizeof(head), status, r->keep_alive && !c->srv->closing, framing);
  uv_buf_t bufs[4] = {uv_buf_init(head, (unsigned)n), uv_buf_init((char *)extra, (unsigned)hlen),
                      uv_buf_init("\r\n", 2), uv_buf_init((char *)body, (unsigned)blen)};
  int rc = conn_write(c, bufs, 4);
  req_finish(r);
  return rc;
}

int smg_http_req_stream_start(smg_http_req_t *r, int status, const char *extra, size_t hlen) {
  if (r->finished || r->streaming) return UV_EINVAL;
  smg_http_conn_t *c = r->conn;
  if (!c) return UV_ECONNRESET;
  r->streaming = 1;
  char head[512];
  size_t n = format_head(head, sizeof(head), status, r->keep_alive && !c->srv->closing,
                         "Transfer-Encoding: chunked\r\n");
  uv_buf_t bufs[3] = {uv_buf_init(head, (unsigned)n), uv_buf_init((char *)extra, (unsigned)hlen),
                      uv_buf_init("\r\n", 2)};
  return conn_write(c, bufs, 3);
}

int smg_http_req_stream_write(smg_http_req_t *r, const char *data, size_t len) {
  if (!r->streaming || r->finished) return UV_EINVAL;
  if (!r->conn) return UV_ECONNRESET;
  if (len == 0) return 0; /* a zero-length chunk would end the stream */
  char size[24];
  int n = snprintf(size, sizeof(size), "%zx\r\n", len);
  uv_buf_t bufs[3] = {uv_buf_init(size, (unsigned)n), uv_buf_init((char *)data, (unsigned)len),
                      uv_buf_init("\r\n", 2)};
  return conn_write(r->conn, bufs, 3);
}

int smg_http_req_stream_end(smg_http_req_t *r) {
  if (!r->streaming || r->finished) return UV_EINVAL;
  int rc = 0;
  if (r->conn) {
    uv_buf_t b = uv_buf_init("0\r\n\r\n", 5);
    rc = conn_write(r->conn, &b, 1);
  }
  req_finish(r);
  return rc;
}

void smg_http_req_release(smg_http_req_t *r) {
  req_unref(r);
}

/* ---- parsing ------------------------------------------------------------------------ */

#define CONN(p) ((smg_http_conn_t *)(p)->data)

static int reject(llhttp_t *p, int status) {
  CONN(p)->error_status = status;
  return HPE_USER;
}

static int on_message_begin(llhttp_t *p) {
  smg_http_conn_t *c = CONN(p);
  c->in_message = 1;
  smg_buf_reset(&c->head);
  smg_buf_reset(&c->body);
  c->nhdrs = 0;
  c->url_len = 0;
  c->in_field = 0;
  conn_arm_request(c);
  return 0;
}

static int append_head(llhttp_t *p, const char *at, size_t len) {
  smg_http_conn_t *c = CONN(p);
  if (smg_buf_append(&c->head, at, len, c->srv->limits.max_header_bytes) < 0) return reject(p, 431);
  return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len) {
  int r = append_head(p, at, len);
  CONN(p)->url_len = CONN(p)->head.len;
  return r;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len) {
  smg_http_conn_t *c = CONN(p);
  if (!c->in_field) {
    if (c->nhdrs == SMG_HTTP_MAX_HEADERS) return reject(p, 431);
    c->hdrs[c->nhdrs].name_off = c->head.len;
    c->in_field = 1;
  }
  return append_head(p, at, len);
}

static int on_header_field_complete(llhttp_t *p) {
  smg_http_conn_t *c = CONN(p);
  hdr_span_t *h = &c->hdrs[c->nhdrs];
  h->name_len = c->head.len - h->name_off;
  h->val_off = c->head.len;
  c->in_field = 0;
  return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len) {
  return append_head(p, at, len);
}

static int on_header_value_complete(llhttp_t *p) {
  smg_http_conn_t *c = CONN(p);
  hdr_span_t *h = &c->hdrs[c->nhdrs];
  h->val_len = c->head.len - h->val_off;
  c->nhdrs++;
  return 0;
}

static const char *conn_header(smg_http_conn_t *c, const char *name, size_t *len) {
  size_t n = strlen(name);
  for (int i = 0; i < c->nhdrs; i++)
    if (c->hdrs[i].name_len == n && strncasecmp(c->head.data + c->hdrs[i].name_off, name, n) == 0) {
      *len = c->hdrs[i].val_len;
      return c->head.data + c->hdrs[i].val_off;
    }
  return NULL;
}

static int header_count(smg_http_conn_t *c, const char *name) {
  size_t n = strlen(name);
  int count = 0;
  for (int i = 0; i < c->nhdrs; i++)
    if (c->hdrs[i].name_len == n && strncasecmp(c->head.data + c->hdrs[i].name_off, name, n) == 0)
      count++;
  return count;
}

static int on_headers_complete(llhttp_t *p) {
  smg_http_conn_t *c = CONN(p);
  if (p->flags & F_CONTENT_LENGTH && p->content_length > c->srv->limits.max_body_bytes)
    return reject(p, 413);
  /* RFC 9112 3.2: a request with more than one Host (or an HTTP/1.1 request with none) is
   * a 400; two Hosts let a proxy and the origin check different names. */
  int hosts = header_count(c, "host");
  if (hosts > 1 || (hosts == 0 && p->http_major == 1 && p->http_minor >= 1)) return reject(p, 400);
  /* Headers are in: an untrusted connection now has the request timeout for its body. */
  if (!c->trusted) uv_timer_start(&c->timer, on_timer, c->srv->limits.request_timeout_ms, 0);
  size_t len;
  const char *expect = conn_header(c, "expect", &len);
  if (expect) {
    if (len == 12 && strncasecmp(expect, "100-continue", 12) == 0) {
      uv_buf_t b = uv_buf_init("HTTP/1.1 100 Continue\r\n\r\n", 25);
      conn_write(c, &b, 1);
    } else {
      return reject(p, 417);
    }
  }
  return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len) {
  smg_http_conn_t *c = CONN(p);
  if (smg_buf_append(&c->body, at, len, c->srv->limits.max_body_bytes) < 0) return reject(p, 413);
  return 0;
}

static void dispatch(smg_http_conn_t *c);

static int on_message_complete(llhttp_t *p) {
  smg_http_conn_t *c = CONN(p);
  c->in_message = 0;
  c->keep_alive = llhttp_should_keep_alive(p) ? 1 : 0;
  dispatch(c);
  return HPE_PAUSED; /* one request at a time; resumed by conn_process */
}

static void dispatch(smg_http_conn_t *c) {
  smg_http_req_t *r = calloc(1, sizeof(*r));
  if (!r) {
    conn_send_error(c, 503, 0, 0);
    return;
  }
  snprintf(r->method, sizeof(r->method), "%s", llhttp_method_name(llhttp_get_method(&c->parser)));
  r->url = malloc(c->url_len + 2);
  r->hblock = malloc(c->head.len + 1);
  r->hdrs = malloc(sizeof(hdr_span_t) * (size_t)(c->nhdrs ? c->nhdrs : 1));
  if (!r->url || !r->hblock || !r->hdrs) {
    r->refs = 1;
    req_unref(r);
    conn_send_error(c, 503, 0, 0);
    return;
  }
  memcpy(r->url, c->head.data, c->url_len);
  r->url[c->url_len] = '\0';
  r->url[c->url_len + 1] = '\0';
  char *q = strchr(r->url, '?');
  if (q) {
    *q = '\0';
    r->query = q + 1;
  } else {
    r->query = r->url + c->url_len + 1;
  }
  memcpy(r->hblock, c->head.data, c->head.len);
  r->hblock[c->head.len] = '\0';
  memcpy(r->hdrs, c->hdrs, sizeof(hdr_span_t) * (size_t)c->nhdrs);
  r->nhdrs = c->nhdrs;
  /* Hand the body buffer over instead of copying it. */
  r->body = c->body.data;
  r->body_len = c->body.len;
  c->body.data = NULL;
  c->body.len = c->body.cap = 0;
  r->keep_alive = c->keep_alive;
  r->conn = c;
  r->refs = 2;
  c->req = r;
  uv_timer_stop(&c->timer);
  c->srv->on_request(r, c->srv->data);
}

/* Parses buffered input until a request is dispatched and unfinished, or input runs out. */
static void conn_process(smg_http_conn_t *c) {
  if (c->processing) return; /* re-entered from a synchronous response */
  c->processing = 1;
  while (!c->req && !c->closing && c->in.len > 0) {
    enum llhttp_errno e = llhttp_execute(&c->parser, c->in.data, c->in.len);
    size_t used = c->in.len;
    if (e == HPE_PAUSED) {
      used = (size_t)(llhttp_get_error_pos(&c->parser) - c->in.data);
      llhttp_resume(&c->parser);
    } else if (e != HPE_OK) {
      int status = c->error_status ? c->error_status : 400;
      smg_log_debug("http: %s: %s (%s)", c->peer, llhttp_errno_name(e),
                    llhttp_get_error_reason(&c->parser));
      smg_buf_reset(&c->in);
      conn_send_error(c, status, 0, 0);
      break;
    }
    if (c->closing) break;
    smg_buf_consume(&c->in, used);
  }
  c->processing = 0;
}

/* ---- untrusted connections ---------------------------------------------------------- */

static unsigned peer_hash(const char *ip) {
  unsigned h = 2166136261u; /* FNV-1a */
  for (const unsigned char *p = (const unsigned char *)ip; *p; p++) h = (h ^ *p) * 16777619u;
  return h % PEER_BUCKETS;
}

static peer_t *peer_find(smg_http_server_t *srv, const char *ip, int create) {
  peer_t **slot = &srv->peers[peer_hash(ip)];
  for (peer_t *p = *slot; p; p = p->next)
    if (strcmp(p->ip, ip) == 0) return p;
  if (!create) return NULL;
  peer_t *p = calloc(1, sizeof(*p));
  if (!p) return NULL;
  snprintf(p->ip, sizeof(p->ip), "%s", ip);
  p->next = *slot;
  *slot = p;
  return p;
}

static void peer_drop(smg_http_server_t *srv, peer_t *pe) {
  for (peer_t **pp = &srv->peers[peer_hash(pe->ip)]; *pp; pp = &(*pp)->next)
    if (*pp == pe) {
      *pp = pe->next;
      free(pe);
      return;
    }
}

static int untrusted_add(smg_http_conn_t *c) {
  smg_http_server_t *srv = c->srv;
  peer_t *pe = peer_find(srv, c->ip, 1);
  if (!pe) return UV_ENOMEM;
  c->peer_entry = pe;
  c->ut_prev = srv->ut_tail;
  if (srv->ut_tail)
    srv->ut_tail->ut_next = c;
  else
    srv->ut_head = c;
  srv->ut_tail = c;
  c->pp_prev = pe->tail;
  if (pe->tail)
    pe->tail->pp_next = c;
  else
    pe->head = c;
  pe->tail = c;
  pe->untrusted++;
  srv->stats.untrusted++;
  c->untrusted_listed = 1;
  return 0;
}

static void untrusted_remove(smg_http_conn_t *c) {
  if (!c->untrusted_listed) return;
  smg_http_server_t *srv = c->srv;
  peer_t *pe = c->peer_entry;
  if (c->ut_prev)
    c->ut_prev->ut_next = c->ut_next;
  else
    srv->ut_head = c->ut_next;
  if (c->ut_next)
    c->ut_next->ut_prev = c->ut_prev;
  else
    srv->ut_tail = c->ut_prev;
  if (c->pp_prev)
    c->pp_prev->pp_next = c->pp_next;
  else
    pe->head = c->pp_next;
  if (c->pp_next)
    c->pp_next->pp_prev = c->pp_prev;
  else
    pe->tail = c->pp_prev;
  c->untrusted_listed = 0;
  c->peer_entry = NULL;
  srv->stats.untrusted--;
  if (--pe->untrusted == 0) peer_drop(srv, pe);
}

/* Closes the oldest untrusted connection (of `pe`, or of all when NULL) that has no request
 * in progress and is at least DISPLACE_AFTER_MS old. Returns 1 if one went. */
static int displace(smg_http_server_t *srv, peer_t *pe, uint64_t now) {
  smg_http_conn_t *c = pe ? pe->head : srv->ut_head;
  for (int i = 0; c && i < DISPLACE_SCAN; i++) {
    if (now - c->opened_ms < DISPLACE_AFTER_MS) return 0; /* oldest first: the rest are younger */
    /* Not while a response is still being written to it (a scraper's /metrics). */
    if (!c->req && uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) == 0) {
      srv->stats.displaced++;
      smg_log_debug("http: %s: untrusted connection displaced by a newer one", c->peer);
      conn_close(c);
      return 1;
    }
    c = pe ? c->pp_next : c->ut_next;
  }
  return 0;
}

/* Whether a new connection may stay: 0, or the status to refuse it with. Untrusted
 * connections are bounded per address and in total (max_connections less the reserve
 * only trusted ones may use); at a bound the oldest idle or slow one gives way. */
static int admit(smg_http_conn_t *c) {
  smg_http_server_t *srv = c->srv;
  const smg_http_limits_t *l = &srv->limits;
  uint64_t now = c->opened_ms;
  peer_t *pe = peer_find(srv, c->ip, 0);
  if (pe && pe->untrusted >= l->max_untrusted_per_peer && !displace(srv, pe, now)) {
    srv->stats.refused_per_peer++;
    return 429;
  }
  size_t cap = l->max_connections > l->reserved_connections
                   ? l->max_connections - l->reserved_connections
                   : 1;
  if ((srv->stats.untrusted >= cap || srv->nconns > l->max_connections) &&
      !displace(srv, NULL, now)) {
    srv->stats.refused_full++;
    return 503;
  }
  return untrusted_add(c) < 0 ? 503 : 0;
}

void smg_http_req_trust(smg_http_req_t *r) {
  smg_http_conn_t *c = r->conn;
  if (!c || c->trusted) return;
  c->trusted = 1;
  untrusted_remove(c);
}

/* ---- connection lifecycle ---------------------------------------------------------- */

static void on_conn_handle_closed(uv_handle_t *h) {
  smg_http_conn_t *c = h->data;
  if (--c->handles_open > 0) return;
  smg_http_server_t *srv = c->srv;
  smg_buf_free(&c->in);
  smg_buf_free(&c->head);
  smg_buf_free(&c->body);
  free(c);
  srv->nconns--;
  if (srv->closing && srv->nconns == 0 && srv->tcp_closed) free(srv);
}

static void conn_close(smg_http_conn_t *c) {
  if (c->closing) return;
  c->closing = 1;
  untrusted_remove(c);
  smg_http_server_t *srv = c->srv;
  if (c->prev)
    c->prev->next = c->next;
  else
    srv->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  smg_http_req_t *r = c->req;
  c->req = NULL;
  uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
  uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
  if (r) {
    r->conn = NULL;
    if (!r->finished && srv->on_abort) srv->on_abort(r, srv->data);
    req_unref(r);
  }
}

static void on_timer(uv_timer_t *t) {
  smg_http_conn_t *c = t->data;
  if (c->req) return;
  if (!c->trusted) c->srv->stats.header_timeouts++;
  if (c->in_message || c->in.len > 0) {
    smg_log_debug("http: %s: request timeout", c->peer);
    conn_send_error(c, 408, 0, 0);
  } else {
    conn_close(c);
  }
}

static uint64_t min_ms(uint64_t a, uint64_t b) {
  return a < b ? a : b;
}

/* Until a connection is trusted, the header timeout bounds both its idle time and the
 * time it takes to send a request's headers. */
static void conn_arm_idle(smg_http_conn_t *c) {
  const smg_http_limits_t *l = &c->srv->limits;
  uint64_t ms = c->trusted ? l->idle_timeout_ms : min_ms(l->idle_timeout_ms, l->header_timeout_ms);
  uv_timer_start(&c->timer, on_timer, ms, 0);
}

static void conn_arm_request(smg_http_conn_t *c) {
  const smg_http_limits_t *l = &c->srv->limits;
  uint64_t ms =
      c->trusted ? l->request_timeout_ms : min_ms(l->request_timeout_ms, l->header_timeout_ms);
  uv_timer_start(&c->timer, on_timer, ms, 0);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  smg_http_conn_t *c = h->data;
  if (smg_buf_reserve(&c->in, READ_CHUNK, (size_t)-1) < 0) {
    buf->base = NULL;
    buf->len = 0;
    return;
  }
  buf->base = c->in.data + c->in.len;
  buf->len = c->in.cap - c->in.len;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  smg_http_conn_t *c = s->data;
  if (c->refused) { /* answered already: drop what it sends until it closes */
    if (nread < 0)
      conn_close(c);
    else
      smg_buf_reset(&c->in);
    return;
  }
  if (nread < 0) {
    conn_close(c); /* EOF or error; an unfinished request is aborted */
    return;
  }
  if (nread == 0) return;
  c->in.len += (size_t)nread;
  if (c->req) {
    /* A request is in flight: keep what was pipelined behind it, within a bound. */
    if (c->in.len > MAX_PIPELINED) {
      uv_read_stop(s);
      c->reading = 0;
    }
    return;
  }
  if (!c->in_message) conn_arm_request(c);
  conn_process(c);
}

static void read_start(smg_http_conn_t *c) {
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void on_connection(uv_stream_t *server, int status) {
  smg_http_server_t *srv = server->data;
  if (status < 0) {
    smg_log_warn("http: accept: %s", uv_strerror(status));
    return;
  }
  smg_http_conn_t *c = calloc(1, sizeof(*c));
  if (!c) return;
  c->srv = srv;
  uv_tcp_init(server->loop, &c->tcp);
  uv_timer_init(server->loop, &c->timer);
  c->tcp.data = c->timer.data = c;
  c->handles_open = 2;
  srv->nconns++;
  c->next = srv->conns;
  if (srv->conns) srv->conns->prev = c;
  srv->conns = c;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0 || srv->closing) {
    conn_close(c);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
    char ip[48] = "?";
    int port = 0;
    if (ss.ss_family == AF_INET) {
      uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof(ip));
      port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    } else if (ss.ss_family == AF_INET6) {
      uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof(ip));
      port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    snprintf(c->peer, sizeof(c->peer), "%s:%d", ip, port);
    snprintf(c->ip, sizeof(c->ip), "%s", ip);
  }
  llhttp_init(&c->parser, HTTP_REQUEST, &parser_settings);
  c->parser.data = c;
  c->keep_alive = 1;
  c->opened_ms = uv_now(server->loop);
  int refused = admit(c);
  if (refused) {
    smg_log_debug("http: %s: refused (%d): untrusted connection limit", c->peer, refused);
    conn_send_error(c, refused, 1, 1);
    return;
  }
  c->reading = 1;
  conn_arm_idle(c);
  read_start(c);
}

int smg_http_server_listen(uv_loop_t *loop, const char *host, int port,
                           const smg_http_limits_t *limits, smg_http_on_request_cb on_request,
                           smg_http_on_abort_cb on_abort, void *data, smg_http_server_t **out,
                           char *err, size_t errlen) {
  llhttp_settings_init(&parser_settings);
  parser_settings.on_message_begin = on_message_begin;
  parser_settings.on_url = on_url;
  parser_settings.on_header_field = on_header_field;
  parser_settings.on_header_field_complete = on_header_field_complete;
  parser_settings.on_header_value = on_header_value;
  parser_settings.on_header_value_complete = on_header_value_complete;
  parser_settings.on_headers_complete = on_headers_complete;
  parser_settings.on_body = on_body;
  parser_settings.on_message_complete = on_message_complete;

  struct sockaddr_storage addr;
  int rc = strchr(host, ':') ? uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr)
                             : uv_ip4_addr(host, port, (struct sockaddr_in *)&addr);
  if (rc < 0) {
    snprintf(err, errlen, "bad listen address %s: %s", host, uv_strerror(rc));
    return rc;
  }
  smg_http_server_t *srv = calloc(1, sizeof(*srv));
  if (!srv) return UV_ENOMEM;
  srv->limits = *limits;
  srv->on_request = on_request;
  srv->on_abort = on_abort;
  srv->data = data;
  uv_tcp_init(loop, &srv->tcp);
  srv->tcp.data = srv;
  rc = uv_tcp_bind(&srv->tcp, (struct sockaddr *)&addr, 0);
  if (rc == 0) rc = uv_listen((uv_stream_t *)&srv->tcp, 511, on_connection);
  if (rc < 0) {
    snprintf(err, errlen, "listen on %s:%d: %s", host, port, uv_strerror(rc));
    srv->closing = 1;
    smg_http_server_close(srv);
    return rc;
  }
  struct sockaddr_storage bound;
  int blen = sizeof(bound);
  uv_tcp_getsockname(&srv->tcp, (struct sockaddr *)&bound, &blen);
  srv->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                : ((struct sockaddr_in *)&bound)->sin_port);
  *out = srv;
  return 0;
}

void smg_http_server_forget(smg_http_server_t *srv) {
  srv->on_abort = NULL;
  srv->data = NULL;
}

int smg_http_server_port(const smg_http_server_t *srv) {
  return srv->port;
}
size_t smg_http_server_connections(const smg_http_server_t *srv) {
  return srv->nconns;
}
void smg_http_server_stats(const smg_http_server_t *srv, smg_http_server_stats_t *out) {
  *out = srv->stats;
}

static void on_server_closed(uv_handle_t *h) {
  smg_http_server_t *srv = h->data;
  srv->tcp_closed = 1;
  if (srv->nconns == 0) free(srv);
}

void smg_http_server_close(smg_http_server_t *srv) {
  if (uv_is_closing((uv_handle_t *)&srv->tcp)) return;
  srv->closing = 1;
  uv_close((uv_handle_t *)&srv->tcp, on_server_closed);
  smg_http_conn_t *c = srv->conns;
  while (c) {
    smg_http_conn_t *next = c->next;
    if (!c->req) conn_close(c);
    c = next;
  }
}
