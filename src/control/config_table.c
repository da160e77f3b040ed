/*
 * config_table.c - every config key as data (config_table.h), and what is
 * done with a table alone: storing its defaults, freeing what it owns.
 * Reading YAML with a table: config_walk.c.
 *
 * The tables are in the order of the JSON dump (docs/config.md), which is
 * also the order of docs/config.md's generated tables; YAML keys are read
 * in document order whatever the table order.
 */
#include <stddef.h>
#include <string.h>

#include "ebb/config_table.h"
#include "ebb/config_yaml.h"
#include "ebb/core.h"
#include "ebb/parse.h"

/* A value's place in its section's struct. */
#define AT(type, field) .off = offsetof(type, field), .size = sizeof(((type *)0)->field)
#define CF(field) AT(struct ebb_config, field)
#define LF(field) AT(struct ebb_listener_cfg, field)
#define RF(field) AT(struct ebb_route_cfg, field)
#define KF(field) AT(struct ebb_cluster_cfg, field)
#define MF(field) AT(struct ebb_limits_cfg, field)
#define PF(field) AT(struct ebb_proxy_cfg, field)
#define SRC(type, field) .src_off = offsetof(type, field)
#define LIST_OF(type, owner, arr, count) \
    AT(owner, arr), .count_off = offsetof(owner, count), .elem_size = sizeof(type)
#define SECTION_OF(table, camel, ignored) { table, EBB_ARRAY_LEN(table), camel, ignored }
#define PORT .min = 1, .max = 65535, .unit = "a port"

static const char *const direction_names[] = { "inbound", "outbound", NULL };
static const char *const proto_names[] = { "http", "tcp", NULL };
static const char *const upstream_names[] = { "http1", "h2c", NULL };
static const char *const kind_names[] = { "STATIC", "ORIGINAL_DST", "BLACKHOLE", NULL };
static const char *const policy_names[] = { "ALLOW_ANY", "REGISTRY_ONLY", NULL };
static const char *const level_names[] = { "error", "warn", "info", "debug", NULL };
static const char *const mode_names[] = { "termination_drain_duration",
                                          "exit_on_zero_active_connections", NULL };

/* Istio ProxyConfig fields ebb does not use: a warning says "not used by
 * ebb" rather than "unknown" (so a typo still stands out). */
static const char *const istio_fields[] = {
    "config_path", "binary_path", "service_cluster",
    "parent_shutdown_duration", "discovery_address", "discovery_refresh_delay",
    "zipkin_address", "stat_name_length", "connect_timeout", "statsd_udp_address",
    "envoy_metrics_service_address", "proxy_bootstrap_template_path",
    "control_plane_auth_policy", "custom_config_file", "interception_mode", "tracing",
    "envoy_access_log_service", "envoy_metrics_service", "sds", "proxy_stats_matcher",
    "extra_stat_tags", "gateway_topology", "mesh_id", "readiness_probe",
    "ca_certificates_pem", "image", "private_key_provider", "runtime_values",
    "proxy_headers", "availability_zone", "tracing_service_name", "file_flush_interval",
    "file_flush_min_size_kb", "host_aliases", "stats_flush_interval", "proxy_stats_tags",
    NULL,
};

/* ------------------------------------------------------------------ */
/* ProxyConfig                                                        */

