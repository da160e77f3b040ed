/*
 * capture.c - the nat rules of Istio's REDIRECT mode for `ebb init` (SPEC §9.1).
 *
 * Pure: settings in (istio-iptables' flags, the pod's annotations), iptables-restore
 * input out.  The rule text and order follow istio-iptables
 * (tools/istio-iptables/pkg/capture in istio/istio), so `iptables-save` in a pod
 * reads as in an Istio pod:
 *
 *   PREROUTING -p tcp -> ISTIO_INBOUND: RETURN the tunnel port (15008) and -d,
 *                        the rest (or the -b ports) -> ISTIO_IN_REDIRECT (REDIRECT 15006)
 *   OUTPUT -p tcp     -> ISTIO_OUTPUT: RETURN -o ports, RETURN 127.0.0.6 on lo (ebb's
 *                        inbound upstreams), the proxy's own traffic (uid/gid rules),
 *                        127.0.0.1, -x ranges; -q ports and -i ranges -> ISTIO_REDIRECT
 *                        (REDIRECT 15001)
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <string.h>

#include "ebb/buf.h"
#include "ebb/capture.h"
#include "ebb/parse.h"
#include "ebb/proxy_config.h"
#include "ebb/core.h"

#define OPT(field) offsetof(struct ebb_capture_opts, field)

#define ANN "traffic.sidecar.istio.io/"

/* Defaults are the Istio injection template's (ebb_capture_defaults()). */
const struct ebb_capture_flag ebb_capture_flags[] = {
    { 'p', "envoy-port", NULL, EBB_CAPTURE_K_PORT, OPT(outbound_port) },
    { 'z', "inbound-capture-port", NULL, EBB_CAPTURE_K_PORT, OPT(inbound_port) },
    { 'e', "inbound-tunnel-port", NULL, EBB_CAPTURE_K_PORT, OPT(tunnel_port) },
    { 'u', "proxy-uid", NULL, EBB_CAPTURE_K_IDS, OPT(uids) },
    { 'g', "proxy-gid", NULL, EBB_CAPTURE_K_IDS_OPT, OPT(gids) },
    { 'm', "istio-inbound-interception-mode", NULL, EBB_CAPTURE_K_MODE, 0 },
    { 'b', "istio-inbound-ports", ANN "includeInboundPorts", EBB_CAPTURE_K_INBOUND,
      OPT(inbound_ports) },
    { 'd', "istio-local-exclude-ports", ANN "excludeInboundPorts", EBB_CAPTURE_K_PORTS,
      OPT(inbound_exclude) },
    { 'i', "istio-service-cidr", ANN "includeOutboundIPRanges", EBB_CAPTURE_K_CIDRS_ALL,
      OPT(outbound_include) },
    { 'x', "istio-service-exclude-cidr", ANN "excludeOutboundIPRanges", EBB_CAPTURE_K_CIDRS,
      OPT(outbound_exclude) },
    { 'q', "istio-outbound-ports", ANN "includeOutboundPorts", EBB_CAPTURE_K_PORTS,
      OPT(outbound_ports_include) },
    { 'o', "istio-local-outbound-ports-exclude", ANN "excludeOutboundPorts", EBB_CAPTURE_K_PORTS,
      OPT(outbound_ports_exclude) },
};


size_t ebb_capture_nflags(void)
{
    return EBB_ARRAY_LEN(ebb_capture_flags);
}

