/*
 * init.c - `ebb init` (SPEC §9.1): istio-iptables' job.
 *
 * Flags and annotations become struct ebb_capture_opts, src/control/capture.c
 * turns them into iptables-restore input, and this file applies it in the
 * current network namespace with `iptables-restore --noflush` (one atomic
 * transaction per address family), on the backend that already holds rules
 * (legacy or nft) or else the system's default.
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ebb/buf.h"
#include "ebb/capture.h"
#include "ebb/cli.h"
#include "ebb/parse.h"
#include "ebb/core.h"
#include "ebb/loop.h"

#define CMD_TIMEOUT_MS 30000   /* bound on each iptables command */

/* The command line, before it is applied to the settings. */
struct init_args {
    const char *flag[128];      /* capture flags (long names), in command-line order */
    const char *value[128];     /* their values */
    size_t      n;              /* entries used */
    const char *annotations;    /* --pod-annotations file, or NULL */
    const char *backend;        /* --force-iptables-binary: "legacy", "nft", NULL = detect */
    const char *ipv6;           /* --ipv6: "auto" (default), "on", "off" */
    bool        dry_run;        /* -n/--dry-run */
    bool        clean;          /* --clean */
};

/* istio-iptables flags ebb init knows but does not implement. */
static const char *const unsupported[] = {
    "c", "istio-exclude-interfaces", "k", "kube-virt-interfaces", "t", "istio-inbound-tproxy-mark",
    "r", "istio-inbound-tproxy-route-table", "redirect-dns", "capture-all-dns", "drop-invalid",
    "run-validation", "skip-rule-apply", "iptables-probe-port", "probe-timeout",
    "network-namespace", "cni-mode", "reconcile", "force-apply", "native-nftables",
    "iptables-trace-logging",
};

static bool is_unsupported(const char *name)
{
    for (size_t i = 0; i < EBB_ARRAY_LEN(unsupported); i++) {
        if (strcmp(name, unsupported[i]) == 0)
            return true;
    }
    return false;
}

/* "-p/--envoy-port" or "--name", for messages. */
static const char *flag_label(const struct ebb_capture_flag *f, char *buf, size_t len)
{
    if (f->short_name)
        snprintf(buf, len, "-%c/--%s", f->short_name, f->name);
    else
        snprintf(buf, len, "--%s", f->name);
    return buf;
}

/* Handles a flag that takes no value (given as "name" or "name=BOOL").
 * Returns 1 if it was one, 0 if not, 2 on a bad value. */
static int bool_flag(struct init_args *a, const char *name, const char *val)
{
    bool *dst = NULL, on = true;

    if (strcmp(name, "n") == 0 || strcmp(name, "dry-run") == 0)
        dst = &a->dry_run;
    else if (strcmp(name, "clean") == 0 || strcmp(name, "cleanup-only") == 0)
        dst = &a->clean;
    else if (strcmp(name, "dual-stack") == 0) {
        a->ipv6 = "on";
        return 1;
    }
    if (!dst)
        return 0;
    if (val && ebb_parse_bool(val, &on) < 0) {
        fprintf(stderr, "ebb init: %s%s: \"%s\" is not true or false\n", name[1] ? "--" : "-",
                name, val);
        return 2;
    }
    *dst = on;
    return 1;
}