static const struct ebb_directive pc_d[] = {
    { "termination_drain_duration", EBB_D_DURATION, PF(termination_drain_ms), .dflt = "5s",
      SRC(struct ebb_proxy_cfg, termination_drain_src),
      .doc = "drain length in the default mode" },
    { "drain_duration", EBB_D_DURATION, PF(drain_duration_ms), .dflt = "45s",
      SRC(struct ebb_proxy_cfg, drain_duration_src), .doc = "how long inbound listeners keep accepting while draining" },
    { "concurrency", EBB_D_UINT, PF(concurrency), .max = 1024, .unit = "an integer",
      .dflt = "2", SRC(struct ebb_proxy_cfg, concurrency_src),
      .doc = "worker threads, 0 = one per CPU" },
    { "proxy_admin_port", EBB_D_UINT, PF(admin_port), PORT, .dflt = "15000",
      SRC(struct ebb_proxy_cfg, admin_port_src), .doc = "the admin API (127.0.0.1 by default)" },
    { "status_port", EBB_D_UINT, PF(status_port), PORT, .dflt = "15020",
      SRC(struct ebb_proxy_cfg, status_port_src), .doc = "the status API (pilot-agent-compatible subset)" },
    { "hold_application_until_proxy_starts", EBB_D_BOOL, PF(hold_app), .dflt = "false",
      SRC(struct ebb_proxy_cfg, hold_app_src), .doc = "honoured by the deploy manifests with `ebb wait`" },
    { "protocol_detection_timeout", EBB_D_DURATION, PF(detect_timeout_ms), .dflt = "0s",
      SRC(struct ebb_proxy_cfg, detect_timeout_src),
      .doc = "a captured connection silent this long is relayed as TCP; 0 = wait forever. Outranks "
             "the mesh config's top-level field; `capture.protocol_detection_timeout` outranks it" },
    { "proxy_metadata", EBB_D_METADATA, LIST_OF(struct ebb_kv, struct ebb_proxy_cfg, metadata,
                                                nmetadata),
      .dflt_doc = "{}", .doc = "merged key by key; keys are case-sensitive, any scalar is a "
                               "string, null is \"\"" },
};
const struct ebb_dsection ebb_pc_section = SECTION_OF(pc_d, true, istio_fields);

/* proxyMetadata keys that act as environment variables (the environment wins). */
static const struct ebb_directive knob_d[] = {
    { "EXIT_ON_ZERO_ACTIVE_CONNECTIONS", EBB_D_BOOL, PF(exit_on_zero), .dflt = "false",
      SRC(struct ebb_proxy_cfg, exit_on_zero_src),
      .doc = "exit at zero connections; also an env var (the env wins)" },
    { "MINIMUM_DRAIN_DURATION", EBB_D_DURATION, PF(min_drain_ms), .dflt = "5s",
      SRC(struct ebb_proxy_cfg, min_drain_src),
      .doc = "least drain time in exit-on-zero mode; also an env var (the env wins)" },
};
const struct ebb_dsection ebb_knob_section = SECTION_OF(knob_d, false, NULL);

/* ------------------------------------------------------------------ */
/* ebb.yaml                                                           */

static const struct ebb_directive route_d[] = {
    { "host", EBB_D_STRING, EBB_D_F_REQUIRED | EBB_D_F_NONEMPTY | EBB_D_F_LOWER, RF(host),
      .hint = "\"*\" matches all",
      .doc = "Host/authority to match, port optional, case-insensitive; \"*\" matches all" },
    { "cluster", EBB_D_STRING, EBB_D_F_REQUIRED, RF(cluster), .doc = "a cluster's name" },
};
const struct ebb_dsection ebb_route_section = SECTION_OF(route_d, false, NULL);

static const struct ebb_directive listener_d[] = {
    { "name", EBB_D_STRING, EBB_D_F_NONEMPTY | EBB_D_F_UNIQUE | EBB_D_F_STATNAME, LF(name), .dflt_doc = "`<address>_<port>`",
      .doc = "stat prefix" },
    { "address", EBB_D_ADDRESS, 0, LF(address), .dflt_doc = "`0.0.0.0` inbound, "
      "`127.0.0.1` outbound", .doc = "bind address: numeric IPv4 or IPv6 (`::`, `[::1]`)" },
    { "port", EBB_D_UINT, EBB_D_F_REQUIRED | EBB_D_F_NODE, LF(port), PORT,
      .doc = "every listener, admin, status and readiness port must be distinct (an IPv6 "
             "address may share a port with an IPv4 one)" },
    { "direction", EBB_D_ENUM, EBB_D_F_REQUIRED, LF(direction), .names = direction_names,
      .hint = "inbound or outbound", .doc = "inbound: to the app; outbound: from the app" },
    { "protocol", EBB_D_ENUM, 0, LF(protocol), .names = proto_names, .dflt = "http",
      .doc = "tcp relays bytes" },
    { "cluster", EBB_D_STRING, 0, LF(cluster), .doc = "the fixed cluster: required for inbound "
      "and outbound tcp, not allowed on outbound http (use a \"*\" route)" },
    { "routes", EBB_D_LIST, 0, LIST_OF(struct ebb_route_cfg, struct ebb_listener_cfg, routes,
                                       nroutes), .max = 4096, .sub = &ebb_route_section,
      .doc = "outbound http only: first match wins; none = every request gets 404; a route "
             "after \"*\" or after one with the same host warns (unreachable)" },
    { "max_connections", EBB_D_UINT, 0, LF(max_connections), .min = 1, .max = UINT32_MAX,
      .unit = "an integer", .dflt = "10000", .doc = "open connections at once" },
};
const struct ebb_dsection ebb_listener_section = SECTION_OF(listener_d, false, NULL);

