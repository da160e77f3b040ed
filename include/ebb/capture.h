/*
 * capture.h - the iptables rules of `ebb init` (SPEC §9.1), as pure functions.
 *
 * Settings come in under istio-iptables' flag names (and from the
 * traffic.sidecar.istio.io/ pod annotations Istio turns into those flags);
 * the rules go out as iptables-restore input: the nat table of Istio's
 * REDIRECT mode, same chains, same rule order.  Nothing here runs a command
 * or touches the kernel: src/cli/init.c does that.
 */
#ifndef EBB_CAPTURE_H
#define EBB_CAPTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ebb_buf;

#define EBB_CAPTURE_MAX_ITEMS 64   /* entries per list flag */

/* Address family of one rule set (iptables or ip6tables). */
enum ebb_capture_family {
    EBB_CAPTURE_IPV4,
    EBB_CAPTURE_IPV6,
};

/* A port list (-b, -d, -q, -o), in the order given. */
struct ebb_capture_ports {
    uint16_t port[EBB_CAPTURE_MAX_ITEMS];   /* 1-65535 */
    size_t   n;                             /* entries used */
};

/* One address range of -i or -x, normalised the way Go's net.ParseCIDR prints it. */
struct ebb_capture_cidr {
    enum ebb_capture_family family;   /* which rule set it goes to */
    bool loopback;                    /* the address given is 127/8 or ::1 (Istio's HasLoopBackIP) */
    char text[64];                    /* "10.0.0.0/8", "2001:db8::/32" */
};

/* An address-range list; wildcard is "*" (every destination). */
struct ebb_capture_cidrs {
    struct ebb_capture_cidr cidr[EBB_CAPTURE_MAX_ITEMS];
    size_t n;                         /* entries used */
    bool   wildcard;                  /* "*" was given (n is then 0) */
};

/* uids or gids for -m owner (numbers or user/group names). */
struct ebb_capture_ids {
    char   id[EBB_CAPTURE_MAX_ITEMS][33];
    size_t n;                         /* entries used */
};

/* The settings of one `ebb init` run.  Start from ebb_capture_defaults(),
 * then ebb_capture_annotations(), then ebb_capture_set() for each flag: the
 * last one to set a field wins, which is how a flag wins over an annotation. */
struct ebb_capture_opts {
    uint16_t outbound_port;                  /* -p: ISTIO_REDIRECT target (15001) */
    uint16_t inbound_port;                   /* -z: ISTIO_IN_REDIRECT target (15006) */
    uint16_t tunnel_port;                    /* -e: always returned from ISTIO_INBOUND (15008) */
    struct ebb_capture_ids uids;             /* -u: the proxy's uids (1337) */
    struct ebb_capture_ids gids;             /* -g: the proxy's gids; n == 0 means "the uids" */
    bool inbound_all;                        /* -b '*': every inbound port but -d */
    struct ebb_capture_ports inbound_ports;  /* -b list (used when !inbound_all; empty = none) */
    struct ebb_capture_ports inbound_exclude;   /* -d (only with -b '*') */
    struct ebb_capture_cidrs outbound_include;  /* -i ('*' = all, empty = none) */
    struct ebb_capture_cidrs outbound_exclude;  /* -x (never '*') */
    struct ebb_capture_ports outbound_ports_include;  /* -q */
    struct ebb_capture_ports outbound_ports_exclude;  /* -o */
};

/* How a flag's value parses (and which part of the settings it replaces). */
enum ebb_capture_kind {
    EBB_CAPTURE_K_PORT,       /* one port, 1-65535 */
    EBB_CAPTURE_K_IDS,        /* uid/gid list, at least one entry */
    EBB_CAPTURE_K_IDS_OPT,    /* uid/gid list, empty allowed (-g: then the uids) */
    EBB_CAPTURE_K_MODE,       /* REDIRECT (TPROXY is refused as not supported) */
    EBB_CAPTURE_K_INBOUND,    /* '*' or a port list (-b) */
    EBB_CAPTURE_K_PORTS,      /* a port list */
    EBB_CAPTURE_K_CIDRS_ALL,  /* '*' or an address-range list (-i) */
    EBB_CAPTURE_K_CIDRS,      /* an address-range list, '*' refused (-x) */
};

