/*
 * report.c - the drill's report: verdicts, text table, JSON, SVG timeline,
 * and the parser for ebb's drain log lines.  Pure: no I/O but the FILE
 * the caller passes.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ebb/drill_report.h"

#define EBB_DRILL_MAX(a, b) ((double)(a) > (double)(b) ? (double)(a) : (double)(b))

const char *drill_fail_name(enum drill_fail f)
{
    switch (f) {
    case DRILL_F_REFUSED: return "refused";
    case DRILL_F_RESET: return "reset";
    case DRILL_F_5XX: return "5xx";
    case DRILL_F_TIMEOUT: return "timeout";
    case DRILL_F_TRUNCATED: return "truncated";
    case DRILL_F_OTHER: return "other";
    case DRILL_F_MAX: break;
    }
    return "?";
}

uint64_t drill_counts_failed(const struct drill_counts *c)
{
    uint64_t n = 0;
    for (int i = 0; i < DRILL_F_MAX; i++)
        n += c->failed[i];
    return n;
}

void drill_counts_sum(const struct drill_counts *a, const struct drill_counts *b,
                      struct drill_counts *sum)
{
    struct drill_counts s;
    s.sent = a->sent + b->sent;
    s.completed = a->completed + b->completed;
    for (int i = 0; i < DRILL_F_MAX; i++)
        s.failed[i] = a->failed[i] + b->failed[i];
    *sum = s;
}

bool drill_result_pass(const struct drill_result *r)
{
    struct drill_counts t;
    if (r->unsupported)
        return false;
    drill_counts_sum(&r->in, &r->out, &t);
    return drill_counts_failed(&t) == 0 && t.sent > 0;
}

void drill_verdict(const struct drill_result *r, char *out, size_t outlen)
{
    struct drill_counts t;
    size_t n;

    if (r->unsupported) {
        snprintf(out, outlen, "N/A: %s", r->note);
        return;
    }
    drill_counts_sum(&r->in, &r->out, &t);
    uint64_t failed = drill_counts_failed(&t);
    if (t.sent == 0) {
        snprintf(out, outlen, "FAIL: no request was sent");
        return;
    }
    if (failed == 0) {
        snprintf(out, outlen, "PASS: 0 of %llu requests failed", (unsigned long long)t.sent);
        return;
    }
    n = (size_t)snprintf(out, outlen, "FAIL: %llu of %llu requests failed (",
                         (unsigned long long)failed, (unsigned long long)t.sent);
    const char *sep = "";
    for (int i = 0; i < DRILL_F_MAX && n < outlen; i++) {
        if (!t.failed[i])
            continue;
        n += (size_t)snprintf(out + n, outlen - n, "%s%llu %s", sep,
                              (unsigned long long)t.failed[i], drill_fail_name(i));
        sep = ", ";
    }
    if (n < outlen)
        snprintf(out + n, outlen - n, ")");
}

void drill_result_event(struct drill_result *r, int64_t t_ms, enum drill_ev_kind kind,
                        const char *label)
{
    if (r->nevents >= DRILL_MAX_EVENTS)
        return;
    struct drill_event *e = &r->events[r->nevents++];
    e->t_ms = t_ms;
    e->kind = kind;
    snprintf(e->label, sizeof(e->label), "%s", label);
}

void drill_result_fail_mark(struct drill_result *r, int64_t t_ms, enum drill_fail f)
{
    if (r->nfail_marks >= DRILL_MAX_FAIL_MARKS)
        return;
    r->fail_marks[r->nfail_marks] = t_ms < 0 ? 0 : (uint32_t)t_ms;
    r->fail_causes[r->nfail_marks++] = (uint8_t)f;
}

int drill_result_sample(struct drill_result *r, const struct drill_sample *s)
{
    if (r->nsamples == r->samples_cap) {
        size_t cap = r->samples_cap ? r->samples_cap * 2 : 256;
        struct drill_sample *p = realloc(r->samples, cap * sizeof(*p));
        if (!p)
            return -1;
        r->samples = p;
        r->samples_cap = cap;
    }
    r->samples[r->nsamples++] = *s;
    return 0;
}

void drill_result_free(struct drill_result *r)
{
    free(r->samples);
    r->samples = NULL;
    r->nsamples = r->samples_cap = 0;
}

/* --- text --- */

