/*
 * config_table.h - every config key as data: one directive table per
 * section (name, kind, offset into the struct, bounds, default, doc line).
 * The same tables drive the YAML parser (config_walk.h), the defaults and
 * freeing (below), the JSON dump (config_json.c) and docs/config.md's
 * tables (config_docs.c), so they cannot disagree.
 * Internal to src/control/config*.c and proxy_config.c, their unit tests
 * and the fuzz driver.
 */
#ifndef EBB_CONFIG_TABLE_H
#define EBB_CONFIG_TABLE_H

#include "ebb/config.h"

/* What a value is: how it is parsed, stored, dumped and documented. */
enum ebb_dkind {
    EBB_D_DURATION,     /* uint64_t ms, a Go duration; min 1 = "> 0"; max = cap (warns) */
    EBB_D_BOOL,         /* bool, a Go bool */
    EBB_D_UINT,         /* unsigned integer of `size` bytes in [min, max]; `unit` names it */
    EBB_D_STRING,       /* char *, owned; with `names`: one of them ("a log level") */
    EBB_D_ADDRESS,      /* char *, owned: a numeric IP address */
    EBB_D_ENUM,         /* integer of `size` bytes: the index of its name in `names` */
    EBB_D_SECTION,      /* a map: `sub` applied at base + off */
    EBB_D_LIST,         /* array at off, count at count_off, items of `sub` (parsed by the hook) */
    EBB_D_ENDPOINTS,    /* struct ebb_endpoint array "host:port" (parsed by the hook) */
    EBB_D_METADATA,     /* struct ebb_kv array: string to string (parsed by the hook) */
    EBB_D_PROXY_CONFIG, /* a ProxyConfig map (parsed by the hook; dumped with its sources) */
    EBB_D_PORTS,        /* uint16_t array of ports (parsed by the hook) */
};

#define EBB_D_F_REQUIRED 0x01u  /* error "name: missing (hint)" when absent */
#define EBB_D_F_NONEMPTY 0x02u  /* a string must not be empty ("must not be empty (hint)") */
#define EBB_D_F_LOWER    0x04u  /* a string is stored lowercase */
#define EBB_D_F_DUMP     0x08u  /* only in the JSON dump: not read, not in the docs */
#define EBB_D_F_NODE     0x10u  /* remember the value's node (ports: collisions) */
#define EBB_D_F_UNIQUE   0x20u  /* a list item's name differs from the earlier items' */
#define EBB_D_F_STATNAME 0x40u  /* a string names stats: no control characters (a /stats line) */

struct ebb_dsection;

/* One key. */
struct ebb_directive {
    const char *name;        /* snake_case; camelCase spelling accepted too */
    enum ebb_dkind kind;
    unsigned    flags;       /* EBB_D_F_* */
    size_t      off;         /* offsetof the value in the section's base struct */
    size_t      size;        /* sizeof the value (integers, enums) */
    uint64_t    min, max;    /* UINT bounds; DURATION: min 1 = must be > 0, max = cap */
    const char *unit;        /* UINT: "a port", "a count", ...; STRING/ENUM: what names are */
    const char *const *names;/* ENUM/STRING: the accepted names, NULL-terminated */
    const char *dflt;        /* default in config syntax ("1s", "8192"), NULL = none */
    const char *dflt_doc;    /* docs: the default when it is not a constant */
    size_t      set_off;     /* nonzero: a bool set when the file gives the key... */
    const char *unset_source;/* ...dumped as "<name>_source": "file" or this */
    size_t      src_off;     /* nonzero: an enum ebb_source set to the parser's source */
    const struct ebb_dsection *sub;  /* SECTION, LIST: the nested table */
    size_t      count_off, elem_size; /* LIST, ENDPOINTS, METADATA: count, item size */
    const char *hint;        /* REQUIRED, NONEMPTY: said in parentheses */
    const char *doc;         /* one line for docs/config.md */
};

/* A table: one map of the config. */
struct ebb_dsection {
    const struct ebb_directive *d;
    size_t      n;
    bool        camel;             /* JSON and docs spell keys in camelCase */
    const char *const *ignored;    /* known keys not used by ebb (warned as such) */
};

extern const struct ebb_dsection ebb_file_section;      /* ebb.yaml, base struct ebb_config */
extern const struct ebb_dsection ebb_pc_section;        /* ProxyConfig, struct ebb_proxy_cfg */
extern const struct ebb_dsection ebb_knob_section;      /* EXIT_ON_ZERO_..., MINIMUM_DRAIN_... */
extern const struct ebb_dsection ebb_listener_section;  /* listeners[], struct ebb_listener_cfg */
extern const struct ebb_dsection ebb_route_section;     /* routes[], struct ebb_route_cfg */
extern const struct ebb_dsection ebb_cluster_section;   /* clusters[], struct ebb_cluster_cfg */

/* Stores every default of sec (nested sections too) into base. */
void ebb_ddefaults(const struct ebb_dsection *sec, void *base);
/* Frees what sec's values own in base (strings, lists, metadata); the
 * pointers are left NULL and the counts 0. */
void ebb_dfree(const struct ebb_dsection *sec, void *base);
/* The same for one LIST, ENDPOINTS or METADATA value of base. */
void ebb_dfree_list(const struct ebb_directive *dir, void *base);
/* The index of s in the NULL-terminated names, or -1. */
int ebb_dname_index(const char *const *names, const char *s);
/* The directive named name (snake_case or camelCase) in sec, or NULL. */
const struct ebb_directive *ebb_dfind(const struct ebb_dsection *sec, const char *name);
/* Reads/writes an unsigned integer of dir->size bytes at base + off. */
uint64_t ebb_dget_uint(const void *base, size_t off, size_t size);
void ebb_dset_uint(void *base, size_t off, size_t size, uint64_t v);

#endif
