/* The addresses a public_only fetch may not reach (runtime/addr_policy.c), IPv4 inside
 * IPv6 forms included. */
#include <arpa/inet.h>
#include <string.h>

#include "addr_policy.h"
#include "test.h"

static int restricted(const char *ip) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof(ss));
  if (strchr(ip, ':')) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    a->sin6_family = AF_INET6;
    if (inet_pton(AF_INET6, ip, &a->sin6_addr) != 1) return -1;
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET;
    if (inet_pton(AF_INET, ip, &a->sin_addr) != 1) return -1;
  }
  return smg_addr_restricted((struct sockaddr *)&ss);
}

int main(void) {
  static const char *refused[] = {
      "0.0.0.0",
      "10.1.2.3",
      "127.0.0.1",
      "100.64.0.1",
      "100.127.255.254",
      "169.254.169.254",
      "172.16.0.1",
      "172.31.255.255",
      "192.0.0.170",
      "192.0.2.1",
      "192.88.99.1",
      "192.168.1.1",
      "198.18.0.1",
      "198.19.255.255",
      "198.51.100.7",
      "203.0.113.9",
      "224.0.0.1",
      "240.0.0.1",
      "255.255.255.255",
      /* IPv6, and IPv4 inside it */
      "::",
      "::1",
      "::127.0.0.1",
      "::ffff:10.0.0.1",
      "::ffff:169.254.169.254",
      "64:ff9b::a9fe:a9fe",
      "64:ff9b::7f00:1",
      "64:ff9b:1::1",
      "2002:7f00:1::",
      "2002:a9fe:a9fe::1",
      "2001:0:4136:e378::1",
      "2001:db8::1",
      "2001:10::1",
      "100::1",
      "fc00::1",
      "fd12:3456::1",
      "fe80::1",
      "febf::1",
      "fec0::1",
      "ff02::1",
  };
  static const char *allowed[] = {
      "1.1.1.1",
      "8.8.8.8",
      "100.63.255.255",
      "100.128.0.1",
      "172.15.255.255",
      "172.32.0.1",
      "192.0.1.1",
      "192.169.0.1",
      "198.17.255.255",
      "198.20.0.1",
      "223.255.255.255",
      "2606:4700::1111",
      "2a00:1450:4001::200e",
      "::ffff:8.8.8.8",
      "64:ff9b::808:808",
      "2002:808:808::1",
      "2001:4860:4860::8888",
      "2001:3::1",
      "2001:30::1",
      "3fff:1000::1",
      "::ffff:0:808:808",
  };
  for (size_t i = 0; i < sizeof(refused) / sizeof(*refused); i++) {
    if (restricted(refused[i]) != 1) fprintf(stderr, "should be refused: %s\n", refused[i]);
    CHECK(restricted(refused[i]) == 1);
  }
  for (size_t i = 0; i < sizeof(allowed) / sizeof(*allowed); i++) {
    if (restricted(allowed[i]) != 0) fprintf(stderr, "should be allowed: %s\n", allowed[i]);
    CHECK(restricted(allowed[i]) == 0);
  }
  struct sockaddr other = {.sa_family = AF_UNIX};
  CHECK(smg_addr_restricted(&other) == 1);
  TEST_DONE();
}
