/*
 * load.c - the drill's HTTP/1.1 client connection (struct drill_h1c: one
 * keep-alive connection, one request at a time, every response verified
 * with the strict parser and body decoder) and the HTTP/1.1 load users
 * built on it.  The app's outbound calls (app.c) use the same client.
 *
 * Outcome of a request (enum drill_fail in drill.h): connect failure is
 * "refused"; the connection ending before a complete head is "reset";
 * after the head but before the body's last byte is "truncated"; status
 * >= 500 is "5xx"; no answer within --timeout is "timeout".
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ebb/core.h"

#include "drill_run.h"
#include "h1c.h"

#define H1C_PENDING_NONE (-2)

static void h1c_io(struct ebb_loop *loop, struct ebb_io *io, uint32_t events);
static void h1c_timer(struct ebb_loop *loop, struct ebb_timer *t);

/* pending synchronous failure, reported from the timer (never inside request()) */
static int h1c_pending(const struct drill_h1c *c);

void drill_h1c_init(struct drill_h1c *c, struct drill *d, uint16_t port, const char *host,
                    struct drill_counts *counts, bool inbound)
{
    memset(c, 0, sizeof(*c));
    c->d = d;
    c->addr = htonl(INADDR_LOOPBACK);
    c->port = port;
    c->host = host;
    c->counts = counts;
    c->inbound = inbound;
    c->io.fd = -1;
    c->io.cb = h1c_io;
    c->io.data = c;
    c->timeout.cb = h1c_timer;
    c->timeout.data = c;
    c->rbuf.max = 256 * 1024;
    c->wbuf.max = 4096;
    c->status = H1C_PENDING_NONE;
}

static int h1c_pending(const struct drill_h1c *c)
{
    return c->state == DRILL_H1C_CLOSED && c->cb ? c->status : H1C_PENDING_NONE;
}

static void h1c_teardown(struct drill_h1c *c)
{
    if (c->io.fd >= 0) {
        ebb_io_stop(c->d->loop, &c->io);
        close(c->io.fd);
        c->io.fd = -1;
        if (c->inbound)
            c->d->conns--;
    }
    c->state = DRILL_H1C_CLOSED;
    ebb_buf_reset(&c->rbuf);
    ebb_buf_reset(&c->wbuf);
}

