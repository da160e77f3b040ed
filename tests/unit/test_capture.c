/* test_capture.c - `ebb init`'s rule builder (src/control/capture.c) against the
 * rule text of Istio's istio-iptables (tests/unit/data/capture_*.rules). */
#include <stdlib.h>

#include "ebb/buf.h"
#include "ebb/capture.h"
#include "ebb/core.h"
#include "t.h"

#define DATA "tests/unit/data/"   /* make and scripts/run-tests.sh run from the repo root */

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = calloc(1, 1 << 20);
    size_t n = f ? fread(buf, 1, (1 << 20) - 1, f) : 0;

    if (!f)
        fprintf(stderr, "  cannot open %s (run from the repo root)\n", path);
    else
        fclose(f);
    buf[n] = '\0';
    return buf;
}

/* Applies "-X value" pairs from a golden file's "args:" line, as `ebb init` would. */
static int apply_args(struct ebb_capture_opts *o, char *args)
{
    char err[256];

    for (char *tok = strtok(args, " "); tok; tok = strtok(NULL, " ")) {
        char *val = strtok(NULL, " ");
        if (tok[0] != '-' || !val) {
            fprintf(stderr, "  bad args near \"%s\"\n", tok);
            return -1;
        }
        if (ebb_capture_set(o, tok + (tok[1] == '-' ? 2 : 1), val, err, sizeof(err)) < 0) {
            fprintf(stderr, "  %s %s: %s\n", tok, val, err);
            return -1;
        }
    }
    return 0;
}

/* Prints the first line where got and want differ. */
static void show_diff(const char *got, const char *want)
{
    int ln = 1;
    while (*got && *got == *want) {
        ln += *got == '\n';
        got++;
        want++;
    }
    fprintf(stderr, "  line %d differs:\n    got:  %.*s\n    want: %.*s\n", ln,
            (int)strcspn(got, "\n"), got, (int)strcspn(want, "\n"), want);
}

/* The golden file's output part equals ebb_capture_dry_run() for its args. */
static void check_golden(const char *name)
{
    char path[256], *text, *nl;
    struct ebb_capture_opts *o = calloc(1, sizeof(*o));
    struct ebb_buf out = { .max = 1 << 20 };

    snprintf(path, sizeof(path), DATA "%s", name);
    text = slurp(path);
    nl = strchr(text, '\n');
    T_CHECK(strncmp(text, "args:", 5) == 0 && nl);
    if (!nl)
        goto out;
    *nl = '\0';
    ebb_capture_defaults(o);
    T_EQ_INT(apply_args(o, text + 5), 0);
    T_EQ_INT(ebb_capture_dry_run(o, true, &out), 0);
    T_EQ_INT(ebb_buf_append(&out, "", 1), 0);
    if (strcmp(ebb_buf_start(&out), nl + 1) != 0) {
        fprintf(stderr, "  %s:\n", name);
        show_diff(ebb_buf_start(&out), nl + 1);
        T_CHECK(!"output equals the golden file");
    }
out:
    ebb_buf_free(&out);
    free(text);
    free(o);
}

static void test_golden_default(void)   { check_golden("capture_default.rules"); }
static void test_golden_all_flags(void) { check_golden("capture_all_flags.rules"); }
static void test_golden_lists(void)     { check_golden("capture_lists.rules"); }

/* Renders one family's rules for o into a NUL-terminated malloc'd string. */
static char *render(const struct ebb_capture_opts *o, enum ebb_capture_family fam, const char *save)
{
    struct ebb_buf out = { .max = 1 << 20 };
    T_CHECK(ebb_capture_rules(o, fam, save, save ? strlen(save) : 0, &out) > 0);
    ebb_buf_append(&out, "", 1);
    char *s = strdup(ebb_buf_start(&out));
    ebb_buf_free(&out);
    return s;
}

struct bad_case {
    const char *flag, *value, *reason;
};

