/* Growable byte buffer. Capacity doubles so appends are amortised O(1); consume()
 * moves the tail down, which is cheap because callers consume whole frames at once. */
#include "buf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int smg_buf_reserve(smg_buf_t *b, size_t n, size_t max) {
  if (n > SIZE_MAX - b->len || b->len + n > max) return -1;
  size_t need = b->len + n;
  if (need <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
  char *p = realloc(b->data, cap);
  if (!p) return -1;
  b->data = p;
  b->cap = cap;
  return 0;
}

int smg_buf_append(smg_buf_t *b, const char *p, size_t n, size_t max) {
  if (smg_buf_reserve(b, n, max) < 0) return -1;
  if (n) memcpy(b->data + b->len, p, n);
  b->len += n;
  return 0;
}

void smg_buf_consume(smg_buf_t *b, size_t n) {
  if (n >= b->len) {
    b->len = 0;
    return;
  }
  memmove(b->data, b->data + n, b->len - n);
  b->len -= n;
}

void smg_buf_reset(smg_buf_t *b) {
  b->len = 0;
}

void smg_buf_free(smg_buf_t *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}
