/*
 * upconn.c - reads and writes on an upstream connection (upconn.h), the
 * same for every owner: the HTTP/1.1 client, the h2c client, a TCP relay,
 * a tunnel after 101.
 */
#include <errno.h>
#include <sys/socket.h>

#include "ebb/buf.h"
#include "ebb/core.h"
#include "ebb/loop.h"
#include "ebb/stats.h"
#include "ebb/upconn.h"
#include "ebb/wctx.h"

int ebb_upstream_want(struct ebb_upconn *u, uint32_t events)
{
    if (u->state != EBB_UP_BUSY || ebb_io_set(u->w->loop, &u->io, events) == 0)
        return 0;
    ebb_stat_inc(u->w->stats->server.xch_failed_resource);
    return EBB_EIO;
}

/* Marks what a read's result says about the peer: EOF, or an error (reset).  Returns n. */
static ssize_t upconn_mark(struct ebb_upconn *u, ssize_t n)
{
    if (n == 0)
        u->eof = true;
    else if (n < 0 && n != EBB_EAGAIN && n != EBB_ETOOBIG)
        u->eof = u->reset = true;
    return n;
}

ssize_t ebb_upstream_read(struct ebb_upconn *u)
{
    ssize_t n = ebb_buf_recv_fd(&u->rbuf, u->io.fd);
    if (n == EBB_ENOMEM)
        ebb_stat_inc(u->w->stats->server.xch_failed_resource);
    return upconn_mark(u, n);
}

ssize_t ebb_upstream_recv(struct ebb_upconn *u, void *p, size_t n)
{
    ssize_t r;

    do {
        r = recv(u->io.fd, p, n, 0);
    } while (r < 0 && errno == EINTR);
    if (r < 0)
        r = errno == EAGAIN || errno == EWOULDBLOCK ? EBB_EAGAIN : EBB_EIO;
    return upconn_mark(u, r);
}

bool ebb_upstream_quiet(struct ebb_upconn *u)
{
    char c;
    ssize_t n = recv(u->io.fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

int ebb_upstream_flush(struct ebb_upconn *u)
{
    while (ebb_buf_len(&u->wbuf)) {
        ssize_t n = ebb_buf_write_fd(&u->wbuf, u->io.fd);
        if (n == EBB_EAGAIN)
            return 0;
        if (n < 0)
            return EBB_EIO;
    }
    return 0;
}

void ebb_upstream_read_some(struct ebb_upconn *u)
{
    for (int i = 0; i < 4; i++) {
        ssize_t n = ebb_upstream_read(u);   /* sets eof (and reset) */
        if (n > 0 && ebb_buf_tailroom(&u->rbuf) && ebb_buf_room(&u->rbuf))
            break;   /* short read: the socket is drained, skip the EAGAIN round trip */
        if (n <= 0)
            break;
    }
}

void ebb_upstream_send(struct ebb_upconn *u)
{
    if (ebb_upstream_flush(u) < 0) {
        u->wr_failed = true;
        ebb_buf_reset(&u->wbuf);
    }
}
