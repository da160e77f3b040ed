/*
 * sniff.c - the codec a captured connection starts with on an http listener
 * (SPEC §9.2): it looks at the first bytes and hands the connection to the
 * codec they belong to, as Istio's protocol sniffing does.  The HTTP/2
 * preface or an HTTP/1.x request line go to the HTTP codec (h1, which passes
 * the preface on to h2); anything else is relayed as TCP to the original
 * destination.  A port listed in capture.tcp_ports skips the wait (a
 * server-first protocol says nothing until the server has spoken), and
 * capture.protocol_detection_timeout turns a silent connection into TCP.
 *
 * A connection captured on its way to one of ebb's own listener ports is a
 * loop (an iptables rule set that sends ebb's traffic back to ebb): it is
 * closed at once and counted as BlackHoleCluster's, never forwarded.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "ebb/codecs.h"
#include "ebb/config.h"
#include "ebb/conn.h"
#include "ebb/core.h"
#include "ebb/h2.h"
#include "ebb/listener.h"
#include "ebb/log.h"
#include "ebb/stats.h"
#include "ebb/stream.h"
#include "ebb/wctx.h"

enum sniff_verdict { SNIFF_MORE, SNIFF_HTTP, SNIFF_TCP };

#define SNIFF_MAX_METHOD 20   /* longer than any registered method */

struct sniff {
    struct ebb_conn *c;
    struct ebb_timer timer;   /* protocol detection timeout, or the drain's idle close */
    bool idle_close;          /* the timer is the drain's idle close (earlier than detection) */
    struct ebb_deferred dfr;      /* its deferred free (ebb_loop_defer) */
};

static const struct ebb_config *sniff_cfg(const struct ebb_conn *c) { return c->w->cfg; }

/* HTTP/1.x: a method token of capitals, a space, and a line ending in " HTTP/1.0" or
 * " HTTP/1.1".  A line longer than max_line is HTTP too, once its method looked right:
 * the HTTP codec answers it (414). */
static enum sniff_verdict sniff_h1(const char *p, size_t n, size_t max_line)
{
    size_t i = 0;

    while (i < n && i <= SNIFF_MAX_METHOD && ((p[i] >= 'A' && p[i] <= 'Z') || p[i] == '-'))
        i++;
    if (i == n)
        return i <= SNIFF_MAX_METHOD ? SNIFF_MORE : SNIFF_TCP;
    if (i == 0 || p[i] != ' ')
        return SNIFF_TCP;
    const char *nl = memchr(p + i, '\n', n - i);
    if (!nl)
        return n >= max_line ? SNIFF_HTTP : SNIFF_MORE;
    size_t end = (size_t)(nl - p);
    if (end > 0 && p[end - 1] == '\r')
        end--;
    if (end < i + 9)
        return SNIFF_TCP;
    return memcmp(p + end - 9, " HTTP/1.1", 9) == 0 || memcmp(p + end - 9, " HTTP/1.0", 9) == 0
               ? SNIFF_HTTP : SNIFF_TCP;
}

static enum sniff_verdict sniff_bytes(const char *p, size_t n, size_t max_line)
{
    int pm = ebb_h2_preface_match(p, n);
    if (pm == 1)
        return SNIFF_HTTP;
    if (pm == 0)
        return SNIFF_MORE;
    return sniff_h1(p, n, max_line);
}

static void sniff_free(void *p) { free(p); }

/* Hands c, and the bytes read so far, to the codec ops, which runs on them with events
 * (EBB_READ: it reads the socket first; 0: the socket is known to be drained). */
static void sniff_switch(struct ebb_conn *c, const struct ebb_codec_ops *ops, uint32_t events)
{
    struct sniff *sn = c->codec;

    ebb_timer_stop(c->w->loop, &sn->timer);
    c->ops->destroy(c);
    c->codec = NULL;
    c->ops = ops;
    ebb_debug("sniff", "#%llu -> %s", (unsigned long long)c->id, ops->name);
    if (ops->init(c) < 0) {
        ebb_conn_close(c, true);
        return;
    }
    if (ebb_buf_len(&c->rbuf) && !ebb_conn_dead(c))
        ops->on_io(c, events);   /* the bytes are already read: no socket event will say so */
}

static bool port_listed(const struct ebb_capture_cfg *cap, uint16_t port)
{
    for (size_t i = 0; i < cap->ntcp_ports; i++) {
        if (cap->tcp_ports[i] == port)
            return true;
    }
    return false;
}

static uint16_t orig_port(const struct ebb_conn *c)
{
    return ntohs(c->orig_dst.sa.sa_family == AF_INET6 ? c->orig_dst.in6.sin6_port
                                                       : c->orig_dst.in.sin_port);
}

