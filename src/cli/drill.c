/*
 * drill.c - `ebb drill`: the flag table, the choice of scenarios and
 * modes, the work directory, and the report once every scenario has run.
 * One scenario run is src/drill/ (drill_run_scenario()).
 */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ebb/cli.h"
#include "ebb/core.h"
#include "ebb/drill.h"
#include "ebb/parse.h"

#define UNSET UINT64_MAX   /* a per-scenario knob left at the scenario's default */

/* What the flags asked for.  UNSET knobs take the scenario's default. */
struct drill_opts {
    const char *scenario;     /* "all", a name, or a comma-separated list */
    const char *proxy;        /* ebb | nginx | haproxy | none (cmd with --proxy-cmd) */
    const char *proxy_cmd;    /* --proxy-cmd template, or NULL */
    const char *mode;         /* default | exit-on-zero | both */
    const char *svg;          /* --svg FILE, or NULL */
    const char *workdir;      /* --workdir DIR, or NULL: a fresh one under /tmp */
    const char *target;       /* --target URL, or NULL: the local drill */
    const char *during;       /* --during CMD (with --target) */
    struct drill_target tgt;  /* --target parsed */
    bool        json;         /* the report as JSON */
    bool        quiet;        /* no progress on stderr */
    bool        help;         /* print the usage and exit 0 */
    int         stop_signal;  /* 0: the proxy's own default */
    uint64_t    sigterm_at, removal, grace, timeout;      /* ms */
    uint64_t    prestop;                                  /* ms, 0 = no preStop hook */
    uint64_t    latency, think, shutdown;                 /* ms */
    uint64_t    clients, streams, body, reset_every;
};

enum flag_kind {
    FLAG_BOOL = 0,   /* no value: sets a bool */
    FLAG_STR,        /* a string kept as given */
    FLAG_SECS,       /* seconds (1.5) or a Go duration (1500ms), stored as ms */
    FLAG_UINT,       /* an integer in [min, max] */
    FLAG_SIGNAL,     /* TERM, QUIT, USR1, USR2, INT, HUP (SIG prefix optional) */
};

/* One flag: how it parses, where it lands in struct drill_opts, its help line. */
struct drill_flag {
    const char    *name;   /* "--scenario" */
    const char    *alias;  /* short form ("-q"), or NULL */
    enum flag_kind kind;
    size_t         off;    /* offsetof(struct drill_opts, field) */
    uint64_t       min, max; /* FLAG_UINT bounds */
    const char    *arg;    /* the value's name in the help, NULL for FLAG_BOOL */
    const char    *help;   /* one line */
};

#define O(field) offsetof(struct drill_opts, field)

