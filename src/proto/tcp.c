/*
 * tcp.c - the TCP codec (bytes relayed to the listener's cluster, or to a
 * captured connection's original destination, with half-close) and the
 * tunnel shared with HTTP/1.1 upgrades.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>

#include "ebb/codecs.h"
#include "ebb/config.h"
#include "ebb/conn.h"
#include "ebb/core.h"
#include "ebb/listener.h"
#include "ebb/log.h"
#include "ebb/stats.h"
#include "ebb/stream.h"
#include "ebb/tunnel.h"
#include "ebb/upconn.h"
#include "ebb/wctx.h"

/* Moves what fits from one buffer to the other.  Returns the bytes moved, or -1 when the
 * destination could not get storage (the bytes stay where they were). */
static ssize_t move_bytes(struct ebb_buf *from, struct ebb_buf *to)
{
    size_t n = EBB_MIN(ebb_buf_len(from), ebb_buf_room(to));
    if (n == 0)
        return 0;
    if (ebb_buf_append(to, ebb_buf_start(from), n) < 0)
        return -1;
    ebb_buf_consume(from, n);
    return (ssize_t)n;
}

/* Keep-alive probes on a relayed socket: first after 5 idle minutes, then every 30 s, dead
 * after 3 unanswered (Linux's default waits 2 h before the first). */
#define TUNNEL_KEEPIDLE_S  300
#define TUNNEL_KEEPINTVL_S 30
#define TUNNEL_KEEPCNT     3

