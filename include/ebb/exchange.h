/*
 * exchange.h - what every proxied HTTP exchange shares, whatever protocol
 * the client and the upstream speak: the request head in no protocol's
 * syntax, the rules that rewrite it for the upstream (hop-by-hop fields,
 * Host, x-forwarded-*, x-request-id, re-framing), the writers that turn it
 * into an HTTP/1.1 head or an HTTP/2 header list, the retry policy, the
 * record's access-log line, and how an exchange's upstream side is opened.
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
#include "ebb/h2.h"
#include "ebb/http.h"
#include "ebb/stream.h"

struct ebb_conn;
struct ebb_wctx;
struct ebb_cluster_cfg;
struct ebb_cluster_rt;
struct ebb_us;
struct ebb_us_cbs;

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

/* Builds the HTTP/2 request header list into out (freed with
 * ebb_nvlist_free; valid while f's request is, and until the next list is
 * built on this thread: per-thread storage).  Returns 0 or EBB_ENOMEM. */
int ebb_fwd_to_nv(const struct ebb_fwd *f, struct ebb_nvlist *out);

/* True for a method that may be repeated (RFC 9110 §9.2.2): a request that
 * may have reached a dying pooled connection is retried only for these. */
bool ebb_method_idempotent(const char *method);

/* What went wrong upstream, in words, for a local answer (rf and status of
 * ebb_us_cbs.on_error). */
const char *ebb_us_failure(unsigned rf, int status);

/* Lets go of *us (if any), keeping its endpoint in x for the log; *us is NULL after. */
void ebb_us_release(struct ebb_us **us, struct ebb_xrec *x);

/* Writes the access-log line of the exchange on connection c; up_addr
 * overrides x->up_addr when not NULL (the connection still lent). */
void ebb_xrec_log(const struct ebb_xrec *x, const struct ebb_conn *c, const char *protocol,
                  const char *up_addr);

/* --- the upstream side (ustream.h is its interface) --- */

/* True when cluster cl refuses every exchange (BlackHoleCluster, SPEC §9.3):
 * counted there (upstream_cx_none_healthy); the owner answers 502. */
bool ebb_us_refused(struct ebb_cluster_rt *cl);

/* Starts the exchange f on cluster cl (the cluster's protocol picks the
 * codec; for an ORIGINAL_DST cluster the owner's: EBB_US_F_H2 -> h2c), to
 * f->dst when set.  The request body, if any, follows with ebb_us_write/ebb_us_end.
 * Returns the stream, or NULL when none could be started (out of memory, no
 * socket); never calls back synchronously. */
struct ebb_us *ebb_us_open(struct ebb_cluster_rt *cl, struct ebb_wctx *w,
                           const struct ebb_fwd *f, unsigned flags,
                           const struct ebb_us_cbs *cbs, void *owner);

/* The two upstream codecs (ebb_us_open picks one). */
struct ebb_us *ebb_h1u_open(struct ebb_cluster_rt *cl, struct ebb_wctx *w,
                            const struct ebb_fwd *f, unsigned flags,
                            const struct ebb_us_cbs *cbs, void *owner);
struct ebb_us *ebb_h2u_open(struct ebb_cluster_rt *cl, struct ebb_wctx *w,
                            const struct ebb_fwd *f, unsigned flags,
                            const struct ebb_us_cbs *cbs, void *owner);

/* The exchange layer's half of stream.h (stream.c): the worker puts it in its
 * struct ebb_wctx, where the downstream codecs find it. */
extern const struct ebb_xch_ops ebb_xch_ops;

#endif
