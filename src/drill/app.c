/*
 * app.c - the drill's target app and its "remote service", in-process on
 * the drill's event loop (one loop, one thread: its timings are the
 * drill's own, and its counters need no IPC).
 *
 * Endpoints (GET only, HTTP/1.1 keep-alive):
 *   /work?ms=L&size=B    answer 200 with B body bytes after L ms
 *   /call?ms=L&size=B    after L ms, call the remote service through the
 *                        sidecar's outbound listener; 200 with B bytes if
 *                        that call succeeded, else 502
 *   /remote?size=B       (remote service) answer 200 with B bytes at once
 *
 * Termination (drill_app_sigterm, sent with the proxy's stop signal): the
 * app keeps serving -- as an app with a preStop hook, or one that finishes
 * what it was given, does -- and, in the outbound scenario, does its
 * shutdown work: one call through the outbound listener every
 * shutdown_every_ms for shutdown_ms (state sync, deregistration).  It
 * exits (closes its listener and every connection, including its pooled
 * outbound connections) once that work is done, nothing is in flight, and
 * the endpoint removal is one second old (a request a client sent just
 * before the removal may still be inside the proxy).
 *
 * Fault injection (--app-reset-every N): the app answers every Nth request
 * with its head and half its body, waits 50 ms, and resets the connection.
 */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ebb/core.h"

#include "drill_run.h"
#include "h1c.h"

#define APP_MAX_OUT 32
#define APP_REMOTE_SIZE 64

enum app_conn_state {
    AC_READ = 0,   /* waiting for a request head */
    AC_WAIT,       /* request latency timer running */
    AC_CALL,       /* waiting for the outbound call */
    AC_WRITE,      /* response being written */
    AC_RESET,      /* fault injection: half a response written, RST pending */
};

struct app_out;

/* One accepted connection.  Owned by the app (a->conns). */
struct app_conn {
    struct drill_app   *a;
    struct ebb_io       io;
    struct ebb_buf      rbuf, wbuf;
    struct ebb_timer    timer;      /* latency, or the RST delay */
    enum app_conn_state state;
    uint64_t            size;       /* body bytes to answer */
    bool                call;       /* /call */
    bool                close_after;
    bool                counted;    /* counted in a->inflight */
    struct app_out     *out;        /* the outbound call it waits for */
    struct ebb_list     link;
    struct ebb_deferred dfr;      /* its deferred free (ebb_loop_defer) */
};

/* One pooled outbound client connection of the app. */
struct app_out {
    struct drill_app *a;
    struct drill_h1c  c;
    struct app_conn  *owner;        /* the /call request waiting for it, or NULL */
};

struct drill_app {
    struct drill     *d;
    bool              remote;       /* the remote service, not the app */
    struct ebb_io     lio;          /* listening socket */
    struct ebb_list   conns;
    uint64_t          nreq;         /* requests received */
    unsigned          inflight;     /* requests received and not yet answered */
    bool              terminating, exited;
    struct ebb_timer  shutdown;     /* next shutdown call */
    unsigned          calls_left;   /* shutdown calls still to make */
    struct app_out    out[APP_MAX_OUT]; /* [0] is the shutdown work's connection */
};

static void conn_close(struct app_conn *ac);
static void conn_process(struct app_conn *ac);
static void app_check_exit(struct drill_app *a);

static void conn_free(void *p)
{
    struct app_conn *ac = p;
    ebb_buf_free(&ac->rbuf);
    ebb_buf_free(&ac->wbuf);
    free(ac);
}

static void conn_close(struct app_conn *ac)
{
    struct drill_app *a = ac->a;
    if (ac->io.fd < 0)
        return;
    ebb_io_stop(a->d->loop, &ac->io);
    close(ac->io.fd);
    ac->io.fd = -1;
    ebb_timer_stop(a->d->loop, &ac->timer);
    if (ac->out)
        ac->out->owner = NULL;
    ac->out = NULL;
    if (ac->counted) {
        ac->counted = false;
        a->inflight--;
    }
    ebb_list_del(&ac->link);
    ebb_loop_defer(a->d->loop, &ac->dfr, conn_free, ac);
    app_check_exit(a);
}

