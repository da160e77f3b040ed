/* test_drill_report.c - the drill's pure parts: verdict arithmetic, SVG scaling, JSON/SVG
 * output shape, and the parser for ebb's drain log lines. */
#include <stdlib.h>
#include <string.h>

#include "ebb/drill_report.h"
#include "t.h"

static void init(struct drill_result *r)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->scenario, sizeof(r->scenario), "steady");
    snprintf(r->proxy, sizeof(r->proxy), "ebb");
    snprintf(r->mode, sizeof(r->mode), "exit-on-zero");
    r->sigterm_ms = 1000;
    r->removal_ms = 3000;
    r->exit_ms = 6500;
    r->last_ok_ms = 6000;
    r->end_ms = 6600;
}

static void test_verdict_pass(void)
{
    struct drill_result r;
    char v[256];
    init(&r);
    r.in.sent = 90;
    r.in.completed = 90;
    r.out.sent = 10;
    r.out.completed = 10;
    drill_verdict(&r, v, sizeof(v));
    T_EQ_STR(v, "PASS: 0 of 100 requests failed");
    T_CHECK(drill_result_pass(&r));
}

static void test_verdict_fail_causes_in_order(void)
{
    struct drill_result r;
    char v[256];
    init(&r);
    r.in.sent = 50;
    r.in.completed = 44;
    r.in.failed[DRILL_F_TRUNCATED] = 1;
    r.in.failed[DRILL_F_RESET] = 2;
    r.out.sent = 5;
    r.out.completed = 2;
    r.out.failed[DRILL_F_REFUSED] = 3;
    drill_verdict(&r, v, sizeof(v));
    T_EQ_STR(v, "FAIL: 6 of 55 requests failed (3 refused, 2 reset, 1 truncated)");
    T_CHECK(!drill_result_pass(&r));
    struct drill_counts t;
    drill_counts_sum(&r.in, &r.out, &t);
    T_EQ_INT(t.sent, 55);
    T_EQ_INT(t.completed, 46);
    T_EQ_INT(drill_counts_failed(&t), 6);
}

static void test_verdict_na_and_empty(void)
{
    struct drill_result r;
    char v[256];
    init(&r);
    drill_verdict(&r, v, sizeof(v));
    T_EQ_STR(v, "FAIL: no request was sent");
    r.unsupported = true;
    snprintf(r.note, sizeof(r.note), "proxy does not speak h2c");
    drill_verdict(&r, v, sizeof(v));
    T_EQ_STR(v, "N/A: proxy does not speak h2c");
    T_CHECK(!drill_result_pass(&r));
}

static void test_svg_scaling(void)
{
    T_CHECK(drill_svg_x(0, 10000, 60, 650) == 60);
    T_CHECK(drill_svg_x(10000, 10000, 60, 650) == 710);
    T_CHECK(drill_svg_x(5000, 10000, 60, 650) == 385);
    T_CHECK(drill_svg_x(-5, 10000, 60, 650) == 60);        /* clamped */
    T_CHECK(drill_svg_x(20000, 10000, 60, 650) == 710);
    T_CHECK(drill_svg_x(1, 0, 60, 650) == 60);             /* empty range */
    T_CHECK(drill_svg_y(0, 20, 40, 190) == 230);           /* y grows downwards */
    T_CHECK(drill_svg_y(20, 20, 40, 190) == 40);
    T_CHECK(drill_svg_y(10, 20, 40, 190) == 135);
    T_CHECK(drill_svg_y(99, 20, 40, 190) == 40);
    T_CHECK(drill_nice_ceil(0) == 1);
    T_CHECK(drill_nice_ceil(1) == 1);
    T_CHECK(drill_nice_ceil(1.2) == 2);
    T_CHECK(drill_nice_ceil(3) == 5);
    T_CHECK(drill_nice_ceil(7) == 10);
    T_CHECK(drill_nice_ceil(10) == 10);
    T_CHECK(drill_nice_ceil(11) == 20);
    T_CHECK(drill_nice_ceil(450) == 500);
}

