/*
 * http.h - an HTTP message head in no protocol's syntax, as the codecs
 * produce and consume it (the exchange layer above rewrites it), and the
 * small pure helpers every codec uses on it.  No I/O, no state.
 *
 * Ownership: a head only points into its producer's storage (parsed bytes,
 * nghttp2 buffers) and lives as long as the call it is passed to.
 */
#ifndef EBB_HTTP_H
#define EBB_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ebb/h1_parse.h"

struct ebb_buf;

#define EBB_XCH_MAX_FIELDS 320   /* fields of one head (limits.h1.max_headers <= 256) */

/* A byte string that is not NUL-terminated. */
struct ebb_str {
    const char *p;
    size_t      len;
};

/* One header field as received (HTTP/1: name case preserved; HTTP/2: lowercase). */
struct ebb_hdr {
    struct ebb_str name;
    struct ebb_str value;
};

/* How an exchange ended, for the access log and the record (Envoy's response flag
 * letters): the codecs and the exchange layer both set them. */
#define EBB_RF_UF 0x01u   /* upstream connect failure */
#define EBB_RF_UT 0x02u   /* upstream request timeout */
#define EBB_RF_UC 0x04u   /* upstream connection termination */
#define EBB_RF_DC 0x08u   /* downstream connection termination */
#define EBB_RF_DR 0x10u   /* closed by drain (ebb) */
#define EBB_RF_NR 0x20u   /* no route */
#define EBB_RF_URX 0x40u  /* upstream reset after response headers */

/* A request head.  The downstream codec leaves out its own connection-specific
 * fields (HTTP/1's Connection and the fields it names); the rewrite drops the
 * fixed hop-by-hop set again, whatever the codec. */
struct ebb_req {
    struct ebb_str        method;
    struct ebb_str        path;
    struct ebb_str        authority;      /* :authority, absolute-form authority or Host */
    struct ebb_str        scheme;         /* empty: "http" */
    const struct ebb_hdr *hdrs;           /* regular fields, in order, no pseudo-headers */
    size_t                nhdrs;
    int64_t               content_length; /* -1 when not known in advance */
    bool                  body;           /* body bytes may follow (chunked when no length) */
    bool                  te_trailers;    /* the client accepts trailers (TE: trailers) */
    bool                  join_cookies;   /* HTTP/2 cookie crumbs: one field for HTTP/1.1 */
    struct ebb_str        upgrade;        /* HTTP/1.1 Upgrade to forward; empty when none */
};

/* A response head.  hdrs holds the end-to-end fields but content-length, which
 * is content_length's when known (an HTTP/1.1 answer to HEAD keeps its own
 * content-length field among hdrs). */
struct ebb_resp {
    int                   status;
    struct ebb_str        reason;         /* HTTP/1 reason phrase; may be empty */
    const struct ebb_hdr *hdrs;
    size_t                nhdrs;
    int64_t               content_length; /* length of the body (carried or not, as for
                                             HEAD), -1 when not known in advance */
    bool                  body;           /* body bytes follow (false for an empty body) */
    struct ebb_str        upgrade;        /* 101: the protocol switched to */
};

/* True for the fixed hop-by-hop fields (RFC 9110 §7.6.1, RFC 9113 §8.2.2):
 * connection, keep-alive, proxy-connection, te, transfer-encoding, upgrade. */
bool ebb_hdr_is_hop(const char *name, size_t len);

/* Appends "name: value\r\n" for each field (an HTTP/1.1 trailer section
 * without its final empty line).  Returns 0 or EBB_ETOOBIG/EBB_ENOMEM. */
int ebb_hdrs_write_h1(struct ebb_buf *b, const struct ebb_hdr *hdrs, size_t n);

/* Splits a raw HTTP/1.1 trailer section held in raw (field lines with their
 * CRLFs) into at most max fields pointing into raw, names lowercased in place
 * and fields that must not be trailers dropped (ebb_h2_split_trailers).
 * Returns how many; 0 for none or a malformed section. */
size_t ebb_trailers_parse(struct ebb_buf *raw, struct ebb_hdr *out, size_t max);

/* Copies m's end-to-end fields (not the connection-specific ones: Connection
 * and the fields it names, Keep-Alive, TE, Transfer-Encoding, Upgrade) into
 * out, which has room for m->nheaders; content-length only with keep_length.
 * Returns how many. */
size_t ebb_h1_fields(const struct ebb_h1_msg *m, struct ebb_hdr *out, bool keep_length);

/* Appends n body bytes to b, as one chunk when chunked.  Returns 0 or an error
 * of ebb_buf_append (the caller leaves 32 bytes of room for the framing). */
int ebb_h1_put_body(struct ebb_buf *b, bool chunked, const char *data, size_t n);

#endif