static void fmt_ms(char *out, size_t len, int64_t ms)
{
    if (ms < 0 && ms != INT64_MIN)
        snprintf(out, len, "-%lld.%03llds", (long long)(-ms / 1000), (long long)(-ms % 1000));
    else
        snprintf(out, len, "%lld.%03llds", (long long)(ms / 1000), (long long)(ms % 1000));
}

static void proxy_label(const struct drill_result *r, char *out, size_t len)
{
    if (r->mode[0])
        snprintf(out, len, "%s (%s)", r->proxy, r->mode);
    else
        snprintf(out, len, "%s", r->proxy);
}

/* The grpc scenario: its failed calls by grpc-status ("other" in the table), if any. */
static void grpc_line(FILE *f, const struct drill_result *r)
{
    static const char *names[17] = { "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
        "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED" };
    bool any = false;
    for (int k = 1; k < 17; k++) {
        if (!r->grpc_status[k])
            continue;
        fprintf(f, "%s%s %llu", any ? ", " : "                                  grpc-status of "
                "failed calls: ", names[k], (unsigned long long)r->grpc_status[k]);
        any = true;
    }
    if (any)
        fputc('\n', f);
}

void drill_report_text(FILE *f, const struct drill_result *rs, size_t n)
{
    fprintf(f, "%-12s %-20s %6s %6s %6s %7s %5s %4s %7s %9s %5s %11s %11s  %s\n", "scenario",
            "proxy", "sent", "ok", "failed", "refused", "reset", "5xx", "timeout", "truncated",
            "other", "term->exit", "last->exit", "verdict");
    for (size_t i = 0; i < n; i++) {
        const struct drill_result *r = &rs[i];
        struct drill_counts t;
        char px[48], a[24] = "-", b[24] = "-", v[256];
        drill_counts_sum(&r->in, &r->out, &t);
        proxy_label(r, px, sizeof(px));
        if (r->exit_ms >= 0 && r->sigterm_ms >= 0)
            fmt_ms(a, sizeof(a), r->exit_ms - r->sigterm_ms);
        if (r->exit_ms >= 0 && r->last_ok_ms >= 0)
            fmt_ms(b, sizeof(b), r->exit_ms - r->last_ok_ms);
        if (r->killed && r->exit_ms >= 0)
            strncat(a, "!", sizeof(a) - strlen(a) - 1);
        drill_verdict(r, v, sizeof(v));
        fprintf(f, "%-12s %-20s %6llu %6llu %6llu %7llu %5llu %4llu %7llu %9llu %5llu %11s %11s  %s\n",
                r->scenario, px, (unsigned long long)t.sent, (unsigned long long)t.completed,
                (unsigned long long)drill_counts_failed(&t),
                (unsigned long long)t.failed[DRILL_F_REFUSED],
                (unsigned long long)t.failed[DRILL_F_RESET],
                (unsigned long long)t.failed[DRILL_F_5XX],
                (unsigned long long)t.failed[DRILL_F_TIMEOUT],
                (unsigned long long)t.failed[DRILL_F_TRUNCATED],
                (unsigned long long)t.failed[DRILL_F_OTHER], a, b, v);
        if (r->out.sent)
            fprintf(f, "%-12s %-20s %6llu %6llu %6llu   (of which the app's outbound calls "
                    "during its shutdown)\n", "", "",
                    (unsigned long long)r->out.sent, (unsigned long long)r->out.completed,
                    (unsigned long long)drill_counts_failed(&r->out));
        grpc_line(f, r);
    }
    fprintf(f, "term->exit: the pod's SIGTERM (the stop signal, unless --prestop-sleep) to proxy exit (! = SIGKILLed at the grace period); "
            "last->exit: last completed request to proxy exit\n");
}

