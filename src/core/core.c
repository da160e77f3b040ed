/* core.c - error strings, assertions, startup allocation helpers, xorshift. */
#include <string.h>

#include "ebb/core.h"
#include "ebb/log.h"

const char *ebb_strerror(int rc)
{
    switch (rc) {
    case 0: return "ok";
#define EBB_X_CASE(name, val, msg) case (val): return (msg);
    EBB_ERRNO_MAP(EBB_X_CASE)
#undef EBB_X_CASE
    default: return "unknown error";
    }
}

void ebb_bug(const char *file, int line, const char *expr)
{
    ebb_log_write(EBB_LOG_ERROR, "bug", "%s:%d: invariant broken: %s", file, line, expr);
    abort();
}

static void oom(size_t n)
{
    fprintf(stderr, "ebb: out of memory allocating %zu bytes\n", n);
    exit(2);
}

void *ebb_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *ebb_xcalloc(size_t n, size_t sz)
{
    void *p = calloc(n ? n : 1, sz ? sz : 1);
    if (!p)
        oom(n * sz);
    return p;
}

char *ebb_xstrdup(const char *s)
{
    return ebb_xstrndup(s, strlen(s));
}

char *ebb_xstrndup(const char *s, size_t n)
{
    char *p = ebb_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

uint32_t ebb_rand(uint32_t *state)
{
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *state = x;
}

char *ebb_strcpy_trunc(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
    return dst;
}

size_t ebb_u64_dec(char *out, uint64_t v)
{
    char d[20];
    size_t i = sizeof(d);
    do {
        d[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    memcpy(out, d + i, sizeof(d) - i);
    return sizeof(d) - i;
}
