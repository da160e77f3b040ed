/*
 * exchange.c - the request rewrite, the head writers, the retry policy and
 * the exchange record, written once for every pair of protocols.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ebb/core.h"
#include "ebb/exchange.h"
#include "ebb/http.h"
#include "ebb/proxy.h"
#include "ebb/cluster.h"
#include "ebb/config.h"
#include "ebb/conn.h"
#include "ebb/listener.h"
#include "ebb/stats.h"
#include "ebb/wctx.h"
#include "ebb/ustream.h"

static bool str_ieq(struct ebb_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && strncasecmp(s.p, lit, n) == 0;
}


bool ebb_method_idempotent(const char *method)
{
    static const char *const m[] = { "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE" };
    for (size_t i = 0; i < EBB_ARRAY_LEN(m); i++)
        if (strcmp(method, m[i]) == 0)
            return true;
    return false;
}

/* --- the rewrite --- */

/* The authority a request without one is sent with: "host:port" of the cluster's first
 * endpoint (IPv6 literals bracketed), written into f->endpoint. */
static struct ebb_str endpoint_authority(struct ebb_fwd *f, const struct ebb_cluster_cfg *cl)
{
    int n = 0;
    if (cl && cl->nendpoints) {
        const struct ebb_endpoint *ep = &cl->endpoints[0];
        bool v6 = strchr(ep->host, ':') != NULL;
        n = snprintf(f->endpoint, sizeof(f->endpoint), v6 ? "[%s]:%u" : "%s:%u", ep->host,
                     (unsigned)ep->port);
        if (n < 0 || (size_t)n >= sizeof(f->endpoint))
            n = 0;
    }
    return (struct ebb_str){ f->endpoint, (size_t)n };
}

int ebb_fwd_prepare(struct ebb_fwd *f, const struct ebb_req *req, const struct ebb_conn *c,
                    const struct ebb_cluster_cfg *cl, char rid[64])
{
    struct ebb_wctx *w = c->w;
    bool have_rid = false;

    f->req = req;
    f->nkeep = 0;
    f->xff = NULL;
    f->peer = c->peer_str;
    f->dst = cl && cl->kind == EBB_CLUSTER_ORIGINAL_DST ? &c->orig_dst : NULL;
    if (req->authority.len)
        f->authority = req->authority;
    else if (f->dst) {
        ebb_sockaddr_str(f->dst, f->endpoint, sizeof(f->endpoint));
        f->authority = (struct ebb_str){ f->endpoint, strlen(f->endpoint) };
    } else
        f->authority = endpoint_authority(f, cl);
    for (size_t i = 0; i < req->nhdrs; i++) {
        const struct ebb_hdr *hd = &req->hdrs[i];
        if (ebb_hdr_is_hop(hd->name.p, hd->name.len) || str_ieq(hd->name, "content-length") ||
            str_ieq(hd->name, "host") || str_ieq(hd->name, "x-forwarded-proto"))
            continue;
        if (str_ieq(hd->name, "x-forwarded-for")) {
            if (!f->xff)
                f->xff = hd;
            continue;
        }
        if (str_ieq(hd->name, "x-request-id") && hd->value.len > 0) {
            if (have_rid)
                continue;   /* one id per request: the first */
            have_rid = true;
            size_t n = EBB_MIN(hd->value.len, (size_t)63);
            memcpy(rid, hd->value.p, n);
            rid[n] = '\0';
        }
        if (f->nkeep == EBB_ARRAY_LEN(f->keep))
            return EBB_ETOOBIG;
        f->keep[f->nkeep++] = hd;
    }
    if (!have_rid && !rid[0])
        ebb_request_id(&w->rand_state, rid);
    f->request_id = rid;
    f->rid_added = !have_rid;
    return 0;
}

/* The head is written without printf (issue 12): these append a span and a C string. */
static int put(struct ebb_buf *b, const char *p, size_t n) { return ebb_buf_append(b, p, n); }
static int put_s(struct ebb_buf *b, const char *s) { return ebb_buf_append(b, s, strlen(s)); }
#define PUT_LIT(b, lit) ebb_buf_append((b), (lit), sizeof(lit) - 1)

