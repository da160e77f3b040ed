/*
 * core.h - error codes, assertions, small helpers shared by every module.
 *
 * Actions return int: 0 on success, a negative EBB_E* code on failure.
 * Predicates return bool.  "Would block, call again" is EBB_AGAIN, which is
 * not an error (nginx's NGX_AGAIN).
 */
#ifndef EBB_CORE_H
#define EBB_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define EBB_VERSION "0.1.0"

/* name, value, message.  The table makes both the enum and ebb_strerror(). */
#define EBB_ERRNO_MAP(X)                                                     \
    X(AGAIN,     -1,  "resource temporarily unavailable, call again")        \
    X(NOMEM,     -2,  "out of memory")                                      \
    X(INVAL,     -3,  "invalid argument")                                   \
    X(IO,        -4,  "i/o error")                                          \
    X(CLOSED,    -5,  "connection closed by peer")                          \
    X(PROTO,     -6,  "protocol error")                                     \
    X(TOOBIG,    -7,  "too big")                                            \
    X(TIMEDOUT,  -8,  "timed out")                                          \
    X(CONNREFUSED,-9, "connection refused")                                 \
    X(NOTFOUND,  -10, "not found")                                          \
    X(CONFIG,    -11, "configuration error")                                \
    X(EXISTS,    -12, "already exists")

enum ebb_errno {
    EBB_OK = 0,
#define EBB_X_ENUM(name, val, msg) EBB_E##name = (val),
    EBB_ERRNO_MAP(EBB_X_ENUM)
#undef EBB_X_ENUM
};
#define EBB_AGAIN EBB_EAGAIN

/* Returns a static message for an EBB_E* code (or "unknown error"). */
const char *ebb_strerror(int rc);

#define EBB_LIKELY(x)   __builtin_expect(!!(x), 1)
#define EBB_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define EBB_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define EBB_MIN(a, b) ((a) < (b) ? (a) : (b))
#define EBB_MAX(a, b) ((a) > (b) ? (a) : (b))
#define ebb_container_of(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* Invariant checks: programming errors only, never peer input. */
void ebb_bug(const char *file, int line, const char *expr) __attribute__((noreturn));
#define EBB_BUG_ON(cond) \
    do { if (EBB_UNLIKELY(cond)) ebb_bug(__FILE__, __LINE__, #cond); } while (0)

/* Memory a per-thread cache keeps for its next user (the buffer cache, the HTTP/1 exchange
 * cache) is poisoned under AddressSanitizer while it waits there: a use by its last owner is
 * reported as a use after free would be.  No-ops in other builds. */
#if defined(__SANITIZE_ADDRESS__)
#define EBB_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EBB_ASAN 1
#endif
#endif
#ifdef EBB_ASAN
#include <sanitizer/asan_interface.h>
#define EBB_POISON(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#define EBB_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define EBB_POISON(p, n)   ((void)(p), (void)(n))
#define EBB_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* EBB_TSAN: 1 in a ThreadSanitizer build (gcc defines __SANITIZE_THREAD__, clang has
 * __has_feature), else 0. */
#if defined(__SANITIZE_THREAD__)
#define EBB_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define EBB_TSAN 1
#endif
#endif
#ifndef EBB_TSAN
#define EBB_TSAN 0
#endif

/* Allocation helpers.  ebb_xmalloc() exits with a message on failure and is
 * for startup paths only; the data path uses malloc() and handles NULL. */
void *ebb_xmalloc(size_t n);
void *ebb_xcalloc(size_t n, size_t sz);
char *ebb_xstrdup(const char *s);
char *ebb_xstrndup(const char *s, size_t n);

/* Copies the C string src into dst[0..cap) (cap > 0), truncated, always NUL-terminated
 * (snprintf "%s" without the format machinery).  Returns dst. */
char *ebb_strcpy_trunc(char *dst, size_t cap, const char *src);

/* Writes v in decimal at out (room for 20 bytes; no NUL).  Returns the length. */
size_t ebb_u64_dec(char *out, uint64_t v);

/* Fast non-cryptographic random numbers (xorshift32): advances *state and
 * returns the new value.  *state must start nonzero and is owned by one
 * thread (a worker keeps one for idle-close spread and request ids). */
uint32_t ebb_rand(uint32_t *state);

#endif