static const struct ebb_directive pool_d[] = {
    { "max_idle", EBB_D_UINT, 0, KF(pool_max_idle), .max = 65535, .unit = "an integer",
      .dflt = "64", .doc = "idle keep-alive upstream connections kept per worker; 0 = none" },
    { "idle_timeout", EBB_D_DURATION, 0, KF(pool_idle_timeout_ms), .min = 1, .dflt = "60s",
      .doc = "an idle pooled connection is closed after this" },
};
static const struct ebb_dsection pool_section = SECTION_OF(pool_d, false, NULL);

static const struct ebb_directive cluster_d[] = {
    { "name", EBB_D_STRING, EBB_D_F_REQUIRED | EBB_D_F_NONEMPTY | EBB_D_F_UNIQUE | EBB_D_F_STATNAME,
      KF(name),
      .doc = "what listeners and routes name" },
    { "endpoints", EBB_D_ENDPOINTS, EBB_D_F_REQUIRED,
      LIST_OF(struct ebb_endpoint, struct ebb_cluster_cfg, endpoints, nendpoints),
      .min = 1, .max = 1024, .unit = "host:port",
      .hint = "a list of host:port, e.g. [\"127.0.0.1:8080\"]",
      .doc = "round robin; `host:port` or `[v6]:port`, host an IPv4 address or a DNS name "
             "(letters, digits, `-`, `.`, `_`)" },
    { "protocol", EBB_D_ENUM, 0, KF(protocol), .names = upstream_names, .dflt = "http1",
      .doc = "the upstream protocol" },
    { "connect_timeout", EBB_D_DURATION, 0, KF(connect_timeout_ms), .min = 1, .max = 10000,
      .dflt = "1s", .doc = "upstream connect timeout" },
    { "request_timeout", EBB_D_DURATION, 0, KF(request_timeout_ms), .dflt = "0s",
      .doc = "0 = none; else 504 UT when no response head arrives this long after the "
             "request ended (like Envoy's route timeout)" },
    { "pool", EBB_D_SECTION, 0, .off = 0, .sub = &pool_section },
    { "type", EBB_D_ENUM, EBB_D_F_DUMP, KF(kind), .names = kind_names },
    { "bind_address", EBB_D_STRING, EBB_D_F_DUMP, KF(bind_address) },
};
const struct ebb_dsection ebb_cluster_section = SECTION_OF(cluster_d, false, NULL);

static const struct ebb_directive limits_d[] = {
    { "max_request_line", EBB_D_UINT, 0, MF(h1.max_line), .min = 64, .max = 1 << 20,
      .unit = "a size in bytes", .dflt = "8192",
      .doc = "-> 414; at most max_request_headers (the head limit covers the line)" },
    { "max_request_headers", EBB_D_UINT, 0, MF(h1.max_head), .min = 256, .max = 1 << 20,
      .unit = "a size in bytes", .dflt = "61440", .doc = "bytes of the whole head -> 431" },
    { "max_header_count", EBB_D_UINT, 0, MF(h1.max_headers), .min = 1,
      .max = EBB_H1_MAX_HEADERS_CAP, .unit = "a count", .dflt = "100", .doc = "-> 431" },
    { "max_request_body", EBB_D_UINT, 0, MF(max_request_body), .max = UINT64_MAX,
      .unit = "a size in bytes", .dflt = "0", .doc = "0 = unlimited, else -> 413" },
    { "request_headers_timeout", EBB_D_DURATION, 0, MF(request_headers_timeout_ms), .min = 1,
      .dflt = "10s", .doc = "time to receive a complete request head" },
    { "idle_timeout", EBB_D_DURATION, 0, MF(idle_timeout_ms), .min = 1, .dflt = "1h",
      .doc = "downstream keep-alive idle" },
    { "tcp_idle_timeout", EBB_D_DURATION, 0, MF(tcp_idle_timeout_ms), .dflt = "1h",
      .doc = "a TCP relay or upgraded (WebSocket) tunnel with no byte either way this long is "
             "closed (Envoy's tcp_proxy idle_timeout); 0 = never" },
    { "h2_max_concurrent_streams", EBB_D_UINT, 0, MF(h2_max_concurrent_streams), .min = 1,
      .max = INT32_MAX, .unit = "a count", .dflt = "100", .doc = "per HTTP/2 connection" },
    { "buffer_size", EBB_D_UINT, 0, MF(buffer_size), .min = 4096, .max = 64u << 20,
      .unit = "a size in bytes", .dflt = "65536",
      .doc = "per-direction buffer ceiling of a connection (a request head always fits)" },
};
static const struct ebb_dsection limits_section = SECTION_OF(limits_d, false, NULL);

