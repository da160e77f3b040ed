/*
 * upstream.h - the per-worker keep-alive pools of upstream connections
 * (upconn.h) and how a connection is lent and given back.
 *
 * An upstream connection is owned by its cluster's pool while idle and
 * lent to one stream (the "owner") while busy; the owner gets its events
 * through one callback.  Endpoints are picked round robin.
 */
#ifndef EBB_UPSTREAM_H
#define EBB_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>

#include "ebb/conn.h"
#include "ebb/upconn.h"

struct ebb_cluster_rt;
struct ebb_wctx;

/* Lends a connection of cluster cl to owner, to dst (the original destination of a captured
 * connection, SPEC §9) or, dst NULL, to one of the cluster's endpoints: an idle pooled one
 * (HTTP/1.1 keep-alive: for an HTTP/1.1 exchange only) or a new one (below).  Returns 0 with
 * *out BUSY (reused from the pool, ready to write), EBB_EAGAIN with *out CONNECTING (owner
 * gets EBB_UP_EV_CONNECTED or EBB_UP_EV_FAILED later), or a negative error when no socket
 * could be started (*out NULL). */
int ebb_upstream_acquire_to(struct ebb_cluster_rt *cl, struct ebb_wctx *w,
                            const union ebb_sockaddr *dst, ebb_upconn_cb cb, void *owner,
                            struct ebb_upconn **out);

/* The same, always a new connection (EBB_EAGAIN or an error), never one from the pool: an
 * h2c session or a TCP relay must not start in the middle of an HTTP/1.1 connection.  The
 * socket is bound to the cluster's source address if it has one. */
int ebb_upstream_connect_to(struct ebb_cluster_rt *cl, struct ebb_wctx *w,
                            const union ebb_sockaddr *dst, ebb_upconn_cb cb, void *owner,
                            struct ebb_upconn **out);

/* Gives u back.  reusable: the exchange ended cleanly and the connection
 * may carry another request; else it is closed.  The owner must not touch
 * u afterwards.  Never calls back. */
void ebb_upstream_release(struct ebb_upconn *u, bool reusable);

/* Closes every idle pooled connection of the worker (at exit). */
void ebb_upstream_close_idle(struct ebb_cluster_rt *cl);

#endif
