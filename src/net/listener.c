/*
 * listener.c - listening sockets and accept.  Each worker has its own
 * socket per data-plane listener (SO_REUSEPORT), so accepts never contend.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ebb/config.h"
#include "ebb/conn.h"
#include "ebb/core.h"
#include "ebb/listener.h"
#include "ebb/log.h"
#include "ebb/stats.h"

int ebb_listen_socket(const char *addr, uint16_t port, bool reuseport, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int one = 1, fd;

    memset(&ss, 0, sizeof(ss));
    if (strchr(addr, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        if (inet_pton(AF_INET6, addr, &s6->sin6_addr) != 1)
            goto bad_addr;
        len = sizeof(*s6);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        if (inet_pton(AF_INET, addr, &s4->sin_addr) != 1)
            goto bad_addr;
        len = sizeof(*s4);
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return EBB_EIO;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    /* an IPv6 listener takes IPv6 only, so a 0.0.0.0 and a :: listener can share a port (a
     * dual-stack pod's 15006), whatever net.ipv6.bindv6only says */
    if (ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (reuseport)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
        snprintf(err, errlen, "bind %s:%u: %s", addr, port, strerror(errno));
        close(fd);
        return EBB_EIO;
    }
    if (listen(fd, 4096) < 0) {
        snprintf(err, errlen, "listen %s:%u: %s", addr, port, strerror(errno));
        close(fd);
        return EBB_EIO;
    }
    return fd;

bad_addr:
    snprintf(err, errlen, "bad listen address \"%s\"", addr);
    return EBB_EINVAL;
}

static void conn_io(struct ebb_loop *loop, struct ebb_io *io, uint32_t events)
{
    struct ebb_conn *c = io->data;
    if (c->flags & EBB_CONN_F_FREED)
        return;
    c->ops->on_io(c, events);
}

static void peer_string(struct ebb_conn *c)
{
    const void *src;
    if (c->peer.sa.sa_family == AF_INET6)
        src = &c->peer.in6.sin6_addr;
    else
        src = &c->peer.in.sin_addr;
    if (!inet_ntop(c->peer.sa.sa_family, src, c->peer_str, sizeof(c->peer_str)))
        strcpy(c->peer_str, "unknown");
}

/* SPEC §9.2: a connection iptables REDIRECTed here keeps where it was going.  One that was
 * not (no conntrack entry, or its original destination is this socket's own address) stays
 * an ordinary connection. */
static void conn_original_dst(struct ebb_conn *c)
{
    union ebb_sockaddr od, local;
    socklen_t ol = sizeof(od), ll = sizeof(local);
    int level = c->peer.sa.sa_family == AF_INET6 ? SOL_IPV6 : SOL_IP;

    memset(&od, 0, sizeof(od));
    if (getsockopt(c->io.fd, level, EBB_SO_ORIGINAL_DST, &od, &ol) < 0 ||
        getsockname(c->io.fd, &local.sa, &ll) < 0 || ebb_sockaddr_same(&od, &local))
        return;
    c->orig_dst = od;
    c->flags |= EBB_CONN_F_REDIRECTED;
}

#define LISTENER_ACCEPT_PAUSE_MS 100

static void accept_resume(struct ebb_loop *loop, struct ebb_timer *t)
{
    struct ebb_listener *l = t->data;
    if (l->io.fd >= 0 && ebb_io_set(loop, &l->io, EBB_READ) < 0)
        ebb_timer_start(loop, &l->accept_pause, LISTENER_ACCEPT_PAUSE_MS);   /* try again */
}

struct ebb_conn *ebb_listener_adopt(struct ebb_listener *l, int fd, const struct sockaddr *sa,
                                    socklen_t sl)
{
    const struct ebb_listener_env *env = l->env;
    struct ebb_loop *loop = l->loop;
    struct ebb_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return NULL;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->io.fd = fd;
    c->io.cb = conn_io;
    c->io.data = c;
    c->l = l;
    c->w = l->w;
    c->ops = l->ops;
    memcpy(&c->peer, sa, EBB_MIN((size_t)sl, sizeof(c->peer)));
    c->accepted_ms = ebb_loop_now(loop);
    peer_string(c);
    conn_original_dst(c);
    if ((c->flags & EBB_CONN_F_REDIRECTED) && l->captured_ops)
        c->ops = l->captured_ops;
    c->rbuf.max = env->rbuf_max;
    c->wbuf.max = env->wbuf_max;
    ebb_list_add_tail(&l->conns, &c->link);
    atomic_fetch_add_explicit(l->open, 1, memory_order_relaxed);
    ebb_stat_inc(l->st->cx_active);
    ebb_stat_inc(l->st->cx_total);
    c->id = env->conn_opened(env->owner);
    ebb_debug("conn", "#%llu accepted on %s from %s", (unsigned long long)c->id,
              l->cfg->name, c->peer_str);
    if (c->ops->init(c) < 0) {
        ebb_conn_close(c, false);
        return NULL;
    }
    return c;
}

/* Accepts up to max connections.  Returns true once the socket holds no more (or accepts
 * paused: out of descriptors). */
static bool accept_some(struct ebb_loop *loop, struct ebb_listener *l, int max)
{
    for (int i = 0; i < max && l->io.fd >= 0; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(l->io.fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* the pending connection stays queued and the socket stays readable:
                 * retrying at once would spin (level-triggered) and flood the log, so
                 * pause this listener until some descriptors are likely free (nginx
                 * does the same) */
                ebb_warn("listener", "%s: accept: %s; pausing accepts for %d ms", l->cfg->name,
                         strerror(errno), LISTENER_ACCEPT_PAUSE_MS);
                ebb_io_stop(loop, &l->io);
                l->accept_pause.cb = accept_resume;
                l->accept_pause.data = l;
                ebb_timer_start(loop, &l->accept_pause, LISTENER_ACCEPT_PAUSE_MS);
                return true;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                ebb_warn("listener", "%s: accept: %s", l->cfg->name, strerror(errno));
            return true;
        }
        /* max_connections counts every worker's connections: one shared atomic, touched per
         * connection (the per-worker stats are for reading, summed at scrape time) */
        if (l->cfg->max_connections &&
            atomic_load_explicit(l->open, memory_order_relaxed) >=
                (int64_t)l->cfg->max_connections) {
            ebb_stat_inc(l->st->cx_overflow);
            close(fd);
            continue;
        }
        ebb_listener_adopt(l, fd, (const struct sockaddr *)&ss, sl);
    }
    return l->io.fd < 0;
}

static void accept_ready(struct ebb_loop *loop, struct ebb_io *io, uint32_t events)
{
    accept_some(loop, io->data, 64);   /* bounded: one busy listener cannot starve the loop */
}

void ebb_listener_quiesce(struct ebb_listener *l)
{
    if (!l->loop)
        return;
    for (int i = 0; i < 1024 && l->io.fd >= 0 && !accept_some(l->loop, l, 64); i++)
        ;
    ebb_listener_stop(l);
}

int ebb_listener_start(struct ebb_listener *l)
{
    l->io.cb = accept_ready;
    l->io.data = l;
    return ebb_io_set(l->loop, &l->io, EBB_READ);
}

void ebb_listener_stop(struct ebb_listener *l)
{
    if (!l->loop)
        return;   /* never set up (startup failed before this listener) */
    ebb_timer_stop(l->loop, &l->accept_pause);
    if (l->io.fd < 0)
        return;
    ebb_io_stop(l->loop, &l->io);
    close(l->io.fd);
    l->io.fd = -1;
}
