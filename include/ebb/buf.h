/*
 * buf.h - bounded byte buffers.
 *
 * A buffer is a heap region [data, data+cap) holding live bytes at
 * [data+head, data+tail).  Every buffer has a ceiling (curl dynbuf's
 * "toobig"): it never grows past max.  A zeroed struct is a valid empty
 * buffer that allocates on first reserve.
 */
#ifndef EBB_BUF_H
#define EBB_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

struct ebb_buf {
    char   *data;   /* heap storage or NULL */
    size_t  cap;    /* allocated bytes */
    size_t  head;   /* first live byte */
    size_t  tail;   /* one past the last live byte */
    size_t  max;    /* ceiling for cap; 0 means the default (64 KiB) */
};

#define EBB_BUF_DEFAULT_MAX (64 * 1024)

static inline size_t ebb_buf_len(const struct ebb_buf *b) { return b->tail - b->head; }
/* A buffer that never held storage has data NULL: NULL + 0 is undefined behaviour in C, so
 * its start and end are NULL itself (an empty span). */
static inline char  *ebb_buf_start(const struct ebb_buf *b)
{
    return b->data ? b->data + b->head : NULL;
}
static inline size_t ebb_buf_room(const struct ebb_buf *b)
{
    size_t max = b->max ? b->max : EBB_BUF_DEFAULT_MAX;
    return max - ebb_buf_len(b);
}

/* Makes at least n contiguous writable bytes available at ebb_buf_end().
 * Compacts or grows up to max.  Returns 0, EBB_ETOOBIG or EBB_ENOMEM. */
int ebb_buf_reserve(struct ebb_buf *b, size_t n);
static inline char *ebb_buf_end(const struct ebb_buf *b) { return b->data ? b->data + b->tail : NULL; }
/* Contiguous writable bytes after tail without growing. */
static inline size_t ebb_buf_tailroom(const struct ebb_buf *b) { return b->cap - b->tail; }

/* Appends n bytes.  Returns 0, EBB_ETOOBIG or EBB_ENOMEM.  Inline: a request head is dozens
 * of small appends, nearly all into room already there. */
int ebb_buf_append_slow(struct ebb_buf *b, const void *p, size_t n);
static inline int ebb_buf_append(struct ebb_buf *b, const void *p, size_t n)
{
    if (b->cap - b->tail < n)
        return ebb_buf_append_slow(b, p, n);
    if (n)
        memcpy(b->data + b->tail, p, n);
    b->tail += n;
    return 0;
}
/* Appends a string literal (its length known at compile time, no strlen). */
#define ebb_buf_append_lit(b, lit) ebb_buf_append((b), (lit), sizeof(lit) - 1)
/* printf-append, whole or not at all.  Returns 0, EBB_ETOOBIG or EBB_ENOMEM. */
int ebb_buf_appendf(struct ebb_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The same with a va_list (ap is consumed). */
int ebb_buf_vappendf(struct ebb_buf *b, const char *fmt, va_list ap);
/* Appends v in decimal (no printf).  Returns 0, EBB_ETOOBIG or EBB_ENOMEM. */
int ebb_buf_append_u64(struct ebb_buf *b, uint64_t v);
/* The one JSON string escaper.  Looks at the next character of s[0..n)
 * (n > 0) and sets *used to its length in bytes.  Returns 0 when those bytes
 * go into a JSON string as they are (printable ASCII other than " and \, or
 * a valid UTF-8 sequence), else writes the escape into esc and returns its
 * length: \" \\ \n \r \t \b \f, \u00XX for other control bytes and DEL,
 * and \ufffd (U+FFFD) for each byte that does not start a valid UTF-8
 * sequence (stray, overlong, surrogate, above U+10FFFF or truncated), so
 * the output is always valid UTF-8 and valid JSON. */
#define EBB_JSON_ESC_MAX 6   /* longest escape written into esc */
size_t ebb_json_escape(const char *s, size_t n, size_t *used, char *esc);
/* Appends the NUL-terminated s (NULL as "") as a quoted JSON string escaped
 * by ebb_json_escape().  Returns 0, EBB_ETOOBIG or EBB_ENOMEM. */
int ebb_buf_append_json_str(struct ebb_buf *b, const char *s);
/* Drops n bytes from the front. */
void ebb_buf_consume(struct ebb_buf *b, size_t n);
/* Empties the buffer, keeping its storage. */
static inline void ebb_buf_reset(struct ebb_buf *b) { b->head = b->tail = 0; }
/* Frees storage; the buffer is empty and reusable afterwards. */
void ebb_buf_free(struct ebb_buf *b);
/* The same for an empty buffer of a thread that keeps going (a worker): its storage waits in a
 * small per-thread cache for the next buffer of that size.  A non-empty buffer is freed. */
void ebb_buf_release(struct ebb_buf *b);
/* Frees the calling thread's cache (a worker, as it ends). */
void ebb_buf_cache_drain(void);

/* read(2) into the buffer, up to its ceiling.  Returns bytes read (>0),
 * 0 on EOF, EBB_EAGAIN, EBB_ETOOBIG when full, or EBB_EIO (errno set). */
ssize_t ebb_buf_read_fd(struct ebb_buf *b, int fd);
/* The same with recv(2): for sockets only (cheaper than read(2) on a socket). */
ssize_t ebb_buf_recv_fd(struct ebb_buf *b, int fd);
/* write(2) from the buffer, consuming what was sent.  Returns bytes sent,
 * EBB_EAGAIN or EBB_EIO (errno set). */
ssize_t ebb_buf_write_fd(struct ebb_buf *b, int fd);

#endif
