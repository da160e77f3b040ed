/*
 * harness.h - runs ebb's real worker runtime inside a libFuzzer driver
 * (fuzz_h2.c, fuzz_h2c_upstream.c): a server built by ebb_server_init from
 * an ebb.yaml text, one worker whose loop the driver turns itself
 * (ebb_loop_run_once, no thread), a downstream connection per input made
 * of a socketpair handed to the listener (ebb_listener_adopt, what accept
 * does), and a scripted upstream: a loopback listening socket the
 * clusters' endpoints point at, whose accepted connections get the bytes
 * the driver gives them.
 *
 * One input: fz_begin, bytes from the client and the upstream in slices
 * with the loop run until idle between them, fz_end (the client's EOF,
 * then every socket closed, the loop run until idle) and the invariants
 * that every connection, stream and gauge is back to zero.  Memory the
 * codecs forgot is LeakSanitizer's; a stale timer or watcher is
 * AddressSanitizer's on the next input.
 *
 * Header only (static functions): the Makefile builds each driver from
 * its one file and the library sources.
 */
#ifndef EBB_FUZZ_HARNESS_H
#define EBB_FUZZ_HARNESS_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ebb/config_load.h"
#include "ebb/h2.h"
#include "ebb/listener.h"
#include "ebb/log.h"
#include "ebb/loop.h"
#include "ebb/proxy.h"
#include "ebb/server.h"
#include "ebb/stats.h"
#include "ebb/upstream.h"
#include "ebb/worker.h"

#include "check.h"

#define FZ_MAX_UP     64      /* upstream connections one input may open */
#define FZ_MAX_ROUNDS 20000   /* loop rounds before "never idle" is a finding (a spin) */

/* One accepted upstream connection. */
struct fz_up {
    int      fd;        /* -1 once closed */
    size_t   rx;        /* bytes ebb sent on it */
    uint32_t tail;      /* last 4 bytes received: an HTTP/1 head ends in CRLF CRLF */
    bool     head;      /* a whole request head arrived */
    size_t   sent;      /* bytes of the script written */
    bool     finished;  /* the script was written (and FIN sent when asked) */
};

/* Bytes to send one way, a slice per loop round. */
struct fz_stream {
    const uint8_t *p;
    size_t         len, off;
    size_t         slice;   /* at most this many per round, 0 = all */
    size_t         sent_total; /* bytes written (every connection, for the upstream's) */
};

struct fz {
    struct ebb_config   *cfg;
    struct ebb_server    srv;
    struct ebb_worker   *w;
    struct ebb_listener *l;
    int                  up_lfd;    /* the scripted upstream's listening socket */
    struct fz_up         up[FZ_MAX_UP];
    size_t               nup;
    int                  cfd;       /* the client's end of the socketpair, -1 once closed */
    struct ebb_conn     *c;         /* ebb's end (may be freed: compare only) */
    size_t               client_rx; /* bytes ebb sent the client */
    uint8_t              client_head[16]; /* ... the first of them */
    size_t               client_have;
    bool                 client_eof;/* ebb closed the connection */
    struct fz_stream     cin;       /* the client's bytes */
    /* the upstream's script, for every connection ebb opens */
    struct fz_stream     uscript;   /* p/len/slice; off is per connection (fz_up.sent) */
    bool                 up_wait_head; /* start after a whole HTTP/1 request head (else any byte) */
    bool                 up_fin;    /* send FIN after the script */
    uint64_t             rounds;
};

/* Builds the server from yaml: one worker, listener 0 bound to an ephemeral
 * port (never accepted on: connections come through ebb_listener_adopt),
 * every cluster's endpoints pointed at the scripted upstream. */