/* base struct ebb_config: the dump shows the drain-related ProxyConfig values too */
static const struct ebb_directive drain_d[] = {
    { "mode", EBB_D_ENUM, EBB_D_F_DUMP, CF(proxy.exit_on_zero), .names = mode_names },
    { "exit_on_zero_active_connections", EBB_D_BOOL, EBB_D_F_DUMP, CF(proxy.exit_on_zero) },
    { "minimum_drain_duration", EBB_D_DURATION, EBB_D_F_DUMP, CF(proxy.min_drain_ms) },
    { "termination_drain_duration", EBB_D_DURATION, EBB_D_F_DUMP,
      CF(proxy.termination_drain_ms) },
    { "drain_duration", EBB_D_DURATION, EBB_D_F_DUMP, CF(proxy.drain_duration_ms) },
    { "idle_close_after", EBB_D_DURATION, 0, CF(drain.idle_close_after_ms),
      .set_off = offsetof(struct ebb_config, drain.idle_close_after_set),
      .unset_source = "MINIMUM_DRAIN_DURATION", .dflt_doc = "`MINIMUM_DRAIN_DURATION`",
      .doc = "idle inbound connections are closed once idle this long during a drain (from its "
             "start, or from when they became idle)" },
    { "idle_close_spread", EBB_D_DURATION, 0, CF(drain.idle_close_spread_ms), .dflt = "1s",
      .doc = "random spread of idle closes" },
    { "drain_timeout", EBB_D_DURATION, 0, CF(drain.drain_timeout_ms), .dflt = "1s",
      .doc = "HTTP/2 second GOAWAY at the latest after this" },
    { "drain_deadline", EBB_D_DURATION, 0, CF(drain.drain_deadline_ms), .dflt = "0s",
      .doc = "exit-on-zero upper bound; 0 = none" },
    { "linger", EBB_D_DURATION, 0, CF(drain.linger_ms), .dflt = "2s",
      .doc = "staged close: read-and-discard time after shutdown(WR)" },
};
static const struct ebb_dsection drain_section = SECTION_OF(drain_d, false, NULL);

#define XF(field) AT(struct ebb_capture_cfg, field)
static const struct ebb_directive capture_d[] = {
    { "tcp_ports", EBB_D_PORTS, 0, LIST_OF(uint16_t, struct ebb_capture_cfg, tcp_ports,
                                           ntcp_ports), .max = 1024, .unit = "a port",
      .doc = "original destination ports relayed as TCP without protocol detection "
             "(server-first protocols: MySQL, SMTP, ...)" },
    { "protocol_detection_timeout", EBB_D_DURATION, 0, XF(detect_timeout_ms), .dflt = "0s",
      .set_off = offsetof(struct ebb_capture_cfg, detect_timeout_set),
      .unset_source = "proxy config, mesh config or default",
      .doc = "a captured connection silent this long is relayed as TCP; 0 = wait forever; "
             "outranks `protocolDetectionTimeout` from every other source" },
    { "outbound_traffic_policy", EBB_D_ENUM, 0, XF(outbound_policy), .names = policy_names,
      .dflt = "ALLOW_ANY", .set_off = offsetof(struct ebb_capture_cfg, outbound_policy_set),
      .unset_source = "mesh config or default",
      .doc = "captured outbound traffic no route names: to its original destination "
             "(`PassthroughCluster`), or refused (`BlackHoleCluster`); outranks the mesh "
             "config's `outboundTrafficPolicy.mode`" },
};
static const struct ebb_dsection capture_section = SECTION_OF(capture_d, false, NULL);

