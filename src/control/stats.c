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

void ebb_stats_free(struct ebb_stats *st)
{
    if (!st)
        return;
    free(st->listeners);
    free(st->clusters);
    free(st);
}