static void fz_init(struct fz *z, const char *yaml)
{
    static char *const noenv[] = { NULL };
    char path[] = "/tmp/ebb-fuzz-XXXXXX.yaml", err[512];
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof(a);

    /* nothing on stderr (the fuzzer's own output stays readable) unless FZ_LOG=0..3 asks */
    ebb_log_level = getenv("FZ_LOG") ? atoi(getenv("FZ_LOG")) : -1;
    memset(z, 0, sizeof(*z));
    z->cfd = -1;
    z->up_lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    CHECK(z->up_lfd >= 0);
    CHECK(bind(z->up_lfd, (struct sockaddr *)&a, sizeof(a)) == 0);
    CHECK(listen(z->up_lfd, 1024) == 0);
    CHECK(getsockname(z->up_lfd, (struct sockaddr *)&a, &al) == 0);

    int fd = mkstemps(path, 5);
    CHECK(fd >= 0);
    CHECK(write(fd, yaml, strlen(yaml)) == (ssize_t)strlen(yaml));
    close(fd);
    struct ebb_config_args args = { .file = path, .environ = noenv };
    int rc = ebb_config_load(&args, &z->cfg, err, sizeof(err));
    unlink(path);
    if (rc != 0)
        fprintf(stderr, "fuzz harness config: %s\n", err);
    CHECK(rc == 0);
    z->cfg->proxy.concurrency = 1;
    for (size_t i = 0; i < z->cfg->nlisteners; i++)
        z->cfg->listeners[i].port = 0;
    for (size_t i = 0; i < z->cfg->nclusters; i++)
        for (size_t j = 0; j < z->cfg->clusters[i].nendpoints; j++)
            z->cfg->clusters[i].endpoints[j].port = ntohs(a.sin_port);
    /* The access log the config names, once per process (the first config's): the drivers
     * name /dev/null, so every exchange's record is made and its line formatted, the JSON
     * escaping of whatever bytes the input sent included. */
    static bool log_open;
    if (!log_open) {
        rc = ebb_access_log_open(z->cfg->access_log, err, sizeof(err));
        if (rc != 0)
            fprintf(stderr, "fuzz harness access log: %s\n", err);
        CHECK(rc == 0);
        log_open = true;
    }
    rc = ebb_server_init(&z->srv, z->cfg, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "fuzz harness server: %s\n", err);
    CHECK(rc == 0);
    z->w = &z->srv.workers[0];
    z->l = &z->w->listeners[0];
}

/* The driver's server for the default or the small-limits config, built on first use and
 * kept for every later input (one per config: building one costs a worker and a loop). */
static struct fz *fz_env_of(bool small, const char *yaml_default, const char *yaml_small)
{
    static struct fz envs[2];
    static bool ready[2];
    struct fz *z = &envs[small];

    if (!ready[small]) {
        fz_init(z, small ? yaml_small : yaml_default);
        ready[small] = true;
    }
    return z;
}

static void fz_rst_close(int fd)
{
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
}