/* Parses argv into a.  Returns 0, 1 for --help, or 2 (usage error, printed). */
static int parse_args(int argc, char **argv, struct init_args *a)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *val = NULL, *eq;
        char name[64];
        const struct ebb_capture_flag *f;
        int rc;

        if (arg[0] != '-' || !arg[1]) {
            fprintf(stderr, "ebb init: unexpected argument \"%s\" (see `ebb help init`)\n", arg);
            return 2;
        }
        if (arg[1] == '-') {           /* --name, --name=value */
            eq = strchr(arg + 2, '=');
            snprintf(name, sizeof(name), "%.*s", eq ? (int)(eq - arg - 2) : 63, arg + 2);
            val = eq ? eq + 1 : NULL;
        } else {                       /* -p, -p15001 */
            snprintf(name, sizeof(name), "%c", arg[1]);
            val = arg[2] ? arg + 2 : NULL;
        }
        if (strcmp(name, "h") == 0 || strcmp(name, "help") == 0)
            return 1;
        if ((rc = bool_flag(a, name, val)) != 0) {
            if (rc == 2)
                return 2;
            continue;
        }
        if (is_unsupported(name)) {
            fprintf(stderr, "ebb init: %s: an istio-iptables flag ebb init does not support\n", arg);
            return 2;
        }
        f = ebb_capture_flag_find(name);
        if (!f && strcmp(name, "pod-annotations") && strcmp(name, "force-iptables-binary") &&
            strcmp(name, "ipv6")) {
            fprintf(stderr, "ebb init: unknown flag \"%s\" (see `ebb help init`)\n", arg);
            return 2;
        }
        if (!val && i + 1 >= argc) {
            fprintf(stderr, "ebb init: %s needs a value\n", arg);
            return 2;
        }
        if (!val)
            val = argv[++i];
        if (f) {
            if (a->n == EBB_ARRAY_LEN(a->flag)) {
                fprintf(stderr, "ebb init: too many flags\n");
                return 2;
            }
            a->flag[a->n] = f->name;
            a->value[a->n++] = val;
        } else if (strcmp(name, "pod-annotations") == 0) {
            a->annotations = val;
        } else if (strcmp(name, "force-iptables-binary") == 0) {
            a->backend = val;
        } else {
            a->ipv6 = val;
        }
    }
    return 0;
}

/* Reads the annotations file (a few KiB; at most 1 MiB) into a malloc'd,
 * NUL-terminated *text.  0 or -1 with errno. */
static int read_small_file(const char *path, char **text, size_t *len)
{
    FILE *f = fopen(path, "rb");
    size_t cap = 1 << 20;
    char *buf = f ? malloc(cap + 1) : NULL;

    if (!buf) {
        if (f)
            fclose(f);
        return -1;
    }
    *len = fread(buf, 1, cap + 1, f);
    if (ferror(f) || *len > cap) {
        errno = ferror(f) ? EIO : EFBIG;
        fclose(f);
        free(buf);
        return -1;
    }
    fclose(f);
    buf[*len] = '\0';
    *text = buf;
    return 0;
}

/* Builds the settings: defaults, then annotations, then flags (a flag wins).
 * Returns 0 or 2 (error printed). */
