/*
 * drill.c - `ebb drill`: flags, per-scenario defaults, and the Kubernetes
 * termination model for one scenario run:
 *
 *   t=0             the load starts (app, remote service and proxy are up)
 *   --sigterm-at    stop signal to the proxy, SIGTERM to the app
 *   +removal delay  endpoint removal: the load generator sends nothing new
 *   +grace          SIGKILL to the proxy's process group if it is still there
 *   end             proxy gone, nothing in flight, app done (bounded:
 *                   SIGTERM + grace + 3 s; what is still in flight is a timeout)
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ebb/cli.h"
#include "ebb/core.h"
#include "ebb/drill_run.h"
#include "ebb/parse.h"

void drill_app_poke(struct drill_app *a);
uint16_t drill_free_port(void);

static const char *scn_names[DRILL_NSCN] = { "long-request", "steady", "idle-pool", "h2-streams",
                                             "outbound" };

/* Per-scenario defaults (SPEC §8); every one can be overridden by a flag. */
static const struct scn_default {
    unsigned clients, streams;
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
};

static volatile pid_t g_proxy_pgid;   /* for the SIGINT handler */

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
                               &d->t_progress, &d->t_hard, &d->t_check, &d->t_h2retry, &d->t_settle };
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
    bool proxy_gone = d->proxy.pid == 0 || d->proxy.exited;
    if (proxy_gone && d->inflight == 0 && d->out_inflight == 0 && drill_app_done(d->app))
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
    d->sigterm_sent = true;
    d->r->sigterm_ms = drill_t(d);
    snprintf(label, sizeof(label), "SIG%s to proxy, SIGTERM to app", sigabbrev_np(d->cfg->stop_signal));
    drill_result_event(d->r, d->r->sigterm_ms, DRILL_EV_SIGTERM, label);
    drill_progress(d, "%s", label);
    drill_proxy_signal(d, d->cfg->stop_signal);
    drill_app_sigterm(d->app);
    ebb_timer_start(loop, &d->t_removal, d->cfg->removal_ms);
    ebb_timer_start(loop, &d->t_kill, d->cfg->grace_ms);
    ebb_timer_start(loop, &d->t_hard, d->cfg->grace_ms + 3000);
}

