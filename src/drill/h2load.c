/*
 * h2load.c - the drill's HTTP/2 load (h2c, prior knowledge) with an
 * nghttp2 client session per connection: cfg->clients connections, each
 * keeping cfg->streams streams in flight until the endpoint removal.
 *
 * A GOAWAY stops new streams on that connection; the client opens a
 * replacement connection (as Go, Envoy or curl do) while the endpoint is
 * still listed.  Streams the server refused (REFUSED_STREAM, or above the
 * GOAWAY's last-stream-id: nghttp2 closes those with REFUSED_STREAM) count
 * as "refused"; a connection attempt that fails counts as one refused
 * request.  Streams still open when a connection ends count as "reset"
 * (no response head yet) or "truncated" (head received).
 *
 * In the grpc scenario every stream is a gRPC call (POST, application/grpc,
 * te: trailers, one request message), alternately /ebb.drill.Load/Unary
 * and /Stream (grpc_app.c): it succeeded only with grpc-status 0 and every
 * message byte; an answer without grpc-status counts as truncated, a
 * non-zero grpc-status as "other" and in r->grpc_status[].
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ebb/buf.h"
#include "ebb/core.h"

#include "drill_run.h"

struct drill_h2;

/* One stream.  Owned by its connection (h->streams) until it closes. */
struct h2_stream {
    struct drill_h2 *h;
    int32_t          id;
    int              status;
    uint64_t         got;
    bool             head;
    bool             timed_out;
    bool             grpc_stream;   /* grpc: the Stream method (else Unary) */
    int              grpc_status;   /* grpc: -1 until a grpc-status field arrives */
    size_t           req_off;       /* grpc: request message bytes sent */
    struct ebb_timer timer;
    struct ebb_list  link;
};

/* One client connection.  Owned by the drill (d->h2conns). */
struct drill_h2 {
    struct drill     *d;
    struct ebb_io     io;
    nghttp2_session  *s;
    struct ebb_buf    wbuf;
    bool              connecting;
    bool              live;      /* counted in d->h2_live: takes new streams */
    bool              dead;
    unsigned          active;
    struct ebb_list   streams;
    struct ebb_list   link;
    char              path[1024];  /* a --target path fits */
    struct ebb_deferred dfr;      /* its deferred free (ebb_loop_defer) */
};

static void h2_top_up(struct drill *d);
static void h2_kill(struct drill_h2 *h, bool graceful);

static void h2_not_live(struct drill_h2 *h)
{
    if (h->live) {
        h->live = false;
        h->d->h2_live--;
        /* replace it: at once after a GOAWAY, after a pause when the connect failed */
        if (!h->d->removed && !h->d->ending)
            ebb_timer_start(h->d->loop, &h->d->t_h2retry, h->connecting ? DRILL_RETRY_MS : 0);
    }
}

static void stream_end(struct h2_stream *st, int fail)
{
    struct drill_h2 *h = st->h;
    struct drill *d = h->d;
    ebb_timer_stop(d->loop, &st->timer);
    ebb_list_del(&st->link);
    h->active--;
    d->inflight--;
    drill_count(d, &d->r->in, true, fail);
    free(st);
}

static void h2_flush(struct drill_h2 *h)
{
    if (h->dead || !h->s)
        return;
    for (;;) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(h->s, &data);
        if (n < 0) {
            h2_kill(h, false);
            return;
        }
        if (n == 0)
            break;
        if (ebb_buf_append(&h->wbuf, data, (size_t)n) < 0) {
            h2_kill(h, false);
            return;
        }
    }
    if (ebb_buf_len(&h->wbuf)) {
        ssize_t n = ebb_buf_write_fd(&h->wbuf, h->io.fd);
        if (n == EBB_EIO) {
            h2_kill(h, false);
            return;
        }
    }
    ebb_io_set(h->d->loop, &h->io, EBB_READ | (ebb_buf_len(&h->wbuf) ? EBB_WRITE : 0));
    if (!nghttp2_session_want_read(h->s) && !nghttp2_session_want_write(h->s) &&
        !ebb_buf_len(&h->wbuf))
        h2_kill(h, true);
}

