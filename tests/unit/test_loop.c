/*
 * test_loop.c - the event loop's intrusive timer heap and deferred-call queue:
 * timers fire in deadline order (first armed first on a tie), stopped and
 * re-armed timers behave, none fires twice; deferred calls run once, in order,
 * including those queued by a deferred call; ebb_loop_run_once counts what ran.
 */
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "ebb/core.h"
#include "ebb/loop.h"
#include "t.h"

#define NT 2000

struct tt {
    struct ebb_timer t;
    int              fired;
    bool             want;   /* armed at the end of the setup */
};

static struct tt tts[NT];
static uint64_t order_when[NT], order_seq[NT];
static int nfired, nwanted;

static void on_timer(struct ebb_loop *loop, struct ebb_timer *t)
{
    struct tt *x = t->data;
    x->fired++;
    order_when[nfired] = t->when;
    order_seq[nfired] = t->seq;
    nfired++;
    if (nfired == nwanted)
        ebb_loop_stop(loop);
}

static uint32_t rnd(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static void test_timers_fire_in_order(void)
{
    struct ebb_loop *loop = ebb_loop_new();
    uint32_t seed = 12345;

    T_CHECK(loop != NULL);
    if (!loop)
        return;
    for (int i = 0; i < NT; i++) {
        ebb_timer_init(&tts[i].t, on_timer, &tts[i]);
        ebb_timer_start(loop, &tts[i].t, rnd(&seed) % 30);   /* many equal deadlines */
        tts[i].want = true;
    }
    /* stop a third, re-arm a third (some of them stopped first), stop some twice */
    for (int i = 0; i < NT; i++) {
        uint32_t r = rnd(&seed) % 6;
        if (r < 2) {
            ebb_timer_stop(loop, &tts[i].t);
            tts[i].want = false;
            if (r == 1)
                ebb_timer_stop(loop, &tts[i].t);
            T_CHECK(!ebb_timer_active(&tts[i].t));
        } else if (r < 4) {
            if (r == 3)
                ebb_timer_stop(loop, &tts[i].t);
            ebb_timer_start(loop, &tts[i].t, rnd(&seed) % 30);
        }
    }
    for (int i = 0; i < NT; i++)
        nwanted += tts[i].want;
    T_CHECK(nwanted > NT / 2);
    T_EQ_INT(ebb_loop_run(loop), 0);
    T_EQ_INT(nfired, nwanted);
    for (int i = 0; i < NT; i++) {
        T_EQ_INT(tts[i].fired, tts[i].want ? 1 : 0);
        T_CHECK(!ebb_timer_active(&tts[i].t));
    }
    int bad = 0;
    for (int i = 1; i < nfired; i++) {
        bool ok = order_when[i - 1] < order_when[i] ||
                  (order_when[i - 1] == order_when[i] && order_seq[i - 1] < order_seq[i]);
        bad += !ok;
    }
    T_EQ_INT(bad, 0);
    ebb_loop_free(loop);
}

struct dd {
    struct ebb_deferred d;
    struct ebb_loop    *loop;
    int                 id;
    struct dd          *then;   /* deferred by this one's callback */
};

static int ran[8], nran;

static void on_defer(void *p)
{
    struct dd *x = p;
    ran[nran++] = x->id;
    if (x->then)
        ebb_loop_defer(x->loop, &x->then->d, on_defer, x->then);
}

static void on_timer_defer(struct ebb_loop *loop, struct ebb_timer *t)
{
    struct dd *x = t->data;
    ebb_loop_defer(loop, &x->d, on_defer, x);
}

static void test_deferred_run_once_in_order(void)
{
    struct ebb_loop *loop = ebb_loop_new();
    struct dd a = { .id = 1 }, b = { .id = 2 }, c = { .id = 3 }, later = { .id = 4 };

    T_CHECK(loop != NULL);
    if (!loop)
        return;
    a.loop = b.loop = c.loop = later.loop = loop;
    b.then = &later;
    ebb_loop_defer(loop, &a.d, on_defer, &a);
    ebb_loop_defer(loop, &b.d, on_defer, &b);
    ebb_loop_defer(loop, &c.d, on_defer, &c);
    ebb_loop_run_deferred(loop);
    T_EQ_INT(nran, 4);
    T_EQ_INT(ran[0], 1);
    T_EQ_INT(ran[1], 2);
    T_EQ_INT(ran[2], 3);
    T_EQ_INT(ran[3], 4);
    ebb_loop_run_deferred(loop);   /* nothing left */
    T_EQ_INT(nran, 4);
    ebb_loop_defer(loop, &a.d, on_defer, &a);   /* a node can be queued again once it ran */
    ebb_loop_run_deferred(loop);
    T_EQ_INT(nran, 5);
    ebb_loop_free(loop);
}

static int io_calls;
static void on_io(struct ebb_loop *loop, struct ebb_io *io, uint32_t events)
{
    uint64_t v;
    io_calls++;
    T_CHECK(read(io->fd, &v, sizeof(v)) == (ssize_t)sizeof(v));   /* no longer readable */
}

/* ebb_loop_run_once never waits and counts what ran: a ready watcher, a due timer, a deferred
 * call (queued by the timer: it runs in the same iteration); 0 once nothing is ready. */
static void test_run_once_counts(void)
{
    struct ebb_loop *loop = ebb_loop_new();
    struct ebb_io io = { .fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), .cb = on_io };
    struct ebb_timer t;
    struct dd d = { .id = 9 };
    uint64_t one = 1;

    T_CHECK(loop != NULL && io.fd >= 0);
    if (!loop || io.fd < 0)
        return;
    nran = 0;
    T_EQ_INT(ebb_loop_run_once(loop), 0);
    T_EQ_INT(ebb_io_set(loop, &io, EBB_READ), 0);
    T_EQ_INT(ebb_loop_run_once(loop), 0);            /* registered, not ready */
    T_CHECK(write(io.fd, &one, sizeof(one)) == (ssize_t)sizeof(one));
    ebb_timer_init(&t, on_timer_defer, &d);
    d.loop = loop;
    ebb_timer_start(loop, &t, 0);
    T_EQ_INT(ebb_loop_run_once(loop), 3);            /* the watcher, the timer, its deferred call */
    T_EQ_INT(io_calls, 1);
    T_EQ_INT(nran, 1);
    T_EQ_INT(ebb_loop_run_once(loop), 0);
    ebb_io_stop(loop, &io);
    close(io.fd);
    ebb_loop_free(loop);
    nran = 0;
}

int main(void)
{
    T_RUN(test_run_once_counts);
    T_RUN(test_timers_fire_in_order);
    T_RUN(test_deferred_run_once_in_order);
    T_DONE();
}