static void on_removal(struct ebb_loop *loop, struct ebb_timer *t)
{
    struct drill *d = t->data;
    d->removed = true;
    d->r->removal_ms = drill_t(d);
    drill_result_event(d->r, d->r->removal_ms, DRILL_EV_REMOVAL,
                       "endpoint removed: no new requests");
    ebb_timer_start(loop, &d->t_settle, DRILL_APP_SETTLE_MS);
    drill_progress(d, "endpoint removed: the load generator sends no new requests");
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

int drill_run_scenario(const struct drill_cfg *cfg, struct drill_result *r)
{
    struct drill d;
    int rc = -1;

    memset(&d, 0, sizeof(d));
    d.cfg = cfg;
    d.r = r;
    d.rnd = 0x9e3779b9u ^ (uint32_t)getpid();
    ebb_list_init(&d.users);
    ebb_list_init(&d.h2conns);
    snprintf(r->scenario, sizeof(r->scenario), "%s", scn_names[cfg->scn]);
    snprintf(r->proxy, sizeof(r->proxy), "%s", cfg->proxy);
    if (strcmp(cfg->proxy, "ebb") == 0)
        snprintf(r->mode, sizeof(r->mode), "%s", cfg->exit_on_zero ? "exit-on-zero" : "default");
    r->sigterm_ms = r->removal_ms = r->exit_ms = r->last_ok_ms = r->end_ms = -1;
    d.loop = ebb_loop_new();
    if (!d.loop)
        return -1;
    d.t0_ms = ebb_now_ms();
    d.proxy.pidfd = -1;
    d.proxy.eio.fd = -1;

    bool direct = strcmp(cfg->proxy, "none") == 0;
    d.remote = drill_app_new(&d, true, &d.remote_port);
    if (!d.remote)
        goto out;
    if (direct) {
        d.outbound_port = d.remote_port;
    } else {
        d.listen_port = drill_free_port();
        d.outbound_port = drill_free_port();
    }
    d.app = drill_app_new(&d, false, &d.app_port);
    if (!d.app)
        goto out;
    if (direct)
        d.listen_port = d.app_port;
    else if (drill_proxy_start(&d) < 0)
        goto out;
    g_proxy_pgid = d.proxy.pid;

    if (cfg->scn == DRILL_H2_STREAMS) {
        char note[160];
        if (!drill_h2_probe(d.listen_port, note, sizeof(note))) {
            r->unsupported = true;
            snprintf(r->note, sizeof(r->note), "%s", note);
            drill_progress(&d, "%s: skipping the scenario", note);
            rc = 0;
            goto out;
        }
    }

    struct { struct ebb_timer *t; ebb_timer_cb cb; } ts[] = {
        { &d.t_sigterm, on_sigterm }, { &d.t_removal, on_removal }, { &d.t_kill, on_kill },
        { &d.t_sample, on_sample }, { &d.t_progress, on_progress }, { &d.t_hard, on_hard },
        { &d.t_check, on_check }, { &d.t_settle, on_check },
    };
    for (size_t i = 0; i < EBB_ARRAY_LEN(ts); i++) {
        ts[i].t->cb = ts[i].cb;
        ts[i].t->data = &d;
    }
    d.t0_ms = ebb_now_ms();
    drill_progress(&d, "load starts: proxy %s pid %d, inbound 127.0.0.1:%u, outbound 127.0.0.1:%u, "
                   "app 127.0.0.1:%u, remote 127.0.0.1:%u", cfg->proxy, (int)d.proxy.pid,
                   d.listen_port, d.outbound_port, d.app_port, d.remote_port);
    if (drill_load_start(&d) < 0)
        goto out;
    ebb_timer_start(d.loop, &d.t_sigterm, cfg->sigterm_at_ms);
    ebb_timer_start(d.loop, &d.t_sample, 0);
    ebb_timer_start(d.loop, &d.t_progress, 1000);
    ebb_loop_run(d.loop);
    on_sample(d.loop, &d.t_sample);
    ebb_timer_stop(d.loop, &d.t_sample);
    rc = 0;

out:
    if (!d.ended) {
        d.ended = d.ending = true;
        drill_load_stop(&d);
    }
    drill_load_free(&d);
    drill_app_free(d.app);
    drill_app_free(d.remote);
    drill_proxy_reap(&d);
    g_proxy_pgid = 0;
    /* deferred frees of the app's connections */
    d.t_check.cb = stop_cb;
    ebb_timer_start(d.loop, &d.t_check, 0);
    ebb_loop_run(d.loop);
    ebb_loop_free(d.loop);
    return rc;
}

/* --- the command --- */

static void usage(FILE *f)
{
    fputs(
"usage: ebb drill [--scenario long-request|steady|idle-pool|h2-streams|outbound|all]\n"
"                 [--proxy ebb|nginx|haproxy|none] [--proxy-cmd CMD] [--mode default|exit-on-zero|both]\n"
"                 [--stop-signal TERM|QUIT|USR1|...] [--sigterm-at S] [--endpoint-removal-delay S]\n"
"                 [--grace S] [--timeout S] [--clients N] [--streams N] [--latency S] [--body-size N]\n"
"                 [--think S] [--shutdown-work S] [--app-reset-every N] [--workdir DIR]\n"
"                 [--json] [--svg FILE] [--quiet]\n"
"\n"
"Termination drill (SPEC §8): runs a built-in app, the proxy under test and a load generator on\n"
"loopback, terminates the proxy as Kubernetes does (stop signal at --sigterm-at, endpoint\n"
"removal after --endpoint-removal-delay, SIGKILL after --grace), and counts every request.\n"
"Durations are seconds (1.5) or Go durations (1500ms).  --proxy-cmd placeholders:\n"
"{listen_port} {outbound_port} {app_port} {remote_port} {workdir}.  --proxy none sends the load\n"
"straight to the app (a baseline).  Exit status: 0 when every scenario passed (or was N/A),\n"
"1 when a request failed, 2 on a usage or setup error.  See docs/drill.md.\n", f);
}

static int parse_secs(const char *flag, const char *s, uint64_t *ms)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end != s && *end == 0 && errno == 0 && v >= 0 && v < 86400) {
        *ms = (uint64_t)(v * 1000.0 + 0.5);
        return 0;
    }
    if (ebb_parse_duration_ms(s, ms) == 0)
        return 0;
    fprintf(stderr, "ebb drill: %s: \"%s\" is not a number of seconds or a duration\n", flag, s);
    return -1;
}

static int parse_uint_flag(const char *flag, const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    if (ebb_parse_uint(s, min, max, out) == 0)
        return 0;
    fprintf(stderr, "ebb drill: %s: \"%s\" is not an integer in %llu..%llu\n", flag, s,
            (unsigned long long)min, (unsigned long long)max);
    return -1;
}

static int parse_signal(const char *s)
{
    static const struct { const char *n; int sig; } sigs[] = {
        { "TERM", SIGTERM }, { "QUIT", SIGQUIT }, { "USR1", SIGUSR1 }, { "USR2", SIGUSR2 },
        { "INT", SIGINT }, { "HUP", SIGHUP }, { "KILL", SIGKILL },
    };
    if (strncmp(s, "SIG", 3) == 0)
        s += 3;
    for (size_t i = 0; i < EBB_ARRAY_LEN(sigs); i++)
        if (strcmp(s, sigs[i].n) == 0)
            return sigs[i].sig;
    return -1;
}