static const struct drill_flag flags[] = {
    { "--scenario", NULL, FLAG_STR, O(scenario), 0, 0, "LIST",
      "long-request, steady, idle-pool, h2-streams, outbound, grpc,\n"
      "a comma-separated list of them, or all (default)" },
    { "--proxy", NULL, FLAG_STR, O(proxy), 0, 0, "NAME",
      "the proxy under test: ebb (default), nginx, haproxy,\n"
      "or none (the load straight to the app: a baseline)" },
    { "--proxy-cmd", NULL, FLAG_STR, O(proxy_cmd), 0, 0, "CMD",
      "run CMD under sh -c as the proxy; it may use {listen_port}\n"
      "{outbound_port} {app_port} {remote_port} {workdir}" },
    { "--mode", NULL, FLAG_STR, O(mode), 0, 0, "MODE",
      "ebb's drain mode: default, exit-on-zero (default) or both" },
    { "--stop-signal", NULL, FLAG_SIGNAL, O(stop_signal), 0, 0, "SIG",
      "TERM, QUIT, USR1, USR2, INT or HUP\n(default TERM; QUIT for nginx, USR1 for haproxy)" },
    { "--sigterm-at", NULL, FLAG_SECS, O(sigterm_at), 0, 0, "S",
      "the stop signal, after the load starts (per scenario)" },
    { "--endpoint-removal-delay", NULL, FLAG_SECS, O(removal), 0, 0, "S",
      "no new requests from this long after the stop signal (per scenario)" },
    { "--grace", NULL, FLAG_SECS, O(grace), 0, 0, "S",
      "SIGKILL to the proxy this long after the stop signal (default 30)" },
    { "--prestop-sleep", NULL, FLAG_SECS, O(prestop), 0, 0, "S",
      "a preStop `sleep S` hook on the proxy: its stop signal comes S later (default 0)" },
    { "--timeout", NULL, FLAG_SECS, O(timeout), 0, 0, "S",
      "a request without a complete answer by then is a timeout (default 15)" },
    { "--clients", NULL, FLAG_UINT, O(clients), 1, 1000, "N",
      "HTTP/1.1 clients, or HTTP/2 connections (per scenario)" },
    { "--streams", NULL, FLAG_UINT, O(streams), 1, 1000, "N",
      "concurrent HTTP/2 streams per connection (per scenario)" },
    { "--latency", NULL, FLAG_SECS, O(latency), 0, 0, "S",
      "the app's time per request (per scenario)" },
    { "--body-size", NULL, FLAG_UINT, O(body), 0, 16 * 1024 * 1024, "N",
      "response body bytes (per scenario)" },
    { "--think", NULL, FLAG_SECS, O(think), 0, 0, "S",
      "pause between a client's requests (per scenario)" },
    { "--shutdown-work", NULL, FLAG_SECS, O(shutdown), 0, 0, "S",
      "outbound: how long the app's shutdown calls last (per scenario)" },
    { "--app-reset-every", NULL, FLAG_UINT, O(reset_every), 0, 1000000, "N",
      "fault injection: the app resets every Nth response\n(default 0: never)" },
    { "--workdir", NULL, FLAG_STR, O(workdir), 0, 0, "DIR",
      "configs and proxy logs (default a fresh /tmp/ebb-drill-XXXXXX)" },
    { "--target", NULL, FLAG_STR, O(target), 0, 0, "URL",
      "live mode: the load goes to http://HOST[:PORT][/PATH]\n"
      "(a NodePort, a LoadBalancer, an ingress);\nno app, no proxy; see docs/drill.md" },
    { "--during", NULL, FLAG_STR, O(during), 0, 0, "CMD",
      "with --target: run CMD (sh -c) at --sigterm-at, e.g. a\nrollout restart; the load ends "
      "--endpoint-removal-delay\nafter CMD exits; SIGKILL to CMD after --grace" },
    { "--json", NULL, FLAG_BOOL, O(json), 0, 0, NULL, "the report as JSON on stdout" },
    { "--svg", NULL, FLAG_STR, O(svg), 0, 0, "FILE", "draw each scenario's timeline into FILE" },
    { "--quiet", "-q", FLAG_BOOL, O(quiet), 0, 0, NULL, "no progress on stderr" },
    { "--help", "-h", FLAG_BOOL, O(help), 0, 0, NULL, "this help" },
};

#undef O

static void usage(FILE *f)
{
    fputs("usage: ebb drill [flags]\n"
"\n"
"Termination drill (SPEC §8): runs a built-in app, the proxy under test and a load generator on\n"
"loopback, terminates the proxy as Kubernetes does (stop signal at --sigterm-at, endpoint\n"
"removal after --endpoint-removal-delay, SIGKILL after --grace), and counts every request.\n"
"Durations are seconds (1.5) or Go durations (1500ms).  Exit status: 0 when every scenario\n"
"passed (or was N/A), 1 when a request failed, 2 on a usage or setup error.  See docs/drill.md.\n"
"\n"
"flags (\"per scenario\": the default depends on the scenario, see docs/drill.md):\n", f);
    for (size_t i = 0; i < EBB_ARRAY_LEN(flags); i++) {
        const struct drill_flag *fl = &flags[i];
        char name[64];
        snprintf(name, sizeof(name), "%s%s%s%s%s", fl->alias ? fl->alias : "",
                 fl->alias ? ", " : "", fl->name, fl->arg ? " " : "", fl->arg ? fl->arg : "");
        fprintf(f, "  %-27s ", name);
        for (const char *h = fl->help; *h; h++) {
            fputc(*h, f);
            if (*h == '\n')   /* continuation lines line up under the help */
                fprintf(f, "%30s", "");
        }
        if (fl->kind == FLAG_UINT)
            fprintf(f, " [%llu..%llu]", (unsigned long long)fl->min,
                    (unsigned long long)fl->max);
        fputc('\n', f);
    }
}

static const struct drill_flag *find_flag(const char *a)
{
    for (size_t i = 0; i < EBB_ARRAY_LEN(flags); i++)
        if (!strcmp(a, flags[i].name) || (flags[i].alias && !strcmp(a, flags[i].alias)))
            return &flags[i];
    return NULL;
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

static int parse_secs(const char *s, uint64_t *ms)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end != s && *end == 0 && errno == 0 && v >= 0 && v < 86400) {
        *ms = (uint64_t)(v * 1000.0 + 0.5);
        return 0;
    }
    return ebb_parse_duration_ms(s, ms);
}