static void keepalive(int fd)
{
    int on = 1, idle = TUNNEL_KEEPIDLE_S, intvl = TUNNEL_KEEPINTVL_S, cnt = TUNNEL_KEEPCNT;

    if (fd < 0)
        return;
    /* best effort: a socket without probes still has the idle timeout */
    (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

void ebb_tunnel_start(struct ebb_conn *c, struct ebb_upconn *u, struct ebb_tunnel *t)
{
    t->active_ms = ebb_loop_now(c->l->loop);
    keepalive(c->io.fd);
    if (u)
        keepalive(u->io.fd);
}

uint64_t ebb_tunnel_idle_left(const struct ebb_conn *c, const struct ebb_tunnel *t,
                              uint64_t idle_ms)
{
    uint64_t idle = ebb_loop_now(c->l->loop) - t->active_ms;
    return idle >= idle_ms ? 0 : idle_ms - idle;
}

int ebb_tunnel_run(struct ebb_conn *c, struct ebb_upconn *u, struct ebb_tunnel *t)
{
    /* move and flush until neither moves a byte: a flush that empties a buffer makes room
     * for bytes still parked on the other side, which no socket event would announce */
    for (int guard = 0; guard < 64; guard++) {
        ssize_t moved = move_bytes(&c->rbuf, &u->wbuf);
        ssize_t back = move_bytes(&u->rbuf, &c->wbuf);
        if (moved < 0 || back < 0) {
            /* out of memory: bytes stuck in a full buffer would wait for nothing */
            ebb_stat_inc(c->w->stats->server.xch_failed_resource);
            return EBB_ENOMEM;
        }
        t->up_bytes += (uint64_t)moved;
        t->down_bytes += (uint64_t)back;
        size_t ub = ebb_buf_len(&u->wbuf), cb = ebb_buf_len(&c->wbuf);
        if (ebb_upstream_flush(u) < 0 || ebb_conn_flush(c) < 0)
            return EBB_EIO;
        bool flushed = ebb_buf_len(&u->wbuf) < ub || ebb_buf_len(&c->wbuf) < cb;
        if (!moved && !back && !flushed)
            break;
        t->active_ms = ebb_loop_now(c->l->loop);
    }

    if (t->down_eof && !t->up_shut && !ebb_buf_len(&c->rbuf) && !ebb_buf_len(&u->wbuf)) {
        shutdown(u->io.fd, SHUT_WR);
        t->up_shut = true;
    }
    if (u->eof && !t->down_shut && !ebb_buf_len(&u->rbuf) && !ebb_buf_len(&c->wbuf)) {
        shutdown(c->io.fd, SHUT_WR);
        t->down_shut = true;
    }
    if (t->up_shut && t->down_shut)
        return 1;

    uint32_t dw = 0, uw = 0;
    if (!t->down_eof && ebb_buf_room(&c->rbuf))
        dw |= EBB_READ;
    if (ebb_buf_len(&c->wbuf))
        dw |= EBB_WRITE;
    if (!u->eof && ebb_buf_room(&u->rbuf))
        uw |= EBB_READ;
    if (ebb_buf_len(&u->wbuf))
        uw |= EBB_WRITE;
    ebb_conn_want(c, dw);   /* a failure resets c from a timer */
    if (ebb_upstream_want(u, uw) < 0)
        return EBB_EIO;
    return 0;
}

/* --- the TCP codec --- */

struct tcp {
    struct ebb_conn   *c;
    struct ebb_upconn *u;
    struct ebb_tunnel  t;
    struct ebb_timer   idle;        /* limits.tcp_idle_timeout */
    bool               connected;
    struct ebb_deferred dfr;      /* its deferred free (ebb_loop_defer) */
};

static void tcp_free(void *p) { free(p); }

static void tcp_finish(struct tcp *tp, int rc)
{
    struct ebb_conn *c = tp->c;
    if (rc == 1)
        ebb_conn_close_staged(c);   /* both FINs sent: linger for the peer's */
    else
        ebb_conn_close(c, rc < 0);
}

static void tcp_idle(struct ebb_loop *loop, struct ebb_timer *timer)
{
    struct tcp *tp = timer->data;
    uint64_t idle_ms = tp->c->w->cfg->limits.tcp_idle_timeout_ms;
    uint64_t left = ebb_tunnel_idle_left(tp->c, &tp->t, idle_ms);

    if (left) {
        ebb_timer_start(loop, timer, left);
        return;
    }
    ebb_stat_inc(tp->c->l->st->cx_idle_timeout);
    ebb_info("tcp", "#%llu idle for %llu ms: closed", (unsigned long long)tp->c->id,
             (unsigned long long)idle_ms);
    tcp_finish(tp, 1);   /* FIN both ways, as Envoy's tcp_proxy does on its idle timeout */
}

static void tcp_run(struct tcp *tp)
{
    if (!tp->connected)
        return;
    int rc = ebb_tunnel_run(tp->c, tp->u, &tp->t);
    if (rc != 0)
        tcp_finish(tp, rc);
}

static void tcp_upstream(void *owner, struct ebb_upconn *u, uint32_t events)
{
    struct tcp *tp = owner;

    if (events & EBB_UP_EV_FAILED) {
        ebb_info("tcp", "#%llu upstream %s connect failed: %s", (unsigned long long)tp->c->id,
                 u->addr_str, ebb_strerror(u->err));
        tcp_finish(tp, EBB_EIO);
        return;
    }
    if (events & EBB_UP_EV_CONNECTED)
        tp->connected = true;
    if (events & (EBB_READ | EPOLLHUP | EPOLLERR)) {
        ssize_t n = ebb_upstream_read(u);
        if (n < 0 && n != EBB_EAGAIN && n != EBB_ETOOBIG) {
            tcp_finish(tp, EBB_EIO);
            return;
        }
    }
    tcp_run(tp);
}

static int tcp_init(struct ebb_conn *c)
{
    struct ebb_wctx *w = c->w;
    struct tcp *tp = calloc(1, sizeof(*tp));
    if (!tp)
        return EBB_ENOMEM;
    tp->c = c;
    c->codec = tp;
    ebb_timer_init(&tp->idle, tcp_idle, tp);
    const struct ebb_config *cfg = w->cfg;
    int rc = ebb_xch_tcp_connect(c, tcp_upstream, tp, &tp->u);   /* refusals logged there */
    if (rc == EBB_EINVAL)
        return rc;
    ebb_tunnel_start(c, tp->u, &tp->t);
    if (cfg->limits.tcp_idle_timeout_ms)
        ebb_timer_start(w->loop, &tp->idle, cfg->limits.tcp_idle_timeout_ms);
    if (rc == 0) {
        tp->connected = true;
    } else if (rc != EBB_EAGAIN) {
        return rc;
    }
    /* read nothing until the upstream is there: the client's bytes wait in the kernel */
    ebb_conn_want(c, 0);
    if (tp->connected)
        tcp_run(tp);
    return 0;
}

static void tcp_on_io(struct ebb_conn *c, uint32_t events)
{
    struct tcp *tp = c->codec;
    if (events & (EBB_READ | EPOLLHUP | EPOLLERR)) {
        ssize_t n = ebb_conn_read(c);
        if (n == 0)
            tp->t.down_eof = true;
        else if (n < 0 && n != EBB_EAGAIN && n != EBB_ETOOBIG) {
            tcp_finish(tp, EBB_EIO);
            return;
        }
    }
    tcp_run(tp);
}

static void tcp_drain(struct ebb_conn *c)
{
    /* SPEC §3.3.7: TCP connections are left to finish; closed only at exit */
}

static void tcp_destroy(struct ebb_conn *c)
{
    struct tcp *tp = c->codec;
    ebb_timer_stop(c->w->loop, &tp->idle);
    if (tp->u) {
        ebb_xch_upconn_release(tp->u, false);
        tp->u = NULL;
    }
    ebb_loop_defer(c->w->loop, &tp->dfr, tcp_free, tp);
}

const struct ebb_codec_ops ebb_tcp_codec = {
    .name = "tcp",
    .init = tcp_init,
    .on_io = tcp_on_io,
    .drain = tcp_drain,
    .destroy = tcp_destroy,
};