/* --- JSON --- */

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static void json_counts(FILE *f, const struct drill_counts *c)
{
    fprintf(f, "{\"sent\":%llu,\"completed\":%llu,\"failed\":%llu", (unsigned long long)c->sent,
            (unsigned long long)c->completed, (unsigned long long)drill_counts_failed(c));
    for (int i = 0; i < DRILL_F_MAX; i++)
        fprintf(f, ",\"%s\":%llu", drill_fail_name(i), (unsigned long long)c->failed[i]);
    fputc('}', f);
}

/* INT64_MIN is null */
static void json_ms(FILE *f, const char *key, int64_t v)
{
    if (v == INT64_MIN)
        fprintf(f, ",\"%s\":null", key);
    else
        fprintf(f, ",\"%s\":%lld", key, (long long)v);
}

static const char *ev_kind_name(enum drill_ev_kind k)
{
    switch (k) {
    case DRILL_EV_SIGTERM: return "sigterm";
    case DRILL_EV_REMOVAL: return "endpoint_removal";
    case DRILL_EV_PHASE: return "drain_phase";
    case DRILL_EV_EXIT: return "proxy_exit";
    case DRILL_EV_KILL: return "sigkill";
    case DRILL_EV_APP_EXIT: return "app_exit";
    }
    return "?";
}

void drill_report_json(FILE *f, const struct drill_result *rs, size_t n)
{
    bool all = true;
    fputs("{\"scenarios\":[", f);
    for (size_t i = 0; i < n; i++) {
        const struct drill_result *r = &rs[i];
        struct drill_counts t;
        char v[256];
        drill_counts_sum(&r->in, &r->out, &t);
        drill_verdict(r, v, sizeof(v));
        if (!drill_result_pass(r) && !r->unsupported)
            all = false;
        fputs(i ? ",\n{" : "\n{", f);
        fputs("\"scenario\":", f);
        json_str(f, r->scenario);
        fputs(",\"proxy\":", f);
        json_str(f, r->proxy);
        fputs(",\"mode\":", f);
        json_str(f, r->mode);
        fprintf(f, ",\"pass\":%s,\"unsupported\":%s,\"verdict\":", drill_result_pass(r) ? "true" : "false",
                r->unsupported ? "true" : "false");
        json_str(f, v);
        fputs(",\"total\":", f);
        json_counts(f, &t);
        fputs(",\"inbound\":", f);
        json_counts(f, &r->in);
        fputs(",\"outbound\":", f);
        json_counts(f, &r->out);
#define OPT(v) ((v) < 0 ? INT64_MIN : (v))
        json_ms(f, "sigterm_ms", OPT(r->sigterm_ms));
        json_ms(f, "endpoint_removal_ms", OPT(r->removal_ms));
        json_ms(f, "proxy_exit_ms", OPT(r->exit_ms));
        json_ms(f, "last_completed_ms", OPT(r->last_ok_ms));
        json_ms(f, "sigterm_to_exit_ms", r->exit_ms >= 0 && r->sigterm_ms >= 0
                                             ? r->exit_ms - r->sigterm_ms : INT64_MIN);
        json_ms(f, "last_completed_to_exit_ms", r->exit_ms >= 0 && r->last_ok_ms >= 0
                                                    ? r->exit_ms - r->last_ok_ms : INT64_MIN);
        json_ms(f, "end_ms", OPT(r->end_ms));
#undef OPT
        fputs(",\"grpc_status\":{", f);   /* calls that ended with a non-zero grpc-status */
        for (int k = 1, first = 1; k < 17; k++)
            if (r->grpc_status[k]) {
                fprintf(f, "%s\"%d\":%llu", first ? "" : ",", k,
                        (unsigned long long)r->grpc_status[k]);
                first = 0;
            }
        fputc('}', f);
        fprintf(f, ",\"killed\":%s,\"note\":", r->killed ? "true" : "false");
        json_str(f, r->note);
        fputs(",\"failures\":[", f);
        for (size_t j = 0; j < r->nfail_marks && j < 200; j++)
            fprintf(f, "%s{\"t_ms\":%u,\"cause\":\"%s\"}", j ? "," : "", r->fail_marks[j],
                    drill_fail_name(r->fail_causes[j]));
        fputs("]", f);
        fputs(",\"events\":[", f);
        for (size_t j = 0; j < r->nevents; j++) {
            fprintf(f, "%s{\"t_ms\":%lld,\"kind\":\"%s\",\"label\":", j ? "," : "",
                    (long long)r->events[j].t_ms, ev_kind_name(r->events[j].kind));
            json_str(f, r->events[j].label);
            fputc('}', f);
        }
        fputs("]}", f);
    }
    fprintf(f, "\n],\"pass\":%s}\n", all ? "true" : "false");
}

