"""Admin, status and readiness APIs (SPEC §5, §6) and the validate/version commands."""

import json
import os
import re

from lib import check, check_eq, fail, free_port, http, parse_stats, run, wait_for

PROM_LINE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"'
                       r'(,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*")*,?\})? '
                       r'(-?[0-9.]+([eE][-+]?[0-9]+)?|[-+]?Inf|NaN)( -?[0-9]+)?$')


def test_ready_endpoints(env):
    e = env.start()
    st, body = e.admin("GET", "/ready")
    check_eq((st, body.strip()), (200, "LIVE"), "admin GET /ready")
    st, _ = e.admin("GET", "/healthz/ready", port=e.readiness_port)
    check_eq(st, 200, "readiness port GET /healthz/ready")
    st, _ = e.admin("GET", "/healthz/ready", port=e.status_port)
    check_eq(st, 200, "status port GET /healthz/ready")


def test_stats_text_format_and_counters(env):
    e = env.start()
    port = e.port("inbound")
    for _ in range(3):
        check_eq(http(port, "GET", "/hello").status, 200, "request")
    st, body = e.admin("GET", "/stats")
    check_eq(st, 200, "GET /stats")
    for ln in body.splitlines():
        check(re.match(r"^[A-Za-z0-9_.:\-]+: \S.*$", ln), "not an Envoy stats line: %r" % ln)
    s = parse_stats(body)
    for name, want in (("server.state", 0), ("server.live", 1)):
        check_eq(s.get(name), want, name)
    lin = {st_: e.lstat("inbound", st_) for st_ in ("downstream_cx_active", "downstream_cx_total",
                                                     "downstream_cx_destroy")}
    for name in ["server.uptime", "server.total_connections",
                 "http.inbound.downstream_rq_active", "http.inbound.downstream_rq_total",
                 "http.inbound.downstream_rq_2xx", "http.inbound.downstream_rq_5xx",
                 "http.inbound.downstream_cx_drain_close", "cluster.app.upstream_cx_active",
                 "cluster.app.upstream_rq_total", "cluster.app.upstream_cx_connect_fail",
                 "http2.goaway_sent", e.lstat("outbound", "downstream_cx_total"),
                 e.lstat("tcp", "downstream_cx_total")] + list(lin.values()):
        check(name in s, "stat %s missing from /stats" % name)
    e.wait_stat("http.inbound.downstream_rq_active", lambda v: v == 0)
    s = e.stats()
    check_eq(s["http.inbound.downstream_rq_total"], 3, "http.inbound.downstream_rq_total")
    check_eq(s["http.inbound.downstream_rq_2xx"], 3, "http.inbound.downstream_rq_2xx")
    check_eq(s["cluster.app.upstream_rq_total"], 3, "cluster.app.upstream_rq_total")
    check_eq(s[lin["downstream_cx_total"]], 3, lin["downstream_cx_total"])
    e.wait_stat(lin["downstream_cx_active"], lambda v: v == 0)
    check(s["server.total_connections"] >= 0, "server.total_connections")


def test_stats_usedonly(env):
    e = env.start()
    http(e.port("inbound"), "GET", "/hello")
    full = e.stats()
    used = e.stats("?usedonly")
    check(used, "?usedonly returned nothing")
    check(set(used) <= set(full), "usedonly has names not in /stats: %s" % (set(used) - set(full)))
    check(len(used) < len(full), "usedonly is not smaller than /stats (%d vs %d)" % (len(used), len(full)))
    check("http.inbound.downstream_rq_total" in used, "a used counter missing from usedonly")
    check("cluster.dead.upstream_cx_connect_fail" not in used,
          "never-used counter cluster.dead.upstream_cx_connect_fail listed by usedonly")


def test_stats_filter(env):
    e = env.start()
    s = e.stats("?filter=%5Ecluster%5C.app%5C.")        # ^cluster\.app\.
    check(s, "filter matched nothing")
    for k in s:
        check(k.startswith("cluster.app."), "filter ^cluster\\.app\\. let %s through" % k)
    s = e.stats("?filter=upstream_rq_total")
    check("cluster.app.upstream_rq_total" in s and "cluster.dead.upstream_rq_total" in s,
          "filter=upstream_rq_total: %s" % sorted(s))
    check(all("upstream_rq_total" in k for k in s), "filter leaked: %s" % sorted(s))
    s = e.stats("?usedonly&filter=%5Eserver%5C.")
    check(all(k.startswith("server.") for k in s), "usedonly&filter: %s" % sorted(s))