/* "name: value\r\n" */
static int put_field(struct ebb_buf *b, struct ebb_str name, struct ebb_str value)
{
    int rc = put(b, name.p, name.len);   /* one after the other: the order of the operands of
                                          * | is unspecified in C */
    rc |= PUT_LIT(b, ": ");
    rc |= put(b, value.p, value.len);
    rc |= PUT_LIT(b, "\r\n");
    return rc;
}

int ebb_fwd_write_h1(const struct ebb_fwd *f, struct ebb_buf *b, bool *chunked)
{
    const struct ebb_req *r = f->req;
    bool cookie = false;
    int rc = 0;

    rc |= put(b, r->method.p, r->method.len);
    rc |= PUT_LIT(b, " ");
    rc |= put(b, r->path.p, r->path.len);
    rc |= PUT_LIT(b, " HTTP/1.1\r\n");
    /* Host is written from the parsed authority (the URI's for absolute-form, RFC 9112
     * §3.2.2), never copied: "Connection: host" must not be able to drop it */
    if (f->authority.len)
        rc |= put_field(b, (struct ebb_str){ "host", 4 }, f->authority);
    for (size_t i = 0; i < f->nkeep; i++) {
        const struct ebb_hdr *hd = f->keep[i];
        if (r->join_cookies && str_ieq(hd->name, "cookie")) {
            cookie = true;
            continue;
        }
        rc |= put_field(b, hd->name, hd->value);
    }
    if (cookie) {
        /* RFC 9113 §8.2.3: cookie crumbs are joined with "; " for HTTP/1.1 */
        bool first = true;
        rc |= PUT_LIT(b, "cookie: ");
        for (size_t i = 0; i < f->nkeep; i++) {
            if (!str_ieq(f->keep[i]->name, "cookie"))
                continue;
            if (!first)
                rc |= PUT_LIT(b, "; ");
            rc |= put(b, f->keep[i]->value.p, f->keep[i]->value.len);
            first = false;
        }
        rc |= PUT_LIT(b, "\r\n");
    }
    rc |= PUT_LIT(b, "x-forwarded-for: ");
    if (f->xff) {
        rc |= put(b, f->xff->value.p, f->xff->value.len);
        rc |= PUT_LIT(b, ", ");
    }
    rc |= put_s(b, f->peer);
    rc |= PUT_LIT(b, "\r\nx-forwarded-proto: http\r\n");
    if (f->rid_added) {
        rc |= PUT_LIT(b, "x-request-id: ");
        rc |= put_s(b, f->request_id);
        rc |= PUT_LIT(b, "\r\n");
    }
    *chunked = r->content_length < 0 && r->body;
    if (r->content_length >= 0) {
        rc |= PUT_LIT(b, "content-length: ");
        rc |= ebb_buf_append_u64(b, (uint64_t)r->content_length);
        rc |= PUT_LIT(b, "\r\n");
    } else if (*chunked) {
        rc |= PUT_LIT(b, "transfer-encoding: chunked\r\n");
    }
    if (r->upgrade.len) {
        rc |= PUT_LIT(b, "connection: upgrade\r\nupgrade: ");
        rc |= put(b, r->upgrade.p, r->upgrade.len);
        rc |= PUT_LIT(b, "\r\n");
    }
    rc |= PUT_LIT(b, "\r\n");
    if (rc)
        return rc == EBB_ENOMEM ? EBB_ENOMEM : EBB_ETOOBIG;
    return 0;
}

