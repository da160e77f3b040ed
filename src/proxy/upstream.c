/*
 * upstream.c - upstream connections: non-blocking connect with a timeout,
 * a per-worker per-cluster pool of idle keep-alive connections with an
 * idle timeout, and round-robin endpoint choice.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ebb/cluster.h"
#include "ebb/config.h"
#include "ebb/core.h"
#include "ebb/log.h"
#include "ebb/stats.h"
#include "ebb/upstream.h"
#include "ebb/wctx.h"

#define UPCONN_PEEK_AFTER_MS 1000

static void upconn_free(void *data)
{
    struct ebb_upconn *u = data;
    ebb_buf_free(&u->rbuf);
    ebb_buf_free(&u->wbuf);
    free(u);
}

static void upconn_close(struct ebb_upconn *u)
{
    if (u->state == EBB_UP_CLOSED)
        return;
    if (u->state == EBB_UP_IDLE) {
        ebb_list_del(&u->link);
        u->cl->nidle--;
        ebb_stat_dec(u->cl->st->cx_idle);
    }
    ebb_timer_stop(u->w->loop, &u->timer);
    ebb_io_stop(u->w->loop, &u->io);
    close(u->io.fd);
    u->io.fd = -1;
    if (u->state != EBB_UP_CONNECTING || u->err == 0)
        ebb_stat_dec(u->cl->st->cx_active);
    ebb_stat_inc(u->cl->st->cx_destroy);
    u->state = EBB_UP_CLOSED;
    u->cb = NULL;
    u->owner = NULL;
    ebb_loop_defer(u->w->loop, &u->dfr, upconn_free, u);
}

static void upconn_fail(struct ebb_upconn *u, int err)
{
    ebb_upconn_cb cb = u->cb;
    void *owner = u->owner;
    u->err = err;
    ebb_stat_inc(u->cl->st->cx_connect_fail);
    if (err == EBB_ETIMEDOUT)
        ebb_stat_inc(u->cl->st->cx_connect_timeout);
    ebb_timer_stop(u->w->loop, &u->timer);
    ebb_io_stop(u->w->loop, &u->io);
    if (cb)
        cb(owner, u, EBB_UP_EV_FAILED);
}

static void upconn_io(struct ebb_loop *loop, struct ebb_io *io, uint32_t events)
{
    struct ebb_upconn *u = io->data;

    switch (u->state) {
    case EBB_UP_CONNECTING: {
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        getsockopt(io->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
        if (soerr != 0 || (events & (EPOLLERR | EPOLLHUP))) {
            ebb_debug("upstream", "connect to %s failed: %s", u->addr_str,
                      strerror(soerr ? soerr : ECONNREFUSED));
            upconn_fail(u, soerr == ECONNREFUSED || soerr == 0 ? EBB_ECONNREFUSED : EBB_EIO);
            return;
        }
        ebb_timer_stop(loop, &u->timer);
        u->state = EBB_UP_BUSY;
        ebb_stat_inc(u->cl->st->cx_active);
        ebb_io_set(loop, io, 0);
        u->cb(u->owner, u, EBB_UP_EV_CONNECTED);
        return;
    }
    case EBB_UP_IDLE:
        /* an idle connection has nothing to say: EOF, an error or junk all end it */
        upconn_close(u);
        return;
    case EBB_UP_BUSY:
        u->cb(u->owner, u, events);
        return;
    case EBB_UP_CLOSED:
        return;
    }
}

static void upconn_timer(struct ebb_loop *loop, struct ebb_timer *t)
{
    struct ebb_upconn *u = t->data;
    if (u->state == EBB_UP_CONNECTING) {
        ebb_debug("upstream", "connect to %s timed out", u->addr_str);
        upconn_fail(u, EBB_ETIMEDOUT);
    } else if (u->state == EBB_UP_IDLE) {
        upconn_close(u);
    }
}

/* The pool's connection to dst (any endpoint when dst is NULL) that is still open, most
 * recently used first, taken out of the pool; NULL when there is none. */
