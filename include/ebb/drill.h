/*
 * drill.h - the termination drill of SPEC §8: one scenario against one
 * proxy, run by drill_run_scenario() (src/drill/); `ebb drill` (src/cli/
 * drill.c) picks the scenarios and writes the report (drill_report.h).
 *
 * One process runs everything on one ebb event loop: the target app and
 * the "remote service" (app.c), the HTTP/1.1 and HTTP/2 load generators
 * (load.c, h2load.c), the proxy under test as a child process (proxy.c),
 * and the Kubernetes termination model (drill.c).
 */
#ifndef EBB_DRILL_H
#define EBB_DRILL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ebb/drill_report.h"

enum drill_scn {
    DRILL_LONG_REQUEST = 0,
    DRILL_STEADY,
    DRILL_IDLE_POOL,
    DRILL_H2_STREAMS,
    DRILL_OUTBOUND,
    DRILL_GRPC,
    DRILL_NSCN
};

/* --target URL [--during CMD]: the load goes to a live deployment (a
 * NodePort, a LoadBalancer, an ingress) instead of the drill's own app behind
 * a local proxy, and CMD (say, a rollout restart) runs where the stop signal
 * would be sent.  Nothing local is started or stopped. */
struct drill_target {
    const char *url;             /* as given */
    uint32_t    addr;            /* IPv4, network order: the URL's host, resolved once */
    uint16_t    port;
    char        authority[256];  /* Host / :authority: the URL's host[:port] */
    char        path[1024];      /* the URL's path and query ("/" when none) */
    const char *during;          /* --during CMD (run with /bin/sh -c), or NULL */
};
/* Parses http://host[:port][/path] into *t (resolving host to IPv4).
 * Returns 0, or -1 with the reason in err. */
int drill_target_parse(const char *url, struct drill_target *t, char *err, size_t errlen);

/* Options for one scenario (after defaults are applied). */
struct drill_cfg {
    enum drill_scn scn;
    const char *proxy;          /* ebb | nginx | haproxy | cmd | none */
    const char *proxy_cmd;      /* --proxy-cmd template */
    int         stop_signal;
    bool        exit_on_zero;   /* ebb --mode exit-on-zero */
    uint64_t    sigterm_at_ms;
    uint64_t    removal_ms;     /* after SIGTERM */
    uint64_t    grace_ms;       /* after SIGTERM */
    uint64_t    prestop_ms;     /* a preStop `sleep` on the proxy: its stop signal this much later */
    uint64_t    timeout_ms;     /* per request */
    unsigned    clients;        /* h1 clients, or h2 connections */
    unsigned    streams;        /* h2 concurrent streams per connection */
    uint64_t    latency_ms;     /* app latency per request */
    uint64_t    body;           /* response body bytes */
    uint64_t    think_ms;       /* pause between a client's requests (idle-pool: mean) */
    uint64_t    shutdown_ms;    /* outbound: how long the app's shutdown work lasts */
    uint64_t    shutdown_every_ms; /* outbound: one call per this */
    unsigned    app_reset_every;/* fault injection: every Nth app response is cut by a reset */
    const char *workdir;        /* per-scenario files (configs, proxy logs) */
    const char *ebb_path;       /* the binary to run as the ebb proxy */
    bool        quiet;          /* no progress on stderr */
    const struct drill_target *target; /* --target, or NULL: the local drill */
};

/* "long-request", "steady", ... */
const char *drill_scn_name(enum drill_scn s);
/* Fills *cfg with scenario s's defaults (SPEC §8); the rest zero. */
void drill_scn_defaults(enum drill_scn s, struct drill_cfg *cfg);
/* SIGINT/SIGTERM kill the proxy under test and exit 130; SIGPIPE ignored. */
void drill_catch_signals(void);
/* Runs one scenario; fills *r.  Returns 0, or -1 when the drill itself could
 * not run (setup error; message on stderr). */
int drill_run_scenario(const struct drill_cfg *cfg, struct drill_result *r);

#endif