static const struct ebb_directive admin_d[] = {
    { "address", EBB_D_ADDRESS, 0, CF(admin_address), .dflt = "127.0.0.1", .doc = "numeric" },
    { "port", EBB_D_UINT, EBB_D_F_NODE, CF(proxy.admin_port), PORT,
      SRC(struct ebb_config, proxy.admin_port_src), .dflt_doc = "`proxyAdminPort`",
      .doc = "overrides proxyAdminPort from every ProxyConfig source" },
};
static const struct ebb_directive status_d[] = {
    { "address", EBB_D_ADDRESS, 0, CF(status_address), .dflt = "0.0.0.0", .doc = "numeric" },
    { "port", EBB_D_UINT, EBB_D_F_NODE, CF(proxy.status_port), PORT,
      SRC(struct ebb_config, proxy.status_port_src), .dflt_doc = "`statusPort`",
      .doc = "overrides statusPort from every ProxyConfig source" },
};
static const struct ebb_directive readiness_d[] = {
    { "address", EBB_D_ADDRESS, 0, CF(ready_address), .dflt = "0.0.0.0", .doc = "numeric" },
    { "port", EBB_D_UINT, EBB_D_F_NODE, CF(ready_port), PORT, .dflt = "15021",
      .doc = "GET /healthz/ready" },
};
static const struct ebb_dsection admin_section = SECTION_OF(admin_d, false, NULL);
static const struct ebb_dsection status_section = SECTION_OF(status_d, false, NULL);
static const struct ebb_dsection readiness_section = SECTION_OF(readiness_d, false, NULL);

static const struct ebb_directive file_d[] = {
    { "file", EBB_D_STRING, EBB_D_F_DUMP, CF(file) },
    { "mesh_file", EBB_D_STRING, EBB_D_F_DUMP, CF(mesh_file) },
    { "annotations_file", EBB_D_STRING, EBB_D_F_DUMP, CF(annotations_file) },
    { "proxy_config", EBB_D_PROXY_CONFIG, 0, CF(proxy),
      .doc = "ProxyConfig fields (below), ranked just above the defaults (source `file`)" },
    { "drain", EBB_D_SECTION, 0, .off = 0, .sub = &drain_section },
    { "admin", EBB_D_SECTION, 0, .off = 0, .sub = &admin_section },
    { "status", EBB_D_SECTION, 0, .off = 0, .sub = &status_section },
    { "readiness", EBB_D_SECTION, 0, .off = 0, .sub = &readiness_section },
    { "concurrency", EBB_D_UINT, 0, CF(proxy.concurrency), .max = 1024, .unit = "an integer",
      SRC(struct ebb_config, proxy.concurrency_src), .dflt_doc = "ProxyConfig `concurrency`",
      .doc = "worker threads, 0 = one per CPU; overrides every ProxyConfig source" },
    { "access_log", EBB_D_STRING, EBB_D_F_NONEMPTY, CF(access_log), .dflt = "-",
      .hint = "\"-\" = stdout, \"off\"", .doc = "`-` = stdout (JSON lines), `off`, or a path" },
    { "log_level", EBB_D_STRING, 0, CF(log_level), .names = level_names, .unit = "a log level",
      .dflt = "info", .doc = "`--log-level` overrides it" },
    { "listeners", EBB_D_LIST, 0, LIST_OF(struct ebb_listener_cfg, struct ebb_config,
                                          listeners, nlisteners),
      .max = 1024, .sub = &ebb_listener_section,
      .doc = "replaces both built-in listeners; `[]` = admin and status only" },
    { "clusters", EBB_D_LIST, 0, LIST_OF(struct ebb_cluster_cfg, struct ebb_config, clusters,
                                         nclusters),
      .max = 4096, .sub = &ebb_cluster_section,
      .doc = "replaces the built-in `inbound` cluster" },
    { "limits", EBB_D_SECTION, 0, .off = offsetof(struct ebb_config, limits),
      .sub = &limits_section },
    { "capture", EBB_D_SECTION, 0, .off = offsetof(struct ebb_config, capture),
      .sub = &capture_section },
};
const struct ebb_dsection ebb_file_section = SECTION_OF(file_d, false, NULL);

/* ------------------------------------------------------------------ */
/* values                                                             */