static void stream_timeout(struct ebb_loop *loop, struct ebb_timer *t)
{
    struct h2_stream *st = t->data;
    struct drill_h2 *h = st->h;
    st->timed_out = true;
    nghttp2_submit_rst_stream(h->s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
    h2_flush(h);   /* on_stream_close frees st */
}

/* The request of a gRPC call: one message of 8 bytes. */
static const uint8_t grpc_req[] = { 0, 0, 0, 0, 8, 'd', 'r', 'i', 'l', 'l', 'r', 'e', 'q' };

static ssize_t grpc_req_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len,
                             uint32_t *flags, nghttp2_data_source *src, void *user)
{
    struct h2_stream *st = src->ptr;
    size_t n = sizeof(grpc_req) - st->req_off;
    if (n > len)
        n = len;
    memcpy(buf, grpc_req + st->req_off, n);
    st->req_off += n;
    if (st->req_off == sizeof(grpc_req))
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* Submits st's request; returns the stream id or a negative nghttp2 error. */
static int32_t submit(struct drill_h2 *h, struct h2_stream *st)
{
#define NV(n, v) { (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE }
    if (h->d->cfg->scn != DRILL_GRPC) {
        nghttp2_nv nva[] = {
            NV(":method", "GET"), NV(":scheme", "http"), NV(":authority", drill_load_authority(h->d)),
            NV(":path", h->path),
        };
        return nghttp2_submit_request(h->s, NULL, nva, EBB_ARRAY_LEN(nva), NULL, st);
    }
    st->grpc_stream = h->d->r->in.sent % 2 == 1;
    st->grpc_status = -1;
    nghttp2_nv nva[] = {
        NV(":method", "POST"), NV(":scheme", "http"), NV(":authority", "app.local"),
        NV(":path", st->grpc_stream ? "/ebb.drill.Load/Stream" : "/ebb.drill.Load/Unary"),
        NV("content-type", "application/grpc"), NV("te", "trailers"),
    };
#undef NV
    nghttp2_data_provider dp = { .source.ptr = st, .read_callback = grpc_req_read };
    return nghttp2_submit_request(h->s, NULL, nva, EBB_ARRAY_LEN(nva), &dp, st);
}

static void h2_fill(struct drill_h2 *h)
{
    struct drill *d = h->d;
    const struct drill_cfg *cfg = d->cfg;

    /* at most clients x streams in flight in all: replacement connections
     * take over from draining ones, they do not add to the load */
    while (h->live && !h->dead && !d->removed && !d->ending && h->active < cfg->streams &&
           d->inflight < cfg->clients * cfg->streams) {
        struct h2_stream *st = calloc(1, sizeof(*st));
        if (!st)
            return;
        int32_t id = submit(h, st);
        if (id < 0) {
            free(st);
            h2_not_live(h);   /* stream ids exhausted, or the session is going away */
            return;
        }
        st->h = h;
        st->id = id;
        st->timer.cb = stream_timeout;
        st->timer.data = st;
        ebb_list_add_tail(&h->streams, &st->link);
        h->active++;
        d->inflight++;
        d->r->in.sent++;
        ebb_timer_start(d->loop, &st->timer, cfg->timeout_ms);
    }
}

static int on_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user)
{
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    struct h2_stream *st = nghttp2_session_get_stream_user_data(s, frame->hd.stream_id);
    if (st && namelen == 11 && memcmp(name, "grpc-status", 11) == 0) {
        int v = 0;
        for (size_t i = 0; i < valuelen && i < 2 && value[i] >= '0' && value[i] <= '9'; i++)
            v = v * 10 + (value[i] - '0');
        st->grpc_status = valuelen ? v : 2;   /* empty: UNKNOWN */
        return 0;
    }
    if (st && namelen == 7 && memcmp(name, ":status", 7) == 0) {
        int v = 0;
        for (size_t i = 0; i < valuelen && i < 3; i++)
            v = v * 10 + (value[i] - '0');
        if (v >= 200) {
            st->status = v;
            st->head = true;
        }
    }
    return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t stream_id, const uint8_t *data,
                   size_t len, void *user)
{
    struct h2_stream *st = nghttp2_session_get_stream_user_data(s, stream_id);
    if (st)
        st->got += len;
    return 0;
}

static int on_frame(nghttp2_session *s, const nghttp2_frame *frame, void *user)
{
    struct drill_h2 *h = user;
    if (frame->hd.type == NGHTTP2_GOAWAY) {
        if (h->live && h->d->goaways++ < 4)
            drill_progress(h->d, "h2: GOAWAY (last stream %d, error %u) on a connection with %u "
                           "streams open", frame->goaway.last_stream_id,
                           frame->goaway.error_code, h->active);
        h2_not_live(h);
    }
    return 0;
}

