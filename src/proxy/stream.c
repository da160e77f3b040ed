/*
 * stream.c - one proxied exchange from its downstream codec's side: the
 * checks and the route before the upstream, the upstream's open, the
 * request timeout, and the record's end.  Written once for HTTP/1 and
 * HTTP/2 clients, which call it through ebb_xch_ops (stream.h; the worker
 * puts the table in its struct ebb_wctx).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ebb/cluster.h"
#include "ebb/config.h"
#include "ebb/conn.h"
#include "ebb/core.h"
#include "ebb/exchange.h"
#include "ebb/listener.h"
#include "ebb/log.h"
#include "ebb/proxy.h"
#include "ebb/stats.h"
#include "ebb/stream.h"
#include "ebb/upstream.h"
#include "ebb/ustream.h"
#include "ebb/wctx.h"

static struct ebb_cluster_rt *xch_cluster(const struct ebb_xch *e)
{
    return &e->c->w->clusters[e->x.cluster];
}

/* --- the upstream's callbacks: seen here, then passed on to the codec --- */

static void xch_interim(void *owner, const struct ebb_resp *r)
{
    struct ebb_xch *e = owner;
    e->cbs->on_interim(e->owner, r);
}

static void xch_head(void *owner, const struct ebb_resp *r)
{
    struct ebb_xch *e = owner;
    e->head_seen = true;
    ebb_timer_stop(e->c->w->loop, &e->timer);
    e->cbs->on_head(e->owner, r);
}

static void xch_data(void *owner)
{
    struct ebb_xch *e = owner;
    e->cbs->on_data(e->owner);
}

static void xch_trailers(void *owner, const struct ebb_hdr *t, size_t n)
{
    struct ebb_xch *e = owner;
    e->cbs->on_trailers(e->owner, t, n);
}

static void xch_end(void *owner)
{
    struct ebb_xch *e = owner;
    e->cbs->on_end(e->owner);
}

static void xch_writable(void *owner)
{
    struct ebb_xch *e = owner;
    e->cbs->on_writable(e->owner);
}

static void xch_error(void *owner, unsigned rf, bool head_seen, int status)
{
    struct ebb_xch *e = owner;
    ebb_xrec_upstream(&e->x, ebb_us_addr(e->us));
    e->us = NULL;   /* gone with this callback */
    ebb_timer_stop(e->c->w->loop, &e->timer);
    e->cbs->on_error(e->owner, rf, head_seen, status);
}

static const struct ebb_us_cbs xch_us_cbs = {
    .on_interim = xch_interim,
    .on_head = xch_head,
    .on_data = xch_data,
    .on_trailers = xch_trailers,
    .on_end = xch_end,
    .on_writable = xch_writable,
    .on_error = xch_error,
};

/* The cluster's request_timeout: no response head in time.  The codec hears it
 * as an upstream failure (504, UT). */
static void xch_timeout(struct ebb_loop *loop, struct ebb_timer *t)
{
    struct ebb_xch *e = t->data;

    if (!e->us || e->head_seen)
        return;
    ebb_stat_inc(xch_cluster(e)->st->rq_timeout);
    ebb_us_release(&e->us, &e->x);
    e->cbs->on_error(e->owner, EBB_RF_UT, false, 504);
}

/* --- the codec's calls --- */

static void xch_op_init(struct ebb_xch *e, struct ebb_conn *c, const struct ebb_us_cbs *cbs,
                        void *owner)
{
    *e = (struct ebb_xch){ .x = EBB_XREC_INIT, .c = c, .cbs = cbs, .owner = owner };
    ebb_timer_init(&e->timer, xch_timeout, e);
}

static void xch_op_begin(struct ebb_xch *e, struct ebb_str method, struct ebb_str path,
                         struct ebb_str authority)
{
    struct ebb_listener_stats *st = e->c->l->st;

    /* the record's strings are for the log line alone: with the log off, none are kept */
    if (ebb_access_log_on())
        ebb_xrec_begin(&e->x, ebb_loop_now(e->c->w->loop), method, path, authority);
    ebb_stat_inc(st->rq_total);
    ebb_stat_inc(st->rq_active);
}

static bool str_is(struct ebb_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && memcmp(s.p, lit, n) == 0;
}

static int xch_op_start(struct ebb_xch *e, const struct ebb_req *req, unsigned flags,
                        struct ebb_answer *a)
{
    const struct ebb_config *cfg = e->c->w->cfg;
    int alen = (int)EBB_MIN(req->authority.len, (size_t)255);
    struct ebb_fwd f;