int ebb_fwd_to_nv(const struct ebb_fwd *f, struct ebb_nvlist *out)
{
    const struct ebb_req *r = f->req;
    size_t names = 0, xff_len = strlen(f->peer) + 1;

    for (size_t i = 0; i < f->nkeep; i++)
        names += f->keep[i]->name.len;
    if (f->xff)
        xff_len += f->xff->value.len + 2;
    /* lowercased names, then the x-forwarded-for value, then content-length digits */
    if (ebb_nvlist_alloc(out, names + xff_len + 24, f->nkeep + 10) < 0)
        return EBB_ENOMEM;
    ebb_nvlist_add(out, ":method", 7, r->method.p, r->method.len);
    ebb_nvlist_add(out, ":scheme", 7, r->scheme.len ? r->scheme.p : "http", r->scheme.len ? r->scheme.len : 4);
    if (f->authority.len)
        ebb_nvlist_add(out, ":authority", 10, f->authority.p, f->authority.len);
    ebb_nvlist_add(out, ":path", 5, r->path.p, r->path.len);
    char *p = out->names;
    for (size_t i = 0; i < f->nkeep; i++) {
        const struct ebb_hdr *hd = f->keep[i];
        ebb_nvlist_lower(p, hd->name);
        ebb_nvlist_add(out, p, hd->name.len, hd->value.p, hd->value.len);
        p += hd->name.len;
    }
    /* copies, not printf: this runs for every request */
    char *xff = p;
    size_t xn = 0;
    if (f->xff) {
        memcpy(xff, f->xff->value.p, f->xff->value.len);
        memcpy(xff + f->xff->value.len, ", ", 2);
        xn = f->xff->value.len + 2;
    }
    ebb_strcpy_trunc(xff + xn, xff_len - xn, f->peer);
    xn += strlen(xff + xn);
    ebb_nvlist_add(out, "x-forwarded-for", 15, xff, xn);
    ebb_nvlist_add(out, "x-forwarded-proto", 17, "http", 4);
    if (f->rid_added)
        ebb_nvlist_add(out, "x-request-id", 12, f->request_id, strlen(f->request_id));
    if (r->content_length >= 0) {
        char *cl = xff + xn + 1;
        ebb_nvlist_add(out, "content-length", 14, cl, ebb_u64_dec(cl, (uint64_t)r->content_length));
    }
    if (r->te_trailers || (r->body && r->content_length < 0))
        ebb_nvlist_add(out, "te", 2, "trailers", 8);
    return 0;
}

/* --- local answers --- */

const char *ebb_us_failure(unsigned rf, int status)
{
    if (status == 502)
        return "sent a malformed or unexpected response";
    if (status == 504)
        return "request timeout";
    return (rf & EBB_RF_UF) ? "connect error" : "reset before response headers";
}

void ebb_us_release(struct ebb_us **us, struct ebb_xrec *x)
{
    if (!*us)
        return;
    ebb_xrec_upstream(x, ebb_us_addr(*us));
    ebb_us_close(*us);
    *us = NULL;
}

/* --- the record --- */

void ebb_xrec_log(const struct ebb_xrec *x, const struct ebb_conn *c, const char *protocol,
                  const char *up_addr)
{
    if (!ebb_access_log_on())
        return;   /* no line to build (about 50 instructions per exchange) */
    struct ebb_access a = {
        .listener = c->l->cfg->name,
        .method = x->method,
        .authority = x->authority,
        .path = x->path,
        .protocol = protocol,
        .status = x->status,
        .bytes_received = x->req_bytes,
        .bytes_sent = x->resp_bytes,
        .duration_ms = ebb_loop_now(c->w->loop) - x->start_ms,
        .upstream_host = up_addr ? up_addr : x->up_addr && x->up_addr[0] ? x->up_addr : NULL,
        .upstream_cluster = x->cluster >= 0 ? c->w->clusters[x->cluster].cfg->name : NULL,
        .flags = x->rf,
        .request_id = x->request_id ? x->request_id : "",
        .peer = c->peer_str,
    };
    ebb_access_log(&a);
}

/* --- the upstream side --- */

bool ebb_us_refused(struct ebb_cluster_rt *cl)
{
    if (cl->cfg->kind != EBB_CLUSTER_BLACKHOLE)
        return false;
    ebb_stat_inc(cl->st->cx_none_healthy);
    return true;
}

struct ebb_us *ebb_us_open(struct ebb_cluster_rt *cl, struct ebb_wctx *w,
                           const struct ebb_fwd *f, unsigned flags,
                           const struct ebb_us_cbs *cbs, void *owner)
{
    bool h2c = cl->cfg->kind == EBB_CLUSTER_ORIGINAL_DST ? (flags & EBB_US_F_H2) != 0
                                                         : cl->cfg->protocol == EBB_UP_H2C;
    if (h2c)
        return ebb_h2u_open(cl, w, f, flags, cbs, owner);
    return ebb_h1u_open(cl, w, f, flags, cbs, owner);
}
