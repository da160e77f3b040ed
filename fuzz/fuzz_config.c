/*
 * fuzz_config.c - libFuzzer driver for the config value parsers: the
 * downward-API annotations file (and the ProxyConfig in it), PROXY_CONFIG
 * text, a whole ebb.yaml, strconv.Unquote, time.ParseDuration, the JSON
 * dump and the JSON string escaper.  The first input byte picks the target; the rest is its input.
 *
 *   make build/fuzz/fuzz_config
 *   build/fuzz/fuzz_config -max_total_time=180 /tmp/corpus fuzz/corpus/config
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ebb/buf.h"
#include "ebb/config_sources.h"
#include "ebb/core.h"
#include "ebb/log.h"
#include "ebb/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *const no_env[] = { NULL };

static void check(bool ok)
{
    if (!ok)
        abort();
}

static void fuzz_annotations(const char *text, size_t len)
{
    char *value = NULL, err[512];
    int rc = ebb_annotations_get("annotations", text, len, "proxy.istio.io/config", &value,
                                 err, sizeof(err));

    check(rc == 0 || (rc == EBB_ECONFIG && value == NULL && err[0]));
    if (value) {
        struct ebb_ydoc d = { .label = "annotations", .line = 1,
                              .prefix = "proxy.istio.io/config: " };
        struct ebb_pc_src pc = { .source = EBB_SRC_ANNOTATION };
        ebb_pc_parse_text(&d, value, strlen(value), &pc, err, sizeof(err));
        ebb_ydoc_free(&d);
        ebb_pc_src_free(&pc);
    }
    free(value);
}

static void fuzz_proxy_config(const char *text, size_t len)
{
    struct ebb_ydoc d = { .label = "PROXY_CONFIG", .marks = true };
    struct ebb_pc_src pc = { .source = EBB_SRC_PROXY_CONFIG };
    char err[512];

    ebb_pc_parse_text(&d, text, len, &pc, err, sizeof(err));
    ebb_ydoc_free(&d);
    ebb_pc_src_free(&pc);
}

/* A whole ebb.yaml; on success the JSON dump must be produced too. */
static void fuzz_ebb_yaml(const char *text, size_t len)
{
    struct ebb_config_args a = { .environ = no_env, .mesh_file = "/dev/null",
                                 .annotations_file = "/dev/null" };
    struct ebb_config *cfg = NULL;
    char err[512];

    if (ebb_config_load_text(&a, text, len, &cfg, err, sizeof(err)) == 0) {
        char *json = ebb_config_to_json(cfg);
        check(json && json[0] == '{');
        for (size_t i = 0; i < cfg->nlisteners; i++) {
            const struct ebb_listener_cfg *l = &cfg->listeners[i];
            check(l->cluster ? l->cluster_idx < cfg->nclusters
                             : l->cluster_idx == EBB_NO_CLUSTER);
            for (size_t j = 0; j < l->nroutes; j++)
                check(l->routes[j].cluster_idx < cfg->nclusters);
        }
        free(json);
        ebb_config_free(cfg);
    } else {
        check(cfg == NULL && err[0]);
    }
}

static void fuzz_unquote(const char *text, size_t len)
{
    size_t n = 0;
    char *out = ebb_go_unquote(text, len, &n);

    if (out) {
        check(len >= 2 && text[0] == '"' && text[len - 1] == '"');
        check(n <= 3 * len && out[n] == '\0');
    }
    free(out);
}

/* Parse, and what we print must parse back to the same value. */
static void fuzz_duration(const char *text)
{
    uint64_t ms = 0, back = 0;
    char buf[64];
    bool b;

    if (ebb_parse_duration_ms(text, &ms) == 0) {
        ebb_format_duration_ms(ms, buf, sizeof(buf));
        check(ebb_parse_duration_ms(buf, &back) == 0 && back == ms);
    }
    ebb_parse_bool(text, &b);
    ebb_parse_uint(text, 1, 65535, &ms);
}

/* Any bytes come out of the JSON escaper as valid UTF-8 without raw
 * control bytes, and error quoting never overflows. */
static void fuzz_json_escape(const char *text, size_t len)
{
    struct ebb_buf b = { .max = 1 << 20 };
    char q[96];
    uint32_t r;

    if (ebb_buf_append_json_str(&b, text) == 0) {
        const char *p = ebb_buf_start(&b);
        size_t n = ebb_buf_len(&b);
        for (size_t i = 0, k; i < n; i += k) {
            k = ebb_utf8_decode(p + i, n - i, &r);
            check(!(k == 1 && r == 0xFFFD) && (unsigned char)p[i] >= 0x20 && p[i] != 0x7f);
        }
    }
    ebb_buf_free(&b);
    ebb_quote(text, len, q, sizeof(q));
    check(strlen(q) < sizeof(q));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text;
    size_t len;

    if (size < 1)
        return 0;
    ebb_log_level = EBB_LOG_ERROR;   /* unknown-field warnings are expected */
    len = size - 1;
    text = malloc(len + 1);   /* exact size, so ASan sees any over-read */
    if (!text)
        return 0;
    memcpy(text, data + 1, len);
    text[len] = '\0';
    switch (data[0] % 5) {
    case 0: fuzz_annotations(text, len); break;
    case 1: fuzz_proxy_config(text, len); break;
    case 2: fuzz_ebb_yaml(text, len); break;
    case 3: fuzz_unquote(text, len); break;
    default:
        fuzz_duration(text);
        fuzz_json_escape(text, len);
        break;
    }
    free(text);
    return 0;
}