/* One settable istio-iptables flag, and the pod annotation that feeds it. */
struct ebb_capture_flag {
    char        short_name;   /* 'p' for -p; 0 = long form only */
    const char *name;         /* istio-iptables' long name, "envoy-port" */
    const char *annotation;   /* traffic.sidecar.istio.io/... that sets it, or NULL */
    enum ebb_capture_kind kind;   /* value syntax */
    size_t      off;          /* offset of the field in struct ebb_capture_opts */
};

/* The flag table, in help order; ebb_capture_nflags() entries. */
extern const struct ebb_capture_flag ebb_capture_flags[];
size_t ebb_capture_nflags(void);

/* Finds a flag by long name ("envoy-port") or, when the name is one
 * character, by short name ("p").  NULL if there is none. */
const struct ebb_capture_flag *ebb_capture_flag_find(const char *name);

/* Fills o with the Istio injection template's arguments:
 * -p 15001 -z 15006 -e 15008 -u 1337 -m REDIRECT -b '*' -d 15090,15021,15020 -i '*' -x "". */
void ebb_capture_defaults(struct ebb_capture_opts *o);

/* Sets the flag named f (a long name from the table) from value.  Lists are
 * comma-separated; blanks around entries and empty entries are skipped.
 * Returns 0, or EBB_EINVAL with the reason (naming the value, not the flag)
 * in err; o is then unchanged. */
int ebb_capture_set(struct ebb_capture_opts *o, const char *f, const char *value, char *err,
                    size_t errlen);

/* Applies the traffic.sidecar.istio.io/ annotations found in a downward-API
 * annotations file's text (path is only for messages) the way Istio's
 * injection template turns them into flags; excludeInboundPorts is added to
 * 15090,15021 and the status port (status.sidecar.istio.io/port, 15020).
 * Returns 0, or EBB_ECONFIG with "annotation NAME in PATH: reason" in err. */
int ebb_capture_annotations(struct ebb_capture_opts *o, const char *path, const char *text,
                            size_t len, char *err, size_t errlen);

/* What an iptables-save text holds (for choosing the backend). */
enum ebb_capture_seen {
    EBB_CAPTURE_SEEN_NOTHING,   /* no rule and no user chain */
    EBB_CAPTURE_SEEN_RULES,     /* rules or chains, none of ebb's */
    EBB_CAPTURE_SEEN_OURS,      /* one of ebb's chains exists */
};
enum ebb_capture_seen ebb_capture_seen(const char *save, size_t len);

/* Appends the iptables-restore input ("*nat" ... "COMMIT") that installs the
 * rules of o for one family.  save is the current `iptables-save -t nat`
 * output (NULL for a namespace without ebb's rules): ebb's chains are
 * declared (created, or flushed when they exist) and every rule elsewhere
 * that jumps to them is deleted first, so applying twice leaves one set.
 * Returns the number of rules appended (-A lines) or EBB_ENOMEM/EBB_ETOOBIG. */
int ebb_capture_rules(const struct ebb_capture_opts *o, enum ebb_capture_family fam,
                      const char *save, size_t savelen, struct ebb_buf *out);

/* Appends the iptables-restore input that removes ebb's chains and every
 * rule that jumps to them, as found in save (`iptables-save -t nat`).
 * Appends nothing and returns 0 when there is nothing to remove, else the
 * number of chains removed; or EBB_ENOMEM/EBB_ETOOBIG. */
int ebb_capture_clean(const char *save, size_t savelen, struct ebb_buf *out);

/* The whole `ebb init --dry-run` output: for IPv4 (and IPv6 when ipv6), a
 * "# ..." line naming the command, then that family's ebb_capture_rules()
 * for a namespace without ebb's rules.  0 or EBB_ENOMEM/EBB_ETOOBIG. */
int ebb_capture_dry_run(const struct ebb_capture_opts *o, bool ipv6, struct ebb_buf *out);

#endif