static void test_bad_values_leave_settings_unchanged(void)
{
    static const struct bad_case cases[] = {
        { "envoy-port", "abc", "\"abc\" is not a port" }, { "envoy-port", "0", "not a port" },
        { "inbound-capture-port", "65536", "not a port" }, { "inbound-tunnel-port", "", "not a port" },
        { "proxy-uid", "", "names no uid" }, { "proxy-uid", "1337,-1", "\"-1\" is not a uid" },
        { "proxy-gid", "a b", "not a uid/gid" },
        { "istio-inbound-interception-mode", "TPROXY", "not supported" },
        { "istio-inbound-interception-mode", "redirect", "is not REDIRECT or TPROXY" },
        { "istio-inbound-ports", "80,http", "\"http\" is not a port" },
        { "istio-local-exclude-ports", "*", "not a port" },
        { "istio-service-cidr", "10.0.0.0/33", "not an address range" },
        { "istio-service-cidr", "10.0.0/8", "not an address range" },
        { "istio-service-cidr", "fd00::/129", "not an address range" },
        { "istio-service-exclude-cidr", "*", "not allowed" },
        { "istio-outbound-ports", "1-2", "not a port" },
        { "istio-local-outbound-ports-exclude", "25,,x", "\"x\" is not a port" },
        { "no-such-flag", "1", "unknown setting" },
    };
    struct ebb_capture_opts *o = calloc(1, sizeof(*o)), *before = calloc(1, sizeof(*o));
    char err[256];

    ebb_capture_defaults(o);
    *before = *o;
    for (size_t i = 0; i < EBB_ARRAY_LEN(cases); i++) {
        err[0] = '\0';
        T_EQ_INT(ebb_capture_set(o, cases[i].flag, cases[i].value, err, sizeof(err)), EBB_EINVAL);
        if (!strstr(err, cases[i].reason))
            fprintf(stderr, "  %s=\"%s\": \"%s\"\n", cases[i].flag, cases[i].value, err);
        T_CHECK(strstr(err, cases[i].reason) != NULL);
        T_CHECK(memcmp(o, before, sizeof(*o)) == 0);
    }
    free(o);
    free(before);
}

static void test_values_normalised(void)
{
    struct ebb_capture_opts *o = calloc(1, sizeof(*o));
    char err[256];

    ebb_capture_defaults(o);
    T_EQ_INT(ebb_capture_set(o, "x", " 10.1.2.3/8 , ,fd00::1:2/64,::1, 127.0.0.1", err,
                             sizeof(err)), 0);
    T_EQ_INT(o->outbound_exclude.n, 4);
    T_EQ_STR(o->outbound_exclude.cidr[0].text, "10.0.0.0/8");
    T_EQ_STR(o->outbound_exclude.cidr[1].text, "fd00::/64");
    T_EQ_STR(o->outbound_exclude.cidr[2].text, "::1/128");
    T_CHECK(o->outbound_exclude.cidr[2].loopback && o->outbound_exclude.cidr[3].loopback);
    T_CHECK(!o->outbound_exclude.cidr[0].loopback);
    T_EQ_INT(o->outbound_exclude.cidr[1].family, EBB_CAPTURE_IPV6);
    /* -g "" means "the uids"; names are accepted as iptables' owner match takes them */
    T_EQ_INT(ebb_capture_set(o, "proxy-uid", "istio-proxy,1337", err, sizeof(err)), 0);
    T_EQ_INT(ebb_capture_set(o, "g", "", err, sizeof(err)), 0);
    char *r = render(o, EBB_CAPTURE_IPV4, NULL);
    T_CHECK(strstr(r, "-A ISTIO_OUTPUT -m owner --gid-owner istio-proxy -j RETURN\n") != NULL);
    T_CHECK(strstr(r, "-A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN\n") != NULL);
    free(r);
    /* -b "" and -i "": nothing captured, only the fixed rules */
    T_EQ_INT(ebb_capture_set(o, "b", "", err, sizeof(err)), 0);
    T_EQ_INT(ebb_capture_set(o, "i", "", err, sizeof(err)), 0);
    r = render(o, EBB_CAPTURE_IPV6, NULL);
    T_CHECK(strstr(r, "PREROUTING") == NULL);
    T_CHECK(strstr(r, "-j ISTIO_REDIRECT") == NULL);
    T_CHECK(strstr(r, "-A ISTIO_OUTPUT -d ::1/128 -j RETURN\nCOMMIT\n") != NULL);
    free(r);
    free(o);
}

/* Renders with the settings after an annotations file (and optional flag). */
static char *render_ann(const char *ann, const char *flag, const char *value)
{
    struct ebb_capture_opts *o = calloc(1, sizeof(*o));
    char err[256];
    char *r;

    ebb_capture_defaults(o);
    T_EQ_INT(ebb_capture_annotations(o, "annotations", ann, strlen(ann), err, sizeof(err)), 0);
    if (flag)
        T_EQ_INT(ebb_capture_set(o, flag, value, err, sizeof(err)), 0);
    r = render(o, EBB_CAPTURE_IPV4, NULL);
    free(o);
    return r;
}