static void sniff_timeout(struct ebb_loop *loop, struct ebb_timer *t)
{
    struct sniff *sn = t->data;
    struct ebb_conn *c = sn->c;

    if (sn->idle_close && ebb_buf_len(&c->rbuf) == 0) {
        /* silent through the drain's idle close: nothing in flight, closed as an idle
         * keep-alive connection is (and counted with them) */
        ebb_stat_inc(c->l->st->cx_drain_close);
        ebb_conn_close_staged(c);
        return;
    }
    sniff_switch(c, &ebb_tcp_codec, EBB_READ);   /* protocolDetectionTimeout: server-first */
}

static int sniff_init(struct ebb_conn *c)
{
    const struct ebb_config *cfg = sniff_cfg(c);
    struct sniff *sn;

    if (ebb_xch_capture_loop(c)) {
        ebb_info("sniff", "#%llu from %s: captured on its way to ebb's own port %u: a capture "
                 "loop, closed", (unsigned long long)c->id, c->peer_str, orig_port(c));
        return EBB_EINVAL;
    }
    sn = calloc(1, sizeof(*sn));
    if (!sn)
        return EBB_ENOMEM;
    sn->c = c;
    ebb_timer_init(&sn->timer, sniff_timeout, sn);
    c->codec = sn;
    if (port_listed(&cfg->capture, orig_port(c))) {
        sniff_switch(c, &ebb_tcp_codec, EBB_READ);
        return 0;
    }
    if (cfg->capture.detect_timeout_ms)
        ebb_timer_start(c->w->loop, &sn->timer, cfg->capture.detect_timeout_ms);
    if (c->l->draining)
        c->ops->drain(c);
    ebb_conn_want(c, EBB_READ);
    return 0;
}

static void sniff_on_io(struct ebb_conn *c, uint32_t events)
{
    const struct ebb_config *cfg = sniff_cfg(c);
    bool eof = false, drained = false;

    if (events & (EBB_READ | EPOLLHUP | EPOLLERR)) {
        ssize_t n = ebb_conn_read(c);
        /* a short read drained the socket: the codec taking over need not read it again
         * (that read would only say EAGAIN: one system call more per captured connection
         * than a direct one; the loop is level-triggered, so later bytes still wake it) */
        drained = n > 0 && ebb_buf_tailroom(&c->rbuf) && ebb_buf_room(&c->rbuf);
        if (n == 0)
            eof = true;
        else if (n < 0 && n != EBB_EAGAIN && n != EBB_ETOOBIG) {
            ebb_conn_close(c, false);
            return;
        }
    }
    size_t len = ebb_buf_len(&c->rbuf);
    enum sniff_verdict v = sniff_bytes(ebb_buf_start(&c->rbuf), len, cfg->limits.h1.max_line);
    if (v == SNIFF_MORE && (eof || ebb_buf_room(&c->rbuf) == 0))
        v = len ? SNIFF_TCP : SNIFF_MORE;   /* the bytes there are will never be HTTP */
    if (v == SNIFF_MORE && eof) {
        ebb_conn_close(c, false);   /* closed before a byte: nothing to relay */
        return;
    }
    if (v == SNIFF_HTTP)
        sniff_switch(c, &ebb_h1_codec, drained ? 0 : EBB_READ);
    else if (v == SNIFF_TCP)
        sniff_switch(c, &ebb_tcp_codec, drained ? 0 : EBB_READ);
}

/* Nothing is in flight before the first byte: a connection still silent when the drain
 * closes idle connections is closed with them, unless protocol detection ends first. */
static void sniff_drain(struct ebb_conn *c)
{
    struct sniff *sn = c->codec;
    uint64_t after = sniff_cfg(c)->drain.idle_close_after_ms;

    if (c->flags & EBB_CONN_F_DRAINING)
        return;
    c->flags |= EBB_CONN_F_DRAINING;
    /* the earlier of the two: detection (still running) or the idle close */
    if (!ebb_timer_active(&sn->timer) || sn->timer.when > ebb_now_ms() + after) {
        sn->idle_close = true;
        ebb_timer_start(c->w->loop, &sn->timer, after);
    }
    /* else detection ends first: a connection still silent then is server-first, relayed as
     * TCP, which the drain leaves to finish (SPEC §3.3.7) */
}

static void sniff_destroy(struct ebb_conn *c)
{
    struct sniff *sn = c->codec;

    if (!sn)
        return;
    ebb_timer_stop(c->w->loop, &sn->timer);
    ebb_loop_defer(c->w->loop, &sn->dfr, sniff_free, sn);   /* may be in sn's timer callback */
}

const struct ebb_codec_ops ebb_sniff_codec = {
    .name = "sniff",
    .init = sniff_init,
    .on_io = sniff_on_io,
    .drain = sniff_drain,
    .destroy = sniff_destroy,
};
