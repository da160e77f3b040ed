/*
 * drain.c - the control thread's loop, signals, and the drain controller.
 *
 *   LIVE --(SIGTERM | SIGINT | /drain | /drain_listeners | /healthcheck/fail)--> DRAINING
 *   DRAINING --(default mode: terminationDrainDuration elapsed)--> exit
 *   DRAINING --(exit-on-zero: MINIMUM_DRAIN_DURATION elapsed and zero active
 *               downstream connections, or drain_deadline)--> exit
 *   any --(second SIGINT | /quitquitquit | SIGTERM after /drain)--> exit
 *
 * Workers report "zero active connections" through an eventfd the moment
 * the count drops to zero (no polling), so exit follows within a loop turn.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ebb/buf.h"
#include "ebb/control.h"
#include "ebb/core.h"
#include "ebb/log.h"
#include "ebb/proxy.h"
#include "ebb/server.h"

#define DRAIN_TICK_MS 1000

const char *ebb_drain_trigger_name(enum ebb_drain_trigger t)
{
    switch (t) {
    case EBB_TRIG_NONE: return "none";
    case EBB_TRIG_SIGTERM: return "SIGTERM";
    case EBB_TRIG_SIGINT: return "SIGINT";
    case EBB_TRIG_STATUS_DRAIN: return "status /drain";
    case EBB_TRIG_DRAIN_LISTENERS: return "admin /drain_listeners";
    case EBB_TRIG_HEALTHCHECK_FAIL: return "admin /healthcheck/fail";
    }
    return "?";
}

const char *ebb_drain_phase_name(enum ebb_drain_phase p)
{
    switch (p) {
    case EBB_PHASE_LIVE: return "live";
    case EBB_PHASE_ACCEPTING: return "draining (listeners accepting)";
    case EBB_PHASE_LISTENERS_CLOSED: return "draining (inbound listeners closed)";
    case EBB_PHASE_EXITING: return "exiting";
    }
    return "?";
}

bool ebb_control_ready(const struct ebb_control *ctl)
{
    return ctl->srv->ready && !ctl->hc_failed && !ctl->ready_503 &&
           ctl->phase != EBB_PHASE_EXITING;
}

const char *ebb_control_ready_name(const struct ebb_control *ctl)
{
    if (ebb_control_ready(ctl))
        return "LIVE";
    return ctl->phase == EBB_PHASE_LIVE && ctl->hc_failed ? "HEALTHCHECK_FAILED" : "DRAINING";
}

static int64_t active_cx(const struct ebb_control *ctl)
{
    return atomic_load(&ctl->srv->active_cx);
}

static uint64_t total_destroyed(const struct ebb_control *ctl)
{
    struct ebb_server *srv = ctl->srv;
    const struct ebb_stats *st = ebb_server_stats(srv);
    uint64_t n = 0;
    for (size_t i = 0; i < srv->cfg->nlisteners; i++)
        n += ebb_stat_get(st->listeners[i].cx_destroy);
    return n;
}

void ebb_drain_exit(struct ebb_control *ctl, const char *reason)
{
    if (ctl->phase == EBB_PHASE_EXITING)
        return;
    ctl->phase = EBB_PHASE_EXITING;
    ctl->exit_reason = reason;
    ebb_loop_stop(ctl->loop);
}

/* Exit-on-zero: called whenever the count may have reached zero, and when a worker closed
 * its listening sockets.  Zero with listeners still open is not the end: a connection
 * accepted between this check and the workers' exit would be cut, its request perhaps
 * already executed upstream.  So the first zero closes every listening socket (what they
 * hold is accepted first and counted), and the zero after that is the exit. */
static void check_zero(struct ebb_control *ctl)
{
    struct ebb_server *srv = ctl->srv;

    if (ctl->phase == EBB_PHASE_LIVE || ctl->phase == EBB_PHASE_EXITING)
        return;
    if (!ctl->exit_armed || !ctl->exit_on_zero || !ctl->min_passed)
        return;
    if (active_cx(ctl) != 0)
        return;
    if (!ctl->quiescing) {
        ctl->quiescing = true;
        ebb_info("drain", "0 active connections: closing every listener before the exit");
        ebb_server_post(srv, EBB_CMD_QUIESCE);
        return;
    }
    if (atomic_load(&srv->quiesced) == srv->nworkers)
        ebb_drain_exit(ctl, "zero active connections");
}

