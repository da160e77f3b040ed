/*
 * h2.h - HTTP/2 (h2c) with nghttp2: the downstream codec, the shared
 * upstream h2c connections ("h2u"), and the small pure helpers both use.
 *
 * Ownership: a downstream connection owns its h2 codec; the codec owns its
 * streams; a stream holds either an HTTP/1.1 upstream connection lent by
 * the pool or one stream of a shared upstream h2c connection.  Upstream h2c
 * connections are owned by their worker's cluster runtime (h2_upstream.c).
 */
#ifndef EBB_H2_H
#define EBB_H2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <nghttp2/nghttp2.h>

struct ebb_conn;
struct ebb_worker;
struct ebb_cluster_rt;
struct ebb_resp;
struct ebb_hdr;

#define EBB_H2_PREFACE     "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define EBB_H2_PREFACE_LEN 24
#define EBB_H2_MAX_STREAM_ID 0x7fffffff

/* --- pure helpers (h2_util.c) --- */

/* Compares the start of a connection with the h2 connection preface.
 * Returns 1 when buf begins with the whole preface, 0 when buf is a strict
 * prefix of it (need more bytes), -1 when it is not HTTP/2. */
int ebb_h2_preface_match(const char *buf, size_t len);

/* True for header names that must not cross a proxy in either HTTP version
 * (RFC 9113 §8.2.2 / RFC 9110 §7.6.1): connection, keep-alive,
 * proxy-connection, transfer-encoding, upgrade, te (te: trailers is handled
 * by the caller).  name is lowercase or not; len bytes. */
bool ebb_h2_is_conn_header(const char *name, size_t len);

/* Splits a raw HTTP/1.1 trailer section (field lines with CRLF, without the
 * final empty line) into at most max name/value pairs pointing into buf,
 * lowercasing names in place (buf is writable).  Fields that must not be
 * trailers (content-length, transfer-encoding, host, connection headers)
 * are dropped.  Returns the number of pairs or -1 on malformed input. */
int ebb_h2_split_trailers(char *buf, size_t len, nghttp2_nv *out, size_t max);

/* A sliding count of events per window (rapid-reset accounting). */
struct ebb_h2_rate {
    uint64_t window_start_ms;  /* start of the current window */
    uint32_t count;            /* events in the current window */
};
/* Records one event at now_ms with a window of window_ms; returns true when
 * the count in the window exceeds limit. */
bool ebb_h2_rate_hit(struct ebb_h2_rate *r, uint64_t now_ms, uint64_t window_ms, uint32_t limit);

/* --- the downstream codec (h2.c) --- */

extern const struct ebb_codec_ops ebb_h2_codec;

/* Hands an HTTP/1 connection whose rbuf starts with the h2 preface to the
 * h2 codec: the caller's codec state must already be destroyed (c->codec
 * NULL).  The bytes stay in c->rbuf and are processed now.  On failure the
 * connection is closed.  Can call back into nothing of the caller. */
void ebb_h2_takeover(struct ebb_conn *c);

/* --- upstream h2c streams (h2_upstream.c) --- */

struct ebb_h2u_stream;

/* What an upstream h2c stream tells its owner (a downstream h1 exchange or
 * h2 stream).  Every callback may be followed by more; after on_end or
 * on_error none follows.  The owner may call ebb_h2u_close() inside them. */
struct ebb_h2u_cbs {
    /* final response head (fields with lowercase names) */
    void (*on_head)(void *owner, const struct ebb_resp *r);
    /* response body bytes are waiting: call ebb_h2u_read() */
    void (*on_data)(void *owner);
    /* response trailers (the body ends after them) */
    void (*on_trailers)(void *owner, const struct ebb_hdr *t, size_t n);
    /* the response is complete (every byte was read or is readable) */
    void (*on_end)(void *owner);
    /* request body room is available again: call ebb_h2u_write() */
    void (*on_writable)(void *owner);
    /* the exchange failed: rf EBB_RF_UF/UC/UT; head_seen says whether
     * on_head was called before (then the owner must reset its client) */
    void (*on_error)(void *owner, unsigned rf, bool head_seen);
};

/* Opens a stream on a shared upstream h2c connection of cluster cl
 * (connecting a new one when none has room).  nv holds the request head
 * (pseudo-headers first, lowercase names, hop-by-hop headers removed);
 * end_stream when there is no request body.  Returns the stream, or NULL
 * on allocation failure.  Never calls back synchronously. */
struct ebb_h2u_stream *ebb_h2u_open(struct ebb_cluster_rt *cl, struct ebb_worker *w,
                                    const nghttp2_nv *nv, size_t n, bool end_stream,
                                    const struct ebb_h2u_cbs *cbs, void *owner);

/* Queues request body bytes; returns how many were taken (0 when the
 * stream's send buffer is full: wait for on_writable). */
size_t ebb_h2u_write(struct ebb_h2u_stream *s, const void *p, size_t n);

/* Request body bytes ebb_h2u_write() would take now. */
size_t ebb_h2u_writable(const struct ebb_h2u_stream *s);

/* Ends the request body, with optional trailers (copied). */
void ebb_h2u_end(struct ebb_h2u_stream *s, const nghttp2_nv *trailers, size_t n);

/* Copies up to n response body bytes into out and returns them to the
 * upstream's flow-control window. */
size_t ebb_h2u_read(struct ebb_h2u_stream *s, void *out, size_t n);

/* Response body bytes waiting to be read. */
size_t ebb_h2u_readable(const struct ebb_h2u_stream *s);

/* The owner lets go: an unfinished stream is reset (CANCEL).  No callback
 * follows; s is freed later. */
void ebb_h2u_close(struct ebb_h2u_stream *s);

/* Closes the worker's upstream h2c connections of cl (at exit). */
void ebb_h2u_close_all(struct ebb_cluster_rt *cl);

#endif