/* Ends the current request with fail (-1 = completed) and calls back. */
static void h1c_finish(struct drill_h1c *c, int fail)
{
    struct drill *d = c->d;
    drill_h1c_cb cb = c->cb;
    void *data = c->cb_data;

    if (!cb)
        return;
    c->cb = NULL;
    ebb_timer_stop(d->loop, &c->timeout);
    if (c->inbound)
        d->inflight--;
    else
        d->out_inflight--;
    if ((fail != -1 && fail != DRILL_F_5XX) || c->close_after) {
        if (fail == DRILL_F_RESET || fail == DRILL_F_TRUNCATED || fail == DRILL_F_TIMEOUT) {
            /* the peer is gone or stuck: do not linger */
            struct linger lg = { 1, 0 };
            if (c->io.fd >= 0)
                setsockopt(c->io.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        }
        h1c_teardown(c);
    } else {
        c->state = DRILL_H1C_IDLE;
        ebb_io_set(d->loop, &c->io, EBB_READ);
    }
    c->status = H1C_PENDING_NONE;
    drill_count(d, c->counts, c->inbound, fail);
    cb(c, fail, data);
}

static void h1c_timer(struct ebb_loop *loop, struct ebb_timer *t)
{
    struct drill_h1c *c = t->data;
    int p = h1c_pending(c);
    if (p != H1C_PENDING_NONE) {
        h1c_finish(c, p);
        return;
    }
    h1c_finish(c, DRILL_F_TIMEOUT);
}

static void h1c_fail_later(struct drill_h1c *c, int fail)
{
    h1c_teardown(c);
    c->status = fail;
    ebb_timer_start(c->d->loop, &c->timeout, 0);
}

/* True when an idle pooled connection is still usable (no EOF, no stray bytes). */
static bool h1c_alive(struct drill_h1c *c)
{
    char ch;
    ssize_t n = recv(c->io.fd, &ch, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

void drill_h1c_request(struct drill_h1c *c, const char *path, uint64_t want, drill_h1c_cb cb,
                       void *data)
{
    struct drill *d = c->d;

    EBB_BUG_ON(drill_h1c_busy(c) || c->cb);
    c->cb = cb;
    c->cb_data = data;
    c->want = want;
    c->head_done = false;
    c->got = 0;
    c->status = 0;
    c->close_after = false;
    c->counts->sent++;
    if (c->inbound)
        d->inflight++;
    else
        d->out_inflight++;
    if (!c->msg && !(c->msg = malloc(sizeof(*c->msg)))) {
        h1c_fail_later(c, DRILL_F_OTHER);
        return;
    }
    ebb_buf_reset(&c->wbuf);
    ebb_buf_reset(&c->rbuf);
    ebb_buf_appendf(&c->wbuf, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: ebb-drill\r\n\r\n",
                    path, c->host);
    ebb_timer_start(d->loop, &c->timeout, d->cfg->timeout_ms);

    if (c->state == DRILL_H1C_IDLE && !h1c_alive(c))
        h1c_teardown(c);   /* closed by the server while idle: a client reconnects */
    if (c->state == DRILL_H1C_IDLE) {
        c->state = DRILL_H1C_BUSY;
        ebb_io_set(d->loop, &c->io, EBB_READ | EBB_WRITE);
        return;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        h1c_fail_later(c, DRILL_F_REFUSED);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(c->port),
                              .sin_addr.s_addr = c->addr };
    c->io.fd = fd;
    if (c->inbound)
        d->conns++;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
        c->state = DRILL_H1C_BUSY;
        ebb_io_set(d->loop, &c->io, EBB_READ | EBB_WRITE);
    } else if (errno == EINPROGRESS) {
        c->state = DRILL_H1C_CONNECTING;
        ebb_io_set(d->loop, &c->io, EBB_WRITE);
    } else {
        h1c_fail_later(c, DRILL_F_REFUSED);
    }
}

void drill_h1c_close(struct drill_h1c *c)
{
    if (c->cb) {
        if (c->inbound)
            c->d->inflight--;
        else
            c->d->out_inflight--;
        c->cb = NULL;
    }
    ebb_timer_stop(c->d->loop, &c->timeout);
    h1c_teardown(c);
    free(c->msg);
    c->msg = NULL;
    ebb_buf_free(&c->rbuf);
    ebb_buf_free(&c->wbuf);
}

/* The response is complete: classify it. */
static void h1c_complete(struct drill_h1c *c)
{
    int fail = -1;
    if (c->status >= 500)
        fail = DRILL_F_5XX;
    else if (c->status < 200 || c->status >= 300)
        fail = DRILL_F_OTHER;
    else if (c->want && c->got != c->want)
        fail = DRILL_F_TRUNCATED;
    if (ebb_buf_len(&c->rbuf))
        c->close_after = true;   /* bytes nobody asked for: do not reuse */
    h1c_finish(c, fail);
}

/* Parses what has arrived.  Returns true when the request ended. */
static bool h1c_process(struct drill_h1c *c)
{
    while (!c->head_done) {
        int rc = ebb_h1_parse_response(ebb_buf_start(&c->rbuf), ebb_buf_len(&c->rbuf), NULL,
                                       "GET", 3, c->msg);
        if (rc == EBB_H1_AGAIN)
            return false;
        if (rc < 0) {
            h1c_finish(c, DRILL_F_OTHER);
            return true;
        }
        ebb_buf_consume(&c->rbuf, (size_t)rc);
        if (c->msg->status < 200)
            continue;   /* interim response */
        c->head_done = true;
        c->status = c->msg->status;
        c->close_after = (c->msg->flags & EBB_H1_F_CONN_CLOSE) != 0;
        ebb_h1_body_init(&c->body, c->msg);
    }
    for (;;) {
        size_t consumed = 0, dlen = 0;
        const char *data = NULL;
        if (ebb_h1_body_done(&c->body)) {
            h1c_complete(c);
            return true;
        }
        if (ebb_buf_len(&c->rbuf) == 0)
            return false;
        int rc = ebb_h1_body_parse(&c->body, ebb_buf_start(&c->rbuf), ebb_buf_len(&c->rbuf),
                                   &consumed, &data, &dlen);
        ebb_buf_consume(&c->rbuf, consumed);
        if (rc == EBB_H1_BODY_DATA)
            c->got += dlen;
        else if (rc == EBB_H1_BODY_DONE) {
            h1c_complete(c);
            return true;
        } else if (rc == EBB_H1_AGAIN)
            return false;
        else if (rc < 0 && rc != EBB_H1_BODY_TRAILER) {
            h1c_finish(c, DRILL_F_TRUNCATED);
            return true;
        }
    }
}

/* The connection ended (EOF or error) while a request was in flight. */
static void h1c_ended(struct drill_h1c *c, bool eof)
{
    if (c->head_done && eof && c->body.state == EBB_H1_BS_EOF) {
        c->close_after = true;
        h1c_complete(c);
    } else {
        h1c_finish(c, c->head_done ? DRILL_F_TRUNCATED : DRILL_F_RESET);
    }
}

static void h1c_io(struct ebb_loop *loop, struct ebb_io *io, uint32_t events)
{
    struct drill_h1c *c = io->data;

    if (c->state == DRILL_H1C_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(io->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            h1c_teardown(c);
            h1c_finish(c, DRILL_F_REFUSED);
            return;
        }
        if (!(events & (EBB_WRITE | EPOLLERR | EPOLLHUP)))
            return;
        c->state = DRILL_H1C_BUSY;
        ebb_io_set(loop, io, EBB_READ | EBB_WRITE);
        events = EBB_WRITE;
    }
    if (c->state == DRILL_H1C_IDLE) {
        /* EOF, reset or stray bytes on an idle connection: close it, no request lost */
        h1c_teardown(c);
        return;
    }
    if (c->state != DRILL_H1C_BUSY)
        return;
    if ((events & EBB_WRITE) && ebb_buf_len(&c->wbuf)) {
        ssize_t n = ebb_buf_write_fd(&c->wbuf, io->fd);
        if (n == EBB_EIO) {
            /* EPIPE / ECONNRESET: read what the server may have said first */
            events |= EBB_READ;
        } else if (ebb_buf_len(&c->wbuf) == 0) {
            ebb_io_set(loop, io, EBB_READ);
        }
    }
    if (!(events & (EBB_READ | EPOLLHUP | EPOLLERR)))
        return;
    for (int i = 0; i < 16; i++) {
        if (ebb_buf_room(&c->rbuf) == 0) {
            h1c_finish(c, DRILL_F_OTHER);   /* a head larger than our buffer */
            return;
        }
        ssize_t n = ebb_buf_read_fd(&c->rbuf, io->fd);
        if (n > 0) {
            if (h1c_process(c))
                return;
            continue;
        }
        if (n == 0) {
            h1c_ended(c, true);
            return;
        }
        if (n == EBB_EAGAIN)
            return;
        h1c_ended(c, false);
        return;
    }
}

/* --- HTTP/1.1 load users --- */

struct drill_user {
    struct drill     *d;
    struct drill_h1c  c;
    struct ebb_timer  think;   /* next request */
    struct ebb_list   link;    /* in d->users */
    char              path[1024];  /* a --target path fits */
};

static void user_next(struct ebb_loop *loop, struct ebb_timer *t);

static void user_done(struct drill_h1c *c, int fail, void *data)
{
    struct drill_user *u = data;
    struct drill *d = u->d;
    uint64_t delay = d->cfg->think_ms;

    if (d->cfg->scn == DRILL_IDLE_POOL && delay)
        delay = delay / 2 + drill_rand(d) % delay;   /* mean think_ms, spread +-50% */
    if (fail != -1 && delay < DRILL_RETRY_MS)
        delay = DRILL_RETRY_MS;   /* a client backs off a little after an error */
    ebb_timer_start(d->loop, &u->think, delay);
    drill_poke(d);
}

static void user_next(struct ebb_loop *loop, struct ebb_timer *t)
{
    struct drill_user *u = t->data;
    struct drill *d = u->d;
    if (d->removed || d->ending || drill_h1c_busy(&u->c))
        return;
    /* a --target's body size is its own: only the framing is checked */
    drill_h1c_request(&u->c, u->path, d->cfg->target ? 0 : d->cfg->body, user_done, u);
}

int drill_load_start(struct drill *d)
{
    const struct drill_cfg *cfg = d->cfg;

    if (cfg->scn == DRILL_H2_STREAMS || cfg->scn == DRILL_GRPC)
        return drill_h2_start(d);
    for (unsigned i = 0; i < cfg->clients; i++) {
        struct drill_user *u = calloc(1, sizeof(*u));
        if (!u)
            return -1;
        u->d = d;
        drill_h1c_init(&u->c, d, d->listen_port, drill_load_authority(d), &d->r->in, true);
        u->c.addr = drill_load_addr(d);
        u->think.cb = user_next;
        u->think.data = u;
        if (cfg->target)
            snprintf(u->path, sizeof(u->path), "%s", cfg->target->path);
        else
            snprintf(u->path, sizeof(u->path), "/%s?ms=%llu&size=%llu",
                     cfg->scn == DRILL_OUTBOUND ? "call" : "work",
                     (unsigned long long)cfg->latency_ms, (unsigned long long)cfg->body);
        ebb_list_add_tail(&d->users, &u->link);
        /* stagger the first requests a little: idle-pool users over 200 ms */
        uint64_t at = cfg->scn == DRILL_IDLE_POOL ? drill_rand(d) % 200 : i;
        ebb_timer_start(d->loop, &u->think, at);
    }
    return 0;
}

void drill_load_stop(struct drill *d)
{
    for (struct ebb_list *e = d->users.next; e != &d->users; e = e->next) {
        struct drill_user *u = ebb_container_of(e, struct drill_user, link);
        ebb_timer_stop(d->loop, &u->think);
        if (u->c.cb)
            h1c_finish(&u->c, DRILL_F_TIMEOUT);
        ebb_timer_stop(d->loop, &u->think);
    }
    drill_h2_stop(d);
}

void drill_load_free(struct drill *d)
{
    while (!ebb_list_empty(&d->users)) {
        struct drill_user *u = ebb_container_of(d->users.next, struct drill_user, link);
        ebb_list_del(&u->link);
        ebb_timer_stop(d->loop, &u->think);
        drill_h1c_close(&u->c);
        free(u);
    }
    drill_h2_free(d);
}