def test_stats_filter_costly_regex(env):
    """A /stats filter whose compilation would blow up (repetition counts nested or too large,
    back-references: glibc's regcomp overflows the stack, takes gigabytes or minutes on these)
    is refused as an invalid regex; ebb goes on answering (found by fuzz/fuzz_admin_query.c)."""
    e = env.start()
    for q in ("(.*){1,32767}(.*){1,32767}",           # stack overflow in regcomp: ebb died
              "((a{0,255}){0,255}){0,255}",            # gigabytes
              "(((a{1,200}){1,200}){1,200}){1,200}",   # minutes
              "%5Eh" + "*" * 100 + "total$",            # seconds per nested star
              "(((((a*)*)*)*)*)",                      # the same through groups
              "(|)(%5C1%5C1)*"):                       # back-reference
        st, body = e.admin("GET", "/stats?filter=" + q, timeout=30)
        check_eq(st, 200, "GET /stats?filter=%s status" % q)
        check(body.startswith(b"invalid regex") if isinstance(body, bytes)
              else body.startswith("invalid regex"), "filter=%s answered %r" % (q, body[:200]))
    s = e.stats("?filter=upstream_rq_total%7Crq_total%7B0,3%7D")   # a small count still works
    check(s and all("rq_total" in k for k in s), "filter with {0,3}: %s" % sorted(s))
    s = e.stats("?filter=%5E(cluster%5C.(app)%2B%5C.)%2Bup.*total$")  # nesting 2 still works
    check(s and all(k.startswith("cluster.app.") for k in s), "filter ^(cluster\\.(app)+\\.)+: %s"
          % sorted(s))
    st, _ = e.admin("GET", "/ready")
    check_eq(st, 200, "GET /ready after the costly filters")

def _check_prometheus(body, where):
    types = 0
    samples = 0
    for ln in body.splitlines():
        if not ln.strip():
            continue
        if ln.startswith("#"):
            check(re.match(r"^# (TYPE [a-zA-Z_:][a-zA-Z0-9_:]* (counter|gauge|histogram|summary|untyped)"
                           r"|HELP .*|.*)$", ln), "%s: bad comment line %r" % (where, ln))
            types += ln.startswith("# TYPE")
            continue
        check(PROM_LINE.match(ln), "%s: not a Prometheus sample line: %r" % (where, ln))
        samples += 1
    check(types > 0 and samples > 0, "%s: %d TYPE lines, %d samples" % (where, types, samples))


def test_stats_prometheus(env):
    e = env.start()
    http(e.port("inbound"), "GET", "/hello")
    st, body = e.admin("GET", "/stats/prometheus")
    check_eq(st, 200, "admin /stats/prometheus")
    _check_prometheus(body, "admin")
    check(re.search(r"upstream_rq_total\{[^}]*app", body), "no upstream_rq_total sample for cluster app")
    check(re.search(r"server_live\S* 1", body) or re.search(r"server_live(\{\})? 1", body),
          "no server_live 1 sample")
    st, body = e.admin("GET", "/stats/prometheus", port=e.status_port)
    check_eq(st, 200, "status port /stats/prometheus")
    _check_prometheus(body, "status port")


