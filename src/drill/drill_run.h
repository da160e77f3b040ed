/*
 * drill_run.h - the drill's run-time objects, private to src/drill/.
 *
 * struct drill is one scenario run: it owns the loop, the app and remote
 * service (app.c), the load generator (load.c: HTTP/1.1 users; h2load.c:
 * HTTP/2 connections), and the proxy child (proxy.c).  The result it fills
 * outlives it: the report is written after every scenario has run.
 */
#ifndef EBB_DRILL_RUN_H
#define EBB_DRILL_RUN_H

#include <netinet/in.h>
#include <stdio.h>
#include <sys/types.h>

#include "ebb/drill.h"
#include "ebb/list.h"
#include "ebb/loop.h"

struct drill;

/* --- the load generator --- */
int  drill_load_start(struct drill *d);   /* h1 users, or h2 connections */
void drill_load_stop(struct drill *d);    /* end: in-flight requests become timeouts */
void drill_load_free(struct drill *d);
int  drill_h2_start(struct drill *d);
void drill_h2_stop(struct drill *d);
void drill_h2_free(struct drill *d);
/* Preflight: does addr:port (network order address) answer the h2
 * connection preface with frames?  Returns 1 yes, 0 no (why in note). */
int  drill_h2_probe(uint32_t addr, uint16_t port, char *note, size_t notelen);

/* --- --target mode (target.c) --- */
/* Instead of the app and the proxy: checks the target accepts.  0 or -1. */
int  drill_target_begin(struct drill *d);
/* At --sigterm-at: runs --during CMD (its exit, +removal delay, ends the load). */
void drill_target_go(struct drill *d);

/* --- the app and the remote service (app.c) --- */
struct drill_app;
#define DRILL_APP_SETTLE_MS 1000
/* After a failed request (h1) or connection attempt (h2) a client waits this
 * long before trying again: "refused" counts attempts at this rate. */
#define DRILL_RETRY_MS 50
struct drill_app *drill_app_new(struct drill *d, bool remote, uint16_t *port);
void drill_app_sigterm(struct drill_app *a);
bool drill_app_done(const struct drill_app *a);
/* Something the app waits for may have happened (drill.c's check timer). */
void drill_app_poke(struct drill_app *a);
void drill_app_free(struct drill_app *a);

/* --- the grpc scenario's app (grpc_app.c): gRPC over h2c --- */
struct drill_grpc_app;
#define DRILL_GRPC_STREAM_MSGS 4   /* messages of a /ebb.drill.Load/Stream answer */
struct drill_grpc_app *drill_grpc_app_new(struct drill *d, uint16_t *port);
void drill_grpc_app_free(struct drill_grpc_app *a);
/* Response body bytes (message prefixes included) of a Unary or Stream call. */
uint64_t drill_grpc_expect(uint64_t body, bool stream);

/* --- the proxy under test (proxy.c) --- */
struct drill_proxy {
    pid_t          pid;        /* 0 = none */
    int            pidfd;
    struct ebb_io  pio;        /* pidfd: readable when the child exits */
    struct ebb_io  eio;        /* the child's stderr pipe */
    char           line[4096]; /* partial stderr line */
    size_t         linelen;
    FILE          *log;        /* copy of its stderr */
    bool           exited;
    int            status;
    bool           is_ebb;     /* parse drain phases from its log */
};
int  drill_proxy_start(struct drill *d);   /* writes config, forks, waits for the port */
void drill_proxy_signal(struct drill *d, int sig);
void drill_proxy_reap(struct drill *d);    /* SIGKILL leftovers, wait, close */
/* A loopback TCP port free right now (bound to 0, then closed). */
uint16_t drill_free_port(void);

struct drill {
    const struct drill_cfg *cfg;
    struct drill_result *r;
    struct ebb_loop  *loop;
    uint64_t          t0_ms;        /* load start, ebb_now_ms() clock */
    bool              sigterm_sent, removed, ending, ended;
    uint16_t          listen_port;  /* where the load goes (proxy inbound, or the app) */
    uint16_t          outbound_port;/* where the app's calls go (proxy outbound, or remote) */
    uint16_t          app_port, remote_port;
    uint32_t          conns, inflight, out_inflight;
    struct ebb_list   users;        /* h1 users (load.c) */
    struct ebb_list   h2conns;      /* h2 connections (h2load.c) */
    unsigned          h2_live;
    unsigned          goaways;      /* GOAWAYs reported on stderr */      /* h2 connections accepting new streams */
    struct drill_app *app, *remote;
    struct drill_grpc_app *grpc;    /* the grpc scenario's app (then app_port is its port) */
    struct drill_proxy proxy;
    struct ebb_timer  t_sigterm, t_removal, t_kill, t_sample, t_progress, t_hard, t_check,
                      t_h2retry, t_settle, t_prestop;
    uint32_t          rnd;
};

/* Where the load connects: the --target address, else loopback (network order). */
static inline uint32_t drill_load_addr(const struct drill *d)
{
    return d->cfg->target ? d->cfg->target->addr : htonl(INADDR_LOOPBACK);
}
/* The load's Host / :authority. */
static inline const char *drill_load_authority(const struct drill *d)
{
    return d->cfg->target ? d->cfg->target->authority : "app.local";
}

/* Milliseconds since the load started. */
static inline int64_t drill_t(const struct drill *d)
{
    return (int64_t)ebb_now_ms() - (int64_t)d->t0_ms;
}
uint32_t drill_rand(struct drill *d);
/* Counts an outcome in counts (and the timeline when inbound). */
void drill_count(struct drill *d, struct drill_counts *counts, bool inbound, int fail);
/* Something finished: maybe the scenario is over. */
void drill_poke(struct drill *d);
void drill_progress(struct drill *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