/* Stores v into the flag's field; on a bad value says why on stderr and
 * returns -1. */
static int set_flag(const struct drill_flag *fl, const char *v, struct drill_opts *o)
{
    void *field = (char *)o + fl->off;
    switch (fl->kind) {
    case FLAG_BOOL:
        *(bool *)field = true;
        return 0;
    case FLAG_STR:
        *(const char **)field = v;
        return 0;
    case FLAG_SIGNAL:
        if ((*(int *)field = parse_signal(v)) >= 0)
            return 0;
        fprintf(stderr, "ebb drill: %s: \"%s\" is not TERM, QUIT, USR1, USR2, INT, HUP\n",
                fl->name, v);
        return -1;
    case FLAG_SECS:
        if (parse_secs(v, field) == 0)
            return 0;
        fprintf(stderr, "ebb drill: %s: \"%s\" is not a number of seconds or a duration\n",
                fl->name, v);
        return -1;
    case FLAG_UINT:
        if (ebb_parse_uint(v, fl->min, fl->max, field) == 0)
            return 0;
        fprintf(stderr, "ebb drill: %s: \"%s\" is not an integer in %llu..%llu\n", fl->name, v,
                (unsigned long long)fl->min, (unsigned long long)fl->max);
        return -1;
    }
    return -1;
}

/* Fills o from argv.  Returns 0, or 2 after a message and the usage on stderr. */
static int parse_flags(int argc, char **argv, struct drill_opts *o)
{
    for (int i = 1; i < argc && !o->help; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        const struct drill_flag *fl = find_flag(a);
        if (fl && fl->kind == FLAG_BOOL) {
            set_flag(fl, NULL, o);
            continue;
        }
        if (!v || !fl) {
            fprintf(stderr, !v ? "ebb drill: unknown flag or missing value: \"%s\"\n"
                               : "ebb drill: unknown flag \"%s\"\n", a);
            usage(stderr);
            return 2;
        }
        i++;
        if (set_flag(fl, v, o) < 0)
            return 2;
    }
    return 0;
}

/* --target/--during: parses the URL; the local proxy, its modes and the
 * outbound scenario (which needs the drill's own app) do not apply.
 * Returns 0 or 2. */
static int check_target(struct drill_opts *o, const char *modes[2])
{
    char err[256];
    if (o->proxy_cmd || strcmp(o->proxy, "ebb") || strcmp(o->mode, "exit-on-zero") ||
        o->prestop) {
        fprintf(stderr, "ebb drill: --target: --proxy, --proxy-cmd, --mode and --prestop-sleep "
                        "are for the local drill (the target is whatever the URL reaches)\n");
        return 2;
    }
    if (drill_target_parse(o->target, &o->tgt, err, sizeof(err)) < 0) {
        fprintf(stderr, "ebb drill: --target: %s\n", err);
        return 2;
    }
    o->tgt.during = o->during;
    o->proxy = "target";
    modes[0] = "default";
    modes[1] = NULL;
    return 0;
}

/* Checks --proxy and --mode; fills modes[] (the second one NULL unless
 * --mode both) and the default stop signal.  Returns 0 or 2. */
static int check_proxy_and_mode(struct drill_opts *o, const char *modes[2])
{
    if (o->target)
        return check_target(o, modes);
    if (o->proxy_cmd)
        o->proxy = "cmd";
    if (strcmp(o->proxy, "ebb") && strcmp(o->proxy, "nginx") && strcmp(o->proxy, "haproxy") &&
        strcmp(o->proxy, "none") && strcmp(o->proxy, "cmd")) {
        fprintf(stderr, "ebb drill: --proxy: \"%s\" is not ebb, nginx, haproxy or none\n", o->proxy);
        return 2;
    }
    if (!strcmp(o->proxy, "cmd") && !o->proxy_cmd) {
        fprintf(stderr, "ebb drill: --proxy cmd needs --proxy-cmd\n");
        return 2;
    }
    /* --mode both (or "default,exit-on-zero"): every scenario in each mode */
    modes[0] = o->mode;
    modes[1] = NULL;
    if (!strcmp(o->mode, "both") || !strcmp(o->mode, "default,exit-on-zero") ||
        !strcmp(o->mode, "exit-on-zero,default")) {
        modes[0] = "default";
        modes[1] = "exit-on-zero";
    } else if (strcmp(o->mode, "default") && strcmp(o->mode, "exit-on-zero")) {
        fprintf(stderr, "ebb drill: --mode: \"%s\" is not default, exit-on-zero or both\n", o->mode);
        return 2;
    }
    if (!o->stop_signal)
        o->stop_signal = !strcmp(o->proxy, "nginx") ? SIGQUIT
                       : !strcmp(o->proxy, "haproxy") ? SIGUSR1 : SIGTERM;
    return 0;
}

