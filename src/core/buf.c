/* buf.c - bounded byte buffers (see buf.h). */
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ebb/buf.h"
#include "ebb/core.h"
#include "ebb/parse.h"

static size_t buf_max(const struct ebb_buf *b)
{
    return b->max ? b->max : EBB_BUF_DEFAULT_MAX;
}

/* Storage given back by ebb_buf_release(), per thread, by size class (4 KiB << i): an idle
 * connection holds no buffer, and the next exchange takes one from here instead of malloc. */
#define BUF_CLASSES   5      /* 4, 8, 16, 32, 64 KiB */
#define BUF_CACHE_MAX 32     /* per class and thread */
static __thread struct {
    char    *p[BUF_CLASSES][BUF_CACHE_MAX];
    unsigned n[BUF_CLASSES];
} buf_cache;

static int buf_class(size_t cap)
{
    for (int i = 0; i < BUF_CLASSES; i++)
        if (cap == (size_t)4096 << i)
            return i;
    return -1;
}

void ebb_buf_release(struct ebb_buf *b)
{
    int k = b->data && ebb_buf_len(b) == 0 ? buf_class(b->cap) : -1;
    if (k >= 0 && buf_cache.n[k] < BUF_CACHE_MAX) {
        EBB_POISON(b->data, b->cap);
        buf_cache.p[k][buf_cache.n[k]++] = b->data;
    } else
        free(b->data);
    b->data = NULL;
    b->cap = b->head = b->tail = 0;
}

void ebb_buf_cache_drain(void)
{
    for (int k = 0; k < BUF_CLASSES; k++)
        while (buf_cache.n[k]) {
            char *p = buf_cache.p[k][--buf_cache.n[k]];
            EBB_UNPOISON(p, (size_t)4096 << k);
            free(p);
        }
}

int ebb_buf_reserve(struct ebb_buf *b, size_t n)
{
    size_t len = ebb_buf_len(b);

    if (b->cap - b->tail >= n)
        return 0;
    if (len + n > buf_max(b))
        return EBB_ETOOBIG;
    if (b->cap >= len + n) {
        /* enough room overall: slide the live bytes to the front */
        memmove(b->data, b->data + b->head, len);
        b->head = 0;
        b->tail = len;
        return 0;
    }
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < len + n)
        cap *= 2;
    if (cap > buf_max(b))
        cap = buf_max(b);
    int k = b->data ? -1 : buf_class(cap);
    char *p;
    if (k >= 0 && buf_cache.n[k]) {
        p = buf_cache.p[k][--buf_cache.n[k]];
        EBB_UNPOISON(p, cap);
    } else if (!(p = malloc(cap))) {
        return EBB_ENOMEM;
    }
    if (len)
        memcpy(p, b->data + b->head, len);
    free(b->data);
    b->data = p;
    b->cap = cap;
    b->head = 0;
    b->tail = len;
    return 0;
}

int ebb_buf_append_u64(struct ebb_buf *b, uint64_t v)
{
    char d[20];
    return ebb_buf_append(b, d, ebb_u64_dec(d, v));
}

int ebb_buf_append_slow(struct ebb_buf *b, const void *p, size_t n)
{
    int rc = ebb_buf_reserve(b, n);
    if (rc < 0)
        return rc;
    if (n)
        memcpy(b->data + b->tail, p, n);
    b->tail += n;
    return 0;
}

int ebb_buf_vappendf(struct ebb_buf *b, const char *fmt, va_list ap)
{
    char small[256];
    va_list again;

    va_copy(again, ap);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    if (n < 0 || (size_t)n < sizeof(small)) {
        va_end(again);
        return n < 0 ? EBB_EINVAL : ebb_buf_append(b, small, (size_t)n);
    }
    int rc = ebb_buf_reserve(b, (size_t)n + 1);
    if (rc == 0) {
        vsnprintf(b->data + b->tail, (size_t)n + 1, fmt, again);
        b->tail += (size_t)n;
    }
    va_end(again);
    return rc;
}

int ebb_buf_appendf(struct ebb_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = ebb_buf_vappendf(b, fmt, ap);
    va_end(ap);
    return rc;
}