/* --- SVG --- */

double drill_svg_x(double t, double tmax, double x0, double w)
{
    if (tmax <= 0)
        return x0;
    if (t < 0)
        t = 0;
    if (t > tmax)
        t = tmax;
    return x0 + t * w / tmax;
}

double drill_svg_y(double v, double vmax, double y0, double h)
{
    if (vmax <= 0)
        return y0 + h;
    if (v < 0)
        v = 0;
    if (v > vmax)
        v = vmax;
    return y0 + h - v * h / vmax;
}

double drill_nice_ceil(double v)
{
    if (v <= 1)
        return 1;
    double p = pow(10, floor(log10(v)));
    const double steps[] = { 1, 2, 5, 10 };
    for (size_t i = 0; i < 4; i++)
        if (steps[i] * p >= v - 1e-9)
            return steps[i] * p;
    return 10 * p;
}

static const char *ev_color(enum drill_ev_kind k)
{
    switch (k) {
    case DRILL_EV_SIGTERM: return "#c00000";
    case DRILL_EV_REMOVAL: return "#7030a0";
    case DRILL_EV_PHASE: return "#808080";
    case DRILL_EV_EXIT: return "#000000";
    case DRILL_EV_KILL: return "#ff0000";
    case DRILL_EV_APP_EXIT: return "#2e7d32";
    }
    return "#000";
}

static void svg_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '<')
            fputs("&lt;", f);
        else if (*s == '>')
            fputs("&gt;", f);
        else if (*s == '&')
            fputs("&amp;", f);
        else
            fputc(*s, f);
    }
}

#define SVG_W      1060.0
#define SVG_LEFT   60.0
#define SVG_RIGHT  350.0   /* room for the event labels */
#define SVG_PANEL  300.0
#define SVG_TOP    40.0
#define SVG_PLOT_H 190.0

static void svg_series(FILE *f, const struct drill_result *r, int which, double tmax,
                       double vmax, double y0, const char *color)
{
    double w = SVG_W - SVG_LEFT - SVG_RIGHT;
    /* connections wide underneath, requests thin on top: both stay visible when equal */
    fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%s\" points=\"", color,
            which == 0 ? "4" : "1.5");
    for (size_t i = 0; i < r->nsamples; i++) {
        const struct drill_sample *s = &r->samples[i];
        double v = which == 0 ? s->conns : which == 1 ? s->inflight : s->out_inflight;
        fprintf(f, "%.1f,%.1f ", drill_svg_x(s->t_ms, tmax, SVG_LEFT, w),
                drill_svg_y(v, vmax, y0, SVG_PLOT_H));
    }
    fputs("\"/>\n", f);
}