def test_ipv6_listener_stats_have_envoys_names(env):
    """An IPv6 listener's stats are named as Envoy names them, listener.[__1]_PORT.*, and its
    default name (the http.* prefix) the same way: no ':' in a stat name, since pilot-agent
    splits /stats lines at ':' to count connections.  They came out as listener.::1_PORT.*."""
    import socket
    be = env.backend()
    cfg = env.config(be)
    port = free_port()
    cfg["listeners"].append({"address": "::1", "port": port, "direction": "inbound",
                             "protocol": "http", "cluster": "app"})
    e = env.ebb(cfg)
    s = socket.create_connection(("::1", port), timeout=10)
    s.sendall(b"GET /hello HTTP/1.1\r\nHost: app.local\r\n\r\n")
    name = "listener.[__1]_%d.downstream_cx_active" % port
    wait_for(lambda: e.stat(name) == 1, 10, what="%s = 1" % name)
    s.close()
    st, body = e.admin("GET", "/stats")
    check_eq(st, 200, "/stats")
    for ln in body.splitlines():
        check(ln.count(":") == 1, "a stat line pilot-agent cannot split at ':': %r" % ln)
    check("http.[__1]_%d.downstream_rq_total: 1" % port in body,
          "the IPv6 listener's http.* stats under its default name")
    st, prom = e.admin("GET", "/stats/prometheus")
    _check_prometheus(prom, "admin")


def _prom_samples(body, where):
    """{(metric, label value or None): value} from a Prometheus text answer, read by the
    reference parser (Debian's python3-prometheus-client)."""
    from prometheus_client.parser import text_string_to_metric_families
    out = {}
    try:
        for fam in text_string_to_metric_families(body):
            for smp in fam.samples:
                lv = list(smp.labels.values())
                out[(smp.name, lv[0] if lv else None)] = smp.value
    except Exception as ex:  # the parser's ValueError names the line
        fail("%s: the Prometheus parser rejects the answer: %s" % (where, ex))
    return out


def test_stat_names_are_whole_and_prometheus_labels_escaped(env):
    """A cluster name of 270 bytes (Istio's outbound|port||fqdn names run long) is one /stats
    line, whole, and one Prometheus label; names holding '"' and '\\' are escaped in the label
    values, so Prometheus' own parser reads the answer and gets the names back.  Before: names
    past about 100 bytes were cut, and the quote ended the label early."""
    be = env.backend()
    long_name = "outbound|8080||" + "a" * 240 + ".ns.svc.cluster.local"
    odd = 'odd"name\\with'
    cfg = env.config(be, clusters={long_name: {"endpoints": [be.addr]},
                                   odd: {"endpoints": [be.addr]}})
    lport, oport = free_port(), free_port()
    cfg["listeners"] += [
        {"name": 'in"long\\', "port": lport, "address": "127.0.0.1", "direction": "inbound",
         "cluster": long_name},
        {"name": "in-odd", "port": oport, "address": "127.0.0.1", "direction": "inbound",
         "cluster": odd}]
    e = env.ebb(cfg)
    for port in (lport, lport, oport):
        check_eq(http(port, "GET", "/hello").status, 200, "GET /hello through port %d" % port)
    e.wait_stat("cluster.%s.upstream_rq_total" % long_name, lambda v: v == 2,
                what="the long-named cluster's upstream_rq_total in /stats, whole")
    check_eq(e.stat("cluster.%s.upstream_rq_total" % odd), 1, "the odd-named cluster's count")
    st, body = e.admin("GET", "/stats/prometheus")
    check_eq(st, 200, "/stats/prometheus")
    got = _prom_samples(body, "/stats/prometheus")
    check_eq(got.get(("envoy_cluster_upstream_rq_total", long_name)), 2.0,
             "the long cluster name as one label value")
    check_eq(got.get(("envoy_cluster_upstream_rq_total", odd)), 1.0,
             "the name with a quote and a backslash, escaped and read back")
    check_eq(got.get(("envoy_http_downstream_rq_total", 'in"long\\')), 2.0,
             "the listener name with a quote and a backslash")


