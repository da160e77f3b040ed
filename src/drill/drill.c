/*
 * drill.c - the drill's per-scenario defaults and the Kubernetes
 * termination model for one scenario run (the command is src/cli/drill.c):
 *
 *   t=0             the load starts (app, remote service and proxy are up)
 *   --sigterm-at    stop signal to the proxy, SIGTERM to the app
 *   +removal delay  endpoint removal: the load generator sends nothing new
 *   +grace          SIGKILL to the proxy's process group if it is still there
 *   end             proxy gone, nothing in flight, app done (bounded:
 *                   SIGTERM + grace + 3 s; what is still in flight is a timeout)
 */
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "ebb/core.h"

#include "drill_run.h"

static const char *scn_names[DRILL_NSCN] = { "long-request", "steady", "idle-pool", "h2-streams",
                                             "outbound", "grpc" };

/* Per-scenario defaults (SPEC §8); every one can be overridden by a flag. */
static const struct scn_default {
    unsigned clients, streams;  /* streams 0: one (HTTP/1.1 scenarios) */
    uint64_t latency_ms, body, think_ms, sigterm_at_ms, removal_ms, shutdown_ms;
} scn_defaults[DRILL_NSCN] = {
    /* long-request: 8 s requests in flight at SIGTERM (the seed's case) */
    [DRILL_LONG_REQUEST] = { 10, 0, 8000, 16384, 0, 1000, 2000, 0 },
    /* steady: back-to-back 20 ms requests on 8 keep-alive connections */
    [DRILL_STEADY] = { 8, 0, 20, 4096, 5, 2000, 2000, 0 },
    /* idle-pool: 20 pooled connections, a request every ~1 s each */
    [DRILL_IDLE_POOL] = { 20, 0, 10, 1024, 1000, 2000, 2000, 0 },
    /* h2-streams: 2 connections x 50 concurrent 200 ms streams */
    [DRILL_H2_STREAMS] = { 2, 50, 200, 2048, 0, 2000, 2000, 0 },
    /* outbound: 2.5 s requests that call the remote service, and 7 s of
     * shutdown calls (one per 250 ms) through the outbound listener */
    [DRILL_OUTBOUND] = { 4, 0, 2500, 1024, 0, 1000, 2000, 7000 },
    /* grpc: 2 h2c connections x 20 calls, unary (1 s) and server streams
     * (4 messages over 1 s), to a gRPC app over h2c */
    [DRILL_GRPC] = { 2, 20, 1000, 4096, 0, 2000, 2000, 0 },
};

static volatile pid_t g_proxy_pgid;   /* for the SIGINT handler */

const char *drill_scn_name(enum drill_scn s)
{
    return scn_names[s];
}

void drill_scn_defaults(enum drill_scn s, struct drill_cfg *cfg)
{
    const struct scn_default *def = &scn_defaults[s];
    *cfg = (struct drill_cfg){
        .scn = s,
        .sigterm_at_ms = def->sigterm_at_ms,
        .removal_ms = def->removal_ms,
        .clients = def->clients,
        .streams = def->streams ? def->streams : 1,
        .latency_ms = def->latency_ms,
        .body = def->body,
        .think_ms = def->think_ms,
        .shutdown_ms = def->shutdown_ms,
        .shutdown_every_ms = 250,
    };
}

uint32_t drill_rand(struct drill *d)
{
    d->rnd ^= d->rnd << 13;
    d->rnd ^= d->rnd >> 17;
    d->rnd ^= d->rnd << 5;
    return d->rnd;
}