void drill_report_svg(FILE *f, const struct drill_result *rs, size_t n)
{
    double w = SVG_W - SVG_LEFT - SVG_RIGHT;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
            "font-family=\"sans-serif\" font-size=\"11\">\n", SVG_W, SVG_PANEL * (double)n + 10);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    for (size_t i = 0; i < n; i++) {
        const struct drill_result *r = &rs[i];
        double top = SVG_PANEL * (double)i, y0 = top + SVG_TOP;
        double tmax = 1, vmax = 1;
        bool has_out = false;
        char v[256], px[48];

        for (size_t j = 0; j < r->nsamples; j++) {
            const struct drill_sample *s = &r->samples[j];
            tmax = EBB_DRILL_MAX(tmax, s->t_ms);
            vmax = EBB_DRILL_MAX(vmax, EBB_DRILL_MAX(s->conns, EBB_DRILL_MAX(s->inflight, s->out_inflight)));
            if (s->out_inflight)
                has_out = true;
        }
        for (size_t j = 0; j < r->nevents; j++)
            tmax = EBB_DRILL_MAX(tmax, (double)r->events[j].t_ms);
        tmax = drill_nice_ceil(tmax / 1000.0) * 1000.0;
        vmax = drill_nice_ceil(vmax * 1.1);

        drill_verdict(r, v, sizeof(v));
        proxy_label(r, px, sizeof(px));
        fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" font-size=\"13\" font-weight=\"bold\">",
                SVG_LEFT, top + 18);
        svg_text(f, r->scenario);
        fputs(" against ", f);
        svg_text(f, px);
        fputs(": ", f);
        svg_text(f, v);
        fputs("</text>\n", f);
        /* axes and grid */
        fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"#fafafa\" "
                "stroke=\"#999\"/>\n", SVG_LEFT, y0, w, SVG_PLOT_H);
        for (int k = 0; k <= 4; k++) {
            double val = vmax * k / 4, y = drill_svg_y(val, vmax, y0, SVG_PLOT_H);
            fprintf(f, "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#e0e0e0\"/>"
                    "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n",
                    SVG_LEFT, SVG_LEFT + w, y, y, SVG_LEFT - 4, y + 4, val);
        }
        double step = drill_nice_ceil(tmax / 10000.0) * 1000.0;
        for (double t = 0; t <= tmax + 1; t += step) {
            double x = drill_svg_x(t, tmax, SVG_LEFT, w);
            fprintf(f, "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">%gs</text>\n", x,
                    y0 + SVG_PLOT_H + 14, t / 1000.0);
        }
        svg_series(f, r, 0, tmax, vmax, y0, "#1f77b4");
        svg_series(f, r, 1, tmax, vmax, y0, "#ff7f0e");
        if (has_out)
            svg_series(f, r, 2, tmax, vmax, y0, "#2ca02c");
        /* events: vertical lines, labels in the right margin, numbered */
        for (size_t j = 0; j < r->nevents; j++) {
            const struct drill_event *e = &r->events[j];
            double x = drill_svg_x((double)e->t_ms, tmax, SVG_LEFT, w);
            const char *col = ev_color(e->kind);
            fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.0f\" y2=\"%.0f\" stroke=\"%s\" "
                    "stroke-dasharray=\"4,3\"/><text x=\"%.1f\" y=\"%.0f\" fill=\"%s\" "
                    "text-anchor=\"middle\" font-size=\"9\">%zu</text>\n",
                    x, x, y0, y0 + SVG_PLOT_H, col, x, y0 - 3 - (double)(j % 2) * 9, col, j + 1);
            fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" fill=\"%s\" font-size=\"10\">%zu  %.2fs ",
                    SVG_LEFT + w + 8, y0 + 10 + (double)j * 12, col, j + 1, (double)e->t_ms / 1000.0);
            svg_text(f, e->label);
            fputs("</text>\n", f);
        }
        /* failures last, so no event line hides them: red ticks rising from the axis */
        for (size_t j = 0; j < r->nfail_marks; j++) {
            double x = drill_svg_x(r->fail_marks[j], tmax, SVG_LEFT, w);
            fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.0f\" y2=\"%.0f\" stroke=\"red\" "
                    "stroke-width=\"3\"><title>%s</title></line>\n", x, x, y0 + SVG_PLOT_H - 16,
                    y0 + SVG_PLOT_H, drill_fail_name(r->fail_causes[j]));
        }
        /* legend */
        double ly = y0 + SVG_PLOT_H + 32;
        fprintf(f, "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.0f\" y2=\"%.0f\" stroke=\"#1f77b4\" "
                "stroke-width=\"2\"/><text x=\"%.0f\" y=\"%.0f\">client connections open</text>\n",
                SVG_LEFT, SVG_LEFT + 20, ly, ly, SVG_LEFT + 24, ly + 4);
        fprintf(f, "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.0f\" y2=\"%.0f\" stroke=\"#ff7f0e\" "
                "stroke-width=\"2\"/><text x=\"%.0f\" y=\"%.0f\">requests in flight</text>\n",
                SVG_LEFT + 180, SVG_LEFT + 200, ly, ly, SVG_LEFT + 204, ly + 4);
        if (has_out)
            fprintf(f, "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.0f\" y2=\"%.0f\" stroke=\"#2ca02c\" "
                    "stroke-width=\"2\"/><text x=\"%.0f\" y=\"%.0f\">app's outbound calls in "
                    "flight</text>\n", SVG_LEFT + 330, SVG_LEFT + 350, ly, ly, SVG_LEFT + 354, ly + 4);
        fprintf(f, "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.0f\" y2=\"%.0f\" stroke=\"red\"/>"
                "<text x=\"%.0f\" y=\"%.0f\">failed request</text>\n", SVG_LEFT + 540,
                SVG_LEFT + 540, ly - 6, ly + 2, SVG_LEFT + 546, ly + 4);
    }
    fputs("</svg>\n", f);
}

