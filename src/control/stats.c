/* stats.c - allocation of the stat blocks (rendering lives in admin_stats.c). */
#include "ebb/config.h"
#include "ebb/core.h"
#include "ebb/stats.h"

struct ebb_stats *ebb_stats_new(const struct ebb_config *cfg)
{
    struct ebb_stats *st = ebb_xcalloc(1, sizeof(*st));
    st->listeners = ebb_xcalloc(cfg->nlisteners, sizeof(*st->listeners));
    st->clusters = ebb_xcalloc(cfg->nclusters, sizeof(*st->clusters));
    return st;
}

/* Every stat block is a run of 8-byte atomics (counters and gauges): summed as such. */
_Static_assert(sizeof(struct ebb_listener_stats) % sizeof(ebb_counter) == 0, "listener stats");
_Static_assert(sizeof(struct ebb_cluster_stats) % sizeof(ebb_counter) == 0, "cluster stats");
_Static_assert(sizeof(struct ebb_server_stats) % sizeof(ebb_counter) == 0, "server stats");

static void add_words(void *dst, const void *src, size_t bytes)
{
    ebb_counter *d = dst;
    const ebb_counter *s = src;
    for (size_t i = 0; i < bytes / sizeof(ebb_counter); i++)
        atomic_store_explicit(&d[i], atomic_load_explicit(&d[i], memory_order_relaxed) +
                              atomic_load_explicit(&s[i], memory_order_relaxed),
                              memory_order_relaxed);
}

static void zero_words(void *dst, size_t bytes)
{
    ebb_counter *d = dst;
    for (size_t i = 0; i < bytes / sizeof(ebb_counter); i++)
        atomic_store_explicit(&d[i], 0, memory_order_relaxed);
}

void ebb_stats_zero(struct ebb_stats *sum, const struct ebb_config *cfg)
{
    zero_words(sum->listeners, cfg->nlisteners * sizeof(*sum->listeners));
    zero_words(sum->clusters, cfg->nclusters * sizeof(*sum->clusters));
    zero_words(&sum->server, sizeof(sum->server));
}

void ebb_stats_add_into(struct ebb_stats *sum, const struct ebb_stats *st,
                        const struct ebb_config *cfg)
{
    add_words(sum->listeners, st->listeners, cfg->nlisteners * sizeof(*st->listeners));
    add_words(sum->clusters, st->clusters, cfg->nclusters * sizeof(*st->clusters));
    add_words(&sum->server, &st->server, sizeof(st->server));
}

void ebb_stats_free(struct ebb_stats *st)
{
    if (!st)
        return;
    free(st->listeners);
    free(st->clusters);
    free(st);
}
