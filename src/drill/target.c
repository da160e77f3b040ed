/*
 * target.c - `ebb drill --target URL [--during CMD]`: the drill's load
 * generator against a live deployment (issue 10 item 4).
 *
 * Nothing local is started: the load (the scenario's shape: clients,
 * streams, think time; HTTP/1.1 or h2c) goes to the URL, and at
 * --sigterm-at CMD runs under /bin/sh -c in its own process group, with its
 * output in <workdir>/during.log -- typically
 *   kubectl rollout restart deploy/x && kubectl rollout status deploy/x
 * The load goes on while CMD runs (the cluster, not the drill, moves traffic
 * off the old pods) and for --endpoint-removal-delay after CMD has exited,
 * then stops; what is in flight then completes or times out.  CMD is
 * SIGKILLed if it still runs after --grace.  Every request is counted by
 * cause on the same timeline as the local drill: "CMD started" where the
 * stop signal would be, "CMD exited" where the proxy's exit would be.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ebb/core.h"
#include "ebb/parse.h"

#include "drill_run.h"

#define PREFLIGHT_MS 3000

int drill_target_parse(const char *url, struct drill_target *t, char *err, size_t errlen)
{
    char host[256];
    uint64_t port = 80;

    memset(t, 0, sizeof(*t));
    t->url = url;
    if (strncmp(url, "http://", 7) != 0) {
        snprintf(err, errlen, "\"%s\" is not an http:// URL (https is not supported)", url);
        return -1;
    }
    const char *hp = url + 7, *slash = strchr(hp, '/');
    size_t hplen = slash ? (size_t)(slash - hp) : strlen(hp);
    if (hplen == 0 || hplen >= sizeof(t->authority)) {
        snprintf(err, errlen, "\"%s\" has no host, or a host too long", url);
        return -1;
    }
    memcpy(t->authority, hp, hplen);
    t->authority[hplen] = '\0';
    if (snprintf(t->path, sizeof(t->path), "%s", slash ? slash : "/") >= (int)sizeof(t->path)) {
        snprintf(err, errlen, "the path of \"%s\" is longer than %zu bytes", url, sizeof(t->path) - 1);
        return -1;
    }
    snprintf(host, sizeof(host), "%s", t->authority);
    char *colon = strrchr(host, ':');
    if (host[0] == '[') {
        snprintf(err, errlen, "\"%s\": IPv6 targets are not supported", url);
        return -1;
    }
    if (colon) {
        *colon = '\0';
        if (ebb_parse_uint(colon + 1, 1, 65535, &port) < 0) {
            snprintf(err, errlen, "\"%s\": \"%s\" is not a port", url, colon + 1);
            return -1;
        }
    }
    struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *res = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0 || !res) {
        snprintf(err, errlen, "\"%s\": cannot resolve \"%s\": %s", url, host, gai_strerror(rc));
        return -1;
    }
    t->addr = ((struct sockaddr_in *)res->ai_addr)->sin_addr.s_addr;
    t->port = (uint16_t)port;
    freeaddrinfo(res);
    return 0;
}

/* Does the target accept a TCP connection within PREFLIGHT_MS? */
static int preflight(const struct drill_target *t, char *why, size_t whylen)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(t->port),
                              .sin_addr.s_addr = t->addr };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), err = 0;
    socklen_t len = sizeof(err);

    if (fd < 0) {
        snprintf(why, whylen, "socket: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
        err = errno;
    } else {
        struct pollfd pf = { .fd = fd, .events = POLLOUT };
        if (poll(&pf, 1, PREFLIGHT_MS) <= 0)
            err = ETIMEDOUT;
        else
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    }
    close(fd);
    if (err)
        snprintf(why, whylen, "%s", strerror(err));
    return err ? -1 : 0;
}

int drill_target_begin(struct drill *d)
{
    const struct drill_target *t = d->cfg->target;
    char why[128];

    d->listen_port = t->port;
    if (preflight(t, why, sizeof(why)) < 0) {
        fprintf(stderr, "ebb drill: --target %s: cannot connect: %s\n", t->url, why);
        return -1;
    }
    return 0;
}

