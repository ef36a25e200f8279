/* The newline framing of the stdio transport: split chunks, CRLF, overlong lines. */
#include <string.h>

#include "stream.h"
#include "test.h"

static char got[16][64];
static int ngot;

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
  TEST_DONE();
}