uint64_t ebb_dget_uint(const void *base, size_t off, size_t size)
{
    const char *p = (const char *)base + off;

    switch (size) {
    case 1: return *(const uint8_t *)p;
    case 2: return *(const uint16_t *)p;
    case 4: return *(const uint32_t *)p;
    default: return *(const uint64_t *)p;
    }
}

void ebb_dset_uint(void *base, size_t off, size_t size, uint64_t v)
{
    char *p = (char *)base + off;

    switch (size) {
    case 1: *(uint8_t *)p = (uint8_t)v; break;
    case 2: *(uint16_t *)p = (uint16_t)v; break;
    case 4: *(uint32_t *)p = (uint32_t)v; break;
    default: *(uint64_t *)p = v; break;
    }
}

const struct ebb_directive *ebb_dfind(const struct ebb_dsection *sec, const char *name)
{
    for (size_t i = 0; i < sec->n; i++) {
        if (!(sec->d[i].flags & EBB_D_F_DUMP) && ebb_ykey_is(name, sec->d[i].name))
            return &sec->d[i];
    }
    return NULL;
}

int ebb_dname_index(const char *const *names, const char *s)
{
    for (int i = 0; names[i]; i++) {
        if (strcmp(names[i], s) == 0)
            return i;
    }
    return -1;
}

/* ------------------------------------------------------------------ */
/* defaults and freeing                                               */

void ebb_ddefaults(const struct ebb_dsection *sec, void *base)
{
    for (size_t i = 0; i < sec->n; i++) {
        const struct ebb_directive *dir = &sec->d[i];
        void *field = (char *)base + dir->off;
        uint64_t u = 0;
        bool b = false;
        int rc = 0, idx;

        if (dir->kind == EBB_D_SECTION)
            ebb_ddefaults(dir->sub, field);
        if (!dir->dflt || (dir->flags & EBB_D_F_DUMP))
            continue;
        switch (dir->kind) {
        case EBB_D_DURATION: rc = ebb_parse_duration_ms(dir->dflt, &u); break;
        case EBB_D_UINT: rc = ebb_parse_uint(dir->dflt, dir->min, dir->max, &u); break;
        case EBB_D_BOOL: rc = ebb_parse_bool(dir->dflt, &b); u = b; break;
        case EBB_D_ENUM:
            rc = idx = ebb_dname_index(dir->names, dir->dflt);
            u = (uint64_t)idx;
            break;
        default:
            free(*(char **)field);
            *(char **)field = ebb_xstrdup(dir->dflt);
            continue;
        }
        EBB_BUG_ON(rc < 0);   /* a default the table itself does not accept */
        ebb_dset_uint(base, dir->off, dir->kind == EBB_D_DURATION ? 8 : dir->size, u);
    }
}

void ebb_dfree_list(const struct ebb_directive *dir, void *base)
{
    char **arr = (char **)((char *)base + dir->off);
    size_t *count = (size_t *)((char *)base + dir->count_off);

    for (size_t i = 0; *arr && i < *count; i++) {
        void *item = *arr + i * dir->elem_size;
        if (dir->kind == EBB_D_LIST) {
            ebb_dfree(dir->sub, item);
        } else if (dir->kind == EBB_D_PORTS) {
            continue;   /* plain numbers */
        } else if (dir->kind == EBB_D_ENDPOINTS) {
            free(((struct ebb_endpoint *)item)->host);
        } else {
            free(((struct ebb_kv *)item)->key);
            free(((struct ebb_kv *)item)->value);
        }
    }
    free(*arr);
    *arr = NULL;
    *count = 0;
}

void ebb_dfree(const struct ebb_dsection *sec, void *base)
{
    for (size_t i = 0; i < sec->n; i++) {
        const struct ebb_directive *dir = &sec->d[i];
        switch (dir->kind) {
        case EBB_D_STRING:
        case EBB_D_ADDRESS:
            free(*(char **)((char *)base + dir->off));
            *(char **)((char *)base + dir->off) = NULL;
            break;
        case EBB_D_SECTION:
            ebb_dfree(dir->sub, (char *)base + dir->off);
            break;
        case EBB_D_PROXY_CONFIG:
            ebb_dfree(&ebb_pc_section, (char *)base + dir->off);
            break;
        case EBB_D_LIST:
        case EBB_D_ENDPOINTS:
        case EBB_D_METADATA:
        case EBB_D_PORTS:
            ebb_dfree_list(dir, base);
            break;
        default:
            break;
        }
    }
}
