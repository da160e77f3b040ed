/*
 * ustream.h - one upstream exchange behind one ops table, whatever protocol
 * the cluster speaks (proto layer: the interface only).  The HTTP/1.1
 * client (h1_client.c) and the h2c client (h2_upstream.c) of the exchange
 * layer are the two upstream codecs, opened by ebb_us_open() (exchange.h);
 * the downstream codecs only ever see this interface.
 *
 * Ownership: the owner (a downstream exchange) holds its ebb_us from
 * ebb_us_open() (exchange.h) until ebb_us_close() (which it must call, also after
 * on_end) or on_error; the codec frees it later.  Re-entrancy: calls of the
 * owner never call back (they may arm a zero-delay timer); callbacks come
 * from the upstream's own events, and after on_end or on_error none follows.
 * The owner may call ebb_us_close() inside any callback.
 */
#ifndef EBB_USTREAM_H
#define EBB_USTREAM_H

#include <stdbool.h>
#include <stddef.h>

struct ebb_hdr;
struct ebb_resp;
struct ebb_upconn;
struct ebb_us;

/* What an upstream exchange tells its owner. */
struct ebb_us_cbs {
    /* an interim (1xx, not 101) response */
    void (*on_interim)(void *owner, const struct ebb_resp *r);
    /* the final response head; a 101's connection is then the owner's to take */
    void (*on_head)(void *owner, const struct ebb_resp *r);
    /* response body bytes are waiting: call ebb_us_read() */
    void (*on_data)(void *owner);
    /* response trailers (the body ends after them) */
    void (*on_trailers)(void *owner, const struct ebb_hdr *t, size_t n);
    /* the response is complete (every byte was read or is readable); not sent
     * when the owner's own ebb_us_read() took the end: ebb_us_done() says so */
    void (*on_end)(void *owner);
    /* request body room is available again: call ebb_us_write() */
    void (*on_writable)(void *owner);
    /* the exchange failed: rf EBB_RF_UF/UC/UT; status is the answer to give
     * when no head was seen (502, 503, 504); with head_seen the owner must
     * reset its client instead.  The stream is gone with this callback: the
     * owner forgets it (no ebb_us_close) */
    void (*on_error)(void *owner, unsigned rf, bool head_seen, int status);
};

/* The upstream codec's half. */
struct ebb_us_ops {
    const char *name;                                      /* "h1", "h2c" */
    bool holds_connection;   /* an exchange holds a whole upstream connection (HTTP/1.1) */
    size_t (*write)(struct ebb_us *s, const void *p, size_t n);
    size_t (*writable)(const struct ebb_us *s);
    void   (*end)(struct ebb_us *s, const struct ebb_hdr *trailers, size_t n);
    size_t (*read)(struct ebb_us *s, void *out, size_t n);
    size_t (*readable)(const struct ebb_us *s);
    bool   (*done)(const struct ebb_us *s);                /* the whole response was read */
    const char *(*addr)(const struct ebb_us *s);           /* endpoint, NULL before one */
    struct ebb_upconn *(*take_conn)(struct ebb_us *s);     /* after a 101 (h1 only) */
    void   (*close)(struct ebb_us *s);
};

/* The head of every upstream exchange (first member of the codec's struct). */
struct ebb_us {
    const struct ebb_us_ops *ops;
    const struct ebb_us_cbs *cbs;
    void                    *owner;   /* NULL once the owner let go */
};

#define EBB_US_F_SHARED 0x1u  /* the owner is one of many streams of a multiplexed client:
                                 HTTP/1.1 connections are lent from a bounded set */
#define EBB_US_F_H2     0x2u  /* the owner is an HTTP/2 stream: an ORIGINAL_DST cluster speaks
                                 h2c upstream (Envoy's USE_DOWNSTREAM_PROTOCOL) */

/* Queues request body bytes; returns how many were taken (0: wait for on_writable).  Fewer
 * than ebb_us_writable() promised means no storage: the owner keeps the bytes and tries again
 * on on_writable (h2c), or may fail the exchange.  All of them are "taken" (dropped) when
 * they can go nowhere: after the request's end, or once the exchange is failing anyway. */
static inline size_t ebb_us_write(struct ebb_us *s, const void *p, size_t n)
{
    return s->ops->write(s, p, n);
}
/* Request body bytes ebb_us_write() would take now. */
static inline size_t ebb_us_writable(const struct ebb_us *s) { return s->ops->writable(s); }
/* Ends the request body, with optional trailers (copied). */
static inline void ebb_us_end(struct ebb_us *s, const struct ebb_hdr *t, size_t n)
{
    s->ops->end(s, t, n);
}
/* Copies up to n response body bytes into out. */
static inline size_t ebb_us_read(struct ebb_us *s, void *out, size_t n)
{
    return s->ops->read(s, out, n);
}
/* Response body bytes waiting to be read. */
static inline size_t ebb_us_readable(const struct ebb_us *s) { return s->ops->readable(s); }
/* True once the owner has read the whole response, trailers delivered: after
 * a read that took the end, on_end does not come. */
static inline bool ebb_us_done(const struct ebb_us *s) { return s->ops->done(s); }
/* "host:port" of the upstream endpoint, NULL before one was picked. */
static inline const char *ebb_us_addr(const struct ebb_us *s) { return s->ops->addr(s); }
/* After a 101: the connection, now the caller's (NULL if the codec has none). */
static inline struct ebb_upconn *ebb_us_take_conn(struct ebb_us *s) { return s->ops->take_conn(s); }
/* The owner lets go: an unfinished exchange is cancelled.  No callback follows. */
static inline void ebb_us_close(struct ebb_us *s) { s->ops->close(s); }

#endif
