/*
 * grpc_app.c - the app of the drill's grpc scenario: a gRPC service over
 * h2c (an nghttp2 server session per connection) on the drill's loop.
 *
 *   /ebb.drill.Load/Unary   after latency_ms, one message of `body` bytes
 *   /ebb.drill.Load/Stream  headers at once, then DRILL_GRPC_STREAM_MSGS
 *                           messages of body / DRILL_GRPC_STREAM_MSGS bytes,
 *                           latency_ms / DRILL_GRPC_STREAM_MSGS apart
 *
 * Both end with grpc-status 0 in the trailers; anything else on the path
 * gets a trailers-only answer with grpc-status 12 (UNIMPLEMENTED).  The
 * request message is read and ignored.  Like the HTTP/1.1 app it keeps
 * serving after SIGTERM; it is closed when the scenario ends.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ebb/buf.h"
#include "ebb/core.h"

#include "drill_run.h"

struct ga_conn;

/* One call.  Owned by its connection (c->streams) until nghttp2 closes it. */
struct ga_stream {
    struct ga_conn  *c;
    int32_t          id;
    bool             stream;       /* the Stream method (else Unary) */
    bool             known;        /* a method of the service */
    bool             req_end;
    bool             head_sent;
    unsigned         msgs_left;    /* messages still to produce */
    struct ebb_buf   out;          /* framed messages the data provider has not taken */
    struct ebb_timer timer;        /* next message */
    struct ebb_list  link;
};

/* One accepted connection.  Owned by the app (a->conns). */
struct ga_conn {
    struct drill_grpc_app *a;
    struct ebb_io    io;
    nghttp2_session *s;
    struct ebb_buf   wbuf;
    struct ebb_list  streams;
    struct ebb_list  link;
    bool             dead;
    struct ebb_deferred dfr;      /* its deferred free (ebb_loop_defer) */
};

struct drill_grpc_app {
    struct drill    *d;
    struct ebb_io    lio;
    struct ebb_list  conns;
};

static void ga_flush(struct ga_conn *c);

uint64_t drill_grpc_expect(uint64_t body, bool stream)
{
    if (!stream)
        return 5 + body;
    return DRILL_GRPC_STREAM_MSGS * (5 + body / DRILL_GRPC_STREAM_MSGS);
}

static void stream_free(struct ga_stream *st)
{
    ebb_timer_stop(st->c->a->d->loop, &st->timer);
    ebb_list_del(&st->link);
    ebb_buf_free(&st->out);
    free(st);
}

static void conn_free(void *p)
{
    struct ga_conn *c = p;
    if (c->s)
        nghttp2_session_del(c->s);
    ebb_buf_free(&c->wbuf);
    free(c);
}

static void conn_close(struct ga_conn *c)
{
    struct drill *d = c->a->d;
    if (c->dead)
        return;
    c->dead = true;
    while (!ebb_list_empty(&c->streams)) {
        struct ga_stream *st = ebb_container_of(c->streams.next, struct ga_stream, link);
        nghttp2_session_set_stream_user_data(c->s, st->id, NULL);
        stream_free(st);
    }
    ebb_io_stop(d->loop, &c->io);
    close(c->io.fd);
    c->io.fd = -1;
    ebb_list_del(&c->link);
    ebb_loop_defer(d->loop, &c->dfr, conn_free, c);
}