/* A new downstream connection on listener 0, as accept makes it. */
static void fz_begin(struct fz *z)
{
    int sv[2];
    struct sockaddr_in peer = { .sin_family = AF_INET, .sin_port = htons(40000),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

    z->nup = 0;
    z->client_rx = 0;
    z->client_have = 0;
    z->client_eof = false;
    z->rounds = 0;
    z->cin = (struct fz_stream){ 0 };
    z->uscript = (struct fz_stream){ 0 };
    z->up_wait_head = false;
    z->up_fin = false;
    z->w->ctx.rand_state = 1;   /* the same input takes the same path */
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
    z->cfd = sv[1];
    z->c = ebb_listener_adopt(z->l, sv[0], (struct sockaddr *)&peer, sizeof(peer));
    CHECK(z->c != NULL);
}

/* Writes the next slice of s to fd; returns the bytes written. */
static size_t fz_send(int fd, struct fz_stream *s, size_t *off)
{
    size_t n = s->len - *off;
    if (n == 0 || fd < 0)
        return 0;
    if (s->slice && n > s->slice)
        n = s->slice;
    ssize_t w = send(fd, s->p + *off, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w <= 0)
        return 0;   /* full (ebb is not reading yet) or gone */
    *off += (size_t)w;
    s->sent_total += (size_t)w;
    return (size_t)w;
}

/* Reads and drops what is waiting on fd (which poll said is readable), keeping the last 4
 * bytes in *tail (when not NULL; *crlf2 set once they were CR LF CR LF, the end of an HTTP/1
 * head) and the first bytes in head (capn of them, *have kept so far; head may be NULL).
 * A short read means the socket had no more: what arrives later is the next round's, so
 * no recv is spent on EAGAIN.  Returns bytes read; *eof on EOF or error. */
static size_t fz_drain_fd(int fd, bool *eof, uint32_t *tail, bool *crlf2, uint8_t *head,
                          size_t capn, size_t *have)
{
    static char scratch[65536];
    size_t total = 0;

    for (;;) {
        ssize_t n = recv(fd, scratch, sizeof(scratch), MSG_DONTWAIT);
        if (n > 0) {
            total += (size_t)n;
            if (head && *have < capn) {
                size_t k = capn - *have < (size_t)n ? capn - *have : (size_t)n;
                memcpy(head + *have, scratch, k);
                *have += k;
            }
            if (tail)
                for (ssize_t i = 0; i < n; i++) {
                    *tail = (*tail << 8) | (uint8_t)scratch[i];
                    if (*tail == 0x0d0a0d0au && crlf2)
                        *crlf2 = true;
                }
            if ((size_t)n < sizeof(scratch))
                return total;
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            *eof = true;
        return total;
    }
}

/* Which of the harness's sockets are readable, in one poll(2) instead of a recv or accept
 * that fails on each: the listening socket, every open upstream connection, the client. */
struct fz_ready {
    bool lfd, client;
    bool up[FZ_MAX_UP];
};

static void fz_poll(struct fz *z, struct fz_ready *r)
{
    struct pollfd pfd[FZ_MAX_UP + 2];
    size_t slot[FZ_MAX_UP], n = 0, ci = SIZE_MAX;

    memset(r, 0, sizeof(*r));
    pfd[n++] = (struct pollfd){ .fd = z->up_lfd, .events = POLLIN };
    for (size_t i = 0; i < z->nup; i++)
        if (z->up[i].fd >= 0) {
            slot[i] = n;
            pfd[n++] = (struct pollfd){ .fd = z->up[i].fd, .events = POLLIN };
        } else {
            slot[i] = SIZE_MAX;
        }
    if (z->cfd >= 0 && !z->client_eof) {
        ci = n;
        pfd[n++] = (struct pollfd){ .fd = z->cfd, .events = POLLIN };
    }
    int rc = poll(pfd, n, 0);
    CHECK(rc >= 0 || errno == EINTR);
    if (rc <= 0)
        return;
    r->lfd = pfd[0].revents != 0;
    for (size_t i = 0; i < z->nup; i++)
        r->up[i] = slot[i] != SIZE_MAX && pfd[slot[i]].revents != 0;
    r->client = ci != SIZE_MAX && pfd[ci].revents != 0;
}

/* The scripted upstream's half of a round: accepts, reads, answers.  Returns progress. */
static size_t fz_upstream_round(struct fz *z, const struct fz_ready *r)
{
    size_t progress = 0;

    while (r->lfd) {
        int fd = accept4(z->up_lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            break;
        progress++;
        if (z->nup == FZ_MAX_UP) {
            fz_rst_close(fd);
            continue;
        }
        z->up[z->nup++] = (struct fz_up){ .fd = fd };
    }
    for (size_t i = 0; i < z->nup; i++) {
        struct fz_up *u = &z->up[i];
        bool eof = false;
        if (u->fd < 0)
            continue;
        if (r->up[i]) {   /* (a connection accepted this round waits for the next poll) */
            size_t n = fz_drain_fd(u->fd, &eof, &u->tail, &u->head, NULL, 0, NULL);
            u->rx += n;
            progress += n;
        }
        if (!u->finished && (z->up_wait_head ? u->head : u->rx > 0)) {
            progress += fz_send(u->fd, &z->uscript, &u->sent);
            if (u->sent == z->uscript.len) {
                u->finished = true;
                if (z->up_fin)
                    shutdown(u->fd, SHUT_WR);
                progress++;
            }
        }
        if (eof) {
            fz_rst_close(u->fd);
            u->fd = -1;
            progress++;
        }
    }
    return progress;
}

/* One round: the client's next slice, one loop iteration, the upstream's turn, the
 * client reads.  Returns progress (0: nothing happened). */
static size_t fz_round(struct fz *z)
{
    struct fz_ready r;
    size_t progress = fz_send(z->cfd, &z->cin, &z->cin.off);
    int ran = ebb_loop_run_once(z->w->ctx.loop);

    CHECK(ran >= 0);
    progress += (size_t)ran;
    fz_poll(z, &r);
    progress += fz_upstream_round(z, &r);
    if (r.client) {
        size_t n = fz_drain_fd(z->cfd, &z->client_eof, NULL, NULL, z->client_head,
                               sizeof(z->client_head), &z->client_have);
        z->client_rx += n;
        progress += n + (z->client_eof ? 1 : 0);
    }
    z->rounds++;
    return progress;
}

/* Runs rounds until nothing moves and the client has sent everything it can.  Rounds in
 * which neither peer sent a byte are ebb's alone: too many in a row is a busy loop. */
static void fz_settle(struct fz *z)
{
    uint64_t start = z->rounds;
    size_t ext = z->cin.sent_total + z->uscript.sent_total;

    for (;;) {
        bool pending = z->cin.off < z->cin.len && z->cfd >= 0 && !z->client_eof;
        if (fz_round(z) == 0 && !pending)
            return;
        if (z->cin.sent_total + z->uscript.sent_total != ext) {
            ext = z->cin.sent_total + z->uscript.sent_total;
            start = z->rounds;
        }
        CHECK(z->rounds - start < FZ_MAX_ROUNDS);   /* ebb never went idle: a busy loop */
    }
}

/* The client's EOF, then every socket closed as a worker's exit closes them;
 * the runtime must be back to nothing. */
static void fz_end(struct fz *z)
{
    struct ebb_listener *l = z->l;

    fz_settle(z);
    if (getenv("FZ_VERBOSE")) {   /* what one input did, for reading a reproducer */
        fprintf(stderr, "fz: %llu rounds, client got %zu bytes (%.*s...), %zu upstream "
                "connection(s)", (unsigned long long)z->rounds, z->client_rx,
                (int)z->client_have, (const char *)z->client_head, z->nup);
        for (size_t i = 0; i < z->nup; i++)
            fprintf(stderr, ", #%zu got %zu sent %zu", i, z->up[i].rx, z->up[i].sent);
        fprintf(stderr, "\n");
    }
    if (z->cfd >= 0 && !z->client_eof) {
        shutdown(z->cfd, SHUT_WR);
        fz_settle(z);
    }
    struct ebb_list *pos, *tmp;
    ebb_list_for_each_safe(pos, tmp, &l->conns) {
        struct ebb_conn *c = ebb_list_entry(pos, struct ebb_conn, link);
        c->flags |= EBB_CONN_F_FORCED;
        ebb_conn_close(c, true);
    }
    for (size_t i = 0; i < z->w->ctx.nclusters; i++) {
        ebb_upstream_close_idle(&z->w->ctx.clusters[i]);
        ebb_h2u_close_all(&z->w->ctx.clusters[i]);
    }
    for (size_t i = 0; i < z->nup; i++)
        if (z->up[i].fd >= 0) {
            fz_rst_close(z->up[i].fd);
            z->up[i].fd = -1;
        }
    if (z->cfd >= 0) {
        close(z->cfd);
        z->cfd = -1;
    }
    fz_settle(z);
    ebb_loop_run_deferred(z->w->ctx.loop);

    /* every connection and stream is gone, and the gauges say so */
    CHECK(ebb_list_empty(&l->conns));
    CHECK(atomic_load(&z->srv.active_cx) == 0);
    CHECK(atomic_load(l->open) == 0);
    CHECK(atomic_load(&l->st->cx_active) == 0);
    CHECK(atomic_load(&l->st->rq_active) == 0);
    CHECK(atomic_load(&z->w->ctx.stats->server.h2_streams_active) == 0);
    for (size_t i = 0; i < z->w->ctx.nclusters; i++) {
        struct ebb_cluster_rt *cl = &z->w->ctx.clusters[i];
        CHECK(atomic_load(&cl->st->cx_active) == 0);
        CHECK(atomic_load(&cl->st->rq_active) == 0);
        CHECK(atomic_load(&cl->st->cx_idle) == 0);
    }
    l->draining = false;
}

#endif