    if (str_is(req->method, "CONNECT")) {
        /* SPEC §2 makes CONNECT optional; ebb does not tunnel it (yet) */
        ebb_answer(a, 501, 0, "ebb: CONNECT is not supported\n");
        a->close = true;
        return -1;
    }
    e->x.cluster = ebb_route_conn(e->c, cfg, req->authority.p, req->authority.len);
    if (e->x.cluster < 0) {
        ebb_stat_inc(e->c->l->st->no_route);
        ebb_answer(a, 404, EBB_RF_NR, "ebb: no route for host \"%.*s\"\n", alen,
                   req->authority.p);
        return -1;
    }
    struct ebb_cluster_rt *cl = xch_cluster(e);
    if (ebb_us_refused(cl)) {
        ebb_answer(a, 502, EBB_RF_NR, "ebb: no route for host \"%.*s\" and the outbound "
                   "traffic policy is REGISTRY_ONLY\n", alen, req->authority.p);
        return -1;
    }
    uint64_t maxb = cfg->limits.max_request_body;
    if (maxb && req->content_length > 0 && (uint64_t)req->content_length > maxb) {
        ebb_answer(a, 413, 0, "ebb: request body larger than %llu bytes\n",
                   (unsigned long long)maxb);
        return -1;
    }
    if (req->upgrade.len && cl->cfg->protocol == EBB_UP_H2C) {
        ebb_answer(a, 501, 0, "ebb: Upgrade is not supported towards an h2c cluster\n");
        return -1;
    }
    /* the id goes into the record, which may have no room (it could not allocate) */
    char rid[EBB_XREC_RID];
    ebb_strcpy_trunc(rid, sizeof(rid), e->x.request_id ? e->x.request_id : "");
    if (ebb_fwd_prepare(&f, req, e->c, cl->cfg, rid) < 0) {
        ebb_answer(a, 431, 0, "ebb: request headers too large\n");
        return -1;
    }
    if (e->x.request_id)
        ebb_strcpy_trunc(e->x.request_id, EBB_XREC_RID, rid);
    e->us = ebb_us_open(cl, e->c->w, &f, flags, &xch_us_cbs, e);
    if (!e->us) {
        ebb_answer(a, 503, EBB_RF_UF, "ebb: upstream connect error: cluster \"%s\"\n",
                   cl->cfg->name);
        return -1;
    }
    return 0;
}

static void xch_op_request_done(struct ebb_xch *e)
{
    uint64_t rt = e->x.cluster >= 0 ? xch_cluster(e)->cfg->request_timeout_ms : 0;
    if (rt && e->us && !e->head_seen)
        ebb_timer_start(e->c->w->loop, &e->timer, rt);
}

static void xch_op_failure(const struct ebb_xch *e, unsigned rf, int status,
                           struct ebb_answer *a)
{
    ebb_answer(a, status, rf, "ebb: upstream %s: cluster \"%s\"\n", ebb_us_failure(rf, status),
               xch_cluster(e)->cfg->name);
}

static const char *xch_op_cluster_name(const struct ebb_xch *e)
{
    return e->x.cluster >= 0 ? xch_cluster(e)->cfg->name : "";
}

static void xch_op_release(struct ebb_xch *e)
{
    ebb_us_release(&e->us, &e->x);
    ebb_timer_stop(e->c->w->loop, &e->timer);
}

static void xch_op_end(struct ebb_xch *e, const char *protocol)
{
    ebb_xrec_log(&e->x, e->c, protocol, e->us ? ebb_us_addr(e->us) : NULL);
    ebb_stat_dec(e->c->l->st->rq_active);
}

/* --- TCP relays and tunnels --- */

static bool xch_op_capture_loop(struct ebb_conn *c)
{
    const struct ebb_config *cfg = c->w->cfg;
    if (!ebb_capture_loop(c, cfg))
        return false;
    ebb_stat_inc(c->w->clusters[cfg->builtin.blackhole].st->cx_none_healthy);
    return true;
}

static int xch_op_tcp_connect(struct ebb_conn *c, ebb_upconn_cb cb, void *owner,
                              struct ebb_upconn **out)
{
    struct ebb_wctx *w = c->w;
    const struct ebb_config *cfg = w->cfg;
    long ci = ebb_route_tcp(c, cfg);

    *out = NULL;
    if (ci < 0)
        return EBB_EINVAL;
    struct ebb_cluster_rt *cl = &w->clusters[ci];
    if (cl->cfg->kind == EBB_CLUSTER_BLACKHOLE || ebb_capture_loop(c, cfg)) {
        /* REGISTRY_ONLY, or a capture loop (SPEC §9.2, §9.3): closed, never relayed */
        ebb_stat_inc(w->clusters[cfg->builtin.blackhole].st->cx_none_healthy);
        ebb_info("tcp", "#%llu from %s: refused (BlackHoleCluster)", (unsigned long long)c->id,
                 c->peer_str);
        return EBB_EINVAL;
    }
    const union ebb_sockaddr *dst = cl->cfg->kind == EBB_CLUSTER_ORIGINAL_DST ? &c->orig_dst
                                                                              : NULL;
    int rc = ebb_upstream_connect_to(cl, w, dst, cb, owner, out);   /* never a pooled HTTP/1.1 one */
    if (rc < 0 && rc != EBB_EAGAIN)
        ebb_info("tcp", "#%llu cluster %s: %s", (unsigned long long)c->id, cl->cfg->name,
                 ebb_strerror(rc));
    return rc;
}

const struct ebb_xch_ops ebb_xch_ops = {
    .init = xch_op_init,
    .begin = xch_op_begin,
    .start = xch_op_start,
    .request_done = xch_op_request_done,
    .failure = xch_op_failure,
    .cluster_name = xch_op_cluster_name,
    .release = xch_op_release,
    .end = xch_op_end,
    .tcp_connect = xch_op_tcp_connect,
    .upconn_release = ebb_upstream_release,
    .capture_loop = xch_op_capture_loop,
};
