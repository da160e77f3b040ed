/*
 * config_walk.h - reading a YAML map with a directive table (config_table.h)
 * (src/control/config_walk.c).  Internal to src/control/config*.c and
 * proxy_config.c, their unit tests and the fuzz driver.
 */
#ifndef EBB_CONFIG_WALK_H
#define EBB_CONFIG_WALK_H

#include "ebb/config_table.h"
#include "ebb/config_yaml.h"

struct ebb_dctx;
/* Parses the LIST, ENDPOINTS, METADATA and PROXY_CONFIG values for the
 * walker: v is the (non-null) value of dir, base the section's struct. */
typedef int (*ebb_dhook_fn)(struct ebb_dctx *x, const struct ebb_directive *dir,
                            const yaml_node_t *v, const char *path, void *base);

/* A value's node, kept for EBB_D_F_NODE directives. */
struct ebb_dnode {
    const void        *field;
    const yaml_node_t *node;
};

/* One walk over a document. */
struct ebb_dctx {
    const struct ebb_ydoc *d;
    enum ebb_source    source;   /* stored at every src_off */
    ebb_dhook_fn       hook;
    void              *arg;      /* the hook's state */
    struct ebb_dnode  *nodes;    /* EBB_D_F_NODE values read, malloc'd (free it) */
    size_t             nnodes;
    char              *err;
    size_t             errlen;
};

#define EBB_DSECTION_MAX 16   /* most directives in one table */

/* Parses the map n (path names it) with sec into base: each key found in
 * the table is checked and stored, unknown keys warn, null values count as
 * absent, then REQUIRED keys are checked in table order.  seen (NULL, or
 * EBB_DSECTION_MAX entries) gets each directive's value node, NULL when absent.
 * 0 or EBB_ECONFIG with the message in x->err. */
int ebb_dparse(struct ebb_dctx *x, const yaml_node_t *n, const char *path,
               const struct ebb_dsection *sec, void *base, const yaml_node_t **seen);
/* Parses one scalar value of dir into base (a directive of a scalar kind). */
int ebb_dparse_value(struct ebb_dctx *x, const struct ebb_directive *dir, const yaml_node_t *v,
                     const char *path, void *base);
/* The node an EBB_D_F_NODE value at field was read from, or NULL. */
const yaml_node_t *ebb_dnode_of(const struct ebb_dctx *x, const void *field);

#endif
