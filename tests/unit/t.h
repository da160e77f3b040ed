/*
 * t.h - a minimal unit-test harness.  Each test file defines test functions,
 * lists them in main() with T_RUN, and ends with T_DONE, which prints
 * "N passed, N failed" and exits non-zero on any failure.
 */
#ifndef EBB_T_H
#define EBB_T_H

#include <stdio.h>
#include <string.h>

static int t_failed_checks;
static int t_passed, t_failed;
static const char *t_current;

#define T_CHECK(cond) do {                                                  \
        if (!(cond)) {                                                      \
            fprintf(stderr, "  FAIL %s: %s:%d: %s\n", t_current, __FILE__,  \
                    __LINE__, #cond);                                       \
            t_failed_checks++;                                              \
        }                                                                   \
    } while (0)
#define T_EQ_INT(a, b) do {                                                 \
        long long t_a_ = (long long)(a), t_b_ = (long long)(b);            \
        if (t_a_ != t_b_) {                                                 \
            fprintf(stderr, "  FAIL %s: %s:%d: %s == %s (%lld != %lld)\n", \
                    t_current, __FILE__, __LINE__, #a, #b, t_a_, t_b_);     \
            t_failed_checks++;                                              \
        }                                                                   \
    } while (0)
#define T_EQ_STR(a, b) do {                                                 \
        const char *t_a_ = (a), *t_b_ = (b);                                \
        if (!t_a_ || !t_b_ || strcmp(t_a_, t_b_) != 0) {                    \
            fprintf(stderr, "  FAIL %s: %s:%d: %s == %s (\"%s\" != \"%s\")\n", \
                    t_current, __FILE__, __LINE__, #a, #b,                  \
                    t_a_ ? t_a_ : "(null)", t_b_ ? t_b_ : "(null)");        \
            t_failed_checks++;                                              \
        }                                                                   \
    } while (0)

#define T_RUN(fn) do {                                                      \
        int t_before_ = t_failed_checks;                                    \
        t_current = #fn;                                                    \
        fn();                                                               \
        if (t_failed_checks == t_before_) { t_passed++; printf("ok   %s\n", #fn); } \
        else { t_failed++; printf("FAIL %s\n", #fn); }                      \
    } while (0)

#define T_DONE() do {                                                       \
        printf("%d passed, %d failed\n", t_passed, t_failed);               \
        return t_failed ? 1 : 0;                                            \
    } while (0)

#endif
