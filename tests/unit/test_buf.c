#include <string.h>

#include "buf.h"
#include "test.h"

int main(void) {
  smg_buf_t b = {0};
  CHECK(smg_buf_append(&b, "hello", 5, 100) == 0);
  CHECK(b.len == 5 && memcmp(b.data, "hello", 5) == 0);
  CHECK(smg_buf_append(&b, " world", 6, 100) == 0);
  CHECK(b.len == 11);
  /* The ceiling is checked before allocating. */
  CHECK(smg_buf_append(&b, "x", 1, 11) == -1);
  CHECK(b.len == 11);
  CHECK(smg_buf_reserve(&b, (size_t)-1, (size_t)-1) == -1); /* overflow refused */
  smg_buf_consume(&b, 6);
  CHECK(b.len == 5 && memcmp(b.data, "world", 5) == 0);
  smg_buf_consume(&b, 99);
  CHECK(b.len == 0);
  for (int i = 0; i < 1000; i++) CHECK(smg_buf_append(&b, "0123456789", 10, 1 << 20) == 0);
  CHECK(b.len == 10000 && b.cap >= 10000);
  smg_buf_free(&b);
  CHECK(b.data == NULL && b.len == 0);
  TEST_DONE();
}