/* Marks in run[] the scenarios --scenario names.  Returns 0 or 2. */
static int pick_scenarios(const char *scenario, bool run[DRILL_NSCN])
{
    char tmp[256];
    if (!strcmp(scenario, "all")) {
        for (int s = 0; s < DRILL_NSCN; s++)
            run[s] = true;
        return 0;
    }
    /* a comma-separated list is accepted too */
    snprintf(tmp, sizeof(tmp), "%s", scenario);
    for (char *save = NULL, *tok = strtok_r(tmp, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int found = -1;
        for (int s = 0; s < DRILL_NSCN; s++)
            if (!strcmp(tok, drill_scn_name(s)))
                found = s;
        if (found < 0) {
            fprintf(stderr, "ebb drill: --scenario: \"%s\" is not long-request, steady, idle-pool, "
                    "h2-streams, outbound, grpc or all\n", tok);
            return 2;
        }
        run[found] = true;
    }
    return 0;
}

/* Finds our own binary (the ebb proxy to run) and makes the work
 * directory (wbuf holds a fresh one's name).  Returns 0 or 2. */
static int prepare_dirs(struct drill_opts *o, char *ebb_path, size_t pathlen, char *wbuf,
                        size_t wlen)
{
    ssize_t n = readlink("/proc/self/exe", ebb_path, pathlen - 1);
    if (n <= 0) {
        fprintf(stderr, "ebb drill: cannot read /proc/self/exe: %s\n", strerror(errno));
        return 2;
    }
    ebb_path[n] = 0;
    if (!o->workdir) {
        snprintf(wbuf, wlen, "/tmp/ebb-drill-XXXXXX");
        if (!mkdtemp(wbuf)) {
            fprintf(stderr, "ebb drill: mkdtemp: %s\n", strerror(errno));
            return 2;
        }
        chmod(wbuf, 0755);
        o->workdir = wbuf;
    } else if (mkdir(o->workdir, 0755) < 0 && errno != EEXIST) {
        fprintf(stderr, "ebb drill: --workdir %s: %s\n", o->workdir, strerror(errno));
        return 2;
    }
    return 0;
}

static uint64_t pick(uint64_t flag, uint64_t dflt)
{
    return flag != UNSET ? flag : dflt;
}

/* The options of scenario s in mode: its defaults, then the flags. */
static void scenario_cfg(const struct drill_opts *o, enum drill_scn s, const char *mode,
                         const char *dir, const char *ebb_path, struct drill_cfg *cfg)
{
    drill_scn_defaults(s, cfg);
    cfg->proxy = o->proxy;
    cfg->proxy_cmd = o->proxy_cmd;
    cfg->stop_signal = o->stop_signal;
    cfg->exit_on_zero = !strcmp(mode, "exit-on-zero");
    cfg->sigterm_at_ms = pick(o->sigterm_at, cfg->sigterm_at_ms);
    cfg->removal_ms = pick(o->removal, cfg->removal_ms);
    cfg->grace_ms = o->grace;
    cfg->prestop_ms = o->prestop;
    cfg->timeout_ms = o->timeout;
    cfg->clients = (unsigned)pick(o->clients, cfg->clients);
    cfg->streams = (unsigned)pick(o->streams, cfg->streams);
    cfg->latency_ms = pick(o->latency, cfg->latency_ms);
    cfg->body = pick(o->body, cfg->body);
    cfg->think_ms = pick(o->think, cfg->think_ms);
    cfg->shutdown_ms = pick(o->shutdown, cfg->shutdown_ms);
    cfg->app_reset_every = (unsigned)o->reset_every;
    cfg->workdir = dir;
    cfg->ebb_path = ebb_path;
    cfg->quiet = o->quiet;
    cfg->target = o->target ? &o->tgt : NULL;
}

/* Runs scenario s in mode into *r, with its files in a directory of its
 * own.  Returns 0 when it ran (passed or not), 2 when it could not run. */
static int run_one(const struct drill_opts *o, enum drill_scn s, const char *mode,
                   const char *ebb_path, struct drill_result *r)
{
    bool ebb = !strcmp(o->proxy, "ebb");
    struct drill_cfg cfg;
    char dir[1024];

    snprintf(dir, sizeof(dir), "%s/%s-%s%s%s", o->workdir, drill_scn_name(s), o->proxy,
             ebb ? "-" : "", ebb ? mode : "");
    mkdir(dir, 0755);
    chmod(dir, 0755);
    scenario_cfg(o, s, mode, dir, ebb_path, &cfg);
    if (drill_run_scenario(&cfg, r) < 0) {
        fprintf(stderr, "ebb drill: scenario %s could not run (files in %s)\n",
                drill_scn_name(s), dir);
        drill_result_free(r);
        return 2;
    }
    if (!o->quiet) {
        char v[256];
        drill_verdict(r, v, sizeof(v));
        fprintf(stderr, "[drill %s/%s] %s\n", r->scenario, r->proxy, v);
    }
    return 0;
}

/* Writes the report (stdout, and --svg).  Returns 0 or 2. */
static int report(const struct drill_opts *o, const struct drill_result *results, size_t n)
{
    int code = 0;
    if (o->json)
        drill_report_json(stdout, results, n);
    else
        drill_report_text(stdout, results, n);
    fflush(stdout);
    if (o->svg) {
        FILE *f = fopen(o->svg, "w");
        if (!f) {
            fprintf(stderr, "ebb drill: --svg %s: %s\n", o->svg, strerror(errno));
            code = 2;
        } else {
            drill_report_svg(f, results, n);
            fclose(f);
        }
    }
    if (!o->quiet)
        fprintf(stderr, "ebb drill: configs and proxy logs are in %s\n", o->workdir);
    return code;
}

int ebb_cmd_drill(int argc, char **argv)
{
    struct drill_opts o = {
        .scenario = "all", .proxy = "ebb", .mode = "exit-on-zero",
        .sigterm_at = UNSET, .removal = UNSET, .grace = 30000, .timeout = 15000,
        .latency = UNSET, .think = UNSET, .shutdown = UNSET,
        .clients = UNSET, .streams = UNSET, .body = UNSET, .reset_every = 0,
    };
    const char *modes[2];
    bool run[DRILL_NSCN] = { false };
    char ebb_path[4096], wbuf[512];
    size_t nres = 0;
    int code = 0;

    if (parse_flags(argc, argv, &o))
        return 2;
    if (o.help) {
        usage(stdout);
        return 0;
    }
    if (o.during && !o.target) {
        fprintf(stderr, "ebb drill: --during needs --target\n");
        return 2;
    }
    if (o.target && !strcmp(o.scenario, "all"))
        o.scenario = "steady";   /* one CMD run by default: a rollout takes a while */
    if (check_proxy_and_mode(&o, modes) || pick_scenarios(o.scenario, run) ||
        prepare_dirs(&o, ebb_path, sizeof(ebb_path), wbuf, sizeof(wbuf)))
        return 2;
    if (o.target && run[DRILL_OUTBOUND]) {
        fprintf(stderr, "ebb drill: --target: the outbound scenario needs the drill's own app "
                        "(its shutdown calls); use long-request, steady, idle-pool or h2-streams\n");
        return 2;
    }
    drill_catch_signals();

    struct drill_result *results = calloc(2 * DRILL_NSCN, sizeof(*results));
    if (!results)
        return 2;
    /* every scenario in the first mode, then (ebb, --mode both) in the second */
    for (int k = 0; k < 2 * DRILL_NSCN; k++) {
        enum drill_scn s = k % DRILL_NSCN;
        const char *mode = modes[k / DRILL_NSCN];
        if (!run[s] || !mode || (k >= DRILL_NSCN && strcmp(o.proxy, "ebb")))
            continue;
        if (run_one(&o, s, mode, ebb_path, &results[nres]) != 0) {
            code = 2;
            continue;
        }
        struct drill_result *r = &results[nres++];
        if (!drill_result_pass(r) && !r->unsupported && code == 0)
            code = 1;
    }
    if (report(&o, results, nres))
        code = 2;
    for (size_t i = 0; i < nres; i++)
        drill_result_free(&results[i]);
    free(results);
    return code;
}