void drill_progress(struct drill *d, const char *fmt, ...)
{
    va_list ap;
    if (d->cfg->quiet)
        return;
    int64_t t = drill_t(d);
    fprintf(stderr, "[drill %s/%s %6.2fs] ", scn_names[d->cfg->scn], d->r->proxy, (double)t / 1000.0);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void drill_count(struct drill *d, struct drill_counts *counts, bool inbound, int fail)
{
    if (fail == -1) {
        counts->completed++;
        d->r->last_ok_ms = drill_t(d);
        return;
    }
    counts->failed[fail]++;
    drill_result_fail_mark(d->r, drill_t(d), fail);
}

void drill_poke(struct drill *d)
{
    if (!d->ended && !ebb_timer_active(&d->t_check))
        ebb_timer_start(d->loop, &d->t_check, 0);
}

static void drill_end(struct drill *d, const char *why)
{
    if (d->ended)
        return;
    d->ended = true;
    d->ending = true;
    d->r->end_ms = drill_t(d);
    drill_progress(d, "end: %s", why);
    struct ebb_timer *ts[] = { &d->t_sigterm, &d->t_removal, &d->t_kill, &d->t_sample,
                               &d->t_progress, &d->t_hard, &d->t_check, &d->t_h2retry, &d->t_settle,
                               &d->t_prestop };
    for (size_t i = 0; i < EBB_ARRAY_LEN(ts); i++)
        ebb_timer_stop(d->loop, ts[i]);
    drill_load_stop(d);
    ebb_loop_stop(d->loop);
}

static void on_check(struct ebb_loop *loop, struct ebb_timer *t)
{
    struct drill *d = t->data;
    if (d->app)
        drill_app_poke(d->app);
    if (!d->sigterm_sent || !d->removed || d->ended)
        return;
    bool proxy_gone = d->proxy.pid == 0 || d->proxy.exited;   /* --target: --during's CMD */
    if (proxy_gone && d->inflight == 0 && d->out_inflight == 0 && (!d->app || drill_app_done(d->app)))
        drill_end(d, proxy_gone && d->proxy.pid ? "proxy exited and nothing is in flight"
                                                : "nothing in flight");
}

static void on_sample(struct ebb_loop *loop, struct ebb_timer *t)
{
    struct drill *d = t->data;
    struct drill_sample s = { (uint32_t)(drill_t(d) < 0 ? 0 : drill_t(d)), d->conns, d->inflight,
                              d->out_inflight };
    drill_result_sample(d->r, &s);
    ebb_timer_start(loop, t, DRILL_SAMPLE_MS);
}

static void on_progress(struct ebb_loop *loop, struct ebb_timer *t)
{
    struct drill *d = t->data;
    struct drill_counts s;
    drill_counts_sum(&d->r->in, &d->r->out, &s);
    drill_progress(d, "conns=%u inflight=%u outbound_inflight=%u sent=%llu ok=%llu failed=%llu",
                   d->conns, d->inflight, d->out_inflight, (unsigned long long)s.sent,
                   (unsigned long long)s.completed, (unsigned long long)drill_counts_failed(&s));
    ebb_timer_start(loop, t, 1000);
}

static void on_sigterm(struct ebb_loop *loop, struct ebb_timer *t)
{
    struct drill *d = t->data;
    char label[80];
    if (d->cfg->target) {
        drill_target_go(d);   /* --during CMD instead of signals */
        return;
    }
    d->sigterm_sent = true;
    d->r->sigterm_ms = drill_t(d);
    if (d->cfg->prestop_ms) {
        /* Kubernetes runs the proxy container's preStop hook first: its stop signal comes
         * when the `sleep` ends; the grace period counts from now all the same */
        snprintf(label, sizeof(label), "preStop sleep %.1fs on the proxy, SIGTERM to app",
                 (double)d->cfg->prestop_ms / 1000);
        ebb_timer_start(loop, &d->t_prestop, d->cfg->prestop_ms);
    } else {
        snprintf(label, sizeof(label), "SIG%s to proxy, SIGTERM to app",
                 sigabbrev_np(d->cfg->stop_signal));
        drill_proxy_signal(d, d->cfg->stop_signal);
    }
    drill_result_event(d->r, d->r->sigterm_ms, DRILL_EV_SIGTERM, label);
    drill_progress(d, "%s", label);
    drill_app_sigterm(d->app);
    ebb_timer_start(loop, &d->t_removal, d->cfg->removal_ms);
    ebb_timer_start(loop, &d->t_kill, d->cfg->grace_ms);
    ebb_timer_start(loop, &d->t_hard, d->cfg->grace_ms + 3000);
}

static void on_prestop(struct ebb_loop *loop, struct ebb_timer *t)
{
    struct drill *d = t->data;
    char label[80];
    snprintf(label, sizeof(label), "preStop over: SIG%s to proxy", sigabbrev_np(d->cfg->stop_signal));
    drill_result_event(d->r, drill_t(d), DRILL_EV_PHASE, label);
    drill_progress(d, "%s", label);
    drill_proxy_signal(d, d->cfg->stop_signal);
}

static void on_removal(struct ebb_loop *loop, struct ebb_timer *t)
{
    struct drill *d = t->data;
    d->removed = true;
    d->r->removal_ms = drill_t(d);
    const char *what = d->cfg->target ? "load ends" : "endpoint removed";
    char label[80];
    snprintf(label, sizeof(label), "%s: no new requests", what);
    drill_result_event(d->r, d->r->removal_ms, DRILL_EV_REMOVAL, label);
    ebb_timer_start(loop, &d->t_settle, DRILL_APP_SETTLE_MS);
    drill_progress(d, "%s: the load generator sends no new requests", what);
    drill_poke(d);
}

static void on_kill(struct ebb_loop *loop, struct ebb_timer *t)
{
    struct drill *d = t->data;
    if (d->proxy.pid <= 0 || d->proxy.exited)
        return;
    d->r->killed = true;
    drill_result_event(d->r, drill_t(d), DRILL_EV_KILL, "grace period over: SIGKILL");
    drill_progress(d, "terminationGracePeriodSeconds over: SIGKILL to the proxy");
    kill(-d->proxy.pid, SIGKILL);
}

static void on_hard(struct ebb_loop *loop, struct ebb_timer *t)
{
    drill_end(t->data, "time bound reached (what is still in flight counts as timeout)");
}

static void stop_cb(struct ebb_loop *loop, struct ebb_timer *t)
{
    ebb_loop_stop(loop);
}

static void on_interrupt(int sig)
{
    if (g_proxy_pgid > 0)
        kill(-g_proxy_pgid, SIGKILL);
    _exit(130);
}

void drill_catch_signals(void)
{
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_interrupt);
    signal(SIGTERM, on_interrupt);
}

