/*
 * stream.h - one proxied exchange as its downstream codec sees it, whatever
 * protocol either side speaks: the decisions every request goes through
 * before it reaches an upstream (CONNECT, route, REGISTRY_ONLY, body limit,
 * rewrite, upstream open) and the answer when one says no, the cluster's
 * request timeout, the record and its access-log line.  The codec keeps the
 * framing: it parses, writes heads and bodies, and moves bytes through
 * e->us with the ustream.h calls.
 *
 * Ownership: an ebb_xch is embedded in the codec's per-request state (the
 * HTTP/1 connection, the HTTP/2 stream) and lives as long as it.  The
 * upstream side's callbacks reach the codec through the cbs given to
 * ebb_xch_init, after the exchange has seen them; the request timeout
 * arrives as on_error(EBB_RF_UT, 504).  Nothing here calls back
 * synchronously from a call of the codec.
 */
#ifndef EBB_STREAM_H
#define EBB_STREAM_H

#include <stdbool.h>
#include <stddef.h>

#include "ebb/exchange.h"
#include "ebb/loop.h"

struct ebb_conn;
struct ebb_us;
struct ebb_us_cbs;

/* A local answer, given instead of an upstream response. */
struct ebb_answer {
    int      status;
    unsigned rf;         /* EBB_RF_* for the record */
    bool     close;      /* HTTP/1: close the connection after it */
    size_t   len;
    char     body[512];  /* text/plain, NUL-terminated */
};

struct ebb_xch {
    struct ebb_xrec          x;       /* the record: request line, cluster, status, bytes, flags */
    struct ebb_us           *us;      /* the upstream side, NULL when none (yet, or any more) */
    struct ebb_conn         *c;
    const struct ebb_us_cbs *cbs;     /* the codec's */
    void                    *owner;   /* ... and their first argument */
    struct ebb_timer         timer;   /* the cluster's request_timeout */
    bool                     head_seen; /* the upstream's response head came: no timeout */
};

/* Before the first exchange: owner (the codec's request state) gets the upstream's
 * callbacks through cbs. */
void ebb_xch_init(struct ebb_xch *e, struct ebb_conn *c, const struct ebb_us_cbs *cbs,
                  void *owner);

/* A request head arrived: starts the record (request line copied) and counts
 * the request on the listener (rq_total, rq_active). */
void ebb_xch_begin(struct ebb_xch *e, struct ebb_str method, struct ebb_str path,
                   struct ebb_str authority);

/* Routes req and starts its upstream side (e->us); flags are ebb_us_open's
 * (EBB_US_F_*).  Returns 0, or -1 with the answer to give in *a: 501 for
 * CONNECT or an Upgrade towards an h2c cluster, 404 without a route, 502
 * under REGISTRY_ONLY, 413 for a declared body over max_request_body, 431
 * for too many fields, 503 when no upstream exchange could start. */
int ebb_xch_start(struct ebb_xch *e, const struct ebb_req *req, unsigned flags,
                  struct ebb_answer *a);

/* The whole request went upstream: the cluster's request_timeout runs from
 * here (Envoy's route timeout) until the response head. */
void ebb_xch_request_done(struct ebb_xch *e);

/* The answer for an upstream failure (on_error's rf and status). */
void ebb_xch_failure(const struct ebb_xch *e, unsigned rf, int status, struct ebb_answer *a);

/* Fills a with status, rf and the formatted body. */
void ebb_answer(struct ebb_answer *a, int status, unsigned rf, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The name of the cluster the request was routed to ("" before a route). */
const char *ebb_xch_cluster_name(const struct ebb_xch *e);

/* Lets go of the upstream side (its endpoint stays in the record) and stops the timer. */
void ebb_xch_release(struct ebb_xch *e);

/* The exchange is over: its access-log line (protocol "HTTP/1.1", "HTTP/2")
 * and rq_active.  Once per ebb_xch_begin. */
void ebb_xch_end(struct ebb_xch *e, const char *protocol);

/* Back to before ebb_xch_begin: the record's strings freed, upstream let go. */
void ebb_xch_reset(struct ebb_xch *e);

#endif