def test_admin_answers_of_a_large_config_are_whole(env):
    """4,000 clusters of 48 endpoints each: /stats is about 7 MB and /config_dump 4.7 MB,
    past the 4 MiB the admin answers were capped at.  Every stat line must be there, both
    Prometheus and /config_dump must parse, and /clusters must list every endpoint.  Before:
    /stats stopped at 4 MiB and /config_dump was JSON cut short."""
    be = env.backend()
    n, per = 4000, 48
    extra = {"svc-%04d-%s.ns.svc.cluster.local" % (i, "x" * 60):
             {"endpoints": ["127.0.0.%d:%d" % (1 + j, 10000 + i) for j in range(per)]}
             for i in range(n)}
    cfg = env.config(be, clusters=extra)
    e = env.ebb(cfg)
    st, body = e.admin("GET", "/stats", timeout=60)
    check_eq(st, 200, "/stats")
    names = [ln.split(": ")[0] for ln in body.splitlines()]
    per_cluster = sum(1 for k in names if k.startswith("cluster.app."))
    big = [k for k in names if k.startswith("cluster.svc-")]
    check_eq(len(big), n * per_cluster, "cluster stat lines in a %d-byte /stats" % len(body))
    check(len(body) > 4 << 20, "/stats is %d bytes: the test must pass the old 4 MiB cap"
          % len(body))
    check(names[-1].startswith("server.") or names[-1].startswith("tcp."),
          "the last line of /stats is %r" % names[-1])
    st, prom = e.admin("GET", "/stats/prometheus", timeout=60)
    check_eq(st, 200, "/stats/prometheus")
    got = _prom_samples(prom, "/stats/prometheus")
    check_eq(sum(1 for (m, lv) in got if m == "envoy_cluster_upstream_rq_total"
                 and lv and lv.startswith("svc-")), n, "upstream_rq_total samples")
    st, dump = e.admin("GET", "/config_dump", timeout=60)
    check_eq(st, 200, "/config_dump")
    check(len(dump) > 4 << 20, "/config_dump is %d bytes: must pass the old 4 MiB cap"
          % len(dump))
    try:
        doc = json.loads(dump)
    except ValueError as ex:
        fail("/config_dump of %d bytes is not JSON: %s" % (len(dump), ex))
    check(isinstance(doc, dict) and "drain_state" in doc, "/config_dump lacks drain_state")
    st, cl = e.admin("GET", "/clusters", timeout=60)
    check_eq(st, 200, "/clusters")
    check_eq(cl.count("::health_flags::healthy\n"),
             sum(len(c["endpoints"]) for c in cfg["clusters"]), "/clusters endpoint lines")


def test_listeners_and_clusters(env):
    e = env.start()
    st, body = e.admin("GET", "/listeners")
    check_eq(st, 200, "/listeners")
    for name in ("inbound", "outbound", "tcp"):
        check(name in body and str(e.port(name)) in body, "/listeners lacks %s:%d:\n%s"
              % (name, e.port(name), body))
    st, body = e.admin("GET", "/clusters")
    check_eq(st, 200, "/clusters")
    for name in ("app", "dead", "echo"):
        check(name in body, "/clusters lacks %s:\n%s" % (name, body))
    check(env.be.addr in body, "/clusters lacks the app endpoint %s" % env.be.addr)


def test_server_info_help_config_dump(env):
    e = env.start()
    st, body = e.admin("GET", "/server_info")
    check_eq(st, 200, "/server_info")
    info = json.loads(body)
    check(isinstance(info, dict) and "version" in info, "/server_info: %s" % body[:500])
    text = json.dumps(info).lower()
    check("live" in text, "/server_info has no LIVE state: %s" % body[:500])
    check("uptime" in text, "/server_info has no uptime: %s" % body[:500])
    check(e.path in json.dumps(info), "/server_info has no command line: %s" % body[:500])
    st, body = e.admin("GET", "/help")
    check_eq(st, 200, "/help")
    for p in ("/stats", "/ready", "/clusters", "/listeners", "/config_dump", "/quitquitquit"):
        check(p in body, "/help does not mention %s" % p)
    st, body = e.admin("GET", "/config_dump")
    check_eq(st, 200, "/config_dump")
    doc = json.loads(body)
    text = json.dumps(doc)
    for w in ("inbound", "outbound", "app", "terminationDrainDuration"):
        check(w in text, "/config_dump lacks %s" % w)


def test_admin_methods_and_unknown_paths(env):
    e = env.start()
    for path in ("/quitquitquit", "/drain_listeners", "/healthcheck/fail"):
        st, _ = e.admin("GET", path)
        check_eq(st, 405, "GET %s" % path)
    check(e.alive(), "ebb exited after a GET to a mutating endpoint")
    st, _ = e.admin("GET", "/ready")
    check_eq(st, 200, "/ready after GETs to mutating endpoints")
    st, _ = e.admin("GET", "/no/such/thing")
    check_eq(st, 404, "unknown admin path")
    st, _ = e.admin("GET", "/healthz/ready", port=e.readiness_port)
    check_eq(st, 200, "readiness still 200")