size_t ebb_json_escape(const char *s, size_t n, size_t *used, char *esc)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char c = (unsigned char)s[0];
    uint32_t rune;

    *used = 1;
    switch (c) {
    case '"': memcpy(esc, "\\\"", 2); return 2;
    case '\\': memcpy(esc, "\\\\", 2); return 2;
    case '\n': memcpy(esc, "\\n", 2); return 2;
    case '\r': memcpy(esc, "\\r", 2); return 2;
    case '\t': memcpy(esc, "\\t", 2); return 2;
    case '\b': memcpy(esc, "\\b", 2); return 2;
    case '\f': memcpy(esc, "\\f", 2); return 2;
    default: break;
    }
    if (c < 0x20 || c == 0x7f) {
        memcpy(esc, "\\u00", 4);
        esc[4] = hex[c >> 4];
        esc[5] = hex[c & 15];
        return 6;
    }
    if (c < 0x80)
        return 0;
    *used = ebb_utf8_decode(s, n, &rune);
    if (rune == 0xFFFD && *used == 1) {
        memcpy(esc, "\\ufffd", 6);
        return 6;
    }
    return 0;
}

int ebb_buf_append_json_str(struct ebb_buf *b, const char *s)
{
    char esc[EBB_JSON_ESC_MAX];
    size_t n, i = 0, run = 0, used, k;
    int rc = ebb_buf_append(b, "\"", 1);

    if (!s)
        s = "";
    n = strlen(s);

    /* copy runs of bytes that need no escaping in one append */
    while (rc == 0 && i < n) {
        k = ebb_json_escape(s + i, n - i, &used, esc);
        if (k == 0) {
            i += used;
            continue;
        }
        rc = ebb_buf_append(b, s + run, i - run);
        if (rc == 0)
            rc = ebb_buf_append(b, esc, k);
        i += used;
        run = i;
    }
    if (rc == 0)
        rc = ebb_buf_append(b, s + run, i - run);
    return rc ? rc : ebb_buf_append(b, "\"", 1);
}

void ebb_buf_consume(struct ebb_buf *b, size_t n)
{
    EBB_BUG_ON(n > ebb_buf_len(b));
    b->head += n;
    if (b->head == b->tail)
        b->head = b->tail = 0;
}

void ebb_buf_free(struct ebb_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->cap = b->head = b->tail = 0;
}

/* read(2), or recv(2) for a socket: the socket path skips the file-position machinery
 * of read (fdget_pos, vfs_read, sock_read_iter), a few percent of a proxy's kernel time. */
static ssize_t buf_read(struct ebb_buf *b, int fd, bool sock)
{
    size_t room = ebb_buf_room(b);
    if (room == 0)
        return EBB_ETOOBIG;
    /* read in chunks of up to 16 KiB so a small buffer stays small */
    size_t want = room < 16384 ? room : 16384;
    if (ebb_buf_tailroom(b) < want) {
        int rc = ebb_buf_reserve(b, want);
        if (rc < 0)
            return rc;
    }
    ssize_t n;
    do {
        size_t len = ebb_buf_tailroom(b) < room ? ebb_buf_tailroom(b) : room;
        n = sock ? recv(fd, b->data + b->tail, len, 0) : read(fd, b->data + b->tail, len);
    } while (n < 0 && errno == EINTR);
    if (n > 0) {
        b->tail += (size_t)n;
        return n;
    }
    if (n == 0)
        return 0;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        return EBB_EAGAIN;
    return EBB_EIO;
}

ssize_t ebb_buf_read_fd(struct ebb_buf *b, int fd) { return buf_read(b, fd, false); }
ssize_t ebb_buf_recv_fd(struct ebb_buf *b, int fd) { return buf_read(b, fd, true); }

ssize_t ebb_buf_write_fd(struct ebb_buf *b, int fd)
{
    size_t len = ebb_buf_len(b);
    ssize_t n;
    if (len == 0)
        return 0;
    do {
        n = send(fd, b->data + b->head, len, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n >= 0) {
        ebb_buf_consume(b, (size_t)n);
        return n;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        return EBB_EAGAIN;
    return EBB_EIO;
}
