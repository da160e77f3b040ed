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
struct ebb_wctx;
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

/* --- upstream h2c connections (h2_upstream.c; streams: ustream.h) --- */

/* Closes the worker's upstream h2c connections of cl (at exit). */
void ebb_h2u_close_all(struct ebb_cluster_rt *cl);

#endif
