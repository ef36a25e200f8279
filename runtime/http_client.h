/* Outbound HTTP on the loop: libcurl's multi interface driven by libuv polls and one
 * timer. Responses stream to callbacks (SSE from remote MCP servers). */
#ifndef SMG_HTTP_CLIENT_H
#define SMG_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct smg_http_client_s smg_http_client_t;
typedef struct smg_http_call_s smg_http_call_t;

typedef struct {
  /* Once, before the first body byte: status and the raw header lines of the final response. */
  void (*on_headers)(smg_http_call_t *call, int status, const char *headers, size_t len,
                     void *data);
  void (*on_data)(smg_http_call_t *call, const char *p, size_t n, void *data);
  /* Once, last. err is NULL on success. */
  void (*on_done)(smg_http_call_t *call, const char *err, void *data);
} smg_http_call_cbs_t;

typedef struct {
  const char *method;
  const char *url;
  const char *const *headers; /* "Name: value", NULL-terminated */
  const char *body;
  size_t body_len;
  uint64_t timeout_ms; /* whole transfer; 0 = none (long-lived SSE) */
  uint64_t connect_timeout_ms;
  size_t max_response; /* bytes; the call fails past it; 0 = unlimited */
  /* TLS: a client certificate and key (PEM files, mutual TLS, RFC 8705) and a CA bundle
   * that replaces the system's for verifying the server. NULL: none / the system's. */
  const char *client_cert;
  const char *client_key;
  const char *ca_file;
  /* Refuse to connect to any address smg_addr_restricted names (addr_policy.h: loopback,
   * private, link-local, CGNAT, multicast, IPv4 inside IPv6...), checked on every address
   * curl connects to, after resolution, so a name that resolves to one is refused too:
   * fetches of URLs a remote party chose. */
  int public_only;
} smg_http_call_opts_t;

/* max_host_connections: the connection cap per host (0: none). */
smg_http_client_t *smg_http_client_new(uv_loop_t *loop, long max_host_connections);
void smg_http_client_free(smg_http_client_t *c);

int smg_http_call_start(smg_http_client_t *c, const smg_http_call_opts_t *opts,
                        const smg_http_call_cbs_t *cbs, void *data, smg_http_call_t **out,
                        char *err, size_t errlen);
/* Stops the transfer; no callback runs after this returns. Safe inside a callback. */
void smg_http_call_cancel(smg_http_call_t *call);

#endif