static struct ebb_upconn *pool_take(struct ebb_cluster_rt *cl, struct ebb_wctx *w,
                                    const union ebb_sockaddr *dst)
{
    struct ebb_list *pos = cl->idle.next;

    while (pos != &cl->idle) {
        struct ebb_upconn *u = ebb_list_entry(pos, struct ebb_upconn, link);
        pos = pos->next;
        if (dst && !ebb_sockaddr_same(&u->dst, dst))
            continue;
        ebb_list_del(&u->link);
        cl->nidle--;
        ebb_stat_dec(cl->st->cx_idle);
        ebb_timer_stop(w->loop, &u->timer);
        /* a connection idle for long may have been closed by the upstream's
         * keep-alive timeout just now (a closed one shows as readable); a fresh one is
         * certainly fine */
        if (ebb_loop_now(w->loop) - u->idle_since_ms > UPCONN_PEEK_AFTER_MS &&
            !ebb_upstream_quiet(u)) {
            u->state = EBB_UP_BUSY;   /* not idle any more: close without list ops */
            upconn_close(u);
            pos = cl->idle.next;      /* the close may have changed the list: start over */
            continue;
        }
        return u;
    }
    return NULL;
}

/* A socket bound to the cluster's source address, if it has one (SPEC §9.2: 127.0.0.6 / ::6,
 * so that the pod's rules let the connection reach the app instead of capturing it again). */
static int upconn_socket(struct ebb_cluster_rt *cl, int family)
{
    int one = 1, fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (cl->source.sa.sa_family == family) {
        /* the port is picked at connect time, per destination: bind alone would take one
         * from the ephemeral range for every connection */
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        socklen_t len = family == AF_INET ? sizeof(cl->source.in) : sizeof(cl->source.in6);
        if (bind(fd, &cl->source.sa, len) < 0) {
            int e = errno;
            if (!cl->bind_warned)
                ebb_warn("upstream", "cluster %s: bind %s: %s%s", cl->cfg->name,
                         cl->cfg->bind_address, strerror(e), family == AF_INET6 ?
                         " (the pod needs ::6/128 on lo: ebb init adds it)" : "");
            cl->bind_warned = true;
            close(fd);
            return -1;
        }
    }
    return fd;
}

int ebb_upstream_acquire_to(struct ebb_cluster_rt *cl, struct ebb_wctx *w,
                            const union ebb_sockaddr *dst, ebb_upconn_cb cb, void *owner,
                            struct ebb_upconn **out)
{
    struct ebb_upconn *u = pool_take(cl, w, dst);

    *out = NULL;
    if (!u)
        return ebb_upstream_connect_to(cl, w, dst, cb, owner, out);
    u->state = EBB_UP_BUSY;
    u->cb = cb;
    u->owner = owner;
    u->reused = true;
    u->eof = false;
    ebb_buf_reset(&u->rbuf);
    ebb_buf_reset(&u->wbuf);
    /* READ interest stays: the owner wants it anyway, and an EOF now is its to see */
    ebb_stat_inc(cl->st->cx_reused);
    *out = u;
    return 0;
}

int ebb_upstream_connect_to(struct ebb_cluster_rt *cl, struct ebb_wctx *w,
                            const union ebb_sockaddr *dst, ebb_upconn_cb cb, void *owner,
                            struct ebb_upconn **out)
{
    struct ebb_upconn *u;
    size_t i = 0;