static char *render(void (*fn)(FILE *, const struct drill_result *, size_t),
                    const struct drill_result *r, size_t n)
{
    char *p = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&p, &len);
    fn(f, r, n);
    fclose(f);
    return p;
}

static void test_json_and_svg_shape(void)
{
    struct drill_result r;
    init(&r);
    r.in.sent = 3;
    r.in.completed = 2;
    r.in.failed[DRILL_F_5XX] = 1;
    r.exit_ms = -1;   /* never exited */
    drill_result_event(&r, 1000, DRILL_EV_SIGTERM, "SIGTERM <to> proxy");
    drill_result_fail_mark(&r, 1500, DRILL_F_5XX);
    for (uint32_t t = 0; t <= 2000; t += 50) {
        struct drill_sample s = { t, 3, t < 1500 ? 2 : 0, 0 };
        T_EQ_INT(drill_result_sample(&r, &s), 0);
    }
    char *js = render(drill_report_json, &r, 1);
    T_CHECK(strstr(js, "\"verdict\":\"FAIL: 1 of 3 requests failed (1 5xx)\"") != NULL);
    T_CHECK(strstr(js, "\"proxy_exit_ms\":null") != NULL);
    T_CHECK(strstr(js, "\"sigterm_to_exit_ms\":null") != NULL);
    T_CHECK(strstr(js, "\"failures\":[{\"t_ms\":1500,\"cause\":\"5xx\"}]") != NULL);
    T_CHECK(strstr(js, "\"pass\":false}") != NULL);
    free(js);
    char *svg = render(drill_report_svg, &r, 1);
    T_CHECK(strncmp(svg, "<svg", 4) == 0);
    T_CHECK(strstr(svg, "SIGTERM &lt;to&gt; proxy") != NULL);   /* escaped */
    T_CHECK(strstr(svg, "<polyline") != NULL);
    T_CHECK(strstr(svg, "</svg>\n") != NULL);
    free(svg);
    drill_result_free(&r);
}

static void test_parse_ebb_log(void)
{
    uint64_t us = 0;
    char label[80];
    T_CHECK(drill_parse_ebb_log("1605.631420 info  drain: drain started: trigger=SIGTERM mode=default",
                                &us, label, sizeof(label)));
    T_EQ_INT(us, 1605631420ull);
    T_EQ_STR(label, "ebb: drain start");
    T_CHECK(drill_parse_ebb_log("12.000001 info  drain: exit: reason=\"zero active connections\" "
                                "trigger=SIGTERM", &us, label, sizeof(label)));
    T_EQ_STR(label, "ebb: exit (zero active connections)");
    T_CHECK(drill_parse_ebb_log("12.000001 info  drain: exit: reason=\"terminationDrainDuration "
                                "elapsed\" trigger=SIGTERM", &us, label, sizeof(label)));
    T_EQ_STR(label, "ebb: exit (terminationDrainDuration elapsed)");
    T_CHECK(drill_parse_ebb_log("12.5 info  drain: drainDuration 45000ms elapsed: inbound listeners "
                                "closed, 3 active connections", &us, label, sizeof(label)));
    T_EQ_STR(label, "ebb: inbound listeners closed");
    /* periodic counts and other subsystems are not phases */
    T_CHECK(!drill_parse_ebb_log("12.5 info  drain: draining (listeners accepting) for 1000ms: 3 "
                                 "active connections", &us, label, sizeof(label)));
    T_CHECK(!drill_parse_ebb_log("12.5 info  main: drain started", &us, label, sizeof(label)));
    T_CHECK(!drill_parse_ebb_log("garbage", &us, label, sizeof(label)));
}

int main(void)
{
    T_RUN(test_verdict_pass);
    T_RUN(test_verdict_fail_causes_in_order);
    T_RUN(test_verdict_na_and_empty);
    T_RUN(test_svg_scaling);
    T_RUN(test_json_and_svg_shape);
    T_RUN(test_parse_ebb_log);
    T_DONE();
}