const struct ebb_capture_flag *ebb_capture_flag_find(const char *name)
{
    for (size_t i = 0; i < EBB_ARRAY_LEN(ebb_capture_flags); i++) {
        const struct ebb_capture_flag *f = &ebb_capture_flags[i];
        if (strcmp(f->name, name) == 0 || (name[0] && !name[1] && f->short_name == name[0]))
            return f;
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* values                                                             */

/* Calls fn for each comma-separated entry of v, blanks trimmed, empty ones skipped.
 * Stops at the first non-zero return and returns it. */
static int each_entry(const char *v, int (*fn)(void *ctx, const char *e, char *err, size_t errlen),
                      void *ctx, char *err, size_t errlen)
{
    char e[128];

    while (*v) {
        const char *end = strchr(v, ',');
        size_t n = end ? (size_t)(end - v) : strlen(v);
        const char *s = v;
        while (n && isspace((unsigned char)*s)) {
            s++;
            n--;
        }
        while (n && isspace((unsigned char)s[n - 1]))
            n--;
        if (n >= sizeof(e)) {
            snprintf(err, errlen, "entry \"%.40s...\" is too long", s);
            return EBB_EINVAL;
        }
        if (n) {
            memcpy(e, s, n);
            e[n] = '\0';
            int rc = fn(ctx, e, err, errlen);
            if (rc)
                return rc;
        }
        v = end ? end + 1 : v + strlen(v);
    }
    return 0;
}

static int too_many(char *err, size_t errlen)
{
    snprintf(err, errlen, "more than %d entries", EBB_CAPTURE_MAX_ITEMS);
    return EBB_EINVAL;
}

static int parse_port(const char *s, uint16_t *port, char *err, size_t errlen)
{
    uint64_t v;

    if (ebb_parse_uint(s, 1, 65535, &v) < 0) {
        snprintf(err, errlen, "\"%s\" is not a port (1-65535)", s);
        return EBB_EINVAL;
    }
    *port = (uint16_t)v;
    return 0;
}

static int add_port(void *ctx, const char *e, char *err, size_t errlen)
{
    struct ebb_capture_ports *l = ctx;

    if (l->n == EBB_CAPTURE_MAX_ITEMS)
        return too_many(err, errlen);
    return parse_port(e, &l->port[l->n++], err, errlen);
}

/* A uid or gid as -m owner takes it: a number, or a user/group name. */
static int add_id(void *ctx, const char *e, char *err, size_t errlen)
{
    struct ebb_capture_ids *l = ctx;
    uint64_t num;
    bool ok = strlen(e) < sizeof(l->id[0]) && (isalpha((unsigned char)e[0]) || e[0] == '_');

    for (const char *p = e; ok && *p; p++)
        ok = isalnum((unsigned char)*p) || *p == '_' || *p == '-' || *p == '.';
    if (!ok && ebb_parse_uint(e, 0, UINT32_MAX - 1, &num) < 0) {
        snprintf(err, errlen, "\"%s\" is not a uid/gid number or name", e);
        return EBB_EINVAL;
    }
    if (l->n == EBB_CAPTURE_MAX_ITEMS)
        return too_many(err, errlen);
    snprintf(l->id[l->n++], sizeof(l->id[0]), "%s", e);
    return 0;
}

/* "10.1.2.3/8" -> "10.0.0.0/8" (Go's ipNet.String()); a bare address is a host range. */
static int add_cidr(void *ctx, const char *e, char *err, size_t errlen)
{
    struct ebb_capture_cidrs *l = ctx;
    struct ebb_capture_cidr *c;
    unsigned char a[16];
    char addr[INET6_ADDRSTRLEN + 1];
    const char *slash = strchr(e, '/');
    size_t alen = slash ? (size_t)(slash - e) : strlen(e);
    uint64_t bits;
    int af;

    if (alen >= sizeof(addr))
        goto bad;
    memcpy(addr, e, alen);
    addr[alen] = '\0';
    af = strchr(addr, ':') ? AF_INET6 : AF_INET;
    if (inet_pton(af, addr, a) != 1)
        goto bad;
    size_t size = af == AF_INET ? 4 : 16;
    bits = size * 8;
    if (slash && ebb_parse_uint(slash + 1, 0, size * 8, &bits) < 0)
        goto bad;
    if (l->n == EBB_CAPTURE_MAX_ITEMS)
        return too_many(err, errlen);
    c = &l->cidr[l->n];
    c->family = af == AF_INET ? EBB_CAPTURE_IPV4 : EBB_CAPTURE_IPV6;
    c->loopback = af == AF_INET ? a[0] == 127
                                : memcmp(a, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1", 16) == 0;
    for (size_t i = 0; i < size; i++) {
        size_t keep = bits > i * 8 ? bits - i * 8 : 0;
        a[i] &= keep >= 8 ? 0xff : (unsigned char)(0xff00 >> keep);
    }
    inet_ntop(af, a, addr, sizeof(addr));
    snprintf(c->text, sizeof(c->text), "%s/%u", addr, (unsigned)bits);
    l->n++;
    return 0;
bad:
    snprintf(err, errlen, "\"%s\" is not an address range (want a CIDR like 10.0.0.0/8)", e);
    return EBB_EINVAL;
}

/* Parses v per kind into the field at dst (a scratch copy of the settings). */
static int parse_kind(struct ebb_capture_opts *o, const struct ebb_capture_flag *f, const char *v,
                      char *err, size_t errlen)
{
    void *dst = (char *)o + f->off;
    bool all = strcmp(v, "*") == 0;

    switch (f->kind) {
    case EBB_CAPTURE_K_PORT:
        return parse_port(v, dst, err, errlen);
    case EBB_CAPTURE_K_IDS:
    case EBB_CAPTURE_K_IDS_OPT:
        memset(dst, 0, sizeof(struct ebb_capture_ids));
        if (each_entry(v, add_id, dst, err, errlen))
            return EBB_EINVAL;
        if (f->kind == EBB_CAPTURE_K_IDS && ((struct ebb_capture_ids *)dst)->n == 0) {
            snprintf(err, errlen, "\"%s\" names no uid", v);
            return EBB_EINVAL;
        }
        return 0;
    case EBB_CAPTURE_K_MODE:   /* empty is istio-iptables' default, REDIRECT */
        if (!v[0] || strcmp(v, "REDIRECT") == 0)
            return 0;
        if (strcmp(v, "TPROXY") == 0)
            snprintf(err, errlen, "\"%s\" is not supported (only REDIRECT)", v);
        else
            snprintf(err, errlen, "\"%s\" is not REDIRECT or TPROXY", v);
        return EBB_EINVAL;
    case EBB_CAPTURE_K_INBOUND:
        o->inbound_all = all;
        memset(dst, 0, sizeof(struct ebb_capture_ports));
        return all ? 0 : each_entry(v, add_port, dst, err, errlen);
    case EBB_CAPTURE_K_PORTS:
        memset(dst, 0, sizeof(struct ebb_capture_ports));
        return each_entry(v, add_port, dst, err, errlen);
    case EBB_CAPTURE_K_CIDRS_ALL:
    case EBB_CAPTURE_K_CIDRS:
        memset(dst, 0, sizeof(struct ebb_capture_cidrs));
        if (all && f->kind == EBB_CAPTURE_K_CIDRS) {
            snprintf(err, errlen, "\"*\" is not allowed (it would exclude every destination)");
            return EBB_EINVAL;
        }
        ((struct ebb_capture_cidrs *)dst)->wildcard = all;
        return all ? 0 : each_entry(v, add_cidr, dst, err, errlen);
    }
    return EBB_EINVAL;
}

int ebb_capture_set(struct ebb_capture_opts *o, const char *name, const char *value, char *err,
                    size_t errlen)
{
    const struct ebb_capture_flag *f = ebb_capture_flag_find(name);
    struct ebb_capture_opts *tmp;
    int rc;

    if (!f) {
        snprintf(err, errlen, "unknown setting \"%s\"", name);
        return EBB_EINVAL;
    }
    tmp = ebb_xmalloc(sizeof(*tmp));   /* o is unchanged on error */
    *tmp = *o;
    rc = parse_kind(tmp, f, value, err, errlen);
    if (rc == 0)
        *o = *tmp;
    free(tmp);
    return rc ? EBB_EINVAL : 0;
}

void ebb_capture_defaults(struct ebb_capture_opts *o)
{
    char err[128];
    static const char *const dflt[][2] = {
        { "envoy-port", "15001" }, { "inbound-capture-port", "15006" },
        { "inbound-tunnel-port", "15008" }, { "proxy-uid", "1337" }, { "proxy-gid", "" },
        { "istio-inbound-ports", "*" }, { "istio-local-exclude-ports", "15090,15021,15020" },
        { "istio-service-cidr", "*" }, { "istio-service-exclude-cidr", "" },
        { "istio-outbound-ports", "" }, { "istio-local-outbound-ports-exclude", "" },
    };

    memset(o, 0, sizeof(*o));
    for (size_t i = 0; i < EBB_ARRAY_LEN(dflt); i++)
        EBB_BUG_ON(ebb_capture_set(o, dflt[i][0], dflt[i][1], err, sizeof(err)) != 0);
}

/* ------------------------------------------------------------------ */
/* annotations                                                        */

#define STATUS_PORT_ANNOTATION "status.sidecar.istio.io/port"
#define EXCLUDE_INBOUND_FLAG   "istio-local-exclude-ports"

/* The injection template's excludeInboundPort(): the list with the status
 * port appended unless it is already there ("0" or empty: unchanged). */
static void exclude_status_port(const char *status, const char *list, char *out, size_t outlen)
{
    size_t used = 0;
    const char *p = list;

    out[0] = '\0';
    if (!status[0] || strcmp(status, "0") == 0) {
        snprintf(out, outlen, "%s", list);
        return;
    }
    while (*p) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == strlen(status) && memcmp(p, status, n) == 0) {
            snprintf(out, outlen, "%s", list);
            return;
        }
        while (n && isspace((unsigned char)*p)) {
            p++;
            n--;
        }
        while (n && isspace((unsigned char)p[n - 1]))
            n--;
        if (n && used < outlen)
            used += (size_t)snprintf(out + used, outlen - used, "%.*s,", (int)n, p);
        p = end ? end + 1 : p + strlen(p);
    }
    if (used < outlen)
        snprintf(out + used, outlen - used, "%s", status);
}

/* Reads one annotation: 0 with *v malloc'd or NULL (absent), or EBB_ECONFIG. */
static int ann(const char *path, const char *text, size_t len, const char *key, char **v,
               char *err, size_t errlen)
{
    return ebb_annotations_get(path, text, len, key, v, err, errlen) < 0 ? EBB_ECONFIG : 0;
}

int ebb_capture_annotations(struct ebb_capture_opts *o, const char *path, const char *text,
                            size_t len, char *err, size_t errlen)
{
    char reason[256], *status = NULL;
    int rc = ann(path, text, len, STATUS_PORT_ANNOTATION, &status, err, errlen);

    for (size_t i = 0; rc == 0 && i < EBB_ARRAY_LEN(ebb_capture_flags); i++) {
        const struct ebb_capture_flag *f = &ebb_capture_flags[i];
        char *v = NULL, *joined = NULL;
        const char *value, *name = f->annotation;

        if (!f->annotation)
            continue;
        if (ann(path, text, len, f->annotation, &v, err, errlen) < 0) {
            rc = EBB_ECONFIG;
            break;
        }
        value = v;
        if (strcmp(f->name, EXCLUDE_INBOUND_FLAG) == 0 && (v || status)) {
            /* the template's -d "15090,15021,{{ excludeInboundPort ... }}" */
            const char *st = status ? status : "15020", *list = v ? v : "";
            size_t n = strlen(list) + strlen(st) + 16;
            joined = ebb_xmalloc(n);
            memcpy(joined, "15090,15021,", 13);
            exclude_status_port(st, list, joined + 12, n - 12);
            value = joined;
            if (!v)
                name = STATUS_PORT_ANNOTATION;
        }
        if (value && ebb_capture_set(o, f->name, value, reason, sizeof(reason)) < 0) {
            snprintf(err, errlen, "annotation %s in %s: %s", name, path, reason);
            rc = EBB_ECONFIG;
        }
        free(joined);
        free(v);
    }
    free(status);
    return rc;
}

/* ------------------------------------------------------------------ */
/* reading iptables-save                                              */

static const char *const our_chains[] = {
    "ISTIO_INBOUND", "ISTIO_REDIRECT", "ISTIO_IN_REDIRECT", "ISTIO_OUTPUT",
};

/* Is the word at s (ending at a blank or end) one of ebb's chains? */
static bool is_ours(const char *s, size_t n)
{
    for (size_t i = 0; i < EBB_ARRAY_LEN(our_chains); i++) {
        if (strlen(our_chains[i]) == n && memcmp(our_chains[i], s, n) == 0)
            return true;
    }
    return false;
}

static size_t word_len(const char *s, const char *end)
{
    const char *p = s;
    while (p < end && *p != ' ' && *p != '\t')
        p++;
    return (size_t)(p - s);
}

/* Does the rule text [s, end) jump (-j/-g) to one of ebb's chains? */
static bool jumps_to_ours(const char *s, const char *end)
{
    for (const char *p = s; p + 4 <= end; p++) {
        if (p[0] == ' ' && p[1] == '-' && (p[2] == 'j' || p[2] == 'g') && p[3] == ' ' &&
            is_ours(p + 4, word_len(p + 4, end)))
            return true;
    }
    return false;
}

/* What iptables-save shows of ebb: which chains exist (bit i = our_chains[i])
 * and, when dels is given, "-D" lines for every rule outside them that jumps
 * to them.  Sets *any when it saw any rule or user chain at all. */
static int scan_save(const char *save, size_t len, unsigned *chains, bool *any,
                     struct ebb_buf *dels)
{
    const char *p = save, *end = save + len;
    int rc = 0;

    *chains = 0;
    *any = false;
    while (p < end && rc == 0) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *le = eol ? eol : end;
        size_t w;

        if (le > p && le[-1] == '\r')
            le--;
        if (p[0] == ':' && (w = word_len(p + 1, le)) > 0) {
            for (size_t i = 0; i < EBB_ARRAY_LEN(our_chains); i++) {
                if (strlen(our_chains[i]) == w && memcmp(our_chains[i], p + 1, w) == 0)
                    *chains |= 1u << i;
            }
            if (memmem(p, (size_t)(le - p), " - [", 4))   /* a user chain (no policy) */
                *any = true;
        } else if (le - p > 3 && memcmp(p, "-A ", 3) == 0) {
            *any = true;
            w = word_len(p + 3, le);
            if (dels && !is_ours(p + 3, w) && jumps_to_ours(p + 3 + w, le))
                rc = ebb_buf_appendf(dels, "-D %.*s\n", (int)(le - p - 3), p + 3);
        }
        p = eol ? eol + 1 : end;
    }
    return rc;
}