static void on_zero(struct ebb_loop *loop, void *data)
{
    check_zero(data);
}

static void listeners_timeout(struct ebb_loop *loop, struct ebb_timer *t)
{
    struct ebb_control *ctl = t->data;
    if (ctl->phase != EBB_PHASE_ACCEPTING || ctl->skip_exit)
        return;
    unsigned cmds = EBB_CMD_STOP_INBOUND;
    /* a termination never stops outbound listeners: the app's own calls
     * during its shutdown must work until exit (SPEC §3.3.6), even after a
     * /drain_listeners or /healthcheck/fail that drained outbound too */
    if ((ctl->drained_dirs & EBB_CMD_DRAIN_OUTBOUND) && !ctl->exit_armed)
        cmds |= EBB_CMD_STOP_OUTBOUND;
    ebb_server_post(ctl->srv, cmds);
    ctl->phase = EBB_PHASE_LISTENERS_CLOSED;
    ebb_info("drain", "drainDuration %llums elapsed: inbound listeners closed%s, %lld active connections",
             (unsigned long long)ctl->srv->cfg->proxy.drain_duration_ms,
             (cmds & EBB_CMD_STOP_OUTBOUND) ? " (outbound too)" : "", (long long)active_cx(ctl));
}

/* An exit timer fired: "<what> <ms>ms <verb>: exiting with N active connections". */
static void exit_timer_fired(struct ebb_control *ctl, uint64_t ms, const char *what,
                             const char *verb, const char *reason)
{
    ebb_info("drain", "%s %llums %s: exiting with %lld active connections", what,
             (unsigned long long)ms, verb, (long long)active_cx(ctl));
    ebb_drain_exit(ctl, reason);
}

static void exit_timeout(struct ebb_loop *loop, struct ebb_timer *t)
{
    struct ebb_control *ctl = t->data;
    exit_timer_fired(ctl, ctl->srv->cfg->proxy.termination_drain_ms, "terminationDrainDuration",
                     "elapsed", "terminationDrainDuration elapsed");
}

static void min_timeout(struct ebb_loop *loop, struct ebb_timer *t)
{
    struct ebb_control *ctl = t->data;
    ctl->min_passed = true;
    ebb_info("drain", "MINIMUM_DRAIN_DURATION %llums elapsed: exiting when 0 active connections (now %lld)",
             (unsigned long long)ctl->srv->cfg->proxy.min_drain_ms, (long long)active_cx(ctl));
    atomic_store(&ctl->srv->watch_zero, true);
    check_zero(ctl);
}

static void deadline_timeout(struct ebb_loop *loop, struct ebb_timer *t)
{
    struct ebb_control *ctl = t->data;
    exit_timer_fired(ctl, ctl->srv->cfg->drain.drain_deadline_ms, "drain_deadline", "reached",
                     "drain_deadline reached");
}

static void tick(struct ebb_loop *loop, struct ebb_timer *t)
{
    struct ebb_control *ctl = t->data;
    if (ctl->phase == EBB_PHASE_LIVE || ctl->phase == EBB_PHASE_EXITING)
        return;
    ebb_info("drain", "%s for %llums: %lld active connections",
             ebb_drain_phase_name(ctl->phase),
             (unsigned long long)(ebb_now_ms() - ctl->drain_start_ms), (long long)active_cx(ctl));
    ebb_timer_start(loop, t, DRAIN_TICK_MS);
}

/* Arms the exit policy of SPEC §3.4 for a termination drain.  The timers
 * count from the termination signal, not from an earlier no-exit drain
 * (/healthcheck/fail, /drain_listeners): a SIGTERM that arrives long after
 * one of those must still give in-flight requests their full
 * terminationDrainDuration / MINIMUM_DRAIN_DURATION. */