static void test_annotations(void)
{
    char *r = render_ann("traffic.sidecar.istio.io/excludeInboundPorts=\"8081, 8082\"\n"
                         "traffic.sidecar.istio.io/includeOutboundIPRanges=\"10.0.0.0/8\"\n"
                         "traffic.sidecar.istio.io/excludeOutboundPorts=\"5432\"\n"
                         "traffic.sidecar.istio.io/includeOutboundPorts=\"3306\"\n"
                         "app=\"x\"\n", NULL, NULL);
    /* the template's -d "15090,15021,{{ excludeInboundPort 15020 annotation }}" */
    T_CHECK(strstr(r, "--dport 15021 -j RETURN\n-A ISTIO_INBOUND -p tcp --dport 8081 -j RETURN\n"
                      "-A ISTIO_INBOUND -p tcp --dport 8082 -j RETURN\n"
                      "-A ISTIO_INBOUND -p tcp --dport 15020 -j RETURN\n") != NULL);
    T_CHECK(strstr(r, "-A OUTPUT -p tcp -j ISTIO_OUTPUT\n"
                      "-A ISTIO_OUTPUT -p tcp --dport 5432 -j RETURN\n") != NULL);
    T_CHECK(strstr(r, "-A ISTIO_OUTPUT -p tcp --dport 3306 -j ISTIO_REDIRECT\n"
                      "-A ISTIO_OUTPUT -d 10.0.0.0/8 -j ISTIO_REDIRECT\n"
                      "-A ISTIO_OUTPUT -j RETURN\nCOMMIT\n") != NULL);
    free(r);
    /* the status port is not added twice; includeInboundPorts "" turns inbound off */
    r = render_ann("status.sidecar.istio.io/port=\"15099\"\n"
                   "traffic.sidecar.istio.io/excludeInboundPorts=\"15099\"\n", NULL, NULL);
    T_CHECK(strstr(r, "--dport 15021 -j RETURN\n-A ISTIO_INBOUND -p tcp --dport 15099 -j RETURN\n"
                      "-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT\n") != NULL);
    free(r);
    r = render_ann("traffic.sidecar.istio.io/includeInboundPorts=\"\"\n", NULL, NULL);
    T_CHECK(strstr(r, "PREROUTING") == NULL);
    free(r);
    /* a flag wins over the annotation */
    r = render_ann("traffic.sidecar.istio.io/includeInboundPorts=\"8080\"\n", "b", "9090");
    T_CHECK(strstr(r, "--dport 9090 -j ISTIO_IN_REDIRECT") != NULL);
    T_CHECK(strstr(r, "8080") == NULL);
    free(r);
}

static void test_annotation_errors(void)
{
    static const char *const cases[][2] = {
        { "traffic.sidecar.istio.io/excludeOutboundIPRanges=\"10.0.0.0/8,nope\"\n",
          "annotation traffic.sidecar.istio.io/excludeOutboundIPRanges in ann: \"nope\" is not" },
        { "traffic.sidecar.istio.io/includeInboundPorts=\"80,99999\"\n",
          "annotation traffic.sidecar.istio.io/includeInboundPorts in ann: \"99999\" is not a port" },
        { "status.sidecar.istio.io/port=\"abc\"\n",
          "annotation status.sidecar.istio.io/port in ann: \"abc\" is not a port" },
        { "traffic.sidecar.istio.io/excludeOutboundPorts=5432\n", "ann:1:" },
    };
    struct ebb_capture_opts *o = calloc(1, sizeof(*o));
    char err[512];

    for (size_t i = 0; i < EBB_ARRAY_LEN(cases); i++) {
        ebb_capture_defaults(o);
        err[0] = '\0';
        T_EQ_INT(ebb_capture_annotations(o, "ann", cases[i][0], strlen(cases[i][0]), err,
                                         sizeof(err)), EBB_ECONFIG);
        if (!strstr(err, cases[i][1]))
            fprintf(stderr, "  case %zu: \"%s\"\n", i, err);
        T_CHECK(strstr(err, cases[i][1]) != NULL);
    }
    free(o);
}

/* What iptables-nft-save -t nat shows after one `ebb init`, plus two foreign rules. */
static const char *const applied_save =
    "# Generated by iptables-nft-save v1.8.9 (nf_tables) on Mon Nov 30 13:37:49 2026\n"
    "*nat\n"
    ":PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
    ":POSTROUTING ACCEPT [0:0]\n:ISTIO_INBOUND - [0:0]\n:ISTIO_IN_REDIRECT - [0:0]\n"
    ":ISTIO_OUTPUT - [0:0]\n:ISTIO_REDIRECT - [0:0]\n:KUBE-X - [0:0]\n"
    "-A PREROUTING -j KUBE-X\n"
    "-A PREROUTING -p tcp -j ISTIO_INBOUND\n"
    "-A OUTPUT -d 10.9.9.9/32 -j ACCEPT\n"
    "-A OUTPUT -p tcp -j ISTIO_OUTPUT\n"
    "-A ISTIO_INBOUND -p tcp -m tcp --dport 15008 -j RETURN\n"
    "-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT\n"
    "-A ISTIO_OUTPUT -j ISTIO_REDIRECT\n"
    "-A KUBE-X -i eth9 -j ISTIO_REDIRECT\n"
    "COMMIT\n"
    "# Completed on Mon Nov 30 13:37:49 2026\n";