enum ebb_capture_seen ebb_capture_seen(const char *save, size_t len)
{
    unsigned chains;
    bool any;

    scan_save(save, len, &chains, &any, NULL);
    return chains ? EBB_CAPTURE_SEEN_OURS : any ? EBB_CAPTURE_SEEN_RULES : EBB_CAPTURE_SEEN_NOTHING;
}

/* ------------------------------------------------------------------ */
/* writing iptables-restore input                                     */

/* An output being written: the buffer, the first error, the -A count. */
struct emit {
    struct ebb_buf *b;      /* appended to */
    int             rc;     /* first append error */
    int             rules;  /* "-A" lines written */
};

static void line(struct emit *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void line(struct emit *e, const char *fmt, ...)
{
    va_list ap;

    if (strncmp(fmt, "-A ", 3) == 0)
        e->rules++;
    if (e->rc)
        return;
    va_start(ap, fmt);
    e->rc = ebb_buf_vappendf(e->b, fmt, ap);
    va_end(ap);
    if (e->rc == 0)
        e->rc = ebb_buf_append(e->b, "\n", 1);
}

/* PREROUTING -> ISTIO_INBOUND (Istio's handleInboundPortsInclude, REDIRECT mode). */
static void inbound_rules(struct emit *e, const struct ebb_capture_opts *o)
{
    if (!o->inbound_all && o->inbound_ports.n == 0)
        return;                       /* -b "": inbound is not captured */
    line(e, "-A PREROUTING -p tcp -j ISTIO_INBOUND");
    if (!o->inbound_all) {
        for (size_t i = 0; i < o->inbound_ports.n; i++)
            line(e, "-A ISTIO_INBOUND -p tcp --dport %u -j ISTIO_IN_REDIRECT",
                 o->inbound_ports.port[i]);
        return;
    }
    for (size_t i = 0; i < o->inbound_exclude.n; i++)
        line(e, "-A ISTIO_INBOUND -p tcp --dport %u -j RETURN", o->inbound_exclude.port[i]);
    line(e, "-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT");
}

/* The three rules per proxy uid (or gid): the app reaching itself through
 * its pod address goes to inbound; other loopback traffic is left alone
 * (unless -i names a loopback range); the proxy's own traffic is never
 * captured again. */
static void owner_rules(struct emit *e, const char *what, const struct ebb_capture_ids *ids,
                        const char *lo, bool lo_return)
{
    for (size_t i = 0; i < ids->n; i++) {
        line(e, "-A ISTIO_OUTPUT -o lo ! -d %s -m owner --%s-owner %s -j ISTIO_IN_REDIRECT", lo,
             what, ids->id[i]);
        if (lo_return)
            line(e, "-A ISTIO_OUTPUT -o lo -m owner ! --%s-owner %s -j RETURN", what, ids->id[i]);
        line(e, "-A ISTIO_OUTPUT -m owner --%s-owner %s -j RETURN", what, ids->id[i]);
    }
}

/* OUTPUT -> ISTIO_OUTPUT, in istio-iptables' order. */
static void outbound_rules(struct emit *e, const struct ebb_capture_opts *o,
                           enum ebb_capture_family fam)
{
    bool v6 = fam == EBB_CAPTURE_IPV6, lo_in_include = false, any_include = false;
    const char *lo = v6 ? "::1/128" : "127.0.0.1/32";
    const struct ebb_capture_cidrs *inc = &o->outbound_include, *exc = &o->outbound_exclude;

    for (size_t i = 0; i < inc->n; i++)
        lo_in_include |= inc->cidr[i].loopback;
    line(e, "-A OUTPUT -p tcp -j ISTIO_OUTPUT");
    for (size_t i = 0; i < o->outbound_ports_exclude.n; i++)
        line(e, "-A ISTIO_OUTPUT -p tcp --dport %u -j RETURN", o->outbound_ports_exclude.port[i]);
    line(e, "-A ISTIO_OUTPUT -o lo -s %s -j RETURN", v6 ? "::6/128" : "127.0.0.6/32");
    owner_rules(e, "uid", &o->uids, lo, !lo_in_include);
    owner_rules(e, "gid", o->gids.n ? &o->gids : &o->uids, lo, !lo_in_include);
    line(e, "-A ISTIO_OUTPUT -d %s -j RETURN", lo);
    for (size_t i = 0; i < exc->n; i++) {
        if (exc->cidr[i].family == fam)
            line(e, "-A ISTIO_OUTPUT -d %s -j RETURN", exc->cidr[i].text);
    }
    for (size_t i = 0; i < o->outbound_ports_include.n; i++)
        line(e, "-A ISTIO_OUTPUT -p tcp --dport %u -j ISTIO_REDIRECT",
             o->outbound_ports_include.port[i]);
    if (inc->wildcard) {
        line(e, "-A ISTIO_OUTPUT -j ISTIO_REDIRECT");
        return;
    }
    for (size_t i = 0; i < inc->n; i++) {
        if (inc->cidr[i].family == fam) {
            line(e, "-A ISTIO_OUTPUT -d %s -j ISTIO_REDIRECT", inc->cidr[i].text);
            any_include = true;
        }
    }
    if (any_include)
        line(e, "-A ISTIO_OUTPUT -j RETURN");
}

int ebb_capture_rules(const struct ebb_capture_opts *o, enum ebb_capture_family fam,
                      const char *save, size_t savelen, struct ebb_buf *out)
{
    struct emit e = { .b = out };
    struct ebb_buf dels = { .max = 1 << 20 };
    unsigned chains;
    bool any;

    line(&e, "*nat");
    for (size_t i = 0; i < EBB_ARRAY_LEN(our_chains); i++)
        line(&e, ":%s - [0:0]", our_chains[i]);   /* creates, or flushes an existing one */
    if (save) {
        e.rc = scan_save(save, savelen, &chains, &any, &dels);
        if (e.rc == 0 && ebb_buf_len(&dels))
            e.rc = ebb_buf_append(out, ebb_buf_start(&dels), ebb_buf_len(&dels));
        ebb_buf_free(&dels);
    }
    line(&e, "-A ISTIO_INBOUND -p tcp --dport %u -j RETURN", o->tunnel_port);
    line(&e, "-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports %u", o->outbound_port);
    line(&e, "-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports %u", o->inbound_port);
    inbound_rules(&e, o);
    outbound_rules(&e, o, fam);
    line(&e, "COMMIT");
    return e.rc ? e.rc : e.rules;
}

int ebb_capture_clean(const char *save, size_t savelen, struct ebb_buf *out)
{
    struct emit e = { .b = out };
    struct ebb_buf dels = { .max = 1 << 20 };
    unsigned chains;
    bool any;
    int n = 0;

    e.rc = scan_save(save, savelen, &chains, &any, &dels);
    if (e.rc == 0 && chains) {
        line(&e, "*nat");
        for (size_t i = 0; i < EBB_ARRAY_LEN(our_chains); i++) {
            if (chains & (1u << i))
                line(&e, ":%s - [0:0]", our_chains[i]);   /* flush: no references left */
        }
        if (e.rc == 0 && ebb_buf_len(&dels))
            e.rc = ebb_buf_append(out, ebb_buf_start(&dels), ebb_buf_len(&dels));
        for (size_t i = 0; i < EBB_ARRAY_LEN(our_chains); i++) {
            if (chains & (1u << i)) {
                line(&e, "-X %s", our_chains[i]);
                n++;
            }
        }
        line(&e, "COMMIT");
    }
    ebb_buf_free(&dels);
    return e.rc ? e.rc : n;
}

int ebb_capture_dry_run(const struct ebb_capture_opts *o, bool ipv6, struct ebb_buf *out)
{
    int rc = ebb_buf_appendf(out, "# IPv4: iptables-restore --noflush\n");
    if (rc == 0)
        rc = ebb_capture_rules(o, EBB_CAPTURE_IPV4, NULL, 0, out);
    if (rc >= 0 && ipv6) {
        rc = ebb_buf_appendf(out, "# IPv6: ip6tables-restore --noflush\n");
        if (rc == 0)
            rc = ebb_capture_rules(o, EBB_CAPTURE_IPV6, NULL, 0, out);
    }
    return rc < 0 ? rc : 0;
}