/* --- ebb's log --- */

bool drill_parse_ebb_log(const char *line, uint64_t *mono_us, char *label, size_t labellen)
{
    long sec, usec;
    int off = 0;
    char level[16], subsys[32];
    static const struct {
        const char *needle;   /* substring of the message */
        const char *label;
    } phases[] = {
        { "exit: reason=", "ebb: exit" },   /* first: its reason names the other phases */
        { "drain started", "ebb: drain start" },
        { "inbound listeners closed", "ebb: inbound listeners closed" },
        { "MINIMUM_DRAIN_DURATION", "ebb: minimum drain elapsed" },
        { "terminationDrainDuration", "ebb: terminationDrainDuration elapsed" },
        { "drain_deadline", "ebb: drain_deadline reached" },
    };

    if (sscanf(line, "%ld.%ld %15s %31[^:]:%n", &sec, &usec, level, subsys, &off) != 4 || !off)
        return false;
    if (strcmp(subsys, "drain") != 0)
        return false;
    const char *msg = line + off;
    for (size_t i = 0; i < sizeof(phases) / sizeof(phases[0]); i++) {
        if (!strstr(msg, phases[i].needle))
            continue;
        if (strcmp(phases[i].needle, "exit: reason=") == 0) {
            const char *q = strstr(msg, "reason=\"");
            const char *e = q ? strchr(q + 8, '"') : NULL;
            if (q && e)
                snprintf(label, labellen, "ebb: exit (%.*s)", (int)(e - q - 8), q + 8);
            else
                snprintf(label, labellen, "%s", phases[i].label);
        } else {
            snprintf(label, labellen, "%s", phases[i].label);
        }
        *mono_us = (uint64_t)sec * 1000000u + (uint64_t)usec;
        return true;
    }
    return false;
}