/* A gRPC call that closed cleanly with a 2xx head: its grpc-status and its bytes. */
static int grpc_outcome(struct h2_stream *st, const struct drill_cfg *cfg)
{
    if (st->grpc_status < 0)
        return DRILL_F_TRUNCATED;   /* no status: the answer was cut */
    if (st->grpc_status != 0) {
        st->h->d->r->grpc_status[st->grpc_status < 17 ? st->grpc_status : 2]++;
        return DRILL_F_OTHER;
    }
    return st->got == drill_grpc_expect(cfg->body, st->grpc_stream) ? -1 : DRILL_F_TRUNCATED;
}

static int on_close(nghttp2_session *s, int32_t stream_id, uint32_t error_code, void *user)
{
    struct h2_stream *st = nghttp2_session_get_stream_user_data(s, stream_id);
    if (!st)
        return 0;
    int fail = -1;
    const struct drill_cfg *cfg = st->h->d->cfg;
    if (st->timed_out)
        fail = DRILL_F_TIMEOUT;
    else if (error_code == NGHTTP2_REFUSED_STREAM)
        fail = DRILL_F_REFUSED;
    else if (error_code != NGHTTP2_NO_ERROR || !st->head)
        fail = st->head ? DRILL_F_TRUNCATED : DRILL_F_RESET;
    else if (st->status >= 500)
        fail = DRILL_F_5XX;
    else if (st->status < 200 || st->status >= 300)
        fail = DRILL_F_OTHER;
    else if (cfg->scn == DRILL_GRPC)
        fail = grpc_outcome(st, cfg);
    else if (!cfg->target && st->got != cfg->body)   /* a --target's size is its own */
        fail = DRILL_F_TRUNCATED;
    struct drill *d = st->h->d;
    nghttp2_session_set_stream_user_data(s, stream_id, NULL);
    stream_end(st, fail);
    drill_poke(d);
    return 0;
}

static void h2_free(void *p)
{
    struct drill_h2 *h = p;
    if (h->s)
        nghttp2_session_del(h->s);
    ebb_buf_free(&h->wbuf);
    free(h);
}

/* Ends the connection; open streams fail (reset / truncated). */
static void h2_kill(struct drill_h2 *h, bool graceful)
{
    struct drill *d = h->d;
    if (h->dead)
        return;
    h->dead = true;
    h2_not_live(h);
    while (!ebb_list_empty(&h->streams)) {
        struct h2_stream *st = ebb_container_of(h->streams.next, struct h2_stream, link);
        if (h->s)
            nghttp2_session_set_stream_user_data(h->s, st->id, NULL);
        stream_end(st, st->timed_out ? DRILL_F_TIMEOUT
                       : st->head ? DRILL_F_TRUNCATED : DRILL_F_RESET);
    }
    if (h->io.fd >= 0) {
        ebb_io_stop(d->loop, &h->io);
        close(h->io.fd);
        h->io.fd = -1;
        d->conns--;
    }
    ebb_list_del(&h->link);
    ebb_loop_defer(d->loop, &h->dfr, h2_free, h);
    drill_poke(d);
}

static int h2_session(struct drill_h2 *h)
{
    nghttp2_session_callbacks *cbs;
    if (nghttp2_session_callbacks_new(&cbs))
        return -1;
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_close);
    int rc = nghttp2_session_client_new(&h->s, cbs, h);
    nghttp2_session_callbacks_del(cbs);
    if (rc)
        return -1;
    nghttp2_settings_entry iv[] = {
        { NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100 },
        { NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20 },
    };
    nghttp2_submit_settings(h->s, NGHTTP2_FLAG_NONE, iv, EBB_ARRAY_LEN(iv));
    return 0;
}

static void h2_io(struct ebb_loop *loop, struct ebb_io *io, uint32_t events)
{
    struct drill_h2 *h = io->data;
    struct drill *d = h->d;

    if (h->connecting) {
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(io->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            d->r->in.sent++;
            drill_count(d, &d->r->in, true, DRILL_F_REFUSED);
            h2_kill(h, false);
            return;
        }
        h->connecting = false;
        if (h2_session(h) < 0) {
            h2_kill(h, false);
            return;
        }
        h2_fill(h);
        h2_flush(h);
        return;
    }
    if (events & (EBB_READ | EPOLLHUP | EPOLLERR)) {
        uint8_t buf[16384];
        for (int i = 0; i < 8; i++) {
            ssize_t n = read(io->fd, buf, sizeof(buf));
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                break;
            if (n <= 0) {
                h2_kill(h, n == 0);
                return;
            }
            if (nghttp2_session_mem_recv(h->s, buf, (size_t)n) < 0) {
                h2_kill(h, false);
                return;
            }
            if (h->dead)
                return;
        }
    }
    if (events & EBB_WRITE) {
        if (ebb_buf_write_fd(&h->wbuf, io->fd) == EBB_EIO) {
            h2_kill(h, false);
            return;
        }
    }
    h2_fill(h);
    h2_flush(h);
    /* streams that ended here make room on the other live connections */
    for (struct ebb_list *e = d->h2conns.next, *next; e != &d->h2conns; e = next) {
        struct drill_h2 *o = ebb_container_of(e, struct drill_h2, link);
        next = e->next;
        if (o != h && o->live && o->s && !o->connecting) {
            h2_fill(o);
            h2_flush(o);
        }
    }
}