# How each port answers what its route table does not serve, and a few it does (nothing here
# mutates): (port, method, path, status, body).  One dispatcher answers for all three ports.
NOT_FOUND_ADMIN = "not found: see /help\n"
NOT_FOUND_READY = "not found: the readiness port serves GET /healthz/ready only\n"
USE_POST = "method not allowed: use POST\n"
ROUTING = [
    ("admin", "GET", "/no/such/thing", 404, NOT_FOUND_ADMIN),
    ("admin", "POST", "/no/such/thing", 404, NOT_FOUND_ADMIN),
    ("admin", "PUT", "/no/such/thing", 405, "method not allowed\n"),
    ("admin", "POST", "/stats", 404, NOT_FOUND_ADMIN),          # read-only: POST is unknown
    ("admin", "DELETE", "/stats", 405, "method not allowed\n"),
    ("admin", "GET", "/stats/", 404, NOT_FOUND_ADMIN),           # paths match exactly
    ("admin", "GET", "/healthz/ready", 404, NOT_FOUND_ADMIN),    # status/readiness ports only
    ("admin", "GET", "/drain", 404, NOT_FOUND_ADMIN),            # status port only
    ("admin", "PUT", "/quitquitquit", 405, USE_POST),
    ("admin", "GET", "/healthcheck/ok", 405, USE_POST),
    ("admin", "GET", "/ready?verbose=1", 200, "LIVE\n"),        # the query is not the path
    ("status", "GET", "/nope", 404, "not found\n"),
    ("status", "PUT", "/nope", 404, "not found\n"),
    ("status", "GET", "/stats", 404, "not found\n"),
    ("status", "POST", "/stats/prometheus", 404, "not found\n"),
    ("status", "GET", "/drain", 405, USE_POST),
    ("status", "DELETE", "/quitquitquit", 405, USE_POST),
    ("status", "POST", "/healthz/ready", 200, "LIVE\n"),        # any method
    ("ready", "GET", "/stats/prometheus", 404, NOT_FOUND_READY),
    ("ready", "POST", "/quitquitquit", 404, NOT_FOUND_READY),
    ("ready", "PUT", "/healthz/ready", 200, "LIVE\n"),
]


def test_routing_table(env):
    e = env.start()
    ports = {"admin": e.admin_port, "status": e.status_port, "ready": e.readiness_port}
    for port, method, path, status, body in ROUTING:
        check_eq(e.admin(method, path, port=ports[port]), (status, body),
                 "%s %s on the %s port" % (method, path, port))
    check(e.alive(), "ebb exited during the routing checks")


def test_help_lists_every_admin_route(env):
    """/help and / print one line per admin route, mutating ones marked POST."""
    e = env.start()
    st, text = e.admin("GET", "/help")
    check_eq(st, 200, "/help")
    check_eq(e.admin("GET", "/"), (200, text), "/ is /help")
    lines = text.splitlines()
    check_eq(lines[0], "admin commands are:", "first line of /help")
    routes = {}
    for ln in lines[1:]:
        m = re.match(r"^  (POST )?(/[a-z_/]*)(\S*): \S", ln)
        check(m, "not a route line in /help: %r" % ln)
        routes[m.group(2)] = bool(m.group(1))
    for path in ("/", "/help", "/stats", "/stats/prometheus", "/listeners", "/clusters",
                 "/server_info", "/config_dump", "/ready"):
        check(routes.get(path) is False, "/help: GET %s missing or marked POST" % path)
        check_eq(e.admin("GET", path)[0], 200, "GET %s (listed by /help)" % path)
    for path in ("/drain_listeners", "/healthcheck/fail", "/healthcheck/ok", "/quitquitquit"):
        check(routes.get(path) is True, "/help: POST %s missing" % path)
        check_eq(e.admin("GET", path), (405, USE_POST), "GET %s (a POST route)" % path)
    check("POST /drain_listeners[?inboundonly][&graceful][&skip_exit]: " in text,
          "/help lacks the drain_listeners query flags")


