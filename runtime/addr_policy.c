#include "addr_policy.h"

#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

/* An IPv4 address, host order. */
static int v4_restricted(uint32_t a) {
  uint32_t top = a >> 24;
  return top == 0                            /* 0/8 "this network" */
         || top == 10                        /* 10/8 */
         || top == 127                       /* loopback */
         || (a >> 22) == (0x64400000u >> 22) /* 100.64/10 shared (CGNAT) */
         || (a >> 16) == 0xA9FE              /* 169.254/16 link-local */
         || (a >> 20) == 0xAC1               /* 172.16/12 */
         || (a >> 8) == 0xC00000             /* 192.0.0/24 IETF assignments */
         || (a >> 8) == 0xC00002             /* 192.0.2/24 documentation */
         || (a >> 8) == 0xC05863             /* 192.88.99/24 6to4 relays */
         || (a >> 16) == 0xC0A8              /* 192.168/16 */
         || (a >> 17) == (0xC6120000u >> 17) /* 198.18/15 benchmarking */
         || (a >> 8) == 0xC63364             /* 198.51.100/24 documentation */
         || (a >> 8) == 0xCB0071             /* 203.0.113/24 documentation */
         || top >= 0xE0;                     /* multicast, reserved, broadcast */
}

static uint32_t v4_at(const uint8_t *b) {
  return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static int v6_restricted(const uint8_t *b) {
  static const uint8_t zero[12] = {0};
  static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  static const uint8_t translated[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0};
  static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
  /* IPv4 inside: ::a.b.c.d (compatible; :: and ::1 too), ::ffff:a.b.c.d (mapped),
   * ::ffff:0:a.b.c.d (translated), 64:ff9b::a.b.c.d (NAT64) */
  if (memcmp(b, zero, 12) == 0 || memcmp(b, mapped, 12) == 0 || memcmp(b, translated, 12) == 0 ||
      memcmp(b, nat64, 12) == 0)
    return v4_restricted(v4_at(b + 12));
  if (b[0] == 0x20 && b[1] == 0x02) return v4_restricted(v4_at(b + 2));    /* 2002::/16 6to4 */
  if (b[0] == 0 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b) return 1; /* 64:ff9b:1::/48 */
  if (b[0] == 0x01 && b[1] == 0 && memcmp(b + 2, zero, 6) == 0) return 1;  /* 100::/64 discard */
  if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0) {
    if (b[3] == 0) return 1;                              /* 2001::/32 Teredo */
    if (b[3] == 0x02 && b[4] == 0 && b[5] == 0) return 1; /* 2001:2::/48 benchmarking */
    if ((b[3] & 0xf0) == 0x10 || (b[3] & 0xf0) == 0x20)
      return 1; /* 2001:10::/28, 2001:20::/28 ORCHID */
  }
  if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8)
    return 1;                                                       /* 2001:db8::/32 doc */
  if (b[0] == 0x3f && b[1] == 0xff && (b[2] & 0xf0) == 0) return 1; /* 3fff::/20 doc */
  if (b[0] == 0x5f && b[1] == 0) return 1;                          /* 5f00::/16 SRv6 SIDs */
  return (b[0] & 0xfe) == 0xfc                                      /* fc00::/7 unique local */
         || (b[0] == 0xfe && (b[1] & 0x80) == 0x80) /* fe80::/10 link-local, fec0::/10 site-local */
         || b[0] == 0xff;                           /* multicast */
}

int smg_addr_restricted(const struct sockaddr *sa) {
  if (sa->sa_family == AF_INET)
    return v4_restricted(ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr));
  if (sa->sa_family == AF_INET6)
    return v6_restricted(((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr);
  return 1;
}