static int build_opts(const struct init_args *a, struct ebb_capture_opts *o)
{
    char err[1024], label[80];

    ebb_capture_defaults(o);
    if (a->annotations) {
        char *text = NULL;
        size_t len = 0;
        int rc = read_small_file(a->annotations, &text, &len);
        if (rc < 0) {
            fprintf(stderr, "ebb init: --pod-annotations: cannot read %s: %s\n", a->annotations,
                    strerror(errno));
            return 2;
        }
        rc = ebb_capture_annotations(o, a->annotations, text, len, err, sizeof(err));
        free(text);
        if (rc < 0) {
            fprintf(stderr, "ebb init: %s\n", err);
            return 2;
        }
    }
    for (size_t i = 0; i < a->n; i++) {
        if (ebb_capture_set(o, a->flag[i], a->value[i], err, sizeof(err)) < 0) {
            fprintf(stderr, "ebb init: %s: %s\n",
                    flag_label(ebb_capture_flag_find(a->flag[i]), label, sizeof(label)), err);
            return 2;
        }
    }
    if (a->backend && strcmp(a->backend, "legacy") && strcmp(a->backend, "nft")) {
        fprintf(stderr, "ebb init: --force-iptables-binary: \"%s\" is not legacy or nft\n",
                a->backend);
        return 2;
    }
    if (strcmp(a->ipv6, "auto") && strcmp(a->ipv6, "on") && strcmp(a->ipv6, "off")) {
        fprintf(stderr, "ebb init: --ipv6: \"%s\" is not auto, on or off\n", a->ipv6);
        return 2;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* running iptables                                                   */

/* In the child: exec name from PATH, else from the sbin directories (a
 * non-root PATH often lacks them). */
static void exec_any(char *const argv[])
{
    static const char *const dirs[] = { "/usr/sbin/", "/sbin/" };
    char path[256];

    execvp(argv[0], argv);
    for (size_t i = 0; i < EBB_ARRAY_LEN(dirs); i++) {
        snprintf(path, sizeof(path), "%s%s", dirs[i], argv[0]);
        execv(path, argv);
    }
    _exit(127);
}

/* Moves bytes between the child's pipes until both outputs end or the
 * deadline passes.  Returns 0, or -1 on timeout or a full buffer. */
static int pump(int fds[3], const char *in, size_t inlen, struct ebb_buf *out,
                struct ebb_buf *errb)
{
    uint64_t deadline = ebb_now_ms() + CMD_TIMEOUT_MS;
    size_t sent = 0;

    while (fds[1] >= 0 || fds[2] >= 0) {
        struct pollfd p[3] = { { fds[0], POLLOUT, 0 }, { fds[1], POLLIN, 0 },
                               { fds[2], POLLIN, 0 } };
        uint64_t now = ebb_now_ms();
        if (now >= deadline)
            return -1;
        if (poll(p, 3, (int)(deadline - now)) < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (p[0].revents) {
            ssize_t w = sent < inlen ? write(fds[0], in + sent, inlen - sent) : 0;
            if (w > 0)
                sent += (size_t)w;
            if (w < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (w <= 0 || sent == inlen) {   /* done, or the reader went away */
                close(fds[0]);
                fds[0] = -1;
            }
        }
        for (int k = 1; k < 3; k++) {
            if (!p[k].revents)
                continue;
            ssize_t r = ebb_buf_read_fd(k == 1 ? out : errb, fds[k]);
            if (r == EBB_ETOOBIG)
                return -1;
            if (r == 0 || r == EBB_EIO) {
                close(fds[k]);
                fds[k] = -1;
            }
        }
    }
    return 0;
}

/* Runs argv with in on stdin, its stdout into out and stderr into errb.
 * Returns the exit status (127: could not be started), or -1 if it timed
 * out, died of a signal or could not be forked. */
static int run_cmd(const char *const argv[], const char *in, size_t inlen, struct ebb_buf *out,
                   struct ebb_buf *errb)
{
    int pin[2], pout[2], perr[2], status = 0, rc;
    pid_t pid;

    if (pipe2(pin, O_CLOEXEC) < 0)
        return -1;
    if (pipe2(pout, O_CLOEXEC) < 0 || pipe2(perr, O_CLOEXEC) < 0) {
        close(pin[0]);
        close(pin[1]);
        return -1;
    }
    pid = fork();
    if (pid == 0) {
        dup2(pin[0], 0);
        dup2(pout[1], 1);
        dup2(perr[1], 2);
        exec_any((char *const *)argv);
    }
    close(pin[0]);
    close(pout[1]);
    close(perr[1]);
    int fds[3] = { pin[1], pout[0], perr[0] };
    if (!in)
        inlen = 0;
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    rc = pid < 0 ? -1 : pump(fds, in, inlen, out, errb);
    for (int k = 0; k < 3; k++) {
        if (fds[k] >= 0)
            close(fds[k]);
    }
    if (pid < 0)
        return -1;
    if (rc < 0)
        kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (rc < 0 || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

/* One iptables backend for one family. */
struct backend {
    const char *save;      /* iptables-nft-save ... */
    const char *restore;   /* iptables-nft-restore ... */
};

enum { B_LEGACY, B_NFT, B_DEFAULT };

static const struct backend backends[2][3] = {
    { { "iptables-legacy-save", "iptables-legacy-restore" },
      { "iptables-nft-save", "iptables-nft-restore" },
      { "iptables-save", "iptables-restore" } },
    { { "ip6tables-legacy-save", "ip6tables-legacy-restore" },
      { "ip6tables-nft-save", "ip6tables-nft-restore" },
      { "ip6tables-save", "ip6tables-restore" } },
};

/* The backend to use: the forced one; else the one holding ebb's chains,
 * else the one holding any rules (legacy first, as istio-iptables), else
 * the system default.  Plain `*-save` lists only tables that exist, so
 * looking creates nothing. */
static const struct backend *pick_backend(enum ebb_capture_family fam, const char *forced)
{
    int seen[2];

    if (forced)
        return &backends[fam][strcmp(forced, "legacy") == 0 ? B_LEGACY : B_NFT];
    for (int b = B_LEGACY; b <= B_NFT; b++) {
        struct ebb_buf out = { .max = 64 << 20 }, errb = { 0 };
        const char *argv[] = { backends[fam][b].save, NULL };
        seen[b] = run_cmd(argv, NULL, 0, &out, &errb) == 0
                      ? (int)ebb_capture_seen(ebb_buf_start(&out), ebb_buf_len(&out)) : -1;
        ebb_buf_free(&out);
        ebb_buf_free(&errb);
    }
    for (int want = EBB_CAPTURE_SEEN_OURS; want >= EBB_CAPTURE_SEEN_RULES; want--) {
        for (int b = B_LEGACY; b <= B_NFT; b++) {
            if (seen[b] == want)
                return &backends[fam][b];
        }
    }
    return &backends[fam][B_DEFAULT];
}

/* The first line of a command's stderr, for a one-line message. */
static const char *first_line(struct ebb_buf *b)
{
    if (ebb_buf_len(b) == 0 || ebb_buf_append(b, "", 1) < 0)
        return "(no message)";
    char *s = ebb_buf_start(b), *nl = strchr(s, '\n');
    if (nl)
        *nl = '\0';
    return s;
}

/* Adds ::6/128 to lo (Istio's configureIPv6Addresses): the source address
 * of the inbound passthrough upstream.  0, or -1 with errno. */
static int add_ipv6_passthrough_addr(void)
{
    struct {                          /* the kernel's struct in6_ifreq */
        struct in6_addr addr;
        uint32_t        prefixlen;
        int             ifindex;
    } req = { .prefixlen = 128 };
    int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0), rc;

    req.ifindex = (int)if_nametoindex("lo");
    req.addr.s6_addr[15] = 6;
    if (fd < 0 || req.ifindex == 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    rc = ioctl(fd, SIOCSIFADDR, &req);
    if (rc < 0 && errno == EEXIST)
        rc = 0;
    close(fd);
    return rc;
}

static bool has_cap_net_admin(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char ln[256];
    unsigned long long eff;
    bool ok = true;   /* cannot tell: let iptables decide */

    while (f && fgets(ln, sizeof(ln), f)) {
        if (sscanf(ln, "CapEff: %llx", &eff) == 1)
            ok = (eff >> 12) & 1;   /* CAP_NET_ADMIN */
    }
    if (f)
        fclose(f);
    return ok;
}

/* Applies (or with a->clean removes) the rules for one family.
 * Returns 0 or 1 (error printed). */
static int apply_family(const struct ebb_capture_opts *o, const struct init_args *a,
                        enum ebb_capture_family fam)
{
    const char *fname = fam == EBB_CAPTURE_IPV6 ? "IPv6" : "IPv4";
    const struct backend *be = pick_backend(fam, a->backend);
    struct ebb_buf save = { .max = 64 << 20 }, errb = { 0 }, in = { .max = 64 << 20 };
    const char *save_argv[] = { be->save, "-t", "nat", NULL };
    const char *restore_argv[] = { be->restore, "--noflush", NULL };
    int rc = 1, n, st = run_cmd(save_argv, NULL, 0, &save, &errb);

    if (st != 0) {
        fprintf(stderr, "ebb init: %s: %s -t nat %s: %s\n", fname, be->save,
                st == 127 ? "not found (install the iptables package)" : "failed",
                st == 127 ? "" : first_line(&errb));
        goto out;
    }
    n = a->clean ? ebb_capture_clean(ebb_buf_start(&save), ebb_buf_len(&save), &in)
                 : ebb_capture_rules(o, fam, ebb_buf_start(&save), ebb_buf_len(&save), &in);
    if (n < 0) {
        fprintf(stderr, "ebb init: %s: %s\n", fname, ebb_strerror(n));
        goto out;
    }
    if (a->dry_run) {                 /* only with --clean: show what it would run */
        printf("# %s: %s --noflush\n", fname, be->restore);
        fwrite(ebb_buf_start(&in), 1, ebb_buf_len(&in), stdout);
        rc = 0;
        goto out;
    }
    if (ebb_buf_len(&in) == 0) {
        fprintf(stderr, "ebb init: %s: no ebb chains, nothing to remove\n", fname);
        rc = 0;
        goto out;
    }
    ebb_buf_reset(&save);             /* now the sink for restore's (empty) stdout */
    ebb_buf_reset(&errb);
    st = run_cmd(restore_argv, ebb_buf_start(&in), ebb_buf_len(&in), &save, &errb);
    if (st != 0) {
        fprintf(stderr, "ebb init: %s: %s --noflush %s: %s\n", fname, be->restore,
                st == 127 ? "not found (install the iptables package)" : "failed",
                st == 127 ? "" : first_line(&errb));
        goto out;
    }
    if (fam == EBB_CAPTURE_IPV6 && !a->clean && add_ipv6_passthrough_addr() < 0) {
        fprintf(stderr, "ebb init: IPv6: cannot add ::6/128 to lo: %s\n", strerror(errno));
        goto out;
    }
    fprintf(stderr, "ebb init: %s: %s %d %s with %s\n", fname, a->clean ? "removed" : "applied",
            n, a->clean ? "chains" : "rules", be->restore);
    rc = 0;
out:
    ebb_buf_free(&save);
    ebb_buf_free(&errb);
    ebb_buf_free(&in);
    return rc;
}

int ebb_cmd_init(int argc, char **argv)
{
    struct init_args a = { .ipv6 = "auto" };
    struct ebb_capture_opts *o;
    bool ipv6;
    int rc = parse_args(argc, argv, &a);

    if (rc == 1)
        return ebb_cmd_help(2, (char *[]){ "help", "init", NULL });
    if (rc)
        return rc;
    o = ebb_xmalloc(sizeof(*o));
    if ((rc = build_opts(&a, o)) != 0)
        goto out;
    ipv6 = strcmp(a.ipv6, "on") == 0 ||
           (strcmp(a.ipv6, "auto") == 0 && access("/proc/net/if_inet6", F_OK) == 0);
    if (a.dry_run && !a.clean) {      /* no command runs: the input for a namespace without ebb's rules */
        struct ebb_buf out = { .max = 64 << 20 };
        rc = ebb_capture_dry_run(o, ipv6, &out) < 0 ? 1 : 0;
        fwrite(ebb_buf_start(&out), 1, ebb_buf_len(&out), stdout);
        ebb_buf_free(&out);
        goto out;
    }
    if (!has_cap_net_admin()) {
        fprintf(stderr, "ebb init: changing iptables rules needs CAP_NET_ADMIN (run as root in the "
                "pod's network namespace, or use --dry-run)\n");
        rc = 1;
        goto out;
    }
    signal(SIGPIPE, SIG_IGN);         /* a failing iptables-restore may stop reading */
    rc = apply_family(o, &a, EBB_CAPTURE_IPV4);
    if (rc == 0 && ipv6)
        rc = apply_family(o, &a, EBB_CAPTURE_IPV6);
out:
    free(o);
    return rc;
}
