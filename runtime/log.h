/* Logging to stderr: one line per event, leveled, safe to call from any callback.
 * stdout is reserved for the MCP stdio transport, so nothing here ever writes to it. */
#ifndef SMG_LOG_H
#define SMG_LOG_H

enum { SMG_LOG_DEBUG = 0, SMG_LOG_INFO, SMG_LOG_WARN, SMG_LOG_ERROR };

void smg_log_set_level(int level);
int smg_log_get_level(void);
int smg_log_level_from_name(const char *name); /* -1 when unknown */
void smg_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define smg_log_debug(...) smg_log(SMG_LOG_DEBUG, __VA_ARGS__)
#define smg_log_info(...) smg_log(SMG_LOG_INFO, __VA_ARGS__)
#define smg_log_warn(...) smg_log(SMG_LOG_WARN, __VA_ARGS__)
#define smg_log_error(...) smg_log(SMG_LOG_ERROR, __VA_ARGS__)

#endif