/* CMD has exited: mark it, and let the load run --endpoint-removal-delay more. */
static void on_cmd_exit(struct ebb_loop *loop, struct ebb_io *io, uint32_t events)
{
    struct drill *d = io->data;
    struct drill_proxy *p = &d->proxy;
    char label[80];
    int st = 0;

    if (waitpid(p->pid, &st, WNOHANG) != p->pid)
        return;
    p->exited = true;
    p->status = st;
    ebb_io_stop(loop, io);
    d->r->exit_ms = drill_t(d);
    d->r->exit_status = st;
    if (WIFEXITED(st))
        snprintf(label, sizeof(label), "CMD exited (status %d)", WEXITSTATUS(st));
    else
        snprintf(label, sizeof(label), "CMD killed by signal %d", WTERMSIG(st));
    drill_result_event(d->r, d->r->exit_ms, DRILL_EV_EXIT, label);
    drill_progress(d, "%s; the load goes on for %.1f s", label,
                   (double)d->cfg->removal_ms / 1000.0);
    ebb_timer_start(loop, &d->t_removal, d->cfg->removal_ms);
}

/* Runs CMD under /bin/sh -c in its own process group, output into
 * <workdir>/during.log, its exit watched with a pidfd.  0 or -1. */
static int spawn_cmd(struct drill *d, const char *cmd)
{
    struct drill_proxy *p = &d->proxy;
    char logpath[1024];

    snprintf(logpath, sizeof(logpath), "%s/during.log", d->cfg->workdir);
    int log = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (log < 0)
        return -1;
    fflush(stdout);
    fflush(stderr);
    p->pid = fork();
    if (p->pid == 0) {
        sigset_t none;
        setpgid(0, 0);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        int devnull = open("/dev/null", O_RDONLY);
        dup2(devnull, 0);
        dup2(log, 1);
        dup2(log, 2);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(log);
    if (p->pid < 0) {
        p->pid = 0;
        return -1;
    }
    setpgid(p->pid, p->pid);
    p->pidfd = (int)syscall(SYS_pidfd_open, p->pid, 0);
    if (p->pidfd < 0) {   /* its exit could not be seen: do not leave it running */
        int e = errno, st;
        kill(-p->pid, SIGKILL);
        waitpid(p->pid, &st, 0);
        p->pid = 0;
        errno = e;
        return -1;
    }
    p->pio.fd = p->pidfd;
    p->pio.cb = on_cmd_exit;
    p->pio.data = d;
    ebb_io_set(d->loop, &p->pio, EBB_READ);
    return 0;
}

void drill_target_go(struct drill *d)
{
    const struct drill_cfg *cfg = d->cfg;
    const char *cmd = cfg->target->during;
    char label[80];

    d->sigterm_sent = true;
    d->r->sigterm_ms = drill_t(d);
    /* everything after this is bounded: CMD by --grace, then the removal
     * delay, then what is in flight by --timeout */
    ebb_timer_start(d->loop, &d->t_hard,
                    (cmd ? cfg->grace_ms : 0) + cfg->removal_ms + cfg->timeout_ms + 3000);
    if (!cmd) {
        drill_progress(d, "no --during: the load goes on for %.1f s",
                       (double)cfg->removal_ms / 1000.0);
        ebb_timer_start(d->loop, &d->t_removal, cfg->removal_ms);
        return;
    }
    snprintf(label, sizeof(label), "CMD started: %s", cmd);
    drill_result_event(d->r, d->r->sigterm_ms, DRILL_EV_SIGTERM, label);
    drill_progress(d, "%s (output in %s/during.log)", label, cfg->workdir);
    if (spawn_cmd(d, cmd) < 0) {
        fprintf(stderr, "ebb drill: --during: cannot run CMD: %s\n", strerror(errno));
        snprintf(d->r->note, sizeof(d->r->note), "--during CMD could not be started");
        ebb_timer_start(d->loop, &d->t_removal, 0);
        return;
    }
    ebb_timer_start(d->loop, &d->t_kill, cfg->grace_ms);
}
