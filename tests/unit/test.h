/* A tiny assertion harness for the C unit tests: each failed check prints where and
 * why and makes the test binary exit non-zero; ctest reports it. */
#ifndef SMG_TEST_H
#define SMG_TEST_H
#include <stdio.h>
#include <stdlib.h>

static int test_failures;
#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      test_failures++;                                                         \
    }                                                                          \
  } while (0)
#define TEST_DONE()                                                            \
  do {                                                                         \
    if (test_failures) fprintf(stderr, "%d check(s) failed\n", test_failures); \
    return test_failures ? 1 : 0;                                              \
  } while (0)
#endif