static void conn_respond(struct app_conn *ac, int status, uint64_t size)
{
    static char pattern[4096];
    if (!pattern[0])
        for (size_t i = 0; i < sizeof(pattern); i++)
            pattern[i] = (char)('a' + i % 26);
    ebb_buf_reset(&ac->wbuf);
    ac->wbuf.max = size + 512 > EBB_BUF_DEFAULT_MAX ? size + 512 : EBB_BUF_DEFAULT_MAX;
    ebb_buf_appendf(&ac->wbuf, "HTTP/1.1 %d %s\r\nContent-Length: %llu\r\n"
                    "Content-Type: application/octet-stream\r\n%s\r\n", status,
                    status == 200 ? "OK" : status == 502 ? "Bad Gateway" : "Bad Request",
                    (unsigned long long)size, ac->close_after ? "Connection: close\r\n" : "");
    for (uint64_t left = size; left;) {
        size_t n = left > sizeof(pattern) ? sizeof(pattern) : (size_t)left;
        ebb_buf_append(&ac->wbuf, pattern, n);
        left -= n;
    }
    ac->state = AC_WRITE;
    ebb_io_set(ac->a->d->loop, &ac->io, EBB_READ | EBB_WRITE);
}

static void conn_written(struct app_conn *ac)
{
    struct drill_app *a = ac->a;
    if (ac->counted) {
        ac->counted = false;
        a->inflight--;
    }
    if (ac->close_after) {
        conn_close(ac);
        return;
    }
    ac->state = AC_READ;
    ebb_io_set(a->d->loop, &ac->io, EBB_READ);
    app_check_exit(a);
    if (ac->io.fd >= 0 && ebb_buf_len(&ac->rbuf))
        conn_process(ac);
}

static void out_done(struct drill_h1c *c, int fail, void *data)
{
    struct app_out *o = data;
    struct app_conn *ac = o->owner;
    o->owner = NULL;
    if (ac) {
        ac->out = NULL;
        conn_respond(ac, fail == -1 ? 200 : 502, ac->size);
    }
    app_check_exit(o->a);
    drill_poke(o->a->d);
}