    *out = NULL;
    if (!dst) {
        if (!cl->addrs || cl->addrs->n == 0)
            return EBB_ECONNREFUSED;
        i = cl->rr++ % cl->addrs->n;
    }
    u = calloc(1, sizeof(*u));
    if (!u)
        return EBB_ENOMEM;
    if (dst) {
        u->dst = *dst;
        ebb_sockaddr_str(dst, u->dst_str, sizeof(u->dst_str));
        u->addr_str = u->dst_str;
    } else {
        memcpy(&u->dst, &cl->addrs->a[i].sa, cl->addrs->a[i].len);
        u->addr_str = cl->addrs->a[i].str;
    }
    int fd = upconn_socket(cl, u->dst.sa.sa_family);
    if (fd < 0) {
        free(u);
        return EBB_EIO;
    }
    u->io.fd = fd;
    u->io.cb = upconn_io;
    u->io.data = u;
    u->cl = cl;
    u->w = w;
    u->cb = cb;
    u->owner = owner;
    u->state = EBB_UP_CONNECTING;
    ebb_timer_init(&u->timer, upconn_timer, u);
    u->rbuf.max = w->cfg->limits.buffer_size;
    u->wbuf.max = w->cfg->limits.buffer_size;
    /* a whole head must fit either way, whatever buffer_size says (the rewritten request
     * head is up to max_head + 4096, see build_upstream_head) */
    if (u->rbuf.max < w->cfg->limits.h1.max_head + 4096)
        u->rbuf.max = w->cfg->limits.h1.max_head + 4096;
    if (u->wbuf.max < w->cfg->limits.h1.max_head + 4096)
        u->wbuf.max = w->cfg->limits.h1.max_head + 4096;
    ebb_list_init(&u->link);
    ebb_stat_inc(cl->st->cx_total);
    *out = u;

    socklen_t len = u->dst.sa.sa_family == AF_INET ? sizeof(u->dst.in) : sizeof(u->dst.in6);
    if (connect(fd, &u->dst.sa, len) == 0) {
        /* loopback can connect at once; report it from the loop all the same */
    } else if (errno != EINPROGRESS) {
        int e = errno;
        ebb_debug("upstream", "connect to %s: %s", u->addr_str, strerror(e));
        ebb_stat_inc(cl->st->cx_connect_fail);
        close(fd);
        free(u);
        *out = NULL;
        return e == ECONNREFUSED ? EBB_ECONNREFUSED : EBB_EIO;
    }
    if (ebb_io_set(w->loop, &u->io, EBB_WRITE) < 0) {
        /* epoll_ctl failed: the connect's completion would never be seen */
        ebb_stat_inc(cl->st->cx_connect_fail);
        ebb_stat_inc(w->stats->server.xch_failed_resource);
        close(fd);
        free(u);
        *out = NULL;
        return EBB_ENOMEM;
    }
    ebb_timer_start(w->loop, &u->timer, cl->cfg->connect_timeout_ms);
    return EBB_EAGAIN;
}

void ebb_upstream_release(struct ebb_upconn *u, bool reusable)
{
    struct ebb_cluster_rt *cl = u->cl;

    if (u->state == EBB_UP_CLOSED)
        return;
    if (u->state == EBB_UP_CONNECTING) {
        /* never connected (or failed): not counted active */
        if (u->err == 0)
            u->err = EBB_EIO;
        upconn_close(u);
        return;
    }
    if (!reusable || u->eof || u->wr_failed || ebb_buf_len(&u->rbuf) || ebb_buf_len(&u->wbuf) ||
        cl->nidle >= cl->cfg->pool_max_idle || u->state != EBB_UP_BUSY) {
        upconn_close(u);
        return;
    }
    if (ebb_io_set(u->w->loop, &u->io, EBB_READ) < 0) {
        upconn_close(u);   /* an idle connection nobody watches would never notice its EOF */
        return;
    }
    u->state = EBB_UP_IDLE;
    u->idle_since_ms = ebb_loop_now(u->w->loop);
    u->cb = NULL;
    u->owner = NULL;
    ebb_list_add(&cl->idle, &u->link);
    cl->nidle++;
    ebb_stat_inc(cl->st->cx_idle);
    ebb_timer_start(u->w->loop, &u->timer, cl->cfg->pool_idle_timeout_ms);
}

void ebb_upstream_close_idle(struct ebb_cluster_rt *cl)
{
    while (!ebb_list_empty(&cl->idle)) {
        struct ebb_upconn *u = ebb_list_entry(cl->idle.next, struct ebb_upconn, link);
        upconn_close(u);
    }
}
