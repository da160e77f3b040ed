/*
 * exchange.h - what every proxied HTTP exchange shares, whatever protocol
 * the client and the upstream speak: the request head in no protocol's
 * syntax, the rules that rewrite it for the upstream (hop-by-hop fields,
 * Host, x-forwarded-*, x-request-id, re-framing), the writers that turn it
 * into an HTTP/1.1 head or an HTTP/2 header list, the retry policy, and the
 * exchange's record (stats and the access-log line).
 *
 * Ownership: a struct ebb_req only points into its codec's storage (parsed
 * bytes, nghttp2 buffers) and lives as long as the call it is passed to; a
 * struct ebb_fwd points into its ebb_req.  Nothing here calls back.
 */
#ifndef EBB_EXCHANGE_H
#define EBB_EXCHANGE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nghttp2/nghttp2.h>

#include "ebb/buf.h"

struct ebb_conn;
struct ebb_worker;
struct ebb_listener_stats;

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

/* A request head as it goes upstream: the fields kept, in order, and what
 * the proxy adds. */
struct ebb_fwd {
    const struct ebb_req *req;
    const struct ebb_hdr *keep[EBB_XCH_MAX_FIELDS];  /* end-to-end fields passed on */
    size_t                nkeep;
    const struct ebb_hdr *xff;            /* the client's x-forwarded-for, NULL when none */
    const char           *peer;           /* client address appended to x-forwarded-for */
    const char           *request_id;     /* x-request-id sent (points into the caller's id) */
    bool                  rid_added;      /* ... and not from the client: add the field */
};

/* Decides what goes upstream: drops hop-by-hop fields, content-length, Host
 * (sent from req->authority), x-forwarded-proto (set to "http"), folds the
 * client's x-forwarded-for, keeps the client's first non-empty x-request-id or
 * takes rid (generated with w's PRNG when rid is empty; kept as is on a retry).
 * rid has room for 64 bytes.  Returns 0, or EBB_ETOOBIG over EBB_XCH_MAX_FIELDS. */
int ebb_fwd_prepare(struct ebb_fwd *f, const struct ebb_req *req, const char *peer,
                    struct ebb_worker *w, char rid[64]);

/* Appends the HTTP/1.1 request head (request line to the empty line) to b;
 * *chunked says whether the body must be sent chunked.  Returns 0, or
 * EBB_ETOOBIG/EBB_ENOMEM (b then holds a partial head: the caller resets it). */
int ebb_fwd_write_h1(const struct ebb_fwd *f, struct ebb_buf *b, bool *chunked);

/* An HTTP/2 header list: pseudo-headers first, lowercase names. */
struct ebb_nvlist {
    nghttp2_nv *nv;
    size_t      n;
    char       *names;   /* lowercased names (nv points into it and into the request) */
};

/* Builds the HTTP/2 request header list into out (freed with
 * ebb_nvlist_free; valid while f's request is).  Returns 0 or EBB_ENOMEM. */
int ebb_fwd_to_nv(const struct ebb_fwd *f, struct ebb_nvlist *out);
void ebb_nvlist_free(struct ebb_nvlist *l);

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

/* Builds the HTTP/2 response header list (:status, then the fields with
 * lowercase names, hop-by-hop ones dropped, then content_length when known)
 * into out.  Returns 0 or EBB_ENOMEM. */
int ebb_resp_to_nv(const struct ebb_resp *r, struct ebb_nvlist *out);

/* Appends "name: value\r\n" for each field (an HTTP/1.1 trailer section
 * without its final empty line).  Returns 0 or EBB_ETOOBIG/EBB_ENOMEM. */
int ebb_hdrs_write_h1(struct ebb_buf *b, const struct ebb_hdr *hdrs, size_t n);

/* True for a method that may be repeated (RFC 9110 §9.2.2): a request that
 * may have reached a dying pooled connection is retried only for these. */
bool ebb_method_idempotent(const char *method);

/* True for the fixed hop-by-hop fields (RFC 9110 §7.6.1, RFC 9113 §8.2.2):
 * connection, keep-alive, proxy-connection, te, transfer-encoding, upgrade. */
bool ebb_hdr_is_hop(const char *name, size_t len);

/* Formats a local answer's body into out (cap bytes, NUL-terminated, cut
 * when longer).  Returns its length. */
size_t ebb_xch_format(char *out, size_t cap, const char *fmt, va_list ap);

/* What went wrong upstream, in words, for a local answer (rf and status of
 * ebb_us_cbs.on_error). */
const char *ebb_us_failure(unsigned rf, int status);

/* The record of one exchange: what the stats and the access log need. */
struct ebb_xrec {
    uint64_t    start_ms;
    long        cluster;        /* cluster index, -1 none */
    int         status;         /* 0 until a response (or a local answer) */
    unsigned    rf;             /* EBB_RF_* */
    uint64_t    req_bytes;      /* request body bytes */
    uint64_t    resp_bytes;     /* response body bytes */
    const char *up_addr;        /* endpoint of the last upstream tried (lives with the server) */
    char        method[24];
    char        path[512];
    char        authority[256];
    char        request_id[64];
};

/* Starts a record at now_ms for the request line given (copied, truncated). */
void ebb_xrec_begin(struct ebb_xrec *x, uint64_t now_ms, struct ebb_str method,
                    struct ebb_str path, struct ebb_str authority);

/* Sets the status and counts it in the listener's rq_xx. */
void ebb_xrec_status(struct ebb_xrec *x, struct ebb_listener_stats *st, int status);

/* Writes the access-log line of the exchange on connection c; up_addr
 * overrides x->up_addr when not NULL (the connection still lent). */
void ebb_xrec_log(const struct ebb_xrec *x, const struct ebb_conn *c, const char *protocol,
                  const char *up_addr);

#endif
