/*
 * conn.c - downstream connection I/O and closing: immediate, reset, and the
 * staged close of RFC 9112 §9.6 (flush, shut down the write side, read and
 * discard briefly, then close) so a client never gets an RST that destroys
 * the response it is reading.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <stdio.h>
#include <unistd.h>

#include "ebb/conn.h"
#include "ebb/core.h"
#include "ebb/listener.h"
#include "ebb/log.h"
#include "ebb/stats.h"
#include "ebb/wctx.h"

#define CONN_SEND_TIMEOUT_MS 60000

static void conn_free(void *data)
{
    struct ebb_conn *c = data;
    ebb_buf_free(&c->rbuf);
    ebb_buf_free(&c->wbuf);
    free(c);
}

ssize_t ebb_conn_read(struct ebb_conn *c)
{
    ssize_t n = ebb_buf_recv_fd(&c->rbuf, c->io.fd);
    if (n > 0)
        ebb_stat_add(c->l->st->cx_rx_bytes, (uint64_t)n);
    else if (n == EBB_ENOMEM)   /* the codec fails the connection as it does for a read error */
        ebb_stat_inc(c->w->stats->server.xch_failed_resource);
    return n;
}

int ebb_conn_flush(struct ebb_conn *c)
{
    while (ebb_buf_len(&c->wbuf)) {
        ssize_t n = ebb_buf_write_fd(&c->wbuf, c->io.fd);
        if (n == EBB_EAGAIN)
            return 0;
        if (n < 0)
            return EBB_EIO;
        ebb_stat_add(c->l->st->cx_tx_bytes, (uint64_t)n);
    }
    return 0;
}

static void conn_io_failed(struct ebb_loop *loop, struct ebb_timer *t)
{
    struct ebb_conn *c = t->data;
    ebb_conn_close(c, true);   /* the exchange in flight is cut: an RST says so */
}

/* The close timer, set to run cb(data) after ms, whatever it was running before. */
static void close_timer_set(struct ebb_conn *c, ebb_timer_cb cb, void *data, uint64_t ms)
{
    ebb_timer_stop(c->l->loop, &c->close_timer);
    ebb_timer_init(&c->close_timer, cb, data);
    ebb_timer_start(c->l->loop, &c->close_timer, ms);
}

/* A close (or its start) owns the close timer from here: the codec's is gone. */
#define CONN_F_CLOSE_TIMER_TAKEN (EBB_CONN_F_FREED | EBB_CONN_F_CLOSING | EBB_CONN_F_IOFAIL)

void ebb_conn_want(struct ebb_conn *c, uint32_t events)
{
    if (c->flags & (EBB_CONN_F_FREED | EBB_CONN_F_IOFAIL))
        return;
    if (ebb_io_set(c->l->loop, &c->io, events) == 0)
        return;
    /* epoll_ctl failed (ENOMEM, ENOSPC): nothing would ever wake this connection again.  The
     * codec is in the middle of its own handler, so the close comes from a zero-delay timer */
    c->flags |= EBB_CONN_F_IOFAIL;
    ebb_stat_inc(c->w->stats->server.xch_failed_resource);
    close_timer_set(c, conn_io_failed, c, 0);
}

void ebb_conn_codec_timer(struct ebb_conn *c, uint64_t ms, ebb_timer_cb cb, void *data)
{
    if (!(c->flags & CONN_F_CLOSE_TIMER_TAKEN))
        close_timer_set(c, cb, data, ms);
}

void ebb_conn_codec_timer_stop(struct ebb_conn *c)
{
    if (!(c->flags & CONN_F_CLOSE_TIMER_TAKEN))
        ebb_timer_stop(c->l->loop, &c->close_timer);
}