/* Zeroes d for one run of cfg into r and makes its loop.  Returns 0 or -1. */
static int drill_init(struct drill *d, const struct drill_cfg *cfg, struct drill_result *r)
{
    memset(d, 0, sizeof(*d));
    d->cfg = cfg;
    d->r = r;
    d->rnd = 0x9e3779b9u ^ (uint32_t)getpid();
    ebb_list_init(&d->users);
    ebb_list_init(&d->h2conns);
    snprintf(r->scenario, sizeof(r->scenario), "%s", scn_names[cfg->scn]);
    snprintf(r->proxy, sizeof(r->proxy), "%s", cfg->proxy);
    if (strcmp(cfg->proxy, "ebb") == 0)
        snprintf(r->mode, sizeof(r->mode), "%s", cfg->exit_on_zero ? "exit-on-zero" : "default");
    r->sigterm_ms = r->removal_ms = r->exit_ms = r->last_ok_ms = r->end_ms = -1;
    d->loop = ebb_loop_new();
    if (!d->loop)
        return -1;
    d->t0_ms = ebb_now_ms();
    d->proxy.pidfd = -1;
    d->proxy.eio.fd = -1;
    return 0;
}

/* Starts the remote service, the app and the proxy (none: the load goes
 * straight to the app and its calls straight to the remote).  Returns 0 or -1. */
static int start_services(struct drill *d)
{
    bool direct = strcmp(d->cfg->proxy, "none") == 0;
    if (d->cfg->target)
        return drill_target_begin(d);
    d->remote = drill_app_new(d, true, &d->remote_port);
    if (!d->remote)
        return -1;
    if (direct) {
        d->outbound_port = d->remote_port;
    } else {
        d->listen_port = drill_free_port();
        d->outbound_port = drill_free_port();
    }
    d->app = drill_app_new(d, false, &d->app_port);
    if (!d->app)
        return -1;
    if (d->cfg->scn == DRILL_GRPC) {
        /* the proxy's app cluster (or the direct load) goes to the gRPC app; the
         * HTTP/1.1 app gets nothing and exits on its own after the removal */
        d->grpc = drill_grpc_app_new(d, &d->app_port);
        if (!d->grpc)
            return -1;
    }
    if (direct)
        d->listen_port = d->app_port;
    else if (drill_proxy_start(d) < 0)
        return -1;
    g_proxy_pgid = d->proxy.pid;
    return 0;
}

