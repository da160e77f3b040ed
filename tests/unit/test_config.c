/*
 * test_config.c - ebb.yaml, the ProxyConfig sources, their merge and
 * provenance, the downward-API annotations file, error messages, JSON.
 *
 * Runs in a fresh temporary directory (so the default ./etc/istio paths do
 * not exist unless a test creates them) and passes the environment
 * explicitly: nothing depends on the real environment.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ebb/config_sources.h"
#include "ebb/config_table.h"
#include "ebb/core.h"
#include "ebb/log.h"
#include "ebb/parse.h"
#include "t.h"

static char data_dir[PATH_MAX];   /* tests/unit/data, absolute */
static char tmp_dir[PATH_MAX];

static char *const no_env[] = { NULL };

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(1);
    }
    fputs(text, f);
    fclose(f);
}

static const char *data(const char *name)
{
    static char buf[4][PATH_MAX];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof(buf[i]), "%.3000s/%.500s", data_dir, name);
    return buf[i];
}

/* The sources of one load.  NULL text = that file is not given. */
struct srcs {
    const char *file;          /* ebb.yaml text, written to ./ebb.yaml */
    const char *mesh;          /* written to ./mesh */
    const char *annotations;   /* written to ./annotations */
    const char *const *env;    /* NULL = empty environment */
};

static int load(const struct srcs *s, struct ebb_config **cfg, char *err, size_t errlen)
{
    struct ebb_config_args a = { 0 };

    unlink("ebb.yaml");
    unlink("mesh");
    unlink("annotations");
    if (s->file) {
        write_file("ebb.yaml", s->file);
        a.file = "ebb.yaml";
    }
    if (s->mesh) {
        write_file("mesh", s->mesh);
        a.mesh_file = "mesh";
    }
    if (s->annotations) {
        write_file("annotations", s->annotations);
        a.annotations_file = "annotations";
    }
    a.environ = s->env ? (char *const *)s->env : no_env;
    return ebb_config_load(&a, cfg, err, errlen);
}

/* Loads and expects success; the caller frees. */
static struct ebb_config *load_ok(const struct srcs *s)
{
    struct ebb_config *cfg = NULL;
    char err[512] = "";
    int rc = load(s, &cfg, err, sizeof(err));

    if (rc != 0)
        fprintf(stderr, "  unexpected error: %s\n", err);
    T_EQ_INT(rc, 0);
    return cfg;
}

/* Loads and expects exactly the error message want. */
static void load_err(const struct srcs *s, const char *want)
{
    struct ebb_config *cfg = (struct ebb_config *)1;
    char err[512] = "";
    int rc = load(s, &cfg, err, sizeof(err));

    T_EQ_INT(rc, EBB_ECONFIG);
    T_CHECK(cfg == NULL);
    T_EQ_STR(err, want);
}

/* Loads and expects an error starting with prefix. */
static void load_err_prefix(const struct srcs *s, const char *prefix)
{
    struct ebb_config *cfg = NULL;
    char err[512] = "";
    int rc = load(s, &cfg, err, sizeof(err));

    T_EQ_INT(rc, EBB_ECONFIG);
    if (strncmp(err, prefix, strlen(prefix)) != 0)
        fprintf(stderr, "  error \"%s\" does not start with \"%s\"\n", err, prefix);
    T_CHECK(strncmp(err, prefix, strlen(prefix)) == 0);
}

static const char *md(const struct ebb_config *cfg, const char *key, enum ebb_source *src)
{
    for (size_t i = 0; i < cfg->proxy.nmetadata; i++) {
        if (strcmp(cfg->proxy.metadata[i].key, key) == 0) {
            if (src)
                *src = cfg->proxy.metadata[i].source;
            return cfg->proxy.metadata[i].value;
        }
    }
    return NULL;
}

/* Runs fn with stderr captured; returns how many lines contain needle. */
static int count_stderr(void (*fn)(void), const char *needle)
{
    char path[] = "stderr.XXXXXX", line[2048];
    int fd = mkstemp(path), saved = dup(2), n = 0;
    FILE *f;

    fflush(stderr);
    dup2(fd, 2);
    fn();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    close(fd);
    f = fopen(path, "r");
    while (f && fgets(line, sizeof(line), f)) {
        if (strstr(line, needle))
            n++;
    }
    if (f)
        fclose(f);
    unlink(path);
    return n;
}

/* ------------------------------------------------------------------ */

static void test_default(void)
{
    struct ebb_config *cfg = ebb_config_default();
    const struct ebb_proxy_cfg *pc = &cfg->proxy;

    T_EQ_INT(pc->termination_drain_ms, 5000);
    T_EQ_INT(pc->drain_duration_ms, 45000);
    T_EQ_INT(pc->concurrency, 2);
    T_EQ_INT(pc->admin_port, 15000);
    T_EQ_INT(pc->status_port, 15020);
    T_CHECK(!pc->hold_app);
    T_CHECK(!pc->exit_on_zero);
    T_EQ_INT(pc->min_drain_ms, 5000);
    T_EQ_INT(pc->termination_drain_src, EBB_SRC_DEFAULT);
    T_EQ_INT(pc->nmetadata, 0);
    T_EQ_STR(cfg->admin_address, "127.0.0.1");
    T_EQ_STR(cfg->status_address, "0.0.0.0");
    T_EQ_STR(cfg->ready_address, "0.0.0.0");
    T_EQ_INT(cfg->ready_port, 15021);
    T_EQ_INT(cfg->nlisteners, 2);
    T_EQ_STR(cfg->listeners[0].address, "0.0.0.0");
    T_EQ_INT(cfg->listeners[0].port, 15006);
    T_EQ_INT(cfg->listeners[0].direction, EBB_DIR_INBOUND);
    T_EQ_INT(cfg->listeners[0].protocol, EBB_PROTO_HTTP);
    T_EQ_STR(cfg->listeners[0].cluster, "inbound");
    T_EQ_INT(cfg->listeners[0].cluster_idx, 0);
    T_EQ_INT(cfg->listeners[0].max_connections, 10000);
    T_EQ_STR(cfg->listeners[1].address, "127.0.0.1");
    T_EQ_INT(cfg->listeners[1].port, 15001);
    T_EQ_INT(cfg->listeners[1].direction, EBB_DIR_OUTBOUND);
    T_EQ_INT(cfg->listeners[1].nroutes, 0);
    T_CHECK(cfg->listeners[1].cluster == NULL);
    T_CHECK(cfg->listeners[1].cluster_idx == EBB_NO_CLUSTER);
    T_EQ_INT(cfg->nclusters, 5);   /* inbound and the four built-in clusters of SPEC §9.4 */
    T_EQ_STR(cfg->clusters[0].name, "inbound");
    T_EQ_INT(cfg->clusters[0].kind, EBB_CLUSTER_STATIC);
    T_EQ_STR(cfg->clusters[cfg->builtin.inbound4].name, "InboundPassthroughClusterIpv4");
    T_EQ_STR(cfg->clusters[cfg->builtin.inbound4].bind_address, "127.0.0.6");
    T_EQ_INT(cfg->clusters[cfg->builtin.inbound4].kind, EBB_CLUSTER_ORIGINAL_DST);
    T_EQ_STR(cfg->clusters[cfg->builtin.inbound6].name, "InboundPassthroughClusterIpv6");
    T_EQ_STR(cfg->clusters[cfg->builtin.inbound6].bind_address, "::6");
    T_EQ_STR(cfg->clusters[cfg->builtin.passthrough].name, "PassthroughCluster");
    T_CHECK(cfg->clusters[cfg->builtin.passthrough].bind_address == NULL);
    T_EQ_STR(cfg->clusters[cfg->builtin.blackhole].name, "BlackHoleCluster");
    T_EQ_INT(cfg->clusters[cfg->builtin.blackhole].kind, EBB_CLUSTER_BLACKHOLE);
    T_EQ_INT(cfg->capture.ntcp_ports, 0);
    T_EQ_INT(cfg->capture.detect_timeout_ms, 0);
    T_EQ_INT(cfg->capture.outbound_policy, EBB_ALLOW_ANY);
    T_EQ_INT(cfg->clusters[0].nendpoints, 1);
    T_EQ_STR(cfg->clusters[0].endpoints[0].host, "127.0.0.1");
    T_EQ_INT(cfg->clusters[0].endpoints[0].port, 8080);
    T_EQ_INT(cfg->clusters[0].protocol, EBB_UP_HTTP1);
    T_EQ_INT(cfg->clusters[0].connect_timeout_ms, 1000);
    T_EQ_INT(cfg->clusters[0].request_timeout_ms, 0);
    T_EQ_INT(cfg->clusters[0].pool_max_idle, 64);
    T_EQ_INT(cfg->clusters[0].pool_idle_timeout_ms, 60000);
    T_EQ_INT(cfg->limits.h1.max_line, 8192);
    T_EQ_INT(cfg->limits.h1.max_head, 61440);
    T_EQ_INT(cfg->limits.h1.max_headers, 100);
    T_EQ_INT(cfg->limits.max_request_body, 0);
    T_EQ_INT(cfg->limits.request_headers_timeout_ms, 10000);
    T_EQ_INT(cfg->limits.idle_timeout_ms, 3600000);
    T_EQ_INT(cfg->limits.h2_max_concurrent_streams, 100);
    T_EQ_INT(cfg->limits.buffer_size, 65536);
    T_EQ_INT(cfg->drain.idle_close_after_ms, 5000);
    T_CHECK(!cfg->drain.idle_close_after_set);
    T_EQ_INT(cfg->drain.idle_close_spread_ms, 1000);
    T_EQ_INT(cfg->drain.drain_timeout_ms, 1000);
    T_EQ_INT(cfg->drain.drain_deadline_ms, 0);
    T_EQ_INT(cfg->drain.linger_ms, 2000);
    T_EQ_STR(cfg->access_log, "-");
    T_EQ_STR(cfg->log_level, "info");
    ebb_config_free(cfg);
    ebb_config_free(NULL);
}

static void test_source_names(void)
{
    T_EQ_STR(ebb_source_name(EBB_SRC_DEFAULT), "default");
    T_EQ_STR(ebb_source_name(EBB_SRC_MESH), "mesh config");
    T_EQ_STR(ebb_source_name(EBB_SRC_PROXY_CONFIG), "PROXY_CONFIG");
    T_EQ_STR(ebb_source_name(EBB_SRC_ANNOTATION), "annotation");
    T_EQ_STR(ebb_source_name(EBB_SRC_ENV), "env");
    T_EQ_STR(ebb_source_name(EBB_SRC_FILE), "file");
    T_EQ_STR(ebb_source_name((enum ebb_source)99), "unknown");
}