int ebb_cmd_drill(int argc, char **argv)
{
    const char *scenario = "all", *proxy = "ebb", *proxy_cmd = NULL, *svg = NULL, *workdir = NULL;
    const char *mode = "exit-on-zero";
    bool json = false, quiet = false;
    int stop_signal = 0;
    /* overrides: UINT64_MAX = scenario default */
    uint64_t sigterm_at = UINT64_MAX, removal = UINT64_MAX, grace = 30000, timeout = 15000;
    uint64_t clients = UINT64_MAX, streams = UINT64_MAX, latency = UINT64_MAX, body = UINT64_MAX;
    uint64_t think = UINT64_MAX, shutdown = UINT64_MAX, reset_every = 0;
    char ebb_path[4096];

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--json")) {
            json = true;
            continue;
        } else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
            quiet = true;
            continue;
        }
        if (!v) {
            fprintf(stderr, "ebb drill: unknown flag or missing value: \"%s\"\n", a);
            usage(stderr);
            return 2;
        }
        i++;
        if (!strcmp(a, "--scenario"))
            scenario = v;
        else if (!strcmp(a, "--proxy"))
            proxy = v;
        else if (!strcmp(a, "--proxy-cmd"))
            proxy_cmd = v;
        else if (!strcmp(a, "--mode"))
            mode = v;
        else if (!strcmp(a, "--svg"))
            svg = v;
        else if (!strcmp(a, "--workdir"))
            workdir = v;
        else if (!strcmp(a, "--stop-signal")) {
            if ((stop_signal = parse_signal(v)) < 0) {
                fprintf(stderr, "ebb drill: --stop-signal: \"%s\" is not TERM, QUIT, USR1, USR2, INT, HUP\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--sigterm-at"))
            bad = parse_secs(a, v, &sigterm_at);
        else if (!strcmp(a, "--endpoint-removal-delay"))
            bad = parse_secs(a, v, &removal);
        else if (!strcmp(a, "--grace"))
            bad = parse_secs(a, v, &grace);
        else if (!strcmp(a, "--timeout"))
            bad = parse_secs(a, v, &timeout);
        else if (!strcmp(a, "--latency"))
            bad = parse_secs(a, v, &latency);
        else if (!strcmp(a, "--think"))
            bad = parse_secs(a, v, &think);
        else if (!strcmp(a, "--shutdown-work"))
            bad = parse_secs(a, v, &shutdown);
        else if (!strcmp(a, "--clients"))
            bad = parse_uint_flag(a, v, 1, 1000, &clients);
        else if (!strcmp(a, "--streams"))
            bad = parse_uint_flag(a, v, 1, 1000, &streams);
        else if (!strcmp(a, "--body-size"))
            bad = parse_uint_flag(a, v, 0, 16 * 1024 * 1024, &body);
        else if (!strcmp(a, "--app-reset-every"))
            bad = parse_uint_flag(a, v, 0, 1000000, &reset_every);
        else {
            fprintf(stderr, "ebb drill: unknown flag \"%s\"\n", a);
            usage(stderr);
            return 2;
        }
        if (bad)
            return 2;
    }
    if (proxy_cmd)
        proxy = "cmd";
    if (strcmp(proxy, "ebb") && strcmp(proxy, "nginx") && strcmp(proxy, "haproxy") &&
        strcmp(proxy, "none") && strcmp(proxy, "cmd")) {
        fprintf(stderr, "ebb drill: --proxy: \"%s\" is not ebb, nginx, haproxy or none\n", proxy);
        return 2;
    }
    if (!strcmp(proxy, "cmd") && !proxy_cmd) {
        fprintf(stderr, "ebb drill: --proxy cmd needs --proxy-cmd\n");
        return 2;
    }
    /* --mode both (or "default,exit-on-zero"): every scenario in each mode */
    const char *modes[2] = { mode, NULL };
    if (!strcmp(mode, "both") || !strcmp(mode, "default,exit-on-zero") ||
        !strcmp(mode, "exit-on-zero,default")) {
        modes[0] = "default";
        modes[1] = "exit-on-zero";
    } else if (strcmp(mode, "default") && strcmp(mode, "exit-on-zero")) {
        fprintf(stderr, "ebb drill: --mode: \"%s\" is not default, exit-on-zero or both\n", mode);
        return 2;
    }
    if (!stop_signal)
        stop_signal = !strcmp(proxy, "nginx") ? SIGQUIT : !strcmp(proxy, "haproxy") ? SIGUSR1 : SIGTERM;

    bool run[DRILL_NSCN] = { false };
    if (!strcmp(scenario, "all")) {
        for (int s = 0; s < DRILL_NSCN; s++)
            run[s] = true;
    } else {
        /* a comma-separated list is accepted too */
        char tmp[256];
        snprintf(tmp, sizeof(tmp), "%s", scenario);
        for (char *save = NULL, *tok = strtok_r(tmp, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            int found = -1;
            for (int s = 0; s < DRILL_NSCN; s++)
                if (!strcmp(tok, scn_names[s]))
                    found = s;
            if (found < 0) {
                fprintf(stderr, "ebb drill: --scenario: \"%s\" is not long-request, steady, idle-pool, "
                        "h2-streams, outbound or all\n", tok);
                return 2;
            }
            run[found] = true;
        }
    }

    ssize_t n = readlink("/proc/self/exe", ebb_path, sizeof(ebb_path) - 1);
    if (n <= 0) {
        fprintf(stderr, "ebb drill: cannot read /proc/self/exe: %s\n", strerror(errno));
        return 2;
    }
    ebb_path[n] = 0;
    char wbuf[512];
    if (!workdir) {
        snprintf(wbuf, sizeof(wbuf), "/tmp/ebb-drill-XXXXXX");
        if (!mkdtemp(wbuf)) {
            fprintf(stderr, "ebb drill: mkdtemp: %s\n", strerror(errno));
            return 2;
        }
        chmod(wbuf, 0755);
        workdir = wbuf;
    } else if (mkdir(workdir, 0755) < 0 && errno != EEXIST) {
        fprintf(stderr, "ebb drill: --workdir %s: %s\n", workdir, strerror(errno));
        return 2;
    }

    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_interrupt);
    signal(SIGTERM, on_interrupt);

    struct drill_result *results = calloc(2 * DRILL_NSCN, sizeof(*results));
    size_t nres = 0;
    int code = 0;
    if (!results)
        return 2;
    for (int k = 0; k < 2 * DRILL_NSCN; k++) {
        int s = k % DRILL_NSCN;
        mode = modes[k / DRILL_NSCN];
        if (!run[s] || !mode || (k >= DRILL_NSCN && strcmp(proxy, "ebb")))
            continue;
        const struct scn_default *def = &scn_defaults[s];
        char dir[1024];
        snprintf(dir, sizeof(dir), "%s/%s-%s%s%s", workdir, scn_names[s], proxy,
                 !strcmp(proxy, "ebb") ? "-" : "", !strcmp(proxy, "ebb") ? mode : "");
        mkdir(dir, 0755);
        chmod(dir, 0755);
        struct drill_cfg cfg = {
            .scn = s,
            .proxy = proxy,
            .proxy_cmd = proxy_cmd,
            .stop_signal = stop_signal,
            .exit_on_zero = !strcmp(mode, "exit-on-zero"),
            .sigterm_at_ms = sigterm_at != UINT64_MAX ? sigterm_at : def->sigterm_at_ms,
            .removal_ms = removal != UINT64_MAX ? removal : def->removal_ms,
            .grace_ms = grace,
            .timeout_ms = timeout,
            .clients = (unsigned)(clients != UINT64_MAX ? clients : def->clients),
            .streams = (unsigned)(streams != UINT64_MAX ? streams : def->streams ? def->streams : 1),
            .latency_ms = latency != UINT64_MAX ? latency : def->latency_ms,
            .body = body != UINT64_MAX ? body : def->body,
            .think_ms = think != UINT64_MAX ? think : def->think_ms,
            .shutdown_ms = shutdown != UINT64_MAX ? shutdown : def->shutdown_ms,
            .shutdown_every_ms = 250,
            .app_reset_every = (unsigned)reset_every,
            .workdir = dir,
            .ebb_path = ebb_path,
            .quiet = quiet,
        };
        if (drill_run_scenario(&cfg, &results[nres]) < 0) {
            fprintf(stderr, "ebb drill: scenario %s could not run (files in %s)\n", scn_names[s], dir);
            code = 2;
            drill_result_free(&results[nres]);
            continue;
        }
        struct drill_result *r = &results[nres++];
        char v[256];
        drill_verdict(r, v, sizeof(v));
        if (!quiet)
            fprintf(stderr, "[drill %s/%s] %s\n", r->scenario, r->proxy, v);
        if (!drill_result_pass(r) && !r->unsupported && code == 0)
            code = 1;
    }
    if (json)
        drill_report_json(stdout, results, nres);
    else
        drill_report_text(stdout, results, nres);
    fflush(stdout);
    if (svg) {
        FILE *f = fopen(svg, "w");
        if (!f) {
            fprintf(stderr, "ebb drill: --svg %s: %s\n", svg, strerror(errno));
            code = 2;
        } else {
            drill_report_svg(f, results, nres);
            fclose(f);
        }
    }
    if (!quiet)
        fprintf(stderr, "ebb drill: configs and proxy logs are in %s\n", workdir);
    for (size_t i = 0; i < nres; i++)
        drill_result_free(&results[i]);
    free(results);
    return code;
}
