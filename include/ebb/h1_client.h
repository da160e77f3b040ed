/*
 * h1_client.h - the HTTP/1.1 client half of an exchange on a pooled upstream
 * connection, shared by every downstream codec that proxies to an HTTP/1.1
 * cluster: the response head in the exchange's terms, the body decoder and
 * re-framer, the request body framing, socket reads and writes, and the
 * transparent-retry rule.  Nothing here calls back or frees.
 */
#ifndef EBB_H1_CLIENT_H
#define EBB_H1_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ebb/h1_parse.h"

struct ebb_buf;
struct ebb_hdr;
struct ebb_resp;
struct ebb_upconn;

/* Copies m's end-to-end fields (not the connection-specific ones: Connection
 * and the fields it names, Keep-Alive, TE, Transfer-Encoding, Upgrade) into
 * out, which has room for m->nheaders; content-length only with keep_length.
 * Returns how many. */
size_t ebb_h1_fields(const struct ebb_h1_msg *m, struct ebb_hdr *out, bool keep_length);

/* The response head of m as an exchange head (fields point into m; the field
 * array is per thread and valid until the next call). */
void ebb_resp_of_h1(const struct ebb_h1_msg *m, struct ebb_resp *r);

/* Reads what the upstream socket has (a few reads at most, stopping at a
 * short one).  Sets u->eof (and u->reset) as ebb_upstream_read does. */
void ebb_h1c_read(struct ebb_upconn *u);

/* Writes u->wbuf.  A failed write means the upstream stopped reading: its
 * bytes are dropped and u->wr_failed set, but reading goes on, since an
 * answer it sent before closing (413, 401) may still be there. */
void ebb_h1c_flush(struct ebb_upconn *u);

/* Appends n body bytes to b, as one chunk when chunked.  Returns 0 or an error
 * of ebb_buf_append (the caller leaves 32 bytes of room for the framing). */
int ebb_h1c_put_body(struct ebb_buf *b, bool chunked, const char *data, size_t n);

/* Where a decoded response body goes. */
struct ebb_h1c_sink {
    struct ebb_buf *out;       /* body bytes (re-chunked when chunk_out) */
    bool            chunk_out; /* re-frame as chunked; trailers then go inline */
    bool            last_chunk;/* "0\r\n" written (state, starts false) */
    struct ebb_buf *trl;       /* raw trailer lines when not chunk_out (NULL: dropped) */
    uint64_t        bytes;     /* body bytes written (counter, caller-owned) */
};

/* Decodes the response body from u->rbuf into the sink, as far as it has
 * room; a close-delimited body ends at the upstream's FIN (never at a reset).
 * Returns 1 on progress, 0 when nothing moved, EBB_H1_EBAD on a malformed body.
 * *done is set once the body is complete. */
int ebb_h1c_decode_body(struct ebb_h1_body *b, enum ebb_h1_framing in, struct ebb_upconn *u,
                        struct ebb_h1c_sink *k, bool *done);

/* True when a request that met a closed pooled connection may be sent again
 * on a fresh one: nothing of the answer came, the connection was reused, the
 * request had no body, it was not retried yet and its method is idempotent
 * (RFC 9110 §9.2.2, RFC 9112 §9.3.1: the upstream may have acted on a POST). */
bool ebb_h1c_may_retry(const struct ebb_upconn *u, bool resp_started, bool has_body,
                       int retries, const char *method);

#endif
