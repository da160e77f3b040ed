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
#include "ebb/http.h"

struct ebb_conn;
struct ebb_wctx;
struct ebb_listener_stats;
struct ebb_cluster_cfg;

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
    struct ebb_str        authority;      /* sent as Host / :authority: the request's, or for a
                                             request without one (HTTP/1.0) the endpoint's */
    char                  endpoint[280];  /* "host:port" of the cluster's first endpoint */
    const union ebb_sockaddr *dst;        /* ORIGINAL_DST cluster: the captured connection's
                                             original destination (SPEC §9), else NULL */
};

/* Decides what goes upstream: drops hop-by-hop fields, content-length, Host
 * (sent from req->authority, or for a request without one — HTTP/1.0 may omit
 * it, HTTP/1.1 requires it, RFC 9112 §3.2 — the first endpoint of cluster cl,
 * as nginx sends its upstream's name, or the original destination for an
 * ORIGINAL_DST cluster), x-forwarded-proto (set to "http"), folds the client's
 * (c's peer) x-forwarded-for, keeps the client's first non-empty x-request-id
 * or takes rid (generated with c's worker's PRNG when rid is empty; kept as is
 * on a retry).  For an ORIGINAL_DST cluster f->dst is c's original destination.  rid has room for 64 bytes.  Returns 0, or EBB_ETOOBIG over
 * EBB_XCH_MAX_FIELDS. */
int ebb_fwd_prepare(struct ebb_fwd *f, const struct ebb_req *req, const struct ebb_conn *c,
                    const struct ebb_cluster_cfg *cl, char rid[64]);

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
 * ebb_nvlist_free; valid while f's request is, and until the next list is
 * built on this thread: per-thread storage).  Returns 0 or EBB_ENOMEM. */
int ebb_fwd_to_nv(const struct ebb_fwd *f, struct ebb_nvlist *out);
void ebb_nvlist_free(struct ebb_nvlist *l);

/* Builds the HTTP/2 response header list (:status, then the fields with
 * lowercase names, hop-by-hop ones dropped, then content_length when known)
 * into out.  Returns 0 or EBB_ENOMEM. */
int ebb_resp_to_nv(const struct ebb_resp *r, struct ebb_nvlist *out);

/* True for a method that may be repeated (RFC 9110 §9.2.2): a request that
 * may have reached a dying pooled connection is retried only for these. */
bool ebb_method_idempotent(const char *method);

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
    char        up_addr[48];    /* endpoint of the last upstream tried, "" none (for the log) */
    char        method[24];
    const char *path;           /* "" until ebb_xrec_begin; then in strs (at most 511 bytes) */
    const char *authority;      /* the same (at most 255 bytes) */
    char       *strs;           /* path and authority, owned (ebb_xrec_free) */
    char        request_id[64];
};

struct ebb_us;

/* Keeps addr (may be NULL) as the exchange's upstream endpoint, for the log. */
void ebb_xrec_upstream(struct ebb_xrec *x, const char *addr);

/* Lets go of *us (if any), keeping its endpoint in x for the log; *us is NULL after. */
void ebb_us_release(struct ebb_us **us, struct ebb_xrec *x);

/* Keeps response trailers as HTTP/1.1 field lines in b (replacing what was
 * there, at most 64 KiB) for a writer that sends them after the body. */
void ebb_trailers_keep(struct ebb_buf *b, const struct ebb_hdr *t, size_t n);

/* An empty record (cluster -1, no strings). */
#define EBB_XREC_INIT ((struct ebb_xrec){ .cluster = -1, .path = "", .authority = "" })
/* Frees what x owns and makes it EBB_XREC_INIT. */
void ebb_xrec_free(struct ebb_xrec *x);

/* Starts a record at now_ms for the request line given (copied, truncated; the strings
 * are allocated to size, so an idle connection or stream holds none). */
void ebb_xrec_begin(struct ebb_xrec *x, uint64_t now_ms, struct ebb_str method,
                    struct ebb_str path, struct ebb_str authority);

/* Sets the status and counts it in the listener's rq_xx. */
void ebb_xrec_status(struct ebb_xrec *x, struct ebb_listener_stats *st, int status);

/* Writes the access-log line of the exchange on connection c; up_addr
 * overrides x->up_addr when not NULL (the connection still lent). */
void ebb_xrec_log(const struct ebb_xrec *x, const struct ebb_conn *c, const char *protocol,
                  const char *up_addr);

#endif