def test_quitquitquit_exits_zero(env):
    e = env.start()
    st, _ = e.admin("POST", "/quitquitquit")
    check_eq(st, 200, "POST /quitquitquit")
    try:
        rc = e.proc.wait(5)
    except Exception:
        fail("ebb still running 5 s after /quitquitquit")
    e.stopped = True
    check_eq(rc, 0, "exit status")


def test_access_log_json_line(env):
    e = env.start()
    http(e.port("inbound"), "GET", "/hello?x=1", [("User-Agent", "e2e")])
    lines = wait_for(lambda: e.access_log() or None, 5, what="an access log line")
    entry = lines[-1]
    check("_raw" not in entry, "access log line is not JSON: %r" % entry)
    text = json.dumps(entry)
    for w in ("GET", "/hello", "200"):
        check(w in text, "access log entry lacks %s: %s" % (w, text))


# -- validate / version / help -------------------------------------------------------------

GOOD = """\
admin: { address: 127.0.0.1, port: %(admin)d }
listeners:
  - name: inbound
    address: 127.0.0.1
    port: %(port)d
    direction: inbound
    protocol: http
    cluster: app
clusters:
  - name: app
    endpoints: ["127.0.0.1:8080"]
    connect_timeout: 1s
"""

# (name, text, lines the error may be reported on, a word the message must contain)
BAD = [
    ("port", GOOD.replace("port: %(port)d", 'port: "80x"'), (5,), "port"),
    ("duration", GOOD.replace("connect_timeout: 1s", "connect_timeout: 5 parsecs"), (12,),
     "connect_timeout"),
    ("direction", GOOD.replace("direction: inbound", "direction: sideways"), (6,), "direction"),
    ("cluster ref", GOOD.replace("cluster: app", "cluster: nosuch"), (8,), "nosuch"),
    ("yaml syntax", GOOD.replace("protocol: http", "protocol: [http"), (7, 8), ""),
]


def _write(env, name, text):
    from lib import free_port
    path = os.path.join(env.tmpdir, name)
    with open(path, "w") as f:
        f.write(text.replace("%(admin)d", str(free_port())).replace("%(port)d", str(free_port())))
    return path


def test_validate_good_and_bad(env):
    good = _write(env, "good.yaml", GOOD)
    p = run([env.ebb_path, "validate", "-c", good], timeout=10)
    check_eq(p.returncode, 0, "validate good config (stderr %r)" % p.stderr[-500:])
    for name, text, lines, word in BAD:
        path = _write(env, "bad.yaml", text)
        p = run([env.ebb_path, "validate", "-c", path], timeout=10)
        err = p.stderr.decode("utf-8", "replace")
        check_eq(p.returncode, 2, "validate exit status for bad %s (stderr %r)" % (name, err))
        check(any(re.search(r"bad\.yaml:%d\b" % ln, err) for ln in lines),
              "bad %s: message does not name bad.yaml:%s: %r" % (name, lines, err))
        check(word in err, "bad %s: message does not name %r: %r" % (name, word, err))


def test_run_bad_config_exits_2(env):
    path = _write(env, "bad.yaml", BAD[0][1])
    p = run([env.ebb_path, "run", "-c", path], timeout=10)
    err = p.stderr.decode("utf-8", "replace")
    check_eq(p.returncode, 2, "ebb run exit status with a bad config (stderr %r)" % err)
    check("bad.yaml:5" in err, "message does not name bad.yaml:5: %r" % err)


def test_version_and_help(env):
    p = run([env.ebb_path, "version"], timeout=10)
    check_eq(p.returncode, 0, "ebb version exit status")
    check(p.stdout.strip(), "ebb version printed nothing")
    p = run([env.ebb_path, "help"], timeout=10)
    check_eq(p.returncode, 0, "ebb help exit status")
    out = (p.stdout + p.stderr).decode("utf-8", "replace")
    for w in ("run", "validate", "version"):
        check(w in out, "ebb help does not mention %s" % w)