/* No file, no mesh, no annotations, empty environment: the defaults. */
static void test_load_nothing(void)
{
    struct srcs s = { 0 };
    struct ebb_config *cfg = load_ok(&s);

    if (!cfg)
        return;
    T_CHECK(cfg->file == NULL);
    T_CHECK(cfg->mesh_file == NULL);          /* ./etc/istio/config/mesh missing: skipped */
    T_CHECK(cfg->annotations_file == NULL);
    T_EQ_INT(cfg->proxy.termination_drain_ms, 5000);
    T_EQ_INT(cfg->nlisteners, 2);
    T_EQ_INT(cfg->drain.idle_close_after_ms, 5000);
    ebb_config_free(cfg);
}

/* The default paths are read when they exist. */
static void test_default_paths(void)
{
    struct ebb_config_args a = { .environ = no_env };
    struct ebb_config *cfg = NULL;
    char err[512];

    mkdir("etc", 0755);
    mkdir("etc/istio", 0755);
    mkdir("etc/istio/config", 0755);
    mkdir("etc/istio/pod", 0755);
    write_file("etc/istio/config/mesh", "defaultConfig:\n  drainDuration: 7s\n");
    write_file("etc/istio/pod/annotations",
               "proxy.istio.io/config=\"{\\\"concurrency\\\": 3}\"\n");
    T_EQ_INT(ebb_config_load(&a, &cfg, err, sizeof(err)), 0);
    if (cfg) {
        T_EQ_STR(cfg->mesh_file, "./etc/istio/config/mesh");
        T_EQ_STR(cfg->annotations_file, "./etc/istio/pod/annotations");
        T_EQ_INT(cfg->proxy.drain_duration_ms, 7000);
        T_EQ_INT(cfg->proxy.drain_duration_src, EBB_SRC_MESH);
        T_EQ_INT(cfg->proxy.concurrency, 3);
        T_EQ_INT(cfg->proxy.concurrency_src, EBB_SRC_ANNOTATION);
    }
    ebb_config_free(cfg);
    /* a default path that exists but is not a file is an error */
    unlink("etc/istio/pod/annotations");
    mkdir("etc/istio/pod/annotations", 0755);
    cfg = NULL;
    T_EQ_INT(ebb_config_load(&a, &cfg, err, sizeof(err)), EBB_ECONFIG);
    T_EQ_STR(err, "./etc/istio/pod/annotations: cannot read pod annotations: Is a directory");
    rmdir("etc/istio/pod/annotations");
    unlink("etc/istio/config/mesh");
    rmdir("etc/istio/config");
    rmdir("etc/istio/pod");
    rmdir("etc/istio");
    rmdir("etc");
}

/* Explicitly named files must exist. */
static void test_explicit_paths_must_exist(void)
{
    struct ebb_config *cfg = NULL;
    char err[512];
    struct ebb_config_args a = { .environ = no_env, .mesh_file = "nope/mesh" };

    T_EQ_INT(ebb_config_load(&a, &cfg, err, sizeof(err)), EBB_ECONFIG);
    T_EQ_STR(err, "nope/mesh: cannot read mesh config: No such file or directory");
    a = (struct ebb_config_args){ .environ = no_env, .annotations_file = "nope/annotations" };
    T_EQ_INT(ebb_config_load(&a, &cfg, err, sizeof(err)), EBB_ECONFIG);
    T_EQ_STR(err,
             "nope/annotations: cannot read pod annotations: No such file or directory");
    a = (struct ebb_config_args){ .environ = no_env, .file = "nope.yaml" };
    T_EQ_INT(ebb_config_load(&a, &cfg, err, sizeof(err)), EBB_ECONFIG);
    T_EQ_STR(err, "nope.yaml: cannot read: No such file or directory");
    T_CHECK(cfg == NULL);
}

/* ------------------------------------------------------------------ */
/* the seed's snippets, verbatim                                      */

static void test_seed_mesh_4_2(void)
{
    struct ebb_config_args a = { .environ = no_env, .mesh_file = data("mesh_seed_4_2.yaml") };
    struct ebb_config *cfg = NULL;
    enum ebb_source src = EBB_SRC_DEFAULT;
    char err[512];

    T_EQ_INT(ebb_config_load(&a, &cfg, err, sizeof(err)), 0);
    if (!cfg)
        return;
    T_CHECK(cfg->proxy.exit_on_zero);
    T_EQ_INT(cfg->proxy.exit_on_zero_src, EBB_SRC_MESH);
    T_EQ_STR(md(cfg, "EXIT_ON_ZERO_ACTIVE_CONNECTIONS", &src), "true");
    T_EQ_INT(src, EBB_SRC_MESH);
    T_EQ_INT(cfg->proxy.termination_drain_ms, 5000);
    ebb_config_free(cfg);
}

static struct ebb_config *seed_4_4_cfg;
static void load_seed_4_4(void)
{
    struct ebb_config_args a = { .environ = no_env, .mesh_file = data("mesh_seed_4_4.yaml") };
    char err[512];

    T_EQ_INT(ebb_config_load(&a, &seed_4_4_cfg, err, sizeof(err)), 0);
}

/* "terminationDrainDuration: 20s *# 默认为 5s*": Markdown-mangled comment. */
static void test_seed_mesh_4_4(void)
{
    T_EQ_INT(count_stderr(load_seed_4_4, "looks like a comment mangled by Markdown"), 1);
    if (!seed_4_4_cfg)
        return;
    T_EQ_INT(seed_4_4_cfg->proxy.termination_drain_ms, 20000);
    T_EQ_INT(seed_4_4_cfg->proxy.termination_drain_src, EBB_SRC_MESH);
    ebb_config_free(seed_4_4_cfg);
}

static void test_seed_mesh_combined(void)
{
    struct ebb_config_args a = { .environ = no_env, .mesh_file = data("mesh_seed.yaml") };
    struct ebb_config *cfg = NULL;
    char err[512];

    T_EQ_INT(ebb_config_load(&a, &cfg, err, sizeof(err)), 0);
    if (!cfg)
        return;
    T_CHECK(cfg->proxy.exit_on_zero);
    T_EQ_INT(cfg->proxy.exit_on_zero_src, EBB_SRC_MESH);
    T_EQ_INT(cfg->proxy.termination_drain_ms, 20000);
    T_EQ_INT(cfg->proxy.termination_drain_src, EBB_SRC_MESH);
    ebb_config_free(cfg);
}

static void test_seed_annotation_file(void)
{
    struct ebb_config_args a = { .environ = no_env,
                                 .annotations_file = data("annotations_seed") };
    struct ebb_config *cfg = NULL;
    enum ebb_source src = EBB_SRC_DEFAULT;
    char err[512];

    T_EQ_INT(ebb_config_load(&a, &cfg, err, sizeof(err)), 0);
    if (!cfg)
        return;
    T_CHECK(cfg->proxy.exit_on_zero);
    T_EQ_INT(cfg->proxy.exit_on_zero_src, EBB_SRC_ANNOTATION);
    T_EQ_STR(md(cfg, "EXIT_ON_ZERO_ACTIVE_CONNECTIONS", &src), "true");
    T_EQ_INT(src, EBB_SRC_ANNOTATION);
    ebb_config_free(cfg);
}