static void arm_exit(struct ebb_control *ctl)
{
    const struct ebb_config *cfg = ctl->srv->cfg;

    if (ctl->exit_armed)
        return;
    ctl->exit_armed = true;
    ctl->exit_on_zero = cfg->proxy.exit_on_zero;
    if (ctl->exit_on_zero) {
        ebb_timer_start(ctl->loop, &ctl->min_timer, cfg->proxy.min_drain_ms);
        if (cfg->drain.drain_deadline_ms)
            ebb_timer_start(ctl->loop, &ctl->deadline_timer, cfg->drain.drain_deadline_ms);
    } else {
        ebb_timer_start(ctl->loop, &ctl->exit_timer, cfg->proxy.termination_drain_ms);
    }
}

/* Starts a drain, or extends the one in progress (SPEC §3.3): posts the
 * drain commands for directions not drained yet and arms the listener
 * and, for a termination, the exit timers. */
static void drain_start(struct ebb_control *ctl, enum ebb_drain_trigger trig, bool inbound_only,
                        bool graceful, bool skip_exit)
{
    const struct ebb_config *cfg = ctl->srv->cfg;
    bool first = ctl->phase == EBB_PHASE_LIVE;
    bool terminating = trig == EBB_TRIG_SIGTERM || trig == EBB_TRIG_SIGINT;
    unsigned dirs = EBB_CMD_DRAIN_INBOUND | (inbound_only ? 0 : EBB_CMD_DRAIN_OUTBOUND);

    if (ctl->phase == EBB_PHASE_EXITING)
        return;
    if (first) {
        ctl->phase = EBB_PHASE_ACCEPTING;
        ctl->trigger = trig;
        ctl->drain_start_ms = ebb_now_ms();
        ctl->active_at_drain = active_cx(ctl);
        ctl->destroyed_at_drain = total_destroyed(ctl);
        atomic_store(&ctl->srv->state, EBB_STATE_DRAINING);
        ebb_timer_start(ctl->loop, &ctl->tick_timer, DRAIN_TICK_MS);
    }
    if (trig != EBB_TRIG_STATUS_DRAIN && trig != EBB_TRIG_HEALTHCHECK_FAIL)
        ctl->ready_503 = true;
    if (skip_exit)
        ctl->skip_exit = true;
    if (terminating && !first && !ctl->exit_armed) {
        /* a termination after a no-exit drain: inbound listeners close
         * drainDuration after the signal, whatever skip_exit an earlier
         * /drain_listeners or /healthcheck/fail asked for (SPEC §3.3.2) */
        ctl->skip_exit = false;
        if (ctl->phase == EBB_PHASE_ACCEPTING)
            ebb_timer_start(ctl->loop, &ctl->listeners_timer, cfg->proxy.drain_duration_ms);
    }

    unsigned new_dirs = dirs & ~ctl->drained_dirs;
    ctl->drained_dirs |= dirs;
    if (new_dirs)
        ebb_server_post(ctl->srv, new_dirs);

    if (!graceful && ctl->phase == EBB_PHASE_ACCEPTING) {
        /* Envoy: without graceful the listeners stop at once */
        unsigned stop = EBB_CMD_STOP_INBOUND | (inbound_only ? 0 : EBB_CMD_STOP_OUTBOUND);
        ebb_server_post(ctl->srv, stop);
        ctl->phase = EBB_PHASE_LISTENERS_CLOSED;
        ebb_info("drain", "listeners stopped at once (no graceful): inbound%s",
                 inbound_only ? "" : " and outbound");
    } else if (ctl->phase == EBB_PHASE_ACCEPTING && !ebb_timer_active(&ctl->listeners_timer)) {
        uint64_t elapsed = ebb_now_ms() - ctl->drain_start_ms;
        uint64_t dd = cfg->proxy.drain_duration_ms;
        ebb_timer_start(ctl->loop, &ctl->listeners_timer, dd > elapsed ? dd - elapsed : 0);
    }
    if (terminating)
        arm_exit(ctl);

    ebb_info("drain", "drain %s: trigger=%s mode=%s inbound_only=%d graceful=%d "
             "drainDuration=%llums terminationDrainDuration=%llums MINIMUM_DRAIN_DURATION=%llums "
             "idle_close_after=%llums drain_deadline=%llums active_connections=%lld",
             first ? "started" : "extended", ebb_drain_trigger_name(trig),
             !terminating ? "no-exit" : cfg->proxy.exit_on_zero ? "exit-on-zero" : "default",
             inbound_only, graceful, (unsigned long long)cfg->proxy.drain_duration_ms,
             (unsigned long long)cfg->proxy.termination_drain_ms,
             (unsigned long long)cfg->proxy.min_drain_ms,
             (unsigned long long)cfg->drain.idle_close_after_ms,
             (unsigned long long)cfg->drain.drain_deadline_ms, (long long)active_cx(ctl));
}

