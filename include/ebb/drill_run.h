/*
 * drill_run.h - the drill's run-time objects, shared by the src/drill/ files only.
 *
 * struct drill is one scenario run: it owns the loop, the app and remote
 * service (app.c), the load generator (load.c: HTTP/1.1 users; h2load.c:
 * HTTP/2 connections), and the proxy child (proxy.c).
 */
#ifndef EBB_DRILL_RUN_H
#define EBB_DRILL_RUN_H

#include "ebb/drill.h"

struct drill;

/* --- one HTTP/1.1 client connection, one request at a time (load.c) --- */

enum drill_h1c_state {
    DRILL_H1C_CLOSED = 0,  /* no socket */
    DRILL_H1C_CONNECTING,  /* connect() in progress, request queued */
    DRILL_H1C_IDLE,        /* connected, keep-alive, nothing in flight */
    DRILL_H1C_BUSY,        /* request written or being written, response pending */
};

struct drill_h1c;
/* fail is -1 for a completed request, else an enum drill_fail. */
typedef void (*drill_h1c_cb)(struct drill_h1c *c, int fail, void *data);

struct drill_h1c {
    struct drill        *d;
    struct drill_counts *counts;   /* where outcomes are counted */
    bool                 inbound;  /* part of the load (timeline, fail marks) */
    uint16_t             port;     /* 127.0.0.1:port */
    const char          *host;     /* Host header */
    enum drill_h1c_state state;
    struct ebb_io        io;
    struct ebb_buf       rbuf, wbuf;
    struct ebb_h1_msg   *msg;      /* heap, parsed response head */
    bool                 head_done;
    struct ebb_h1_body   body;
    int                  status;
    uint64_t             got;      /* body bytes decoded */
    uint64_t             want;     /* body bytes the app sends (0 = do not check) */
    bool                 close_after; /* response said Connection: close */
    struct ebb_timer     timeout;
    drill_h1c_cb         cb;       /* completion of the current request */
    void                *cb_data;
};

void drill_h1c_init(struct drill_h1c *c, struct drill *d, uint16_t port, const char *host,
                    struct drill_counts *counts, bool inbound);
/* Sends GET path (connecting first if needed); cb runs exactly once, later,
 * never from inside this call.  c must not be busy. */
void drill_h1c_request(struct drill_h1c *c, const char *path, uint64_t want, drill_h1c_cb cb,
                       void *data);
/* Closes the connection; a request in flight is dropped without a callback. */
void drill_h1c_close(struct drill_h1c *c);
static inline bool drill_h1c_busy(const struct drill_h1c *c)
{
    return c->state == DRILL_H1C_CONNECTING || c->state == DRILL_H1C_BUSY;
}

/* --- the load generator --- */
int  drill_load_start(struct drill *d);   /* h1 users, or h2 connections */
void drill_load_stop(struct drill *d);    /* end: in-flight requests become timeouts */
void drill_load_free(struct drill *d);
int  drill_h2_start(struct drill *d);
void drill_h2_stop(struct drill *d);
void drill_h2_free(struct drill *d);
/* Preflight: does 127.0.0.1:port answer the h2 connection preface with
 * frames?  Returns 1 yes, 0 no (why in note). */
int  drill_h2_probe(uint16_t port, char *note, size_t notelen);

/* --- the app and the remote service (app.c) --- */
struct drill_app;
#define DRILL_APP_SETTLE_MS 1000
/* After a failed request (h1) or connection attempt (h2) a client waits this
 * long before trying again: "refused" counts attempts at this rate. */
#define DRILL_RETRY_MS 50
struct drill_app *drill_app_new(struct drill *d, bool remote, uint16_t *port);
void drill_app_sigterm(struct drill_app *a);
bool drill_app_done(const struct drill_app *a);
void drill_app_free(struct drill_app *a);

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
    struct drill_proxy proxy;
    struct ebb_timer  t_sigterm, t_removal, t_kill, t_sample, t_progress, t_hard, t_check,
                      t_h2retry, t_settle;
    uint32_t          rnd;
};

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
