/* Which network addresses a fetch of a URL that a remote party chose may reach: none of
 * the special-purpose ranges (IANA's IPv4 and IPv6 special-purpose registries) that lead
 * into this host or its networks, nor IPv4 ones hidden inside IPv6 forms (mapped,
 * compatible, NAT64, 6to4). */
#ifndef SMG_ADDR_POLICY_H
#define SMG_ADDR_POLICY_H

#include <sys/socket.h>

/* 1 when `sa` is a loopback, private, link-local, shared (CGNAT), multicast, reserved,
 * documentation, benchmarking or unspecified address (or not IPv4/IPv6 at all). */
int smg_addr_restricted(const struct sockaddr *sa);

#endif