void ebb_drain_listeners(struct ebb_control *ctl, bool inbound_only, bool graceful,
                         bool skip_exit)
{
    drain_start(ctl, EBB_TRIG_DRAIN_LISTENERS, inbound_only, graceful, skip_exit);
}

void ebb_drain_status(struct ebb_control *ctl)
{
    ctl->status_drained = true;
    drain_start(ctl, EBB_TRIG_STATUS_DRAIN, true, true, false);
}

void ebb_drain_healthcheck(struct ebb_control *ctl, bool ok)
{
    ctl->hc_failed = !ok;
    if (!ok)
        drain_start(ctl, EBB_TRIG_HEALTHCHECK_FAIL, false, true, true);
}

int ebb_drain_json(const struct ebb_control *ctl, struct ebb_buf *b)
{
    int rc = ebb_buf_appendf(b, "{\"state\":\"%s\",\"phase\":\"%s\",\"trigger\":\"%s\","
                    "\"mode\":\"%s\",\"exit_armed\":%s,\"ready\":%s,\"active_connections\":%lld",
                    ctl->phase == EBB_PHASE_LIVE ? "LIVE" : "DRAINING",
                    ebb_drain_phase_name(ctl->phase), ebb_drain_trigger_name(ctl->trigger),
                    ctl->srv->cfg->proxy.exit_on_zero ? "exit-on-zero" : "default",
                    ctl->exit_armed ? "true" : "false", ebb_control_ready(ctl) ? "true" : "false",
                    (long long)active_cx(ctl));
    if (ctl->phase != EBB_PHASE_LIVE)
        rc |= ebb_buf_appendf(b, ",\"draining_for_ms\":%llu",
                              (unsigned long long)(ebb_now_ms() - ctl->drain_start_ms));
    return rc | ebb_buf_append(b, "}", 1);
}

/* --- signals --- */