static void test_rerun_deletes_old_jumps(void)
{
    struct ebb_capture_opts *o = calloc(1, sizeof(*o));
    char *fresh, *again;

    ebb_capture_defaults(o);
    fresh = render(o, EBB_CAPTURE_IPV4, NULL);
    again = render(o, EBB_CAPTURE_IPV4, applied_save);
    /* declarations (which flush ebb's chains), the old jumps deleted, then the same rules */
    static const char head[] = "*nat\n:ISTIO_INBOUND - [0:0]\n:ISTIO_REDIRECT - [0:0]\n"
                               ":ISTIO_IN_REDIRECT - [0:0]\n:ISTIO_OUTPUT - [0:0]\n";
    static const char dels[] = "-D PREROUTING -p tcp -j ISTIO_INBOUND\n"
                               "-D OUTPUT -p tcp -j ISTIO_OUTPUT\n"
                               "-D KUBE-X -i eth9 -j ISTIO_REDIRECT\n";
    T_CHECK(strncmp(fresh, head, strlen(head)) == 0);
    T_CHECK(strncmp(again, head, strlen(head)) == 0);
    T_CHECK(strncmp(again + strlen(head), dels, strlen(dels)) == 0);
    T_EQ_STR(again + strlen(head) + strlen(dels), fresh + strlen(head));
    free(fresh);
    free(again);
    free(o);
}

static void test_clean(void)
{
    struct ebb_buf out = { .max = 1 << 20 };

    T_EQ_INT(ebb_capture_clean(applied_save, strlen(applied_save), &out), 4);
    ebb_buf_append(&out, "", 1);
    T_EQ_STR(ebb_buf_start(&out),
             "*nat\n:ISTIO_INBOUND - [0:0]\n:ISTIO_REDIRECT - [0:0]\n:ISTIO_IN_REDIRECT - [0:0]\n"
             ":ISTIO_OUTPUT - [0:0]\n"
             "-D PREROUTING -p tcp -j ISTIO_INBOUND\n-D OUTPUT -p tcp -j ISTIO_OUTPUT\n"
             "-D KUBE-X -i eth9 -j ISTIO_REDIRECT\n"
             "-X ISTIO_INBOUND\n-X ISTIO_REDIRECT\n-X ISTIO_IN_REDIRECT\n-X ISTIO_OUTPUT\nCOMMIT\n");
    ebb_buf_reset(&out);
    static const char empty[] = "*nat\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n";
    T_EQ_INT(ebb_capture_clean(empty, strlen(empty), &out), 0);
    T_EQ_INT(ebb_buf_len(&out), 0);
    ebb_buf_free(&out);
}

static void test_seen(void)
{
    static const char rules[] = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j DROP\nCOMMIT\n";
    static const char chain[] = "*raw\n:MINE - [0:0]\nCOMMIT\n";
    static const char policy[] = "*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n";

    T_EQ_INT(ebb_capture_seen("", 0), EBB_CAPTURE_SEEN_NOTHING);
    T_EQ_INT(ebb_capture_seen(policy, strlen(policy)), EBB_CAPTURE_SEEN_NOTHING);
    T_EQ_INT(ebb_capture_seen(rules, strlen(rules)), EBB_CAPTURE_SEEN_RULES);
    T_EQ_INT(ebb_capture_seen(chain, strlen(chain)), EBB_CAPTURE_SEEN_RULES);
    T_EQ_INT(ebb_capture_seen(applied_save, strlen(applied_save)), EBB_CAPTURE_SEEN_OURS);
}

static void test_flag_table(void)
{
    T_EQ_STR(ebb_capture_flag_find("p")->name, "envoy-port");
    T_EQ_STR(ebb_capture_flag_find("istio-local-outbound-ports-exclude")->annotation,
             "traffic.sidecar.istio.io/excludeOutboundPorts");
    T_CHECK(ebb_capture_flag_find("c") == NULL);
    T_CHECK(ebb_capture_flag_find("") == NULL);
    T_EQ_INT(ebb_capture_nflags(), 12);
}

int main(void)
{
    T_RUN(test_golden_default);
    T_RUN(test_golden_all_flags);
    T_RUN(test_golden_lists);
    T_RUN(test_bad_values_leave_settings_unchanged);
    T_RUN(test_values_normalised);
    T_RUN(test_annotations);
    T_RUN(test_annotation_errors);
    T_RUN(test_rerun_deletes_old_jumps);
    T_RUN(test_clean);
    T_RUN(test_seen);
    T_RUN(test_flag_table);
    T_DONE();
}
