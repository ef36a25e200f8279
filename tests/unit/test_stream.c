/* The newline framing of the stdio transport: split chunks, CRLF, overlong lines and the
 * edges kept of them. */
#include <stdlib.h>
#include <string.h>

#include "stream.h"
#include "test.h"

static char got[16][64];
static int ngot;

static char dropped[2 * SMG_LINES_EDGE + 1];
static int ndropped;

static void on_dropped(void *data, const char *edges, size_t len) {
  memcpy(dropped, edges, len);
  dropped[len] = '\0';
  ndropped++;
}

static void on_line(void *data, const char *line, size_t len) {
  if (ngot < 16 && len < 64) {
    memcpy(got[ngot], line, len);
    got[ngot][len] = '\0';
  }
  ngot++;
}

int main(void) {
  smg_lines_t l = {.max_line = 16};
  smg_lines_feed(&l, "one\ntw", 6, on_line, NULL);
  CHECK(ngot == 1 && strcmp(got[0], "one") == 0);
  smg_lines_feed(&l, "o\r\n\nthree\n", 10, on_line, NULL);
  CHECK(ngot == 3 && strcmp(got[1], "two") == 0 && strcmp(got[2], "three") == 0);
  /* A line over max_line is dropped whole, even when it arrives in pieces. */
  smg_lines_feed(&l, "0123456789", 10, on_line, NULL);
  smg_lines_feed(&l, "0123456789", 10, on_line, NULL);
  smg_lines_feed(&l, "abc\nafter\n", 10, on_line, NULL);
  CHECK(ngot == 4 && strcmp(got[3], "after") == 0);
  CHECK(l.dropped == 1);
  smg_lines_free(&l);

  /* A 1 MB line in 64 KiB chunks: dropped; its first 256 bytes are reported as soon as it
   * overflows (before its end, which may never come), then its first and last 256 bytes
   * once it ends, so an id at either end can be read. */
  smg_lines_t big = {.max_line = 4096, .on_dropped = on_dropped};
  size_t n = 1 << 20;
  char *line = malloc(n + 1);
  memset(line, 'x', n);
  memcpy(line, "{\"id\":7,", 8);
  memcpy(line + n - 8, ",\"id\":8}", 8);
  line[n] = '\n';
  for (size_t off = 0; off < n + 1; off += 65536) {
    size_t len = n + 1 - off < 65536 ? n + 1 - off : 65536;
    smg_lines_feed(&big, line + off, len, on_line, NULL);
    if (off == 0) {
      CHECK(ndropped == 1 && strlen(dropped) == SMG_LINES_EDGE); /* the head, at once */
      CHECK(strncmp(dropped, "{\"id\":7,", 8) == 0);
    }
  }
  CHECK(ndropped == 2 && big.dropped == 1);
  CHECK(strlen(dropped) == 2 * SMG_LINES_EDGE);
  CHECK(strncmp(dropped, "{\"id\":7,", 8) == 0);
  CHECK(strcmp(dropped + 2 * SMG_LINES_EDGE - 8, ",\"id\":8}") == 0);
  /* A short line over the limit in one chunk is dropped too, with its whole text. */
  smg_lines_feed(&big, line, 5000, on_line, NULL);
  smg_lines_feed(&big, "tail\n", 5, on_line, NULL);
  CHECK(ndropped == 4 && strncmp(dropped, "{\"id\":7,", 8) == 0);
  CHECK(strcmp(dropped + strlen(dropped) - 4, "tail") == 0);
  int before = ngot;
  smg_lines_feed(&big, "ok\n", 3, on_line, NULL);
  CHECK(ngot == before + 1 && strcmp(got[(ngot - 1) % 16], "ok") == 0);
  free(line);
  smg_lines_free(&big);
  TEST_DONE();
}
