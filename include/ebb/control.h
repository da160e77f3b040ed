/*
 * control.h - the control thread (drain.c): its loop, signals, and the
 * drain controller of SPEC §3.  It runs on the main thread; workers never
 * block on it.  The admin endpoints (admin.h) drive it through the
 * operator entry points below; it knows nothing of them.
 */
#ifndef EBB_CONTROL_H
#define EBB_CONTROL_H

#include <stdbool.h>
#include <stdint.h>

#include "ebb/loop.h"

struct ebb_server;
struct ebb_buf;

/* What started the drain. */
enum ebb_drain_trigger {
    EBB_TRIG_NONE = 0,
    EBB_TRIG_SIGTERM,          /* SIGTERM: termination drain + exit per mode */
    EBB_TRIG_SIGINT,           /* SIGINT: same */
    EBB_TRIG_STATUS_DRAIN,     /* POST :15020/drain: drain, no exit timer, ready stays 200 */
    EBB_TRIG_DRAIN_LISTENERS,  /* POST :15000/drain_listeners */
    EBB_TRIG_HEALTHCHECK_FAIL, /* POST :15000/healthcheck/fail */
};
const char *ebb_drain_trigger_name(enum ebb_drain_trigger t);

/* Drain-controller phases, for logs and /config_dump. */
enum ebb_drain_phase {
    EBB_PHASE_LIVE = 0,        /* not draining */
    EBB_PHASE_ACCEPTING,       /* draining, inbound listeners still accepting (< drainDuration) */
    EBB_PHASE_LISTENERS_CLOSED,/* draining, inbound listeners closed */
    EBB_PHASE_EXITING,         /* exit decided */
};
const char *ebb_drain_phase_name(enum ebb_drain_phase p);

/* Control-thread state.  Owned by main; the server points at it. */
struct ebb_control {
    struct ebb_server   *srv;           /* the workers and stats (not owned) */
    struct ebb_loop     *loop;          /* the control thread's loop (admin serves on it): owned,
                                           or the one worker's with srv->one_thread */
    struct ebb_io        sigio;         /* signalfd */
    struct ebb_async     zero;          /* workers: active connections reached 0 */
    enum ebb_drain_phase phase;         /* where the drain is */
    enum ebb_drain_trigger trigger;     /* what started it */
    bool                 exit_on_zero;  /* mode of this drain */
    bool                 exit_armed;    /* this drain ends in exit (SIGTERM/SIGINT) */
    bool                 status_drained;/* /drain happened: a later SIGTERM exits at once */
    bool                 hc_failed;     /* /healthcheck/fail: readiness 503 */
    bool                 ready_503;     /* readiness 503 because of the drain */
    bool                 skip_exit;     /* drain_listeners&skip_exit: keep listeners open */
    bool                 min_passed;    /* MINIMUM_DRAIN_DURATION is over */
    bool                 quiescing;     /* exit-on-zero saw 0: listening sockets closing */
    unsigned             drained_dirs;  /* EBB_CMD_DRAIN_* already posted */
    int                  sigint_count;  /* the second SIGINT exits at once */
    uint64_t             drain_start_ms;/* ebb_now_ms() at the first trigger, 0 = never */
    int64_t              active_at_drain;   /* active connections then (exit summary) */
    uint64_t             destroyed_at_drain;/* cx_destroy sum then (exit summary) */
    struct ebb_timer     listeners_timer; /* drainDuration: close inbound listeners */
    struct ebb_timer     exit_timer;    /* terminationDrainDuration (default mode) */
    struct ebb_timer     min_timer;     /* MINIMUM_DRAIN_DURATION (exit-on-zero mode) */
    struct ebb_timer     deadline_timer;/* drain_deadline */
    struct ebb_timer     tick_timer;    /* periodic active-connection log */
    const char          *exit_reason;   /* why the loop stopped (static string) */
    int                  exit_code;     /* ebb_control_run()'s status: 0 */
};

/* Sets up the control loop, signals and the drain timers.
 * Returns 0 or EBB_E* with a message in err. */
int ebb_control_init(struct ebb_control *ctl, struct ebb_server *srv, char *err, size_t errlen);
/* Undoes ebb_control_init(), also a partial one, and frees the loop: close
 * everything else served on ctl->loop (admin) first. */
void ebb_control_free(struct ebb_control *ctl);
/* Runs the control loop until exit is decided, stops and joins the
 * workers and logs the drain summary; returns the exit status.  The
 * caller then frees ctl. */
int ebb_control_run(struct ebb_control *ctl);

/* Operator entry points (control thread only; admin.c and signals). */
/* POST :15000/drain_listeners: drain without an exit timer. */
void ebb_drain_listeners(struct ebb_control *ctl, bool inbound_only, bool graceful,
                         bool skip_exit);
/* POST :15020/drain: drain inbound, readiness stays 200; a later SIGTERM exits at once. */
void ebb_drain_status(struct ebb_control *ctl);
/* POST :15000/healthcheck/fail (readiness 503, drain) or /healthcheck/ok. */
void ebb_drain_healthcheck(struct ebb_control *ctl, bool ok);
/* Exit now (first call wins); the loop stops after this turn. */
void ebb_drain_exit(struct ebb_control *ctl, const char *reason);

/* True when readiness should answer 200. */
bool ebb_control_ready(const struct ebb_control *ctl);
/* The readiness word: LIVE, HEALTHCHECK_FAILED or DRAINING. */
const char *ebb_control_ready_name(const struct ebb_control *ctl);
/* Appends the drain state as a JSON object (for /config_dump). */
int ebb_drain_json(const struct ebb_control *ctl, struct ebb_buf *b);

#endif