static void conn_timer(struct ebb_loop *loop, struct ebb_timer *t)
{
    struct app_conn *ac = t->data;
    struct drill_app *a = ac->a;

    if (ac->state == AC_RESET) {
        struct linger lg = { 1, 0 };
        setsockopt(ac->io.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        conn_close(ac);
        return;
    }
    if (ac->state != AC_WAIT)
        return;
    if (!ac->call) {
        conn_respond(ac, 200, ac->size);
        return;
    }
    /* /call: borrow a free outbound connection (slot 0 is the shutdown work's) */
    for (size_t i = 1; i < APP_MAX_OUT; i++) {
        struct app_out *o = &a->out[i];
        if (drill_h1c_busy(&o->c) || o->c.cb)
            continue;
        o->owner = ac;
        ac->out = o;
        ac->state = AC_CALL;
        drill_h1c_request(&o->c, "/remote?size=64", APP_REMOTE_SIZE, out_done, o);
        return;
    }
    conn_respond(ac, 502, ac->size);   /* more concurrent calls than slots */
}

static uint64_t query_u64(const char *q, size_t qlen, const char *key, uint64_t dflt)
{
    size_t klen = strlen(key);
    for (size_t i = 0; i + klen < qlen; i++) {
        if ((i == 0 || q[i - 1] == '&' || q[i - 1] == '?') && memcmp(q + i, key, klen) == 0 &&
            q[i + klen] == '=') {
            uint64_t v = 0;
            for (size_t j = i + klen + 1; j < qlen && q[j] >= '0' && q[j] <= '9'; j++)
                v = v * 10 + (uint64_t)(q[j] - '0');
            return v;
        }
    }
    return dflt;
}

static void conn_process(struct app_conn *ac)
{
    struct drill_app *a = ac->a;
    struct ebb_h1_msg *m;

    if (ac->state != AC_READ || !ebb_buf_len(&ac->rbuf))
        return;
    m = malloc(sizeof(*m));
    if (!m) {
        conn_close(ac);
        return;
    }
    int rc = ebb_h1_parse_request(ebb_buf_start(&ac->rbuf), ebb_buf_len(&ac->rbuf), NULL, m);
    if (rc == EBB_H1_AGAIN) {
        free(m);
        return;
    }
    if (rc < 0 || m->framing != EBB_H1_BODY_NONE) {
        free(m);
        ac->close_after = true;
        ac->counted = false;
        conn_respond(ac, 400, 0);
        ebb_buf_reset(&ac->rbuf);
        return;
    }
    const char *p = m->path.p;
    size_t plen = m->path.len;
    ac->close_after = (m->flags & EBB_H1_F_CONN_CLOSE) != 0;
    ac->call = plen >= 5 && memcmp(p, "/call", 5) == 0;
    uint64_t ms = query_u64(p, plen, "ms", 0);
    ac->size = query_u64(p, plen, "size", a->remote ? APP_REMOTE_SIZE : 1024);
    if (ac->size > 16 * 1024 * 1024)
        ac->size = 16 * 1024 * 1024;
    free(m);
    ebb_buf_consume(&ac->rbuf, (size_t)rc);
    a->nreq++;
    a->inflight++;
    ac->counted = true;
    ebb_io_set(a->d->loop, &ac->io, EBB_READ);

    unsigned every = a->d->cfg->app_reset_every;
    if (!a->remote && every && a->nreq % every == 0) {
        /* fault: head and half the body now, RST in 50 ms */
        conn_respond(ac, 200, ac->size);
        size_t keep = ebb_buf_len(&ac->wbuf) - (size_t)(ac->size - ac->size / 2);
        ac->wbuf.tail = ac->wbuf.head + keep;
        ebb_buf_write_fd(&ac->wbuf, ac->io.fd);
        ac->state = AC_RESET;
        ebb_io_set(a->d->loop, &ac->io, EBB_READ);
        ebb_timer_start(a->d->loop, &ac->timer, 50);
        return;
    }
    ac->state = AC_WAIT;
    ebb_timer_start(a->d->loop, &ac->timer, ms);
}

static void conn_io(struct ebb_loop *loop, struct ebb_io *io, uint32_t events)
{
    struct app_conn *ac = io->data;

    if ((events & EBB_WRITE) && ac->state == AC_WRITE) {
        ssize_t n = ebb_buf_write_fd(&ac->wbuf, io->fd);
        if (n == EBB_EIO) {
            conn_close(ac);
            return;
        }
        if (ebb_buf_len(&ac->wbuf) == 0) {
            conn_written(ac);
            if (ac->io.fd < 0)
                return;
        }
    }
    if (!(events & (EBB_READ | EPOLLHUP | EPOLLERR)))
        return;
    ssize_t n = ebb_buf_read_fd(&ac->rbuf, io->fd);
    if (n == 0 || n == EBB_EIO || n == EBB_ETOOBIG) {
        conn_close(ac);   /* the client (proxy) went away; an unanswered request is dropped */
        return;
    }
    if (n > 0)
        conn_process(ac);
}

static void app_accept(struct ebb_loop *loop, struct ebb_io *io, uint32_t events)
{
    struct drill_app *a = io->data;
    for (int i = 0; i < 64; i++) {
        int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        struct app_conn *ac = calloc(1, sizeof(*ac));
        if (!ac) {
            close(fd);
            continue;
        }
        ac->a = a;
        ac->io.fd = fd;
        ac->io.cb = conn_io;
        ac->io.data = ac;
        ac->timer.cb = conn_timer;
        ac->timer.data = ac;
        ac->rbuf.max = 64 * 1024;
        ebb_list_add_tail(&a->conns, &ac->link);
        ebb_io_set(loop, &ac->io, EBB_READ);
    }
}

struct drill_app *drill_app_new(struct drill *d, bool remote, uint16_t *port)
{
    struct drill_app *a = calloc(1, sizeof(*a));
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(sa);
    int one = 1;

    if (!a)
        return NULL;
    a->d = d;
    a->remote = remote;
    ebb_list_init(&a->conns);
    a->lio.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (a->lio.fd < 0)
        goto fail_app;
    setsockopt(a->lio.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(a->lio.fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(a->lio.fd, 1024) < 0 ||
        getsockname(a->lio.fd, (struct sockaddr *)&sa, &len) < 0)
        goto fail_sock;
    *port = ntohs(sa.sin_port);
    a->lio.cb = app_accept;
    a->lio.data = a;
    ebb_io_set(d->loop, &a->lio, EBB_READ);
    for (size_t i = 0; i < APP_MAX_OUT; i++) {
        a->out[i].a = a;
        drill_h1c_init(&a->out[i].c, d, d->outbound_port, "remote.local", &d->r->out, false);
    }
    return a;

fail_sock:
    close(a->lio.fd);
fail_app:
    free(a);
    return NULL;
}

/* Called once the proxy's outbound port is known (ports are assigned first). */
static void app_retarget(struct drill_app *a)
{
    for (size_t i = 0; i < APP_MAX_OUT; i++)
        a->out[i].c.port = a->d->outbound_port;
}

static void shutdown_call_done(struct drill_h1c *c, int fail, void *data)
{
    struct drill_app *a = data;
    if (a->calls_left)
        ebb_timer_start(a->d->loop, &a->shutdown, a->d->cfg->shutdown_every_ms);
    app_check_exit(a);
    drill_poke(a->d);
}

static void shutdown_tick(struct ebb_loop *loop, struct ebb_timer *t)
{
    struct drill_app *a = t->data;
    if (a->exited || !a->calls_left)
        return;
    a->calls_left--;
    drill_h1c_request(&a->out[0].c, "/remote?size=64", APP_REMOTE_SIZE, shutdown_call_done, a);
}

void drill_app_sigterm(struct drill_app *a)
{
    const struct drill_cfg *cfg = a->d->cfg;
    if (a->terminating)
        return;
    a->terminating = true;
    app_retarget(a);
    if (cfg->scn == DRILL_OUTBOUND && !a->remote && cfg->shutdown_every_ms) {
        a->calls_left = (unsigned)(cfg->shutdown_ms / cfg->shutdown_every_ms);
        a->shutdown.cb = shutdown_tick;
        a->shutdown.data = a;
        ebb_timer_start(a->d->loop, &a->shutdown, 0);
    }
    app_check_exit(a);
}

static void app_close_all(struct drill_app *a)
{
    if (a->lio.fd >= 0) {
        ebb_io_stop(a->d->loop, &a->lio);
        close(a->lio.fd);
        a->lio.fd = -1;
    }
    while (!ebb_list_empty(&a->conns))
        conn_close(ebb_container_of(a->conns.next, struct app_conn, link));
    for (size_t i = 0; i < APP_MAX_OUT; i++)
        drill_h1c_close(&a->out[i].c);
    ebb_timer_stop(a->d->loop, &a->shutdown);
}

static void app_check_exit(struct drill_app *a)
{
    struct drill *d = a->d;
    /* one second after the removal: requests already inside the proxy still arrive */
    if (a->remote || !a->terminating || a->exited || !d->removed ||
        drill_t(d) < d->r->removal_ms + DRILL_APP_SETTLE_MS)
        return;
    if (a->calls_left || a->inflight || a->out[0].c.cb)
        return;
    a->exited = true;
    app_close_all(a);
    drill_result_event(d->r, drill_t(d), DRILL_EV_APP_EXIT, "app exits (shutdown done)");
    drill_progress(d, "app: shutdown done, exiting (closes its connections)");
    drill_poke(d);
}

bool drill_app_done(const struct drill_app *a)
{
    return a->remote || a->exited;
}

/* The drill calls this at endpoint removal and at every poke. */
void drill_app_poke(struct drill_app *a)
{
    app_check_exit(a);
}

void drill_app_free(struct drill_app *a)
{
    if (!a)
        return;
    a->exited = true;
    app_close_all(a);
    free(a);
}
