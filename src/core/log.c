/* log.c - leveled process log on stderr, one write(2) per line. */
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ebb/core.h"
#include "ebb/log.h"

int ebb_log_level = EBB_LOG_INFO;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

int ebb_log_parse_level(const char *s, int *out)
{
    for (size_t i = 0; i < EBB_ARRAY_LEN(level_names); i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (int)i;
            return 0;
        }
    }
    return EBB_EINVAL;
}

void ebb_log_write(int level, const char *subsys, const char *fmt, ...)
{
    char line[2048];
    struct timespec ts;
    int saved = errno;
    size_t n;
    va_list ap;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    n = (size_t)snprintf(line, sizeof(line), "%ld.%06ld %-5s %s: ", (long)ts.tv_sec,
                         ts.tv_nsec / 1000, level_names[level < 0 ? 0 : level > 3 ? 3 : level],
                         subsys);
    if (n < sizeof(line)) {
        va_start(ap, fmt);
        int m = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
        va_end(ap);
        if (m > 0)
            n += (size_t)m;
    }
    if (n >= sizeof(line) - 1)
        n = sizeof(line) - 2;
    line[n++] = '\n';
    /* one write keeps lines from different threads whole */
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
    errno = saved;
}