/* h2-streams and grpc need a proxy that speaks h2c; when it does not, the result
 * is N/A.  Returns false then. */
static bool h2_supported(struct drill *d)
{
    char note[160];
    if (drill_h2_probe(drill_load_addr(d), d->listen_port, note, sizeof(note)))
        return true;
    d->r->unsupported = true;
    snprintf(d->r->note, sizeof(d->r->note), "%s", note);
    drill_progress(d, "%s: skipping the scenario", note);
    return false;
}

/* Starts the load and the termination timers and runs the loop until the
 * scenario ends.  Returns 0, or -1 when the load could not start. */
static int run_load(struct drill *d)
{
    const struct drill_cfg *cfg = d->cfg;
    struct { struct ebb_timer *t; ebb_timer_cb cb; } ts[] = {
        { &d->t_sigterm, on_sigterm }, { &d->t_removal, on_removal }, { &d->t_kill, on_kill },
        { &d->t_sample, on_sample }, { &d->t_progress, on_progress }, { &d->t_hard, on_hard },
        { &d->t_check, on_check }, { &d->t_settle, on_check }, { &d->t_prestop, on_prestop },
    };
    for (size_t i = 0; i < EBB_ARRAY_LEN(ts); i++) {
        ts[i].t->cb = ts[i].cb;
        ts[i].t->data = d;
    }
    d->t0_ms = ebb_now_ms();
    if (cfg->target)
        drill_progress(d, "load starts: target %s", cfg->target->url);
    else
        drill_progress(d, "load starts: proxy %s pid %d, inbound 127.0.0.1:%u, outbound "
                       "127.0.0.1:%u, app 127.0.0.1:%u, remote 127.0.0.1:%u", cfg->proxy,
                       (int)d->proxy.pid, d->listen_port, d->outbound_port, d->app_port,
                       d->remote_port);
    if (drill_load_start(d) < 0)
        return -1;
    ebb_timer_start(d->loop, &d->t_sigterm, cfg->sigterm_at_ms);
    ebb_timer_start(d->loop, &d->t_sample, 0);
    ebb_timer_start(d->loop, &d->t_progress, 1000);
    ebb_loop_run(d->loop);
    on_sample(d->loop, &d->t_sample);
    ebb_timer_stop(d->loop, &d->t_sample);
    return 0;
}

/* Stops the load, frees the apps, reaps the proxy and frees the loop. */
static void drill_teardown(struct drill *d)
{
    if (!d->ended) {
        d->ended = d->ending = true;
        drill_load_stop(d);
    }
    drill_load_free(d);
    drill_app_free(d->app);
    drill_app_free(d->remote);
    drill_grpc_app_free(d->grpc);
    drill_proxy_reap(d);
    g_proxy_pgid = 0;
    /* deferred frees of the app's connections */
    d->t_check.cb = stop_cb;
    ebb_timer_start(d->loop, &d->t_check, 0);
    ebb_loop_run(d->loop);
    ebb_loop_free(d->loop);
}

int drill_run_scenario(const struct drill_cfg *cfg, struct drill_result *r)
{
    struct drill d;
    int rc = -1;

    if (drill_init(&d, cfg, r) < 0)
        return -1;
    if (start_services(&d) == 0)
        /* (the probe is blocking: with no proxy it would ask the in-process
         * app, which cannot answer before the loop runs; the gRPC app speaks h2c) */
        rc = (cfg->scn == DRILL_H2_STREAMS ||
              (cfg->scn == DRILL_GRPC && strcmp(cfg->proxy, "none") != 0)) && !h2_supported(&d)
                 ? 0 : run_load(&d);
    drill_teardown(&d);
    return rc;
}
