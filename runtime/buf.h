/* A growable byte buffer: the one container every peer-fed byte stream goes through.
 * Growth is checked against a caller-supplied ceiling before allocating. */
#ifndef SMG_BUF_H
#define SMG_BUF_H

#include <stddef.h>

typedef struct {
  char *data; /* owned */
  size_t len;
  size_t cap;
} smg_buf_t;

/* Returns 0, or -1 when len+n would exceed max or memory is exhausted. */
int smg_buf_append(smg_buf_t *b, const char *p, size_t n, size_t max);
/* Ensures room for n more bytes; same errors. */
int smg_buf_reserve(smg_buf_t *b, size_t n, size_t max);
/* Drops the first n bytes. */
void smg_buf_consume(smg_buf_t *b, size_t n);
void smg_buf_reset(smg_buf_t *b);
void smg_buf_free(smg_buf_t *b);

#endif