/* Appends one gRPC message (5-byte prefix, then n pattern bytes) to st->out. */
static void put_message(struct ga_stream *st, uint64_t n)
{
    static char pattern[4096];
    uint8_t pfx[5] = { 0, (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n };
    if (!pattern[0])
        for (size_t i = 0; i < sizeof(pattern); i++)
            pattern[i] = (char)('a' + i % 26);
    ebb_buf_append(&st->out, pfx, sizeof(pfx));
    for (uint64_t left = n; left;) {
        size_t k = left > sizeof(pattern) ? sizeof(pattern) : (size_t)left;
        ebb_buf_append(&st->out, pattern, k);
        left -= k;
    }
}

static ssize_t body_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len,
                         uint32_t *flags, nghttp2_data_source *src, void *user)
{
    struct ga_stream *st = src->ptr;
    size_t have = ebb_buf_len(&st->out);
    if (have) {
        size_t n = have < len ? have : len;
        memcpy(buf, ebb_buf_start(&st->out), n);
        ebb_buf_consume(&st->out, n);
        return (ssize_t)n;
    }
    if (st->msgs_left)
        return NGHTTP2_ERR_DEFERRED;
    /* the last message is out: the status goes in the trailers */
    static const nghttp2_nv trl[] = {
        { (uint8_t *)"grpc-status", (uint8_t *)"0", 11, 1, NGHTTP2_NV_FLAG_NONE },
    };
    *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
    if (nghttp2_submit_trailer(s, id, trl, EBB_ARRAY_LEN(trl)) != 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    return 0;
}

static void send_head(struct ga_stream *st)
{
    static const nghttp2_nv head[] = {
        { (uint8_t *)":status", (uint8_t *)"200", 7, 3, NGHTTP2_NV_FLAG_NONE },
        { (uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, NGHTTP2_NV_FLAG_NONE },
    };
    nghttp2_data_provider dp = { .source.ptr = st, .read_callback = body_read };
    st->head_sent = true;
    nghttp2_submit_response(st->c->s, st->id, head, EBB_ARRAY_LEN(head), &dp);
}

static void next_message(struct ebb_loop *loop, struct ebb_timer *t)
{
    struct ga_stream *st = t->data;
    const struct drill_cfg *cfg = st->c->a->d->cfg;
    put_message(st, st->stream ? cfg->body / DRILL_GRPC_STREAM_MSGS : cfg->body);
    st->msgs_left--;
    if (!st->head_sent)
        send_head(st);
    else
        nghttp2_session_resume_data(st->c->s, st->id);
    if (st->msgs_left)
        ebb_timer_start(loop, &st->timer, cfg->latency_ms / DRILL_GRPC_STREAM_MSGS);
    ga_flush(st->c);
}

/* The request is complete: answer it. */
static void stream_start(struct ga_stream *st)
{
    const struct drill_cfg *cfg = st->c->a->d->cfg;
    if (!st->known) {
        static const nghttp2_nv only[] = {
            { (uint8_t *)":status", (uint8_t *)"200", 7, 3, NGHTTP2_NV_FLAG_NONE },
            { (uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, NGHTTP2_NV_FLAG_NONE },
            { (uint8_t *)"grpc-status", (uint8_t *)"12", 11, 2, NGHTTP2_NV_FLAG_NONE },
        };
        nghttp2_submit_response(st->c->s, st->id, only, EBB_ARRAY_LEN(only), NULL);
        return;
    }
    st->msgs_left = st->stream ? DRILL_GRPC_STREAM_MSGS : 1;
    if (st->stream) {
        send_head(st);   /* a server stream's headers go at once */
        ebb_timer_start(st->c->a->d->loop, &st->timer, cfg->latency_ms / DRILL_GRPC_STREAM_MSGS);
    } else {
        ebb_timer_start(st->c->a->d->loop, &st->timer, cfg->latency_ms);
    }
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *user)
{
    struct ga_conn *c = user;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    struct ga_stream *st = calloc(1, sizeof(*st));
    if (!st)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    st->c = c;
    st->id = f->hd.stream_id;
    st->timer.cb = next_message;
    st->timer.data = st;
    st->out.max = 64 << 20;
    ebb_list_add_tail(&c->streams, &st->link);
    nghttp2_session_set_stream_user_data(s, st->id, st);
    return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user)
{
    struct ga_stream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    static const char pfx[] = "/ebb.drill.Load/";
    const size_t pl = sizeof(pfx) - 1;
    if (!st || namelen != 5 || memcmp(name, ":path", 5) != 0)
        return 0;
    if (valuelen > pl && memcmp(value, pfx, pl) == 0) {
        const char *m = (const char *)value + pl;
        size_t ml = valuelen - pl;
        st->stream = ml == 6 && memcmp(m, "Stream", 6) == 0;
        st->known = st->stream || (ml == 5 && memcmp(m, "Unary", 5) == 0);
    }
    return 0;
}

static int on_frame(nghttp2_session *s, const nghttp2_frame *f, void *user)
{
    if ((f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA) ||
        !(f->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    struct ga_stream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (st && !st->req_end) {
        st->req_end = true;
        stream_start(st);
    }
    return 0;
}

static int on_close(nghttp2_session *s, int32_t id, uint32_t error_code, void *user)
{
    struct ga_stream *st = nghttp2_session_get_stream_user_data(s, id);
    if (st) {
        nghttp2_session_set_stream_user_data(s, id, NULL);
        stream_free(st);
    }
    return 0;
}

static void ga_flush(struct ga_conn *c)
{
    if (c->dead)
        return;
    for (;;) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(c->s, &data);
        if (n < 0 || (n > 0 && ebb_buf_append(&c->wbuf, data, (size_t)n) < 0)) {
            conn_close(c);
            return;
        }
        if (n == 0)
            break;
    }
    if (ebb_buf_len(&c->wbuf) && ebb_buf_write_fd(&c->wbuf, c->io.fd) == EBB_EIO) {
        conn_close(c);
        return;
    }
    if (!nghttp2_session_want_read(c->s) && !nghttp2_session_want_write(c->s) &&
        !ebb_buf_len(&c->wbuf)) {
        conn_close(c);
        return;
    }
    ebb_io_set(c->a->d->loop, &c->io, EBB_READ | (ebb_buf_len(&c->wbuf) ? EBB_WRITE : 0));
}

static void conn_io(struct ebb_loop *loop, struct ebb_io *io, uint32_t events)
{
    struct ga_conn *c = io->data;
    if (events & (EBB_READ | EPOLLHUP | EPOLLERR)) {
        uint8_t buf[16384];
        for (int i = 0; i < 8; i++) {
            ssize_t n = read(io->fd, buf, sizeof(buf));
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                break;
            if (n <= 0 || nghttp2_session_mem_recv(c->s, buf, (size_t)n) < 0) {
                conn_close(c);   /* the proxy went away: its calls are dropped */
                return;
            }
        }
    }
    if ((events & EBB_WRITE) && ebb_buf_write_fd(&c->wbuf, io->fd) == EBB_EIO) {
        conn_close(c);
        return;
    }
    ga_flush(c);
}

static int conn_session(struct ga_conn *c)
{
    nghttp2_session_callbacks *cbs;
    if (nghttp2_session_callbacks_new(&cbs))
        return -1;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_close);
    int rc = nghttp2_session_server_new(&c->s, cbs, c);
    nghttp2_session_callbacks_del(cbs);
    if (rc)
        return -1;
    nghttp2_settings_entry iv[] = {
        { NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 1000 },
        { NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20 },
    };
    return nghttp2_submit_settings(c->s, NGHTTP2_FLAG_NONE, iv, EBB_ARRAY_LEN(iv)) ? -1 : 0;
}

static void app_accept(struct ebb_loop *loop, struct ebb_io *io, uint32_t events)
{
    struct drill_grpc_app *a = io->data;
    for (int i = 0; i < 64; i++) {
        int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        struct ga_conn *c = calloc(1, sizeof(*c));
        if (!c) {
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c->a = a;
        c->io.fd = fd;
        c->io.cb = conn_io;
        c->io.data = c;
        c->wbuf.max = 64 << 20;
        ebb_list_init(&c->streams);
        ebb_list_add_tail(&a->conns, &c->link);
        if (conn_session(c) < 0) {
            conn_close(c);
            continue;
        }
        ga_flush(c);
    }
}

struct drill_grpc_app *drill_grpc_app_new(struct drill *d, uint16_t *port)
{
    struct drill_grpc_app *a = calloc(1, sizeof(*a));
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(sa);
    int one = 1;

    if (!a)
        return NULL;
    a->d = d;
    ebb_list_init(&a->conns);
    a->lio.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (a->lio.fd < 0) {
        free(a);
        return NULL;
    }
    setsockopt(a->lio.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(a->lio.fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(a->lio.fd, 1024) < 0 ||
        getsockname(a->lio.fd, (struct sockaddr *)&sa, &len) < 0) {
        close(a->lio.fd);
        free(a);
        return NULL;
    }
    *port = ntohs(sa.sin_port);
    a->lio.cb = app_accept;
    a->lio.data = a;
    ebb_io_set(d->loop, &a->lio, EBB_READ);
    return a;
}

void drill_grpc_app_free(struct drill_grpc_app *a)
{
    if (!a)
        return;
    if (a->lio.fd >= 0) {
        ebb_io_stop(a->d->loop, &a->lio);
        close(a->lio.fd);
    }
    while (!ebb_list_empty(&a->conns))
        conn_close(ebb_container_of(a->conns.next, struct ga_conn, link));
    free(a);
}
