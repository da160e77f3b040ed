/*
 * log.h - leveled process log on stderr.
 *
 * Line format: "<monotonic seconds> <level> <subsystem>: message".
 * The macros check the level before evaluating their arguments (redis
 * serverLog), so a disabled debug line costs one compare.
 */
#ifndef EBB_LOG_H
#define EBB_LOG_H

#include <stdarg.h>

enum ebb_log_level {
    EBB_LOG_ERROR = 0,  /* something failed that an operator must see */
    EBB_LOG_WARN  = 1,  /* degraded, unexpected, but running */
    EBB_LOG_INFO  = 2,  /* phase changes: start, drain, listener stop, exit */
    EBB_LOG_DEBUG = 3,  /* per-connection detail */
};

extern int ebb_log_level;

/* Parses "error|warn|info|debug" into *out.  Returns 0 or EBB_EINVAL. */
int ebb_log_parse_level(const char *s, int *out);

/* Writes one formatted line; thread-safe (one write(2) per line). */
void ebb_log_write(int level, const char *subsys, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define ebb_log(level, subsys, ...) \
    do { if ((level) <= ebb_log_level) ebb_log_write((level), (subsys), __VA_ARGS__); } while (0)
#define ebb_err(subsys, ...)   ebb_log(EBB_LOG_ERROR, subsys, __VA_ARGS__)
#define ebb_warn(subsys, ...)  ebb_log(EBB_LOG_WARN, subsys, __VA_ARGS__)
#define ebb_info(subsys, ...)  ebb_log(EBB_LOG_INFO, subsys, __VA_ARGS__)
#define ebb_debug(subsys, ...) ebb_log(EBB_LOG_DEBUG, subsys, __VA_ARGS__)

#endif