void ebb_conn_close(struct ebb_conn *c, bool reset)
{
    struct ebb_loop *loop = c->l->loop;

    if (c->flags & EBB_CONN_F_FREED)
        return;
    c->flags |= EBB_CONN_F_FREED;
    if (c->ops && c->codec)
        c->ops->destroy(c);
    c->codec = NULL;
    ebb_timer_stop(loop, &c->close_timer);
    ebb_io_stop(loop, &c->io);
    if (reset) {
        struct linger lg = { .l_onoff = 1, .l_linger = 0 };
        setsockopt(c->io.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    close(c->io.fd);
    c->io.fd = -1;
    ebb_list_del(&c->link);
    ebb_stat_dec(c->l->st->cx_active);
    atomic_fetch_sub_explicit(c->l->open, 1, memory_order_relaxed);
    ebb_stat_inc(c->l->st->cx_destroy);
    ebb_debug("conn", "#%llu closed%s", (unsigned long long)c->id, reset ? " (reset)" : "");
    c->l->env->conn_closed(c->l->env->owner);
    ebb_loop_defer(loop, &c->dfr, conn_free, c);
}

/* --- staged close --- */

static void linger_io(struct ebb_loop *loop, struct ebb_io *io, uint32_t events)
{
    struct ebb_conn *c = io->data;
    char scratch[16384];

    if (c->flags & EBB_CONN_F_FREED)
        return;
    if (ebb_buf_len(&c->wbuf)) {
        if (ebb_conn_flush(c) < 0) {
            ebb_conn_close(c, false);
            return;
        }
        if (ebb_buf_len(&c->wbuf))
            return;
        shutdown(c->io.fd, SHUT_WR);
        if (ebb_io_set(loop, &c->io, EBB_READ) < 0) {
            ebb_conn_close(c, false);   /* the answer is out: only the linger is skipped */
            return;
        }
        ebb_timer_start(loop, &c->close_timer, c->l->env->linger_ms);
    }
    if (!(events & (EBB_READ | EPOLLHUP | EPOLLERR)))
        return;
    for (int i = 0; i < 8; i++) {
        ssize_t n = recv(c->io.fd, scratch, sizeof(scratch), MSG_DONTWAIT);
        if (n > 0)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        /* EOF or error: the client has our whole answer and is gone */
        ebb_conn_close(c, false);
        return;
    }
}

static void linger_timeout(struct ebb_loop *loop, struct ebb_timer *t)
{
    ebb_conn_close(t->data, false);
}

void ebb_conn_close_staged(struct ebb_conn *c)
{
    struct ebb_loop *loop = c->l->loop;

    if (c->flags & (EBB_CONN_F_FREED | EBB_CONN_F_CLOSING))
        return;
    c->flags |= EBB_CONN_F_CLOSING;
    /* the codec is done: release its state now, the socket lingers alone */
    if (c->ops && c->codec)
        c->ops->destroy(c);
    c->codec = NULL;
    ebb_buf_reset(&c->rbuf);
    c->io.cb = linger_io;
    if (ebb_conn_flush(c) < 0) {
        ebb_conn_close(c, false);
        return;
    }
    if (c->flags & EBB_CONN_F_IOFAIL) {
        /* its epoll registration failed: no linger possible; an answer not all out is cut */
        ebb_conn_close(c, ebb_buf_len(&c->wbuf) > 0);
        return;
    }
    ebb_timer_stop(loop, &c->close_timer);   /* the codec's, if it armed one */
    ebb_timer_init(&c->close_timer, linger_timeout, c);
    if (ebb_buf_len(&c->wbuf)) {
        /* a slow reader still gets its answer, within a send deadline */
        if (ebb_io_set(loop, &c->io, EBB_WRITE) < 0) {
            ebb_stat_inc(c->w->stats->server.xch_failed_resource);
            ebb_conn_close(c, true);   /* the rest of the answer cannot be sent: cut */
            return;
        }
        ebb_timer_start(loop, &c->close_timer, CONN_SEND_TIMEOUT_MS);
        return;
    }
    shutdown(c->io.fd, SHUT_WR);
    if (ebb_io_set(loop, &c->io, EBB_READ) < 0) {
        ebb_conn_close(c, false);   /* the answer is out: only the linger is skipped */
        return;
    }
    ebb_timer_start(loop, &c->close_timer, c->l->env->linger_ms);
}

bool ebb_sockaddr_same(const union ebb_sockaddr *a, const union ebb_sockaddr *b)
{
    if (a->sa.sa_family != b->sa.sa_family)
        return false;
    if (a->sa.sa_family == AF_INET)
        return a->in.sin_port == b->in.sin_port && a->in.sin_addr.s_addr == b->in.sin_addr.s_addr;
    return a->sa.sa_family == AF_INET6 && a->in6.sin6_port == b->in6.sin6_port &&
           memcmp(&a->in6.sin6_addr, &b->in6.sin6_addr, sizeof(a->in6.sin6_addr)) == 0;
}

void ebb_sockaddr_str(const union ebb_sockaddr *a, char *out, size_t len)
{
    char ip[INET6_ADDRSTRLEN];
    bool v6 = a->sa.sa_family == AF_INET6;

    if (!inet_ntop(a->sa.sa_family, v6 ? (const void *)&a->in6.sin6_addr
                                       : (const void *)&a->in.sin_addr, ip, sizeof(ip))) {
        snprintf(out, len, "unknown");
        return;
    }
    snprintf(out, len, v6 ? "[%s]:%u" : "%s:%u", ip,
             ntohs(v6 ? a->in6.sin6_port : a->in.sin_port));
}