static void h2_open(struct drill *d)
{
    struct drill_h2 *h = calloc(1, sizeof(*h));
    if (!h)
        return;
    h->d = d;
    h->io.fd = -1;
    h->io.cb = h2_io;
    h->io.data = h;
    h->wbuf.max = 4 << 20;
    ebb_list_init(&h->streams);
    ebb_list_add_tail(&d->h2conns, &h->link);
    if (d->cfg->target)
        snprintf(h->path, sizeof(h->path), "%s", d->cfg->target->path);
    else
        snprintf(h->path, sizeof(h->path), "/work?ms=%llu&size=%llu",
                 (unsigned long long)d->cfg->latency_ms, (unsigned long long)d->cfg->body);
    h->live = true;
    d->h2_live++;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        h2_kill(h, false);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    h->io.fd = fd;
    d->conns++;
    h->connecting = true;
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(d->listen_port),
                              .sin_addr.s_addr = drill_load_addr(d) };
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
        /* report from the loop, like an async connect failure */
        ebb_io_set(d->loop, &h->io, EBB_WRITE);
        return;
    }
    ebb_io_set(d->loop, &h->io, EBB_WRITE);
}

static void h2_retry(struct ebb_loop *loop, struct ebb_timer *t)
{
    h2_top_up(t->data);
}

static void h2_top_up(struct drill *d)
{
    unsigned opened = 0;
    while (!d->removed && !d->ending && d->h2_live < d->cfg->clients && opened++ < 4)
        h2_open(d);
    if (!d->removed && !d->ending && d->h2_live < d->cfg->clients)
        ebb_timer_start(d->loop, &d->t_h2retry, DRILL_RETRY_MS);
}

int drill_h2_start(struct drill *d)
{
    d->t_h2retry.cb = h2_retry;
    d->t_h2retry.data = d;
    h2_top_up(d);
    return 0;
}

void drill_h2_stop(struct drill *d)
{
    ebb_timer_stop(d->loop, &d->t_h2retry);
    while (!ebb_list_empty(&d->h2conns)) {
        struct drill_h2 *h = ebb_container_of(d->h2conns.next, struct drill_h2, link);
        /* what is still open at the end is a timeout */
        for (struct ebb_list *e = h->streams.next; e != &h->streams; e = e->next)
            ebb_container_of(e, struct h2_stream, link)->timed_out = true;
        h2_kill(h, false);
    }
}

void drill_h2_free(struct drill *d)
{
    drill_h2_stop(d);
}

int drill_h2_probe(uint32_t addr, uint16_t port, char *note, size_t notelen)
{
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" "\x00\x00\x00\x04\x00\x00\x00\x00\x00";
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
                              .sin_addr.s_addr = addr };
    char buf[64];
    ssize_t got = 0;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        snprintf(note, notelen, "proxy does not accept connections for the h2c probe");
        if (fd >= 0)
            close(fd);
        return 0;
    }
    if (write(fd, preface, sizeof(preface) - 1) < 0) {
        close(fd);
        snprintf(note, notelen, "proxy does not speak h2c (write failed)");
        return 0;
    }
    struct pollfd pf = { .fd = fd, .events = POLLIN };
    while (got < 9 && poll(&pf, 1, 2000) > 0) {
        ssize_t n = read(fd, buf + got, sizeof(buf) - 1 - (size_t)got);
        if (n <= 0)
            break;
        got += n;
    }
    close(fd);
    buf[got] = 0;
    if (got >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
        char *eol = strpbrk(buf, "\r\n");
        if (eol)
            *eol = 0;
        snprintf(note, notelen, "proxy does not speak h2c (answered the HTTP/2 preface with \"%s\")", buf);
        return 0;
    }
    /* a server's first frame must be SETTINGS (type 4) */
    if (got < 9 || buf[3] != 4) {
        snprintf(note, notelen, "proxy does not speak h2c (%s)",
                 got == 0 ? "closed the connection or said nothing to the HTTP/2 preface"
                          : "its answer to the preface is not a SETTINGS frame");
        return 0;
    }
    return 1;
}
