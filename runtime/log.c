/* Leveled logging to stderr. The level check happens before any formatting so that
 * disabled debug lines cost one comparison on the hot path. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

static int log_level = SMG_LOG_INFO;
static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

void smg_log_set_level(int level) {
  log_level = level;
}
int smg_log_get_level(void) {
  return log_level;
}

int smg_log_level_from_name(const char *name) {
  static const struct {
    const char *name;
    int level;
  } names[] = {{"debug", SMG_LOG_DEBUG},  {"info", SMG_LOG_INFO},   {"warn", SMG_LOG_WARN},
               {"warning", SMG_LOG_WARN}, {"error", SMG_LOG_ERROR}, {"critical", SMG_LOG_ERROR}};
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
    if (strcasecmp(name, names[i].name) == 0) return names[i].level;
  return -1;
}

void smg_log(int level, const char *fmt, ...) {
  if (level < log_level) return;
  if (level < SMG_LOG_DEBUG || level > SMG_LOG_ERROR) level = SMG_LOG_ERROR;
  char line[4096];
  struct timeval tv;
  gettimeofday(&tv, NULL);
  struct tm tm;
  gmtime_r(&tv.tv_sec, &tm);
  int n = (int)strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
  n += snprintf(line + n, sizeof(line) - (size_t)n, ".%03dZ %-5s ", (int)(tv.tv_usec / 1000),
                level_names[level]);
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
  va_end(ap);
  if (m < 0) m = 0;
  n += m;
  if (n > (int)sizeof(line) - 2) n = (int)sizeof(line) - 2; /* truncated, still one line */
  line[n++] = '\n';
  /* One write(2)-sized fwrite so concurrent processes sharing stderr do not interleave. */
  fwrite(line, 1, (size_t)n, stderr);
}