/* Go's strconv.Quote, as kubelet writes downward-API values (%q). */
static void go_quote(const char *s, char *out, size_t outlen)
{
    size_t o = 0;

    out[o++] = '"';
    for (; *s && o + 6 < outlen; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else if (c == '\t') {
            out[o++] = '\\';
            out[o++] = 't';
        } else if (c < 0x20 || c == 0x7f) {
            o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o++] = '"';
    out[o] = '\0';
}

/* The seed's pod annotation (YAML) -> kubelet's file -> ProxyConfig. */
static void test_seed_annotation_roundtrip(void)
{
    struct ebb_ydoc d = { .label = "pod", .marks = true };
    char *text = NULL, err[512], line[512], file[600];
    size_t len = 0;
    yaml_node_t *root, *anns;
    const char *value = NULL;

    T_EQ_INT(ebb_read_file(data("pod_seed_4_3.yaml"), &text, &len), 0);
    T_EQ_INT(ebb_ydoc_load(&d, text, len, err, sizeof(err)), 0);
    root = ebb_ydoc_root(&d);
    T_CHECK(root && root->type == YAML_MAPPING_NODE);
    if (!root || root->type != YAML_MAPPING_NODE)
        goto out;
    anns = ebb_ynode(&d, root->data.mapping.pairs.start->value);
    value = (const char *)ebb_ynode(&d, anns->data.mapping.pairs.start->value)->data.scalar.value;
    T_EQ_STR(value, "{ \"proxyMetadata\": { \"EXIT_ON_ZERO_ACTIVE_CONNECTIONS\": \"true\" } }");
    go_quote(value, line, sizeof(line));
    snprintf(file, sizeof(file), "app=\"demo\"\nproxy.istio.io/config=%s", line);
    T_EQ_STR(file, "app=\"demo\"\nproxy.istio.io/config=\"{ \\\"proxyMetadata\\\": { "
                   "\\\"EXIT_ON_ZERO_ACTIVE_CONNECTIONS\\\": \\\"true\\\" } }\"");
    struct srcs s = { .annotations = file };
    struct ebb_config *cfg = load_ok(&s);
    if (cfg) {
        T_CHECK(cfg->proxy.exit_on_zero);
        T_EQ_INT(cfg->proxy.exit_on_zero_src, EBB_SRC_ANNOTATION);
        T_EQ_STR(cfg->annotations_file, "annotations");
    }
    ebb_config_free(cfg);
out:
    ebb_ydoc_free(&d);
    free(text);
}

/* ------------------------------------------------------------------ */
/* precedence and merge                                               */

/* Every subset of {file, mesh, PROXY_CONFIG, annotation}: the highest wins. */
static void test_precedence_table(void)
{
    static const enum ebb_source order[] = { EBB_SRC_FILE, EBB_SRC_MESH, EBB_SRC_PROXY_CONFIG,
                                             EBB_SRC_ANNOTATION };
    for (unsigned mask = 0; mask < 16; mask++) {
        const char *env[] = { "PROXY_CONFIG={\"terminationDrainDuration\": \"3s\", "
                              "\"concurrency\": 3}", NULL };
        struct srcs s = { 0 };
        enum ebb_source want = EBB_SRC_DEFAULT;
        uint64_t want_ms = 5000, want_conc = 2;

        if (mask & 1) {
            s.file = "proxy_config:\n  terminationDrainDuration: 1s\n  concurrency: 1\n";
            want = EBB_SRC_FILE, want_ms = 1000, want_conc = 1;
        }
        if (mask & 2) {
            s.mesh = "defaultConfig:\n  terminationDrainDuration: 2s\n  concurrency: 2\n";
            want = EBB_SRC_MESH, want_ms = 2000, want_conc = 2;
        }
        if (mask & 4) {
            s.env = env;
            want = EBB_SRC_PROXY_CONFIG, want_ms = 3000, want_conc = 3;
        }
        if (mask & 8) {
            s.annotations = "proxy.istio.io/config=\"terminationDrainDuration: 4s\\n"
                            "concurrency: 4\"";
            want = EBB_SRC_ANNOTATION, want_ms = 4000, want_conc = 4;
        }
        struct ebb_config *cfg = load_ok(&s);
        if (!cfg)
            continue;
        if (cfg->proxy.termination_drain_src != want)
            fprintf(stderr, "  mask %u: source %s\n", mask,
                    ebb_source_name(cfg->proxy.termination_drain_src));
        T_EQ_INT(cfg->proxy.termination_drain_src, want);
        T_EQ_INT(cfg->proxy.termination_drain_ms, want_ms);
        T_EQ_INT(cfg->proxy.concurrency, want_conc);
        T_EQ_INT(cfg->proxy.concurrency_src, want);
        ebb_config_free(cfg);
    }
    (void)order;
}

/* Fields replace whole; proxyMetadata merges key by key; sorted by key. */
static void test_merge_rules(void)
{
    const char *env[] = { "PROXY_CONFIG={\"proxyMetadata\": {\"B\": \"env-b\", \"D\": \"d\"}, "
                          "\"holdApplicationUntilProxyStarts\": true}", NULL };
    struct srcs s = {
        .file = "proxy_config:\n  proxyMetadata: {Z: file-z, A: file-a}\n  drainDuration: 1s\n",
        .mesh = "defaultConfig:\n  drainDuration: 30s\n  statusPort: 15099\n"
                "  proxyMetadata:\n    A: mesh-a\n    B: mesh-b\n    C: mesh-c\n",
        .annotations = "proxy.istio.io/config=\"{\\\"proxyMetadata\\\": {\\\"C\\\": \\\"ann-c\\\"}, "
                       "\\\"drainDuration\\\": \\\"1m30s\\\"}\"",
        .env = env,
    };
    struct ebb_config *cfg = load_ok(&s);
    enum ebb_source src = EBB_SRC_DEFAULT;

    if (!cfg)
        return;
    T_EQ_INT(cfg->proxy.nmetadata, 5);
    T_EQ_STR(cfg->proxy.metadata[0].key, "A");
    T_EQ_STR(cfg->proxy.metadata[1].key, "B");
    T_EQ_STR(cfg->proxy.metadata[2].key, "C");
    T_EQ_STR(cfg->proxy.metadata[3].key, "D");
    T_EQ_STR(cfg->proxy.metadata[4].key, "Z");
    T_EQ_STR(md(cfg, "A", &src), "mesh-a");
    T_EQ_INT(src, EBB_SRC_MESH);
    T_EQ_STR(md(cfg, "B", &src), "env-b");
    T_EQ_INT(src, EBB_SRC_PROXY_CONFIG);
    T_EQ_STR(md(cfg, "C", &src), "ann-c");
    T_EQ_INT(src, EBB_SRC_ANNOTATION);
    T_EQ_STR(md(cfg, "D", &src), "d");
    T_EQ_INT(src, EBB_SRC_PROXY_CONFIG);
    T_EQ_STR(md(cfg, "Z", &src), "file-z");
    T_EQ_INT(src, EBB_SRC_FILE);
    T_EQ_INT(cfg->proxy.drain_duration_ms, 90000);
    T_EQ_INT(cfg->proxy.drain_duration_src, EBB_SRC_ANNOTATION);
    T_EQ_INT(cfg->proxy.status_port, 15099);
    T_EQ_INT(cfg->proxy.status_port_src, EBB_SRC_MESH);
    T_CHECK(cfg->proxy.hold_app);
    T_EQ_INT(cfg->proxy.hold_app_src, EBB_SRC_PROXY_CONFIG);
    T_EQ_INT(cfg->proxy.termination_drain_src, EBB_SRC_DEFAULT);
    ebb_config_free(cfg);
}

/* A proxyMetadata knob acts as an env var unless the environment sets it. */
static void test_env_knobs(void)
{
    const char *mesh = "defaultConfig:\n  proxyMetadata:\n"
                       "    EXIT_ON_ZERO_ACTIVE_CONNECTIONS: \"true\"\n"
                       "    MINIMUM_DRAIN_DURATION: 8s\n";
    const char *env_false[] = { "HOME=/x", "EXIT_ON_ZERO_ACTIVE_CONNECTIONS=false",
                                "MINIMUM_DRAIN_DURATION=1m", NULL };
    const char *env_empty[] = { "EXIT_ON_ZERO_ACTIVE_CONNECTIONS=", "MINIMUM_DRAIN_DURATION=",
                                NULL };
    const char *env_only[] = { "EXIT_ON_ZERO_ACTIVE_CONNECTIONS=1", NULL };
    struct srcs s = { .mesh = mesh };
    struct ebb_config *cfg = load_ok(&s);

    if (cfg) {
        T_CHECK(cfg->proxy.exit_on_zero);
        T_EQ_INT(cfg->proxy.exit_on_zero_src, EBB_SRC_MESH);
        T_EQ_INT(cfg->proxy.min_drain_ms, 8000);
        T_EQ_INT(cfg->proxy.min_drain_src, EBB_SRC_MESH);
        T_EQ_INT(cfg->drain.idle_close_after_ms, 8000);   /* follows MINIMUM_DRAIN_DURATION */
    }
    ebb_config_free(cfg);
    s.env = env_false;
    cfg = load_ok(&s);
    if (cfg) {
        T_CHECK(!cfg->proxy.exit_on_zero);
        T_EQ_INT(cfg->proxy.exit_on_zero_src, EBB_SRC_ENV);
        T_EQ_INT(cfg->proxy.min_drain_ms, 60000);
        T_EQ_INT(cfg->proxy.min_drain_src, EBB_SRC_ENV);
        T_EQ_INT(cfg->drain.idle_close_after_ms, 60000);
        /* the metadata still says what the mesh config said */
        T_EQ_STR(md(cfg, "EXIT_ON_ZERO_ACTIVE_CONNECTIONS", NULL), "true");
    }
    ebb_config_free(cfg);
    s.env = env_empty;   /* empty = unset: the metadata applies */
    cfg = load_ok(&s);
    if (cfg) {
        T_CHECK(cfg->proxy.exit_on_zero);
        T_EQ_INT(cfg->proxy.exit_on_zero_src, EBB_SRC_MESH);
        T_EQ_INT(cfg->proxy.min_drain_ms, 8000);
    }
    ebb_config_free(cfg);
    s = (struct srcs){ .env = env_only };
    cfg = load_ok(&s);
    if (cfg) {
        T_CHECK(cfg->proxy.exit_on_zero);
        T_EQ_INT(cfg->proxy.exit_on_zero_src, EBB_SRC_ENV);
        T_EQ_INT(cfg->proxy.nmetadata, 0);
    }
    ebb_config_free(cfg);
    /* an explicit drain.idle_close_after is kept */
    s = (struct srcs){ .mesh = mesh, .file = "drain:\n  idle_close_after: 2s\n" };
    cfg = load_ok(&s);
    if (cfg) {
        T_EQ_INT(cfg->drain.idle_close_after_ms, 2000);
        T_CHECK(cfg->drain.idle_close_after_set);
    }
    ebb_config_free(cfg);
    /* empty metadata value = unset */
    s = (struct srcs){ .mesh = "defaultConfig:\n  proxyMetadata:\n"
                               "    EXIT_ON_ZERO_ACTIVE_CONNECTIONS: \"\"\n"
                               "    MINIMUM_DRAIN_DURATION:\n" };
    cfg = load_ok(&s);
    if (cfg) {
        T_CHECK(!cfg->proxy.exit_on_zero);
        T_EQ_INT(cfg->proxy.exit_on_zero_src, EBB_SRC_DEFAULT);
        T_EQ_INT(cfg->proxy.min_drain_src, EBB_SRC_DEFAULT);
        T_EQ_STR(md(cfg, "MINIMUM_DRAIN_DURATION", NULL), "");
    }
    ebb_config_free(cfg);
}

static void test_snake_case(void)
{
    struct srcs s = {
        .mesh = "default_config:\n  termination_drain_duration: 9s\n  drain_duration: 8s\n"
                "  proxy_admin_port: 16000\n  status_port: 16020\n"
                "  hold_application_until_proxy_starts: True\n"
                "  proxy_metadata:\n    EXIT_ON_ZERO_ACTIVE_CONNECTIONS: T\n",
    };
    struct ebb_config *cfg = load_ok(&s);

    if (!cfg)
        return;
    T_EQ_INT(cfg->proxy.termination_drain_ms, 9000);
    T_EQ_INT(cfg->proxy.drain_duration_ms, 8000);
    T_EQ_INT(cfg->proxy.admin_port, 16000);
    T_EQ_INT(cfg->proxy.admin_port_src, EBB_SRC_MESH);
    T_EQ_INT(cfg->proxy.status_port, 16020);
    T_CHECK(cfg->proxy.hold_app);
    T_CHECK(cfg->proxy.exit_on_zero);
    ebb_config_free(cfg);
    /* ebb.yaml keys in camelCase */
    s = (struct srcs){ .file = "accessLog: \"off\"\nlimits:\n  maxRequestBody: 1024\n"
                               "drain:\n  drainDeadline: 25s\n" };
    cfg = load_ok(&s);
    if (cfg) {
        T_EQ_STR(cfg->access_log, "off");
        T_EQ_INT(cfg->limits.max_request_body, 1024);
        T_EQ_INT(cfg->drain.drain_deadline_ms, 25000);
    }
    ebb_config_free(cfg);
}

/* ebb.yaml's top-level concurrency / admin.port / status.port beat ProxyConfig. */
static void test_file_overrides(void)
{
    const char *ann = "proxy.istio.io/config=\"{\\\"concurrency\\\": 8, \\\"proxyAdminPort\\\": "
                      "15200, \\\"statusPort\\\": 15220}\"";
    struct srcs s = { .annotations = ann };
    struct ebb_config *cfg = load_ok(&s);

    if (cfg) {
        T_EQ_INT(cfg->proxy.concurrency, 8);
        T_EQ_INT(cfg->proxy.admin_port, 15200);
        T_EQ_INT(cfg->proxy.admin_port_src, EBB_SRC_ANNOTATION);
        T_EQ_INT(cfg->proxy.status_port, 15220);
    }
    ebb_config_free(cfg);
    s.file = "concurrency: 4\nadmin: {port: 15100}\nstatus:\n  port: 15120\n"
             "proxy_config: {concurrency: 1}\n";
    cfg = load_ok(&s);
    if (cfg) {
        T_EQ_INT(cfg->proxy.concurrency, 4);
        T_EQ_INT(cfg->proxy.concurrency_src, EBB_SRC_FILE);
        T_EQ_INT(cfg->proxy.admin_port, 15100);
        T_EQ_INT(cfg->proxy.admin_port_src, EBB_SRC_FILE);
        T_EQ_INT(cfg->proxy.status_port, 15120);
        T_EQ_INT(cfg->proxy.status_port_src, EBB_SRC_FILE);
        T_EQ_STR(cfg->admin_address, "127.0.0.1");
    }
    ebb_config_free(cfg);
    /* an address alone keeps the ProxyConfig port */
    s.file = "admin: {address: \"::1\"}\n";
    cfg = load_ok(&s);
    if (cfg) {
        T_EQ_STR(cfg->admin_address, "::1");
        T_EQ_INT(cfg->proxy.admin_port, 15200);
        T_EQ_INT(cfg->proxy.admin_port_src, EBB_SRC_ANNOTATION);
    }
    ebb_config_free(cfg);
}

/* ------------------------------------------------------------------ */
/* the annotations file                                               */

struct ann_case {
    const char *text;
    const char *value;   /* expected value of proxy.istio.io/config, NULL = absent */
    const char *err;     /* expected error, NULL = success */
};

static void test_annotations_table(void)
{
    static const struct ann_case cases[] = {
        { "", NULL, NULL },
        { "\n", NULL, NULL },
        { "a=\"b\"", NULL, NULL },
        { "proxy.istio.io/config=\"x\"", "x", NULL },
        { "proxy.istio.io/config=\"x\"\n", "x", NULL },
        { "proxy.istio.io/config=\"x\"\r\n", "x", NULL },
        { "a=\"1\"\nproxy.istio.io/config=\"x\"\nz=\"2\"", "x", NULL },
        { "proxy.istio.io/config=\"\"", "", NULL },
        { "proxy.istio.io/config=\"a\\tb\\nc\\\\d\\\"e\\x41\\101\\u00e9\\U0001F600\\a\\b\\f\\r\\v\"",
          "a\tb\nc\\d\"eAA\xc3\xa9\xf0\x9f\x98\x80\a\b\f\r\v", NULL },
        { "proxy.istio.io/config=\"a=b\"", "a=b", NULL },
        { "proxy.istio.io/config-other=\"x\"", NULL, NULL },
        { "PROXY.istio.io/config=\"x\"", NULL, NULL },
        /* malformed lines, anywhere in the file */
        { "a=\"1\"\nb=\"2\"\ngarbage", NULL,
          "annotations:3: malformed line: no '=' (want key=\"value\"): \"garbage\"" },
        { "a=1", NULL, "annotations:1: malformed line: value is not a Go-quoted string: \"a=1\"" },
        { "a=\"1", NULL,
          "annotations:1: malformed line: value is not a Go-quoted string: \"a=\\\"1\"" },
        { "a=\"1\" ", NULL,
          "annotations:1: malformed line: value is not a Go-quoted string: \"a=\\\"1\\\" \"" },
        { "a=\"\\q\"", NULL,
          "annotations:1: malformed line: value is not a Go-quoted string: \"a=\\\"\\\\q\\\"\"" },
        { "a=\"x\"y\"", NULL,
          "annotations:1: malformed line: value is not a Go-quoted string: \"a=\\\"x\\\"y\\\"\"" },
        { "=\"x\"", NULL, "annotations:1: malformed line: empty key: \"=\\\"x\\\"\"" },
        { "a b=\"x\"", NULL,
          "annotations:1: malformed line: bad character in key: \"a b=\\\"x\\\"\"" },
        { "proxy.istio.io/config=\"x\"\n\nlast", NULL,
          "annotations:3: malformed line: no '=' (want key=\"value\"): \"last\"" },
        { "proxy.istio.io/config=\"x\"\nproxy.istio.io/config=\"y\"", NULL,
          "annotations:2: proxy.istio.io/config: given twice (also at line 1)" },
        { "a=\"\\uD800\"", NULL,
          "annotations:1: malformed line: value is not a Go-quoted string: \"a=\\\"\\\\uD800\\\"\"" },
    };

    for (size_t i = 0; i < EBB_ARRAY_LEN(cases); i++) {
        const struct ann_case *c = &cases[i];
        char *value = (char *)"unset", err[512] = "";
        int rc = ebb_annotations_get("annotations", c->text, strlen(c->text),
                                     "proxy.istio.io/config", &value, err, sizeof(err));
        if (c->err) {
            T_EQ_INT(rc, EBB_ECONFIG);
            T_EQ_STR(err, c->err);
            T_CHECK(value == NULL);
        } else {
            if (rc)
                fprintf(stderr, "  case %zu: %s\n", i, err);
            T_EQ_INT(rc, 0);
            if (c->value)
                T_EQ_STR(value, c->value);
            else
                T_CHECK(value == NULL);
            free(value);
        }
    }
}

/* ------------------------------------------------------------------ */
/* errors: every bad value names source, key and value                */

struct err_case {
    struct srcs s;
    const char *err;
};

static const char *env_pc_bad_dur[] = { "PROXY_CONFIG={\"terminationDrainDuration\": \"5 s\"}",
                                        NULL };
static const char *env_pc_int_dur[] = { "PROXY_CONFIG={\"drainDuration\": 20}", NULL };
static const char *env_pc_yaml[] = { "PROXY_CONFIG=terminationDrainDuration: 5s\n"
                                     "drainDuration: soon\n", NULL };
static const char *env_pc_list[] = { "PROXY_CONFIG=[1, 2]", NULL };
static const char *env_pc_syntax[] = { "PROXY_CONFIG={\"concurrency\": 2", NULL };
static const char *env_pc_two[] = { "PROXY_CONFIG={\"concurrency\": 2}\n---\n{}", NULL };
static const char *env_yes[] = { "EXIT_ON_ZERO_ACTIVE_CONNECTIONS=yes", NULL };
static const char *env_min[] = { "MINIMUM_DRAIN_DURATION=5", NULL };
static const char *env_min_neg[] = { "MINIMUM_DRAIN_DURATION=-5s", NULL };

#define DUR_HINT "is not a Go duration (e.g. 500ms, 5s, 1m30s)"
#define BOOL_HINT "is not a Go bool (1 t T TRUE true True 0 f F FALSE false False)"
#define LISTENER(extra) "listeners:\n  - name: in\n    port: 15006\n    direction: inbound\n" extra

static const struct err_case err_cases[] = {
    /* the brief's examples */
    { { .file = "listeners:\n  - name: in\n    direction: inbound\n    cluster: inbound\n"
                "    address: 0.0.0.0\n\n    port: 80x\n" },
      "ebb.yaml:7: listeners[0].port: \"80x\" is not a port (1-65535)" },
    { { .env = env_pc_bad_dur }, "PROXY_CONFIG: terminationDrainDuration: \"5 s\" " DUR_HINT },
    { { .annotations = "a=\"1\"\nb=\"2\"\nbroken" },
      "annotations:3: malformed line: no '=' (want key=\"value\"): \"broken\"" },
    { { .env = env_yes }, "environment: EXIT_ON_ZERO_ACTIVE_CONNECTIONS: \"yes\" " BOOL_HINT },
    /* durations */
    { { .env = env_pc_int_dur }, "PROXY_CONFIG: drainDuration: \"20\" " DUR_HINT ": a unit is required" },
    { { .env = env_pc_yaml }, "PROXY_CONFIG:2: drainDuration: \"soon\" " DUR_HINT },
    { { .mesh = "defaultConfig:\n  terminationDrainDuration: -5s\n" },
      "mesh:2: defaultConfig.terminationDrainDuration: \"-5s\" is negative (must be >= 0)" },
    { { .mesh = "defaultConfig:\n  terminationDrainDuration: 1d\n" },
      "mesh:2: defaultConfig.terminationDrainDuration: \"1d\" " DUR_HINT },
    { { .mesh = "defaultConfig:\n  terminationDrainDuration: \"\"\n" },
      "mesh:2: defaultConfig.terminationDrainDuration: \"\" " DUR_HINT },
    { { .env = env_min }, "environment: MINIMUM_DRAIN_DURATION: \"5\" " DUR_HINT },
    { { .env = env_min_neg }, "environment: MINIMUM_DRAIN_DURATION: \"-5s\" is negative (must be >= 0)" },
    { { .annotations = "x=\"y\"\nproxy.istio.io/config=\"proxyMetadata: {MINIMUM_DRAIN_DURATION: \\\"5\\\"}\"" },
      "annotations:2: proxy.istio.io/config: proxyMetadata.MINIMUM_DRAIN_DURATION: \"5\" " DUR_HINT
      ": a unit is required" },
    { { .annotations = "proxy.istio.io/config=\"{\\\"proxyMetadata\\\": {\\\"EXIT_ON_ZERO_ACTIVE_CONNECTIONS\\\": \\\"on\\\"}}\"" },
      "annotations:1: proxy.istio.io/config: proxyMetadata.EXIT_ON_ZERO_ACTIVE_CONNECTIONS: \"on\" " BOOL_HINT },
    { { .mesh = "defaultConfig:\n  proxyMetadata:\n    EXIT_ON_ZERO_ACTIVE_CONNECTIONS: yes\n" },
      "mesh:3: defaultConfig.proxyMetadata.EXIT_ON_ZERO_ACTIVE_CONNECTIONS: \"yes\" " BOOL_HINT },
    { { .mesh = "defaultConfig:\n  holdApplicationUntilProxyStarts: \"maybe\"\n" },
      "mesh:2: defaultConfig.holdApplicationUntilProxyStarts: \"maybe\" " BOOL_HINT },
    { { .mesh = "defaultConfig:\n  concurrency: -1\n" },
      "mesh:2: defaultConfig.concurrency: \"-1\" is not an integer (0-1024)" },
    { { .mesh = "defaultConfig:\n  proxyAdminPort: 70000\n" },
      "mesh:2: defaultConfig.proxyAdminPort: \"70000\" is not a port (1-65535)" },
    /* wrong types */
    { { .mesh = "defaultConfig:\n  - terminationDrainDuration: 5s\n" },
      "mesh:2: defaultConfig: expected a map, got a list" },
    { { .mesh = "defaultConfig: 5s\n" }, "mesh:1: defaultConfig: expected a map, got \"5s\"" },
    { { .mesh = "- a\n- b\n" }, "mesh:1: expected a map, got a list" },
    { { .mesh = "defaultConfig:\n  proxyMetadata: [A, B]\n" },
      "mesh:2: defaultConfig.proxyMetadata: expected a map, got a list" },
    { { .mesh = "defaultConfig:\n  proxyMetadata:\n    A: {b: c}\n" },
      "mesh:3: defaultConfig.proxyMetadata.A: expected a string value, got a map" },
    { { .mesh = "defaultConfig:\n  terminationDrainDuration: [5s]\n" },
      "mesh:2: defaultConfig.terminationDrainDuration: expected a string, got a list" },
    { { .env = env_pc_list }, "PROXY_CONFIG: expected a map, got a list" },
    { { .file = "listeners:\n  name: x\n" }, "ebb.yaml:2: listeners: expected a list, got a map" },
    { { .file = "limits: 5\n" }, "ebb.yaml:1: limits: expected a map, got \"5\"" },
    { { .file = "- 1\n" }, "ebb.yaml:1: expected a map, got a list" },
    { { .file = "? [a]\n: b\n" }, "ebb.yaml:1: map keys must be strings, got a list" },
    /* duplicates, camelCase and snake_case folded */
    { { .mesh = "defaultConfig:\n  drainDuration: 5s\n  drain_duration: 6s\n" },
      "mesh:3: defaultConfig.drain_duration: given twice (also as \"drainDuration\" at line 2)" },
    { { .mesh = "defaultConfig:\n  proxyMetadata:\n    A: x\n    A: y\n" },
      "mesh:4: defaultConfig.proxyMetadata.A: given twice (also as \"A\" at line 3)" },
    { { .env = (const char *[]){ "PROXY_CONFIG={\"concurrency\": 1, \"concurrency\": 2}", NULL } },
      "PROXY_CONFIG: concurrency: given twice (also as \"concurrency\")" },
    /* syntax */
    { { .env = env_pc_two }, "PROXY_CONFIG:3: more than one YAML document (only one is read)" },
    /* listeners and clusters */
    { { .file = LISTENER("") },
      "ebb.yaml:2: listeners[0]: cluster: missing (inbound listeners need one)" },
    { { .file = LISTENER("    cluster: app\n") },
      "ebb.yaml:5: listeners[0].cluster: \"app\" is not a cluster defined in clusters" },
    { { .file = LISTENER("    cluster: inbound\n    routes:\n      - {host: a, cluster: inbound}\n") },
      "ebb.yaml:2: listeners[0]: routes: only outbound http listeners route by host; inbound "
      "listeners use cluster" },
    { { .file = "listeners:\n  - {name: o, port: 15001, direction: outbound, protocol: tcp}\n" },
      "ebb.yaml:2: listeners[0]: cluster: missing (outbound tcp listeners need one)" },
    { { .file = "listeners:\n  - {name: o, port: 15001, direction: outbound, cluster: inbound}\n" },
      "ebb.yaml:2: listeners[0]: cluster: outbound http listeners route by host: use routes (a "
      "\"*\" route catches all)" },
    { { .file = "listeners:\n  - {name: o, port: 15001, direction: outbound,\n"
                "     routes: [{host: a.local, cluster: nope}]}\n" },
      "ebb.yaml:3: listeners[0].routes[0].cluster: \"nope\" is not a cluster defined in clusters" },
    { { .file = "listeners:\n  - {name: o, port: 15001, direction: outbound, routes: [{host: a}]}\n" },
      "ebb.yaml:2: listeners[0].routes[0]: cluster: missing" },
    { { .file = "listeners:\n  - {name: o, port: 15001}\n" },
      "ebb.yaml:2: listeners[0]: direction: missing (inbound or outbound)" },
    { { .file = "listeners:\n  - {name: o, direction: outbound}\n" },
      "ebb.yaml:2: listeners[0]: port: missing" },
    { { .file = "listeners:\n  - {name: o, port: 1, direction: sideways}\n" },
      "ebb.yaml:2: listeners[0].direction: \"sideways\" is not inbound or outbound" },
    { { .file = "listeners:\n  - {name: o, port: 1, direction: outbound, protocol: udp}\n" },
      "ebb.yaml:2: listeners[0].protocol: \"udp\" is not http or tcp" },
    { { .file = "listeners:\n  - {name: o, port: 1, direction: outbound, address: localhost}\n" },
      "ebb.yaml:2: listeners[0].address: \"localhost\" is not a numeric IP address (e.g. "
      "0.0.0.0, 127.0.0.1, ::)" },
    { { .file = "listeners:\n  - {name: a, port: 1, direction: outbound}\n"
                "  - {name: a, port: 2, direction: outbound}\n" },
      "ebb.yaml:3: listeners[1]: name: \"a\" is already used by listeners[0]" },
    { { .file = "listeners:\n  - {name: a, port: 1, direction: outbound}\n"
                "  - {name: b, port: 1, direction: outbound}\n" },
      "ebb.yaml:3: listeners[1].port: 1 is already used by listeners[0] (a)" },
    { { .file = "listeners:\n  - {name: a, port: 15000, direction: outbound}\n" },
      "ebb.yaml:2: listeners[0].port: 15000 is already used by the admin port "
      "(proxyAdminPort from default)" },
    { { .file = "listeners:\n  - {name: a, port: 15100, direction: outbound}\n",
        .annotations = "proxy.istio.io/config=\"proxyAdminPort: 15100\"" },
      "ebb.yaml:2: listeners[0].port: 15100 is already used by the admin port "
      "(proxyAdminPort from annotation)" },
    { { .annotations = "proxy.istio.io/config=\"statusPort: 15006\"" },
      "annotation: statusPort: 15006 is already used by listeners[0] (inbound)" },
    { { .annotations = "proxy.istio.io/config=\"statusPort: 15000\"" },
      "annotation: statusPort: 15000 is already used by the admin port (proxyAdminPort from "
      "default)" },
    { { .file = "admin: {port: 15021}\n" },
      "ebb.yaml:1: admin.port: 15021 is already used by the readiness port" },
    { { .file = "clusters:\n  - {name: a, endpoints: [\"1.2.3.4:80\"]}\n"
                "  - {name: a, endpoints: [\"1.2.3.4:81\"]}\n" },
      "ebb.yaml:3: clusters[1]: name: \"a\" is already used by clusters[0]" },
    { { .file = "clusters:\n  - {name: a, endpoints: [\"1.2.3.4:80\"]}\n" },
      "ebb.yaml:2: clusters: the built-in inbound listener needs a cluster named \"inbound\" "
      "(define it, or define listeners)" },
    { { .file = "clusters:\n  - {name: inbound}\n" },
      "ebb.yaml:2: clusters[0]: endpoints: missing (a list of host:port, e.g. "
      "[\"127.0.0.1:8080\"])" },
    { { .file = "clusters:\n  - {name: inbound, endpoints: []}\n" },
      "ebb.yaml:2: clusters[0].endpoints: must list at least one host:port" },
    { { .file = "clusters:\n  - {endpoints: [\"a:1\"]}\n" },
      "ebb.yaml:2: clusters[0]: name: missing" },
    { { .file = "clusters:\n  - {name: inbound, endpoints: [localhost]}\n" },
      "ebb.yaml:2: clusters[0].endpoints[0]: \"localhost\" is not host:port (e.g. "
      "127.0.0.1:8080, [::1]:8080, app.local:80)" },
    { { .file = "clusters:\n  - {name: inbound, endpoints: [\"::1:8080\"]}\n" },
      "ebb.yaml:2: clusters[0].endpoints[0]: \"::1:8080\": an IPv6 address needs brackets, "
      "e.g. [::1]:8080" },
    { { .file = "clusters:\n  - {name: inbound, endpoints: [\"[nope]:8080\"]}\n" },
      "ebb.yaml:2: clusters[0].endpoints[0]: \"[nope]:8080\": not an IPv6 address inside []" },
    { { .file = "clusters:\n  - {name: inbound, endpoints: [\"a:0\"]}\n" },
      "ebb.yaml:2: clusters[0].endpoints[0]: \"a:0\": \"0\" is not a port (1-65535)" },
    { { .file = "clusters:\n  - {name: inbound, endpoints: [\"a b:1\"]}\n" },
      "ebb.yaml:2: clusters[0].endpoints[0]: \"a b:1\": \"a b\" is not an IP address or host name" },
    { { .file = "clusters:\n  - {name: inbound, endpoints: [\"a:1\"], connect_timeout: 0s}\n" },
      "ebb.yaml:2: clusters[0].connect_timeout: \"0s\" must be more than 0" },
    { { .file = "clusters:\n  - {name: inbound, endpoints: [\"a:1\"], protocol: h2}\n" },
      "ebb.yaml:2: clusters[0].protocol: \"h2\" is not http1 or h2c" },
    { { .file = "clusters:\n  - {name: inbound, endpoints: [\"a:1\"], pool: {max_idle: x}}\n" },
      "ebb.yaml:2: clusters[0].pool.max_idle: \"x\" is not an integer (0-65535)" },
    /* limits, drain, misc */
    { { .file = "limits:\n  max_header_count: 300\n" },
      "ebb.yaml:2: limits.max_header_count: \"300\" is not a count (1-256)" },
    { { .file = "limits:\n  request_headers_timeout: 0\n" },
      "ebb.yaml:2: limits.request_headers_timeout: \"0\" must be more than 0" },
    { { .file = "drain:\n  linger: 2 s\n" }, "ebb.yaml:2: drain.linger: \"2 s\" " DUR_HINT },
    { { .file = "log_level: loud\n" },
      "ebb.yaml:1: log_level: \"loud\" is not a log level (error, warn, info, debug)" },
    { { .file = "access_log: \"\"\n" },
      "ebb.yaml:1: access_log: must not be empty (\"-\" = stdout, \"off\")" },
    { { .file = "concurrency: 5000\n" },
      "ebb.yaml:1: concurrency: \"5000\" is not an integer (0-1024)" },
    { { .file = "proxy_config:\n  terminationDrainDuration: 5\n" },
      "ebb.yaml:2: proxy_config.terminationDrainDuration: \"5\" " DUR_HINT ": a unit is required" },
    { { .file = "drain:\n  linger: \"2s\\0x\"\n" },
      "ebb.yaml:2: drain.linger: \"2s\\u0000x\" contains a NUL byte" },
};

static void test_error_table(void)
{
    for (size_t i = 0; i < EBB_ARRAY_LEN(err_cases); i++)
        load_err(&err_cases[i].s, err_cases[i].err);
}

/* capture: in ebb.yaml and the two MeshConfig fields; ebb.yaml outranks the mesh config. */
static void test_capture(void)
{
    struct srcs s = { .file = "capture:\n  tcp_ports: [3306, 25]\n" };
    struct ebb_config *cfg = load_ok(&s);
    if (cfg) {
        T_EQ_INT(cfg->capture.ntcp_ports, 2);
        T_EQ_INT(cfg->capture.tcp_ports[0], 3306);
        T_EQ_INT(cfg->capture.tcp_ports[1], 25);
        T_EQ_INT(cfg->capture.outbound_policy, EBB_ALLOW_ANY);
        char *j = ebb_config_to_json(cfg);
        T_CHECK(strstr(j, "\"tcp_ports\":[3306,25]") != NULL);
        T_CHECK(strstr(j, "\"name\":\"PassthroughCluster\"") != NULL);
        T_CHECK(strstr(j, "\"type\":\"ORIGINAL_DST\"") != NULL);
        free(j);
    }
    ebb_config_free(cfg);

    s = (struct srcs){ .mesh = "outboundTrafficPolicy:\n  mode: REGISTRY_ONLY\n"
                               "protocolDetectionTimeout: 100ms\n" };
    cfg = load_ok(&s);
    if (cfg) {
        T_EQ_INT(cfg->capture.outbound_policy, EBB_REGISTRY_ONLY);
        T_EQ_INT(cfg->capture.detect_timeout_ms, 100);
    }
    ebb_config_free(cfg);

    s.file = "capture:\n  outbound_traffic_policy: ALLOW_ANY\n  protocol_detection_timeout: 2s\n";
    cfg = load_ok(&s);
    if (cfg) {
        T_EQ_INT(cfg->capture.outbound_policy, EBB_ALLOW_ANY);
        T_EQ_INT(cfg->capture.detect_timeout_ms, 2000);
    }
    ebb_config_free(cfg);

    /* protocolDetectionTimeout in a ProxyConfig (SPEC §9.2: mesh / annotation): the
     * annotation > PROXY_CONFIG > defaultConfig > the MeshConfig field; capture: > all */
    static const char *const env_pdt[] = { "PROXY_CONFIG={\"protocolDetectionTimeout\": \"3s\"}",
                                           NULL };
    s = (struct srcs){ .mesh = "protocolDetectionTimeout: 100ms\n"
                               "defaultConfig:\n  protocolDetectionTimeout: 200ms\n" };
    cfg = load_ok(&s);
    if (cfg) {
        T_EQ_INT(cfg->capture.detect_timeout_ms, 200);
        T_EQ_INT(cfg->proxy.detect_timeout_src, EBB_SRC_MESH);
    }
    ebb_config_free(cfg);
    s.env = env_pdt;
    cfg = load_ok(&s);
    if (cfg)
        T_EQ_INT(cfg->capture.detect_timeout_ms, 3000);
    ebb_config_free(cfg);
    s.annotations = "proxy.istio.io/config=\"protocolDetectionTimeout: 1500ms\"\n";
    cfg = load_ok(&s);
    if (cfg) {
        T_EQ_INT(cfg->capture.detect_timeout_ms, 1500);
        T_EQ_INT(cfg->proxy.detect_timeout_src, EBB_SRC_ANNOTATION);
        char *j = ebb_config_to_json(cfg);
        T_CHECK(j && strstr(j, "\"protocol_detection_timeout\":\"1.5s\"") != NULL);
        free(j);
    }
    ebb_config_free(cfg);
    s.file = "capture:\n  protocol_detection_timeout: 0s\n";
    cfg = load_ok(&s);
    if (cfg)
        T_EQ_INT(cfg->capture.detect_timeout_ms, 0);
    ebb_config_free(cfg);
    s = (struct srcs){ .annotations = "proxy.istio.io/config=\"protocolDetectionTimeout: soon\"\n" };
    load_err_prefix(&s, "annotations:1: proxy.istio.io/config: protocolDetectionTimeout: ");

    s = (struct srcs){ .mesh = "outboundTrafficPolicy:\n  mode: ALLOW_SOME\n" };
    load_err(&s, "mesh:2: outboundTrafficPolicy.mode: \"ALLOW_SOME\" is not ALLOW_ANY or "
                 "REGISTRY_ONLY");
    s = (struct srcs){ .file = "capture:\n  tcp_ports: [3306, 0]\n" };
    load_err_prefix(&s, "ebb.yaml:2: capture.tcp_ports[1]: ");
    /* stat names are /stats lines: a control character would split one */
    s = (struct srcs){ .file = "clusters:\n  - name: \"app\\nserver.live\"\n"
                               "    endpoints: [\"127.0.0.1:1\"]\n" };
    load_err(&s, "ebb.yaml:2: clusters[0].name: holds a control character (byte 0x0a at "
                 "offset 3): it names stats lines");
    s = (struct srcs){ .file = "listeners:\n  - { name: \"in\\t1\", port: 9000, direction: "
                               "outbound }\n" };
    load_err(&s, "ebb.yaml:2: listeners[0].name: holds a control character (byte 0x09 at "
                 "offset 2): it names stats lines");
    s = (struct srcs){ .file = "clusters:\n  - name: PassthroughCluster\n"
                               "    endpoints: [\"127.0.0.1:1\"]\n" };
    load_err(&s, "ebb.yaml:2: clusters[0].name: \"PassthroughCluster\" is a built-in cluster "
                 "(SPEC §9.4); pick another name");
}

static void test_syntax_errors(void)
{
    struct srcs s = { .file = "a: [1, 2\nb: 3\n" };
    load_err_prefix(&s, "ebb.yaml:");
    s = (struct srcs){ .env = env_pc_syntax };
    load_err_prefix(&s, "PROXY_CONFIG: invalid YAML/JSON at line ");
    s = (struct srcs){ .annotations = "a=\"b\"\nproxy.istio.io/config=\"{\\\"a\\\": \"" };
    load_err_prefix(&s, "annotations:2: proxy.istio.io/config: invalid YAML/JSON at line ");
    s = (struct srcs){ .mesh = "defaultConfig:\n\tdrainDuration: 5s\n" };
    load_err_prefix(&s, "mesh:2: invalid YAML at column ");
    s = (struct srcs){ .annotations = "proxy.istio.io/config=\"\\x00\"" };
    load_err_prefix(&s, "annotations:1: proxy.istio.io/config: invalid YAML/JSON");
    struct ebb_config_args a = { .environ = no_env, .log_level = "chatty" };
    struct ebb_config *cfg = NULL;
    char err[256];
    T_EQ_INT(ebb_config_load(&a, &cfg, err, sizeof(err)), EBB_ECONFIG);
    T_EQ_STR(err, "--log-level: \"chatty\" is not a log level (error, warn, info, debug)");
    a.log_level = "debug";
    T_EQ_INT(ebb_config_load(&a, &cfg, err, sizeof(err)), 0);
    if (cfg)
        T_EQ_STR(cfg->log_level, "debug");
    ebb_config_free(cfg);
}

/* Values quoted in errors: escaped like JSON (always valid UTF-8), cut after
 * 60 bytes or when the buffer is full. */
static void test_quote(void)
{
    char q[96], small[12], want[80];

    ebb_quote("a\"b\\\n\t\x01\x7f\xc3\xa9\xff", 11, q, sizeof(q));
    T_EQ_STR(q, "\"a\\\"b\\\\\\n\\t\\u0001\\u007f\xc3\xa9\\ufffd\"");
    ebb_quote("2s\0x", 4, q, sizeof(q));
    T_EQ_STR(q, "\"2s\\u0000x\"");
    memset(want, 0, sizeof(want));
    want[0] = '"';
    memset(want + 1, 'x', 60);
    memcpy(want + 61, "...\"", 4);
    ebb_quote("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 70, q,
              sizeof(q));
    T_EQ_STR(q, want);
    ebb_quote("\xff\xff\xff", 3, small, sizeof(small));   /* no room for a second escape */
    T_EQ_STR(small, "\"\\ufffd...\"");
    ebb_quote("abc", 3, small, 4);
    T_EQ_STR(small, "");
}

/* A tiny error buffer truncates, never overflows. */
static void test_small_error_buffer(void)
{
    const char *env[] = { "PROXY_CONFIG={\"terminationDrainDuration\": \"5 s\"}", NULL };
    struct ebb_config_args a = { .environ = (char *const *)env };
    struct ebb_config *cfg = NULL;
    char err[16];

    T_EQ_INT(ebb_config_load(&a, &cfg, err, sizeof(err)), EBB_ECONFIG);
    T_EQ_STR(err, "PROXY_CONFIG: t");
    T_EQ_INT(ebb_config_load(&a, &cfg, err, 0), EBB_ECONFIG);
}

/* ------------------------------------------------------------------ */
/* warnings                                                           */

static void load_unknown(void)
{
    struct srcs s = {
        .file = "listners: []\nlimits:\n  max_bodee: 1\nproxy_config:\n  tracing: {}\n",
        .mesh = "defaultConfig:\n  terminationDrainDurration: 5s\n  discoveryAddress: x:1\n"
                "rootNamespace: istio-system\n",
        .annotations = "proxy.istio.io/config=\"{\\\"foo\\\": 1}\"",
    };
    struct ebb_config *cfg = load_ok(&s);
    ebb_config_free(cfg);
}

static void test_unknown_fields_warn(void)
{
    /* one warning per unknown field; Istio fields get their own wording;
     * other top-level MeshConfig keys are silent (debug) */
    T_EQ_INT(count_stderr(load_unknown, "unknown field, ignored"), 4);
    T_EQ_INT(count_stderr(load_unknown, "Istio ProxyConfig field not used by ebb"), 2);
    T_EQ_INT(count_stderr(load_unknown, "ebb.yaml:1: listners: unknown field"), 1);
    T_EQ_INT(count_stderr(load_unknown, "rootNamespace"), 0);
    T_EQ_INT(count_stderr(load_unknown,
                          "annotations:1: proxy.istio.io/config: foo: unknown field"), 1);
}

static void load_capped(void)
{
    struct srcs s = { .file = "clusters:\n  - {name: inbound, endpoints: [\"a:1\"], "
                              "connect_timeout: 30s}\n" };
    struct ebb_config *cfg = load_ok(&s);
    if (cfg)
        T_EQ_INT(cfg->clusters[0].connect_timeout_ms, 10000);
    ebb_config_free(cfg);
}

static void test_connect_timeout_capped(void)
{
    T_EQ_INT(count_stderr(load_capped, "clusters[0].connect_timeout: \"30s\" capped at 10s"), 1);
}

/* ------------------------------------------------------------------ */
/* ebb.yaml                                                           */

/* The example of docs/config.md loads as documented. */
static void test_docs_example(void)
{
    struct ebb_config_args a = { .environ = no_env, .file = data("ebb_docs.yaml") };
    struct ebb_config *cfg = NULL;
    char err[512] = "";

    T_EQ_INT(ebb_config_load(&a, &cfg, err, sizeof(err)), 0);
    if (!cfg) {
        fprintf(stderr, "  %s\n", err);
        return;
    }
    T_EQ_INT(cfg->nlisteners, 2);
    T_EQ_INT(cfg->nclusters, 3 + 4);   /* and the built-in ones */
    T_EQ_STR(cfg->listeners[0].cluster, "app");
    T_EQ_INT(cfg->listeners[0].cluster_idx, 0);
    T_EQ_INT(cfg->listeners[1].nroutes, 2);
    T_EQ_STR(cfg->listeners[1].routes[0].host, "api.local");
    T_EQ_INT(cfg->listeners[1].routes[0].cluster_idx, 1);
    T_EQ_STR(cfg->listeners[1].routes[1].host, "*");
    T_EQ_INT(cfg->listeners[1].routes[1].cluster_idx, 2);
    T_CHECK(cfg->listeners[1].cluster_idx == EBB_NO_CLUSTER);
    T_EQ_INT(cfg->clusters[1].protocol, EBB_UP_H2C);
    T_EQ_INT(cfg->clusters[1].nendpoints, 3);
    T_EQ_STR(cfg->clusters[1].endpoints[1].host, "fd00::7");
    T_EQ_INT(cfg->clusters[1].endpoints[1].port, 8080);
    T_EQ_STR(cfg->clusters[1].endpoints[2].host, "api.internal");
    T_EQ_INT(cfg->proxy.termination_drain_src, EBB_SRC_FILE);
    T_EQ_INT(cfg->proxy.concurrency_src, EBB_SRC_FILE);
    T_EQ_INT(cfg->proxy.admin_port_src, EBB_SRC_FILE);
    T_CHECK(cfg->drain.idle_close_after_set);
    T_EQ_STR(cfg->file, data("ebb_docs.yaml"));
    ebb_config_free(cfg);
}

static void test_file_values(void)
{
    struct srcs s = {
        .file = "readiness: {address: \"[::]\", port: 15121}\n"
                "listeners:\n"
                "  - {port: 9000, direction: inbound, cluster: app, protocol: tcp, "
                "max_connections: 5}\n"
                "  - {port: 9001, direction: outbound, protocol: tcp, cluster: db}\n"
                "  - {address: \"::1\", port: 9002, direction: outbound,\n"
                "     routes: [{host: API.Example.COM, cluster: app}]}\n"
                "  - {name: empty, port: 9003, direction: outbound}\n"
                "clusters:\n"
                "  - name: app\n    endpoints: [\"127.0.0.1:1\", \"[::1]:2\"]\n"
                "    request_timeout: 1.5s\n    pool: {max_idle: 0, idle_timeout: 1m}\n"
                "  - {name: db, endpoints: [\"db.svc:5432\"], connect_timeout: 250ms}\n"
                "limits: {max_request_line: 1024, max_request_headers: 4096, "
                "max_header_count: 256, max_request_body: 10485760, "
                "request_headers_timeout: 5s, idle_timeout: 90s, "
                "h2_max_concurrent_streams: 250, buffer_size: 4096}\n"
                "drain: {idle_close_spread: 0s, drain_timeout: 500ms, drain_deadline: 29s, "
                "linger: 100ms}\n"
                "access_log: /var/log/ebb.log\nlog_level: warn\n"
                "limits_comment: ~\n",
    };
    struct ebb_config *cfg = load_ok(&s);

    if (!cfg)
        return;
    T_EQ_STR(cfg->ready_address, "::");
    T_EQ_INT(cfg->ready_port, 15121);
    T_EQ_INT(cfg->nlisteners, 4);
    T_EQ_STR(cfg->listeners[0].name, "0.0.0.0_9000");
    T_EQ_STR(cfg->listeners[0].address, "0.0.0.0");
    T_EQ_INT(cfg->listeners[0].protocol, EBB_PROTO_TCP);
    T_EQ_INT(cfg->listeners[0].max_connections, 5);
    T_EQ_STR(cfg->listeners[1].name, "127.0.0.1_9001");
    T_EQ_INT(cfg->listeners[1].cluster_idx, 1);
    T_EQ_STR(cfg->listeners[2].name, "[__1]_9002");
    T_EQ_STR(cfg->listeners[2].routes[0].host, "api.example.com");
    T_EQ_INT(cfg->listeners[3].nroutes, 0);
    T_EQ_INT(cfg->clusters[0].request_timeout_ms, 1500);
    T_EQ_INT(cfg->clusters[0].pool_max_idle, 0);
    T_EQ_INT(cfg->clusters[0].pool_idle_timeout_ms, 60000);
    T_EQ_STR(cfg->clusters[0].endpoints[1].host, "::1");
    T_EQ_INT(cfg->clusters[1].connect_timeout_ms, 250);
    T_EQ_STR(cfg->clusters[1].endpoints[0].host, "db.svc");
    T_EQ_INT(cfg->limits.h1.max_line, 1024);
    T_EQ_INT(cfg->limits.h1.max_head, 4096);
    T_EQ_INT(cfg->limits.h1.max_headers, 256);
    T_EQ_INT(cfg->limits.max_request_body, 10485760);
    T_EQ_INT(cfg->limits.request_headers_timeout_ms, 5000);
    T_EQ_INT(cfg->limits.idle_timeout_ms, 90000);
    T_EQ_INT(cfg->limits.h2_max_concurrent_streams, 250);
    T_EQ_INT(cfg->limits.buffer_size, 4096);
    T_EQ_INT(cfg->drain.idle_close_spread_ms, 0);
    T_EQ_INT(cfg->drain.drain_timeout_ms, 500);
    T_EQ_INT(cfg->drain.drain_deadline_ms, 29000);
    T_EQ_INT(cfg->drain.linger_ms, 100);
    T_CHECK(!cfg->drain.idle_close_after_set);
    T_EQ_STR(cfg->access_log, "/var/log/ebb.log");
    T_EQ_STR(cfg->log_level, "warn");
    ebb_config_free(cfg);
    /* an empty file and a file of nulls are the defaults */
    s = (struct srcs){ .file = "" };
    cfg = load_ok(&s);
    if (cfg)
        T_EQ_INT(cfg->nlisteners, 2);
    ebb_config_free(cfg);
    s = (struct srcs){ .file = "listeners:\nclusters:\nlimits:\ndrain: ~\nproxy_config: null\n" };
    cfg = load_ok(&s);
    if (cfg)
        T_EQ_INT(cfg->nlisteners, 2);
    ebb_config_free(cfg);
    /* no listeners at all is allowed (admin and status only) */
    s = (struct srcs){ .file = "listeners: []\n" };
    cfg = load_ok(&s);
    if (cfg)
        T_EQ_INT(cfg->nlisteners, 0);
    ebb_config_free(cfg);
    /* anchors and aliases work (libyaml resolves them) */
    s = (struct srcs){ .file = "clusters:\n  - &c {name: inbound, endpoints: [\"a:1\"]}\n"
                               "  - {name: other, endpoints: [\"b:2\"]}\n" };
    cfg = load_ok(&s);
    ebb_config_free(cfg);
}

/* Lists are capped so every check stays cheap. */
static void test_list_caps(void)
{
    size_t cap = 64 + 1025 * 16;
    char *text = ebb_xmalloc(cap), *p = text;

    p += sprintf(p, "clusters:\n  - name: inbound\n    endpoints:\n");
    for (int i = 0; i < 1025; i++)
        p += sprintf(p, "      - a:%d\n", i + 1);
    struct srcs s = { .file = text };
    load_err(&s, "ebb.yaml:4: clusters[0].endpoints: 1025 items, more than the 1024 allowed");
    free(text);
}

/* JSON (not YAML) everywhere it is allowed, and JSON quirks. */
static void test_json_forms(void)
{
    const char *env[] = { "PROXY_CONFIG={\"terminationDrainDuration\":\"20s\",\"concurrency\":\"3\","
                          "\"holdApplicationUntilProxyStarts\":true,\"proxyMetadata\":"
                          "{\"MINIMUM_DRAIN_DURATION\":\"1.5s\",\"N\":1},"
                          "\"drainDuration\":null,\t\"statusPort\": 15999}", NULL };
    struct srcs s = { .env = env };
    struct ebb_config *cfg = load_ok(&s);

    if (!cfg)
        return;
    T_EQ_INT(cfg->proxy.termination_drain_ms, 20000);
    T_EQ_INT(cfg->proxy.concurrency, 3);
    T_CHECK(cfg->proxy.hold_app);
    T_EQ_INT(cfg->proxy.min_drain_ms, 1500);
    T_EQ_INT(cfg->proxy.min_drain_src, EBB_SRC_PROXY_CONFIG);
    T_EQ_STR(md(cfg, "N", NULL), "1");
    T_EQ_INT(cfg->proxy.drain_duration_src, EBB_SRC_DEFAULT);   /* null = absent */
    T_EQ_INT(cfg->proxy.status_port, 15999);
    ebb_config_free(cfg);
}

/* ------------------------------------------------------------------ */
/* JSON output                                                        */

static int python_check(const char *json, const char *script)
{
    char cmd[4096];
    FILE *f = fopen("dump.json", "w");

    if (!f)
        return -1;
    fputs(json, f);
    fclose(f);
    snprintf(cmd, sizeof(cmd), "/usr/bin/python3 -c '%s' dump.json", script);
    return system(cmd);
}

static void test_to_json(void)
{
    const char *env[] = { "MINIMUM_DRAIN_DURATION=7s", NULL };
    struct srcs s = {
        .file = "proxy_config: {drainDuration: 1m30s}\n"
                "clusters:\n  - {name: inbound, endpoints: [\"[::1]:80\", \"a.b:1\"]}\n",
        .mesh = "defaultConfig:\n  proxyMetadata:\n    EXIT_ON_ZERO_ACTIVE_CONNECTIONS: \"true\"\n",
        .annotations = "proxy.istio.io/config=\"{\\\"terminationDrainDuration\\\": \\\"20s\\\", "
                       "\\\"proxyMetadata\\\": {\\\"WEIRD\\\": \\\"q\\\\\\\"b\\\\\\\\n\\\\n"
                       "t\\\\tc\\\\u0001\\\\u00e9\\\\u2028\\\"}}\"",
        .env = env,
    };
    struct ebb_config *cfg = load_ok(&s);
    char *json;

    if (!cfg)
        return;
    T_EQ_STR(md(cfg, "WEIRD", NULL), "q\"b\\n\nt\tc\x01\xc3\xa9\xe2\x80\xa8");
    json = ebb_config_to_json(cfg);
    T_CHECK(json != NULL);
    if (access("/usr/bin/python3", X_OK) != 0) {
        fprintf(stderr, "  (no /usr/bin/python3: JSON not validated)\n");
    } else {
        T_EQ_INT(python_check(json, "import json,sys; json.load(open(sys.argv[1]))"), 0);
        T_EQ_INT(python_check(json,
            "import json,sys\n"
            "d = json.load(open(sys.argv[1]))\n"
            "s = d[\"sources\"]; p = d[\"proxy_config\"]\n"
            "assert p[\"terminationDrainDuration\"] == \"20s\", p\n"
            "assert s[\"terminationDrainDuration\"] == \"annotation\", s\n"
            "assert p[\"drainDuration\"] == \"1m30s\" and s[\"drainDuration\"] == \"file\"\n"
            "assert s[\"concurrency\"] == \"default\" and p[\"concurrency\"] == 2\n"
            "assert s[\"EXIT_ON_ZERO_ACTIVE_CONNECTIONS\"] == \"mesh config\"\n"
            "assert s[\"MINIMUM_DRAIN_DURATION\"] == \"env\"\n"
            "assert s[\"proxyMetadata\"][\"WEIRD\"] == \"annotation\"\n"
            "assert s[\"proxyMetadata\"][\"EXIT_ON_ZERO_ACTIVE_CONNECTIONS\"] == \"mesh config\"\n"
            "assert p[\"proxyMetadata\"][\"WEIRD\"] == \"q\\\"b\\\\n\\nt\\tc\\x01\\xe9\\u2028\"\n"
            "dr = d[\"drain\"]\n"
            "assert dr[\"exit_on_zero_active_connections\"] is True\n"
            "assert dr[\"minimum_drain_duration\"] == \"7s\" and dr[\"idle_close_after\"] == \"7s\"\n"
            "assert dr[\"idle_close_after_source\"] == \"MINIMUM_DRAIN_DURATION\"\n"
            "assert d[\"admin\"] == {\"address\": \"127.0.0.1\", \"port\": 15000}\n"
            "assert d[\"listeners\"][0][\"cluster\"] == \"inbound\"\n"
            "assert d[\"listeners\"][1][\"cluster\"] is None\n"
            "assert d[\"clusters\"][0][\"endpoints\"] == [\"[::1]:80\", \"a.b:1\"]\n"
            "assert d[\"clusters\"][0][\"connect_timeout\"] == \"1s\"\n"
            "assert d[\"limits\"][\"max_request_headers\"] == 61440\n"
            "assert d[\"limits\"][\"idle_timeout\"] == \"1h0m0s\"\n"
            "assert d[\"file\"] == \"ebb.yaml\" and d[\"mesh_file\"] == \"mesh\"\n"), 0);
    }
    free(json);
    ebb_config_free(cfg);
    /* the default config too, with bytes that are not UTF-8 */
    cfg = ebb_config_default();
    cfg->proxy.metadata = ebb_xcalloc(1, sizeof(*cfg->proxy.metadata));
    cfg->proxy.nmetadata = 1;
    cfg->proxy.metadata[0].key = ebb_xstrdup("BIN\x7f");
    cfg->proxy.metadata[0].value = ebb_xstrdup("\xff\xfe\xc3");
    json = ebb_config_to_json(cfg);
    if (access("/usr/bin/python3", X_OK) == 0)
        T_EQ_INT(python_check(json, "import json,sys; d = json.load(open(sys.argv[1])); "
                                    "assert d[\"file\"] is None; "
                                    "assert d[\"proxy_config\"][\"proxyMetadata\"]"
                                    "[\"BIN\\x7f\"] == \"\\ufffd\" * 3"), 0);
    free(json);
    ebb_config_free(cfg);
}

/* ------------------------------------------------------------------ */
/* the directive tables                                               */

/* Every table default is accepted by its own key and matches what other
 * modules assume (ebb_h1_limits_default, the log levels). */
static void test_table_defaults(void)
{
    struct ebb_config *cfg = ebb_config_default();
    struct ebb_h1_limits h1;
    int level;

    ebb_h1_limits_default(&h1);
    T_EQ_INT(cfg->limits.h1.max_line, h1.max_line);
    T_EQ_INT(cfg->limits.h1.max_head, h1.max_head);
    T_EQ_INT(cfg->limits.h1.max_headers, h1.max_headers);
    const struct ebb_directive *lv = ebb_dfind(&ebb_file_section, "log_level");
    for (size_t i = 0; lv && lv->names[i]; i++)
        T_EQ_INT(ebb_log_parse_level(lv->names[i], &level), 0);
    T_EQ_INT(cfg->proxy.termination_drain_ms, 5000);
    T_EQ_INT(cfg->proxy.min_drain_ms, 5000);
    T_EQ_INT(cfg->listeners[1].max_connections, 10000);
    T_EQ_INT(cfg->clusters[0].pool_idle_timeout_ms, 60000);
    T_EQ_STR(cfg->access_log, "-");
    ebb_config_free(cfg);
}

/* The text between "<!-- begin NAME" (to the end of its line) and "<!-- end NAME". */
static bool docs_block(const char *text, const char *name, size_t *start, size_t *end)
{
    char begin[128], stop[128];
    const char *b, *e;

    snprintf(begin, sizeof(begin), "<!-- begin %s", name);
    snprintf(stop, sizeof(stop), "<!-- end %s", name);
    b = strstr(text, begin);
    e = b ? strstr(b, stop) : NULL;
    if (!b || !e || !strchr(b, '\n') || strchr(b, '\n') > e)
        return false;
    *start = (size_t)(strchr(b, '\n') + 1 - text);
    *end = (size_t)(e - text);
    return true;
}

/* docs/config.md's tables are what the directive tables render; with
 * EBB_UPDATE_DOCS=1 this rewrites them instead. */
static void test_docs_tables(void)
{
    static const struct { const char *name; enum ebb_docs_table t; } blocks[] = {
        { "ebb.yaml keys", EBB_DOCS_FILE_KEYS },
        { "ProxyConfig fields", EBB_DOCS_PROXY_CONFIG },
    };
    char path[PATH_MAX + 32], *text = NULL;
    size_t len = 0, start, end;
    bool update = getenv("EBB_UPDATE_DOCS") != NULL;

    snprintf(path, sizeof(path), "%.4000s/../../../docs/config.md", data_dir);
    T_EQ_INT(ebb_read_file(path, &text, &len), 0);
    for (size_t i = 0; text && i < EBB_ARRAY_LEN(blocks); i++) {
        char *want = ebb_config_docs_markdown(blocks[i].t);
        T_CHECK(docs_block(text, blocks[i].name, &start, &end));
        if (!docs_block(text, blocks[i].name, &start, &end)) {
            free(want);
            continue;
        }
        if (update) {
            char *next = ebb_xmalloc(len + strlen(want) + 1);
            memcpy(next, text, start);
            strcpy(next + start, want);
            strcat(next, text + end);
            free(text);
            text = next;
            len = strlen(text);
        } else if (end - start != strlen(want) || memcmp(text + start, want, end - start)) {
            fprintf(stderr, "  docs/config.md: the \"%s\" table differs from the directive "
                    "tables; run EBB_UPDATE_DOCS=1 build/tests/test_config. It should be:\n%s",
                    blocks[i].name, want);
            T_CHECK(!"docs/config.md is up to date");
        }
        free(want);
    }
    if (update && text) {
        FILE *f = fopen(path, "w");
        T_CHECK(f != NULL);
        if (f) {
            fputs(text, f);
            fclose(f);
        }
    }
    free(text);
}

/* ------------------------------------------------------------------ */

/* tests/unit/data: under the working directory (make runs from the repo
 * root), else found upwards from the test binary (build/[san/]tests/). */
static void find_data_dir(void)
{
    char dir[PATH_MAX], probe[PATH_MAX + 64], *slash;
    ssize_t n;

    if (getcwd(dir, sizeof(dir))) {
        snprintf(probe, sizeof(probe), "%s/tests/unit/data/ebb_docs.yaml", dir);
        if (access(probe, R_OK) == 0) {
            snprintf(data_dir, sizeof(data_dir), "%.4000s/tests/unit/data", dir);
            return;
        }
    }
    n = readlink("/proc/self/exe", dir, sizeof(dir) - 1);
    if (n <= 0)
        return;
    dir[n] = '\0';
    while ((slash = strrchr(dir, '/')) && slash != dir) {
        *slash = '\0';
        snprintf(probe, sizeof(probe), "%s/tests/unit/data/ebb_docs.yaml", dir);
        if (access(probe, R_OK) == 0) {
            snprintf(data_dir, sizeof(data_dir), "%.4000s/tests/unit/data", dir);
            return;
        }
    }
}

static void setup(void)
{
    find_data_dir();
    if (!data_dir[0]) {
        fprintf(stderr, "test_config: tests/unit/data not found\n");
        exit(1);
    }
    snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/ebb-test-config.XXXXXX");
    if (!mkdtemp(tmp_dir) || chdir(tmp_dir) != 0) {
        perror("mkdtemp");
        exit(1);
    }
    ebb_log_level = EBB_LOG_WARN;
}

static void teardown(void)
{
    unlink("ebb.yaml");
    unlink("mesh");
    unlink("annotations");
    unlink("dump.json");
    if (chdir("/") == 0)
        rmdir(tmp_dir);
}

int main(void)
{
    setup();
    T_RUN(test_default);
    T_RUN(test_source_names);
    T_RUN(test_load_nothing);
    T_RUN(test_default_paths);
    T_RUN(test_explicit_paths_must_exist);
    T_RUN(test_seed_mesh_4_2);
    T_RUN(test_seed_mesh_4_4);
    T_RUN(test_seed_mesh_combined);
    T_RUN(test_seed_annotation_file);
    T_RUN(test_seed_annotation_roundtrip);
    T_RUN(test_precedence_table);
    T_RUN(test_merge_rules);
    T_RUN(test_env_knobs);
    T_RUN(test_snake_case);
    T_RUN(test_file_overrides);
    T_RUN(test_annotations_table);
    T_RUN(test_error_table);
    T_RUN(test_syntax_errors);
    T_RUN(test_capture);
    T_RUN(test_quote);
    T_RUN(test_small_error_buffer);
    T_RUN(test_unknown_fields_warn);
    T_RUN(test_connect_timeout_capped);
    T_RUN(test_docs_example);
    T_RUN(test_file_values);
    T_RUN(test_list_caps);
    T_RUN(test_json_forms);
    T_RUN(test_to_json);
    T_RUN(test_table_defaults);
    T_RUN(test_docs_tables);
    teardown();
    T_DONE();
}