static void on_signal(struct ebb_loop *loop, struct ebb_io *io, uint32_t events)
{
    struct ebb_control *ctl = io->data;
    struct signalfd_siginfo si;

    while (read(io->fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        switch (si.ssi_signo) {
        case SIGTERM:
        case SIGINT:
            if (si.ssi_signo == SIGINT && ++ctl->sigint_count >= 2) {
                ebb_info("drain", "second SIGINT: exiting now");
                ebb_drain_exit(ctl, "second SIGINT");
                break;
            }
            /* a termination drain already runs (a POST /drain during it changes nothing):
             * the repeated signal is ignored (SPEC §3.2), before the /drain rule below */
            if (ctl->exit_armed) {
                ebb_info("drain", "repeated %s ignored: drain already in progress",
                         si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
                break;
            }
            if (ctl->status_drained) {
                ebb_info("drain", "%s after /drain: exiting now",
                         si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
                ebb_drain_exit(ctl, "signal after /drain");
                break;
            }
            drain_start(ctl, si.ssi_signo == SIGTERM ? EBB_TRIG_SIGTERM : EBB_TRIG_SIGINT,
                        true, true, false);
            break;
        case SIGCHLD:
            /* PID 1 duty: reap whatever exited */
            while (waitpid(-1, NULL, WNOHANG) > 0)
                ;
            break;
        case SIGHUP:
            ebb_info("control", "SIGHUP ignored (configuration reload is not supported)");
            break;
        default:
            break;
        }
    }
}

int ebb_control_init(struct ebb_control *ctl, struct ebb_server *srv, char *err, size_t errlen)
{
    sigset_t set;

    ctl->srv = srv;
    srv->ctl = ctl;
    ctl->sigio.fd = ctl->zero.io.fd = -1;
    ctl->loop = srv->one_thread ? srv->workers[0].ctx.loop : ebb_loop_new();
    if (!ctl->loop) {
        snprintf(err, errlen, "cannot create control loop: %s", strerror(errno));
        return EBB_EIO;
    }
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGHUP);
    ctl->sigio.fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (ctl->sigio.fd < 0) {
        snprintf(err, errlen, "signalfd: %s", strerror(errno));
        return EBB_EIO;
    }
    ctl->sigio.cb = on_signal;
    ctl->sigio.data = ctl;
    if (ebb_io_set(ctl->loop, &ctl->sigio, EBB_READ) < 0) {
        snprintf(err, errlen, "epoll_ctl (signalfd): %s", strerror(errno));
        return EBB_EIO;   /* without it SIGTERM would never start a drain */
    }
    if (ebb_async_init(ctl->loop, &ctl->zero, on_zero, ctl) < 0) {
        snprintf(err, errlen, "eventfd: %s", strerror(errno));
        return EBB_EIO;
    }
    srv->zero_notify = &ctl->zero;

    struct ebb_timer *timers[] = { &ctl->listeners_timer, &ctl->exit_timer, &ctl->min_timer,
                                   &ctl->deadline_timer, &ctl->tick_timer };
    ebb_timer_cb cbs[] = { listeners_timeout, exit_timeout, min_timeout, deadline_timeout, tick };
    for (size_t i = 0; i < EBB_ARRAY_LEN(timers); i++) {
        timers[i]->cb = cbs[i];
        timers[i]->data = ctl;
    }
    return 0;
}

void ebb_control_free(struct ebb_control *ctl)
{
    if (!ctl->loop)
        return;
    ebb_loop_run_deferred(ctl->loop);
    ebb_async_close(ctl->loop, &ctl->zero);
    if (ctl->srv)
        ctl->srv->zero_notify = NULL;
    if (ctl->sigio.fd >= 0) {
        ebb_io_stop(ctl->loop, &ctl->sigio);
        close(ctl->sigio.fd);
        ctl->sigio.fd = -1;
    }
    if (!ctl->srv->one_thread)
        ebb_loop_free(ctl->loop);   /* else the worker's: ebb_server_free() frees it */
    ctl->loop = NULL;
}

int ebb_control_run(struct ebb_control *ctl)
{
    struct ebb_server *srv = ctl->srv;

    ebb_loop_run(ctl->loop);

    /* exit: the workers close what is left, then the summary (SPEC §3.4).  Forced are the
     * connections cut (RST) then; one in its staged close after a complete answer is closed
     * with a FIN, which its client already expects: it counts as closed gracefully. */
    uint64_t now = ebb_now_ms();
    int64_t left = active_cx(ctl);
    ebb_server_post(srv, EBB_CMD_EXIT);
    ebb_server_join_threads(srv);
    ebb_access_log_close();   /* every line of the exchanges above is written before the summary */
    uint64_t destroyed = total_destroyed(ctl);
    int64_t forced = (int64_t)ebb_stat_get(ebb_server_stats(srv)->server.drain_forced_close);
    if (ctl->drain_start_ms) {
        uint64_t completed = 0;
        const struct ebb_stats *st = ebb_server_stats(srv);
        for (size_t i = 0; i < srv->cfg->nlisteners; i++)
            completed += ebb_stat_get(st->listeners[i].rq_completed_in_drain);
        uint64_t ms = now - ctl->drain_start_ms;
        ebb_info("drain", "exit: reason=\"%s\" trigger=%s drain_ms=%llu "
                 "connections_at_drain_start=%lld closed_gracefully=%llu forced=%lld "
                 "requests_completed_during_drain=%llu",
                 ctl->exit_reason, ebb_drain_trigger_name(ctl->trigger), (unsigned long long)ms,
                 (long long)ctl->active_at_drain,
                 (unsigned long long)(destroyed - ctl->destroyed_at_drain - (uint64_t)forced),
                 (long long)forced, (unsigned long long)completed);
    } else {
        ebb_info("drain", "exit: reason=\"%s\" without drain, %lld active connections closed",
                 ctl->exit_reason, (long long)left);
    }
    return ctl->exit_code;
}
