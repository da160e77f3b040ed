"""ProxyConfig sources (SPEC §4, §3.5) through the real binary.

`ebb validate` prints the effective config JSON with the source of every value; `ebb run`
serves the same at GET :15000/config_dump (and `ebb request GET config_dump` prints it).
Covered: every source (defaults, ebb.yaml proxy_config, --mesh-config defaultConfig,
PROXY_CONFIG as JSON and YAML, the downward-API annotations file with a Go-quoted
proxy.istio.io/config, the environment), the default file paths, the precedence order,
top-level replace vs proxyMetadata key merge, camelCase and snake_case, the seed's snippets
verbatim, and each bad value's error (exit 2, one line naming the source, key and value).
"""

import itertools
import json
import os
import subprocess

import drainlib as d
import lib
from lib import check, check_eq, fail, timeout

SEED_MESH_42 = """\
defaultConfig:
  proxyMetadata:
    EXIT_ON_ZERO_ACTIVE_CONNECTIONS: "true"
"""
# §4.4 as the seed renders it (Markdown turned "# 默认为 5s" into "*# 默认为 5s*")
SEED_MESH_44 = """\
defaultConfig:

 terminationDrainDuration: 20s *# 默认为 5s*
"""
# §4.2 and §4.4 together, as docs/config.md shows them
SEED_MESH = """\
defaultConfig:
  proxyMetadata:
    EXIT_ON_ZERO_ACTIVE_CONNECTIONS: "true"
  terminationDrainDuration: 20s
"""
SEED_ANNOTATION = '{ "proxyMetadata": { "EXIT_ON_ZERO_ACTIVE_CONNECTIONS": "true" } }'
# what kubelet writes for the seed's §4.3 pod: keys sorted, Go %q values, no final newline
SEED_ANNOTATIONS_FILE = (
    'kubectl.kubernetes.io/default-container="app"\n'
    'proxy.istio.io/config="{ \\"proxyMetadata\\": { \\"EXIT_ON_ZERO_ACTIVE_CONNECTIONS\\": '
    '\\"true\\" } }"\n'
    'sidecar.istio.io/status="{\\"initContainers\\":[\\"istio-init\\"]}"')

PC_FIELDS = ("terminationDrainDuration", "drainDuration", "concurrency", "proxyAdminPort",
             "statusPort", "holdApplicationUntilProxyStarts")


def validate(env, args=(), env_vars=None, files=None, cwd=None):
    """Runs `ebb validate args` in cwd (default: a fresh dir under tmpdir, so the default
    ./etc/istio/... paths are missing unless files creates them).  files: {relative path:
    text} written under cwd first.  Returns (rc, parsed JSON or None, stderr text)."""
    validate.n = getattr(validate, "n", 0) + 1
    cwd = cwd or os.path.join(env.tmpdir, "v%d" % validate.n)
    os.makedirs(cwd, exist_ok=True)
    for rel, text in (files or {}).items():
        p = os.path.join(cwd, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(text.encode() if isinstance(text, str) else text)
    penv = dict(os.environ)
    penv.update(env_vars or {})
    try:
        p = subprocess.run([env.ebb_path, "validate"] + list(args), cwd=cwd, env=penv,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    except subprocess.TimeoutExpired:
        fail("ebb validate did not finish within 30s")
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    js = None
    if p.returncode == 0:
        try:
            js = json.loads(out)
        except ValueError as e:
            fail("ebb validate printed invalid JSON (%s): %r" % (e, out[:500]))
    return p.returncode, js, err


def ok(env, *a, **kw):
    rc, js, err = validate(env, *a, **kw)
    check_eq(rc, 0, "ebb validate exit status (stderr: %s)" % err.strip()[-600:])
    return js, err


def check_source(js, field, value, source):
    pc, src = js["proxy_config"], js["sources"]
    check_eq((pc.get(field), src.get(field)), (value, source), "%s (value, source)" % field)


def check_knob(js, name, source, pm_value=None):
    """A proxyMetadata/env knob's effective source (and its proxyMetadata value if given)."""
    check_eq(js["sources"].get(name), source, "source of %s" % name)
    if pm_value is not None:
        check_eq(js["proxy_config"]["proxyMetadata"].get(name), pm_value,
                 "proxyMetadata.%s" % name)


# --- each source ---------------------------------------------------------------------------

@timeout(30)
def test_defaults(env):
    js, _ = ok(env)
    for f, v in (("terminationDrainDuration", "5s"), ("drainDuration", "45s"),
                 ("concurrency", 2), ("proxyAdminPort", 15000), ("statusPort", 15020),
                 ("holdApplicationUntilProxyStarts", False)):
        check_source(js, f, v, "default")
    check_eq(js["proxy_config"]["proxyMetadata"], {}, "proxyMetadata")
    check_knob(js, "EXIT_ON_ZERO_ACTIVE_CONNECTIONS", "default")
    check_knob(js, "MINIMUM_DRAIN_DURATION", "default")
    dr = js["drain"]
    check_eq((dr["exit_on_zero_active_connections"], dr["minimum_drain_duration"],
              dr["termination_drain_duration"], dr["drain_duration"], dr["idle_close_after"],
              dr["idle_close_after_source"], dr["drain_timeout"], dr["drain_deadline"]),
             (False, "5s", "5s", "45s", "5s", "MINIMUM_DRAIN_DURATION", "1s", "0s"),
             "effective drain knobs")
    check_eq((js["mesh_file"], js["annotations_file"]), (None, None), "files read")


@timeout(30)
def test_ebb_yaml_proxy_config(env):
    cfg = "proxy_config:\n  drainDuration: 7s\n  terminationDrainDuration: 8s\n"
    js, _ = ok(env, ["-c", d.write(env, "f.yaml", cfg)])
    check_source(js, "drainDuration", "7s", "file")
    check_source(js, "terminationDrainDuration", "8s", "file")


@timeout(30)
def test_mesh_config_flag_and_default_path(env):
    mesh = "defaultConfig:\n  drainDuration: 30s\n  concurrency: 3\nenableTracing: false\n"
    js, _ = ok(env, ["--mesh-config", d.write(env, "mesh", mesh)])
    check_source(js, "drainDuration", "30s", "mesh config")
    check_source(js, "concurrency", 3, "mesh config")
    check(js["mesh_file"].endswith("mesh"), "mesh_file: %r" % js["mesh_file"])
    # the default path ./etc/istio/config/mesh is read when present
    js, _ = ok(env, files={"etc/istio/config/mesh": mesh})
    check_source(js, "drainDuration", "30s", "mesh config")
    check_eq(js["mesh_file"], "./etc/istio/config/mesh", "mesh_file (default path)")
    # a given path must exist; a missing default is skipped
    rc, _, err = validate(env, ["--mesh-config", os.path.join(env.tmpdir, "nope")])
    check(rc == 2 and "nope" in err, "missing --mesh-config: rc=%d %s" % (rc, err))


@timeout(30)
def test_proxy_config_json_and_yaml(env):
    js, _ = ok(env, env_vars={"PROXY_CONFIG": json.dumps({
        "drainDuration": "12s", "terminationDrainDuration": "1m30s",
        "holdApplicationUntilProxyStarts": True, "concurrency": 4,
        "proxyMetadata": {"MINIMUM_DRAIN_DURATION": "750ms"}})})
    check_source(js, "drainDuration", "12s", "PROXY_CONFIG")
    check_source(js, "terminationDrainDuration", "1m30s", "PROXY_CONFIG")
    check_source(js, "holdApplicationUntilProxyStarts", True, "PROXY_CONFIG")
    check_source(js, "concurrency", 4, "PROXY_CONFIG")
    check_knob(js, "MINIMUM_DRAIN_DURATION", "PROXY_CONFIG", "750ms")
    check_eq(js["drain"]["minimum_drain_duration"], "750ms", "effective MINIMUM_DRAIN_DURATION")
    check_eq(js["drain"]["idle_close_after"], "750ms", "idle_close_after follows the minimum")
    yaml = ("drainDuration: 13s\nproxyMetadata:\n  EXIT_ON_ZERO_ACTIVE_CONNECTIONS: true\n"
            "statusPort: 15030\n")
    js, _ = ok(env, env_vars={"PROXY_CONFIG": yaml})
    check_source(js, "drainDuration", "13s", "PROXY_CONFIG")
    check_source(js, "statusPort", 15030, "PROXY_CONFIG")
    # an unquoted YAML bool in proxyMetadata is the string "true"
    check_knob(js, "EXIT_ON_ZERO_ACTIVE_CONNECTIONS", "PROXY_CONFIG", "true")
    check(js["drain"]["exit_on_zero_active_connections"], "exit-on-zero from PROXY_CONFIG YAML")
    # empty PROXY_CONFIG is unset
    js, _ = ok(env, env_vars={"PROXY_CONFIG": ""})
    check_source(js, "drainDuration", "45s", "default")


@timeout(30)
def test_annotations_file_go_quoted(env):
    # a YAML annotation value with newlines, tabs and escapes, quoted as kubelet does
    value = ("drainDuration: 21s\t# \u00e9t\u00e9\nproxyMetadata:\n"
             "  MINIMUM_DRAIN_DURATION: \"2s\"\n  NOTE: \"a \\\\ b\"\n")
    text = 'a.b/c="x"\n' + d.annotations_line(value) + '\nz="\\u263a \\x41 \\101"'
    js, _ = ok(env, ["--pod-annotations", d.write(env, "annotations", text)])
    check_source(js, "drainDuration", "21s", "annotation")
    check_knob(js, "MINIMUM_DRAIN_DURATION", "annotation", "2s")
    check_eq(js["proxy_config"]["proxyMetadata"].get("NOTE"), "a \\ b", "proxyMetadata.NOTE")
    check(js["annotations_file"].endswith("annotations"), "annotations_file")
    # default path ./etc/istio/pod/annotations; CRLF line ends and a trailing newline are fine
    js, _ = ok(env, files={"etc/istio/pod/annotations":
                           text.replace("\n", "\r\n") + "\r\n"})
    check_source(js, "drainDuration", "21s", "annotation")
    check_eq(js["annotations_file"], "./etc/istio/pod/annotations", "annotations_file")
    # a file without the annotation changes nothing
    js, _ = ok(env, ["--pod-annotations", d.write(env, "other", 'app="x"')])
    check_source(js, "drainDuration", "45s", "default")


@timeout(30)
def test_environment(env):
    js, _ = ok(env, env_vars={"EXIT_ON_ZERO_ACTIVE_CONNECTIONS": "true",
                              "MINIMUM_DRAIN_DURATION": "3s"})
    check_knob(js, "EXIT_ON_ZERO_ACTIVE_CONNECTIONS", "env")
    check_knob(js, "MINIMUM_DRAIN_DURATION", "env")
    check_eq((js["drain"]["mode"], js["drain"]["minimum_drain_duration"]),
             ("exit_on_zero_active_connections", "3s"), "drain mode and minimum")
    # the dump's proxyMetadata is what the config sources said, not the environment
    check_eq(js["proxy_config"]["proxyMetadata"], {}, "proxyMetadata with env knobs only")
    # every Go bool spelling
    for v, want in (("1", True), ("t", True), ("T", True), ("TRUE", True), ("true", True),
                    ("True", True), ("0", False), ("f", False), ("F", False), ("FALSE", False),
                    ("false", False), ("False", False)):
        js, _ = ok(env, env_vars={"EXIT_ON_ZERO_ACTIVE_CONNECTIONS": v})
        check_eq(js["drain"]["exit_on_zero_active_connections"], want,
                 "EXIT_ON_ZERO_ACTIVE_CONNECTIONS=%s" % v)
    # an empty value counts as unset: the lower source wins
    js, _ = ok(env, env_vars={"EXIT_ON_ZERO_ACTIVE_CONNECTIONS": "",
                              "PROXY_CONFIG": '{"proxyMetadata": '
                                              '{"EXIT_ON_ZERO_ACTIVE_CONNECTIONS": "true"}}'})
    check_knob(js, "EXIT_ON_ZERO_ACTIVE_CONNECTIONS", "PROXY_CONFIG")
    check(js["drain"]["exit_on_zero_active_connections"], "empty env must not override")


# --- the seed's snippets, verbatim ----------------------------------------------------------

@timeout(30)
def test_seed_mesh_config_snippets(env):
    js, _ = ok(env, ["--mesh-config", d.write(env, "m42", SEED_MESH_42)])
    check_knob(js, "EXIT_ON_ZERO_ACTIVE_CONNECTIONS", "mesh config", "true")
    check_eq(js["drain"]["mode"], "exit_on_zero_active_connections", "§4.2 drain mode")
    js, err = ok(env, ["--mesh-config", d.write(env, "m44", SEED_MESH_44)])
    check_source(js, "terminationDrainDuration", "20s", "mesh config")
    check("*#" in err and "warn" in err, "no warning for the Markdown-mangled comment: %r" % err)
    js, _ = ok(env, ["--mesh-config", d.write(env, "mesh", SEED_MESH)])
    check_source(js, "terminationDrainDuration", "20s", "mesh config")
    check_knob(js, "EXIT_ON_ZERO_ACTIVE_CONNECTIONS", "mesh config", "true")
    check(js["drain"]["exit_on_zero_active_connections"], "exit-on-zero from the seed's mesh")


@timeout(30)
def test_markdown_comment_on_a_proxy_metadata_knob_is_applied(env):
    """A drain knob in proxyMetadata written the way the seed's Markdown renders comments
    ("true *# default false*") is read as its first word with a warning, and applied: it was
    reported as read as "true", then dropped (the stored value was the whole string, which
    the knob could not take)."""
    mesh = ("defaultConfig:\n  proxyMetadata:\n"
            "    EXIT_ON_ZERO_ACTIVE_CONNECTIONS: true *# default false*\n"
            "    MINIMUM_DRAIN_DURATION: 7s *# default 5s*\n")
    js, err = ok(env, ["--mesh-config", d.write(env, "mesh", mesh)])
    check("*#" in err and "warn" in err, "no warning for the Markdown-mangled comment: %r" % err)
    check_knob(js, "EXIT_ON_ZERO_ACTIVE_CONNECTIONS", "mesh config", "true")
    check_eq(js["drain"]["mode"], "exit_on_zero_active_connections", "drain mode")
    check_knob(js, "MINIMUM_DRAIN_DURATION", "mesh config", "7s")


@timeout(30)
def test_seed_annotation_as_kubelet_writes_it(env):
    js, _ = ok(env, ["--pod-annotations", d.write(env, "annotations", SEED_ANNOTATIONS_FILE)])
    check_knob(js, "EXIT_ON_ZERO_ACTIVE_CONNECTIONS", "annotation", "true")
    check_eq(js["drain"]["mode"], "exit_on_zero_active_connections", "drain mode")
    # the helper that writes the line produces the same bytes kubelet does
    check_eq(d.annotations_line(SEED_ANNOTATION), SEED_ANNOTATIONS_FILE.splitlines()[1],
             "Go %q of the seed's annotation")


# --- precedence and merge --------------------------------------------------------------------

def _all_sources(env, have):
    """Sets terminationDrainDuration and drainDuration in the chosen sources
    (file, mesh, pc, ann), each with its own value; returns validate's JSON."""
    vals = {"file": "1s", "mesh": "2s", "pc": "3s", "ann": "4s"}
    args, ev = [], {}
    if "file" in have:
        args += ["-c", d.write(env, "f.yaml", "proxy_config:\n  terminationDrainDuration: %s\n"
                                              % vals["file"])]
    if "mesh" in have:
        args += ["--mesh-config", d.write(env, "mesh", "defaultConfig:\n  "
                                          "terminationDrainDuration: %s\n" % vals["mesh"])]
    if "pc" in have:
        ev["PROXY_CONFIG"] = json.dumps({"terminationDrainDuration": vals["pc"]})
    if "ann" in have:
        args += ["--pod-annotations", d.write(env, "ann", d.annotations_line(
            json.dumps({"terminationDrainDuration": vals["ann"]})))]
    js, _ = ok(env, args, env_vars=ev)
    return js, vals


@timeout(60)
def test_precedence_order_top_level_fields(env):
    names = {"file": "file", "mesh": "mesh config", "pc": "PROXY_CONFIG", "ann": "annotation"}
    order = ["file", "mesh", "pc", "ann"]                  # lowest to highest
    for n in range(1, 5):
        for have in itertools.combinations(order, n):
            js, vals = _all_sources(env, set(have))
            top = have[-1]
            check_source(js, "terminationDrainDuration", vals[top], names[top])


@timeout(60)
def test_precedence_order_proxy_metadata_knobs(env):
    # MINIMUM_DRAIN_DURATION in every source; the environment beats them all
    mesh = "defaultConfig:\n  proxyMetadata:\n    MINIMUM_DRAIN_DURATION: 2s\n"
    pc = json.dumps({"proxyMetadata": {"MINIMUM_DRAIN_DURATION": "3s"}})
    ann = d.annotations_line(json.dumps({"proxyMetadata": {"MINIMUM_DRAIN_DURATION": "4s"}}))
    fcfg = "proxy_config:\n  proxyMetadata:\n    MINIMUM_DRAIN_DURATION: 1s\n"
    cases = [
        ({"file"}, "1s", "file"), ({"file", "mesh"}, "2s", "mesh config"),
        ({"file", "mesh", "pc"}, "3s", "PROXY_CONFIG"),
        ({"file", "mesh", "pc", "ann"}, "4s", "annotation"),
        ({"file", "mesh", "pc", "ann", "env"}, "5s", "env"),
        ({"mesh", "env"}, "5s", "env"), ({"mesh", "ann"}, "4s", "annotation"),
    ]
    for have, want, src in cases:
        args, ev = [], {}
        if "file" in have:
            args += ["-c", d.write(env, "f.yaml", fcfg)]
        if "mesh" in have:
            args += ["--mesh-config", d.write(env, "mesh", mesh)]
        if "pc" in have:
            ev["PROXY_CONFIG"] = pc
        if "ann" in have:
            args += ["--pod-annotations", d.write(env, "ann", ann)]
        if "env" in have:
            ev["MINIMUM_DRAIN_DURATION"] = "5s"
        js, _ = ok(env, args, env_vars=ev)
        check_eq((js["drain"]["minimum_drain_duration"], js["sources"]["MINIMUM_DRAIN_DURATION"]),
                 (want, src), "MINIMUM_DRAIN_DURATION with sources %s" % sorted(have))


@timeout(30)
def test_top_level_replace_and_proxy_metadata_merge(env):
    mesh = ("defaultConfig:\n  drainDuration: 30s\n  terminationDrainDuration: 20s\n"
            "  proxyMetadata:\n    EXIT_ON_ZERO_ACTIVE_CONNECTIONS: \"true\"\n    A: mesh\n"
            "    B: mesh\n")
    pc = json.dumps({"drainDuration": "31s", "proxyMetadata": {"B": "pc", "C": "pc"}})
    ann = d.annotations_line(json.dumps({"proxyMetadata": {"C": "ann", "D": "ann"}}))
    js, _ = ok(env, ["--mesh-config", d.write(env, "mesh", mesh),
                     "--pod-annotations", d.write(env, "ann", ann)],
               env_vars={"PROXY_CONFIG": pc})
    # top-level: the higher source replaces; fields it does not name stay from below
    check_source(js, "drainDuration", "31s", "PROXY_CONFIG")
    check_source(js, "terminationDrainDuration", "20s", "mesh config")
    # proxyMetadata: merged key by key, each key from the highest source naming it
    check_eq(js["proxy_config"]["proxyMetadata"],
             {"EXIT_ON_ZERO_ACTIVE_CONNECTIONS": "true", "A": "mesh", "B": "pc", "C": "ann",
              "D": "ann"}, "merged proxyMetadata")
    check_eq(js["sources"]["proxyMetadata"],
             {"EXIT_ON_ZERO_ACTIVE_CONNECTIONS": "mesh config", "A": "mesh config",
              "B": "PROXY_CONFIG", "C": "annotation", "D": "annotation"},
             "proxyMetadata key sources")
    check(js["drain"]["exit_on_zero_active_connections"],
          "a mesh proxyMetadata key survives a higher source's proxyMetadata map")


@timeout(30)
def test_camel_and_snake_case(env):
    snake = json.dumps({"termination_drain_duration": "6s", "drain_duration": "7s",
                        "proxy_admin_port": 15100, "status_port": 15120,
                        "hold_application_until_proxy_starts": True,
                        "proxy_metadata": {"EXIT_ON_ZERO_ACTIVE_CONNECTIONS": "true"}})
    js, _ = ok(env, env_vars={"PROXY_CONFIG": snake})
    check_source(js, "terminationDrainDuration", "6s", "PROXY_CONFIG")
    check_source(js, "drainDuration", "7s", "PROXY_CONFIG")
    check_source(js, "proxyAdminPort", 15100, "PROXY_CONFIG")
    check_source(js, "statusPort", 15120, "PROXY_CONFIG")
    check_source(js, "holdApplicationUntilProxyStarts", True, "PROXY_CONFIG")
    check_knob(js, "EXIT_ON_ZERO_ACTIVE_CONNECTIONS", "PROXY_CONFIG", "true")
    mesh = "default_config:\n  termination_drain_duration: 9s\n"
    js, _ = ok(env, ["--mesh-config", d.write(env, "mesh", mesh)])
    check_source(js, "terminationDrainDuration", "9s", "mesh config")
    # the same key in both spellings is an error
    rc, _, err = validate(env, env_vars={"PROXY_CONFIG": json.dumps(
        {"drainDuration": "1s", "drain_duration": "2s"})})
    check(rc == 2 and "PROXY_CONFIG" in err and "drain" in err and "twice" in err,
          "duplicate key in two spellings: rc=%d %r" % (rc, err))


@timeout(30)
def test_unknown_fields_warn_once_each(env):
    js, err = ok(env, env_vars={"PROXY_CONFIG": json.dumps(
        {"noSuchKnob": 1, "tracing": {"zipkin": {}}, "drainDuration": "10s"})})
    check_source(js, "drainDuration", "10s", "PROXY_CONFIG")
    for k in ("noSuchKnob", "tracing"):
        check_eq(len([ln for ln in err.splitlines() if "warn" in ln and k in ln]), 1,
                 "warnings naming %s in %r" % (k, err))


# --- bad values: exit 2, one line naming source, key and value ------------------------------

BAD = [
    # (what, files {name: text}, args using {name}, env, substrings of the error)
    ("mesh duration without unit", {"mesh": "defaultConfig:\n  terminationDrainDuration: 5\n"},
     ["--mesh-config", "{mesh}"], {}, ["mesh:2:", "terminationDrainDuration", '"5"', "unit"]),
    ("mesh proxyMetadata bool", {"mesh": 'defaultConfig:\n  proxyMetadata:\n'
                                         '    EXIT_ON_ZERO_ACTIVE_CONNECTIONS: "yes"\n'},
     ["--mesh-config", "{mesh}"], {}, ["mesh:3:", "EXIT_ON_ZERO_ACTIVE_CONNECTIONS", '"yes"']),
    ("mesh defaultConfig not a map", {"mesh": "defaultConfig:\n  - a\n"},
     ["--mesh-config", "{mesh}"], {}, ["mesh:", "defaultConfig"]),
    ("PROXY_CONFIG JSON duration", {}, [], {"PROXY_CONFIG": '{"drainDuration": "1d"}'},
     ["PROXY_CONFIG", "drainDuration", '"1d"']),
    ("PROXY_CONFIG YAML line", {}, [], {"PROXY_CONFIG": "drainDuration: 1s\nconcurrency: -1\n"},
     ["PROXY_CONFIG:2", "concurrency", '"-1"']),
    ("PROXY_CONFIG port", {}, [], {"PROXY_CONFIG": '{"proxyAdminPort": 70000}'},
     ["PROXY_CONFIG", "proxyAdminPort", '"70000"']),
    ("PROXY_CONFIG hold bool", {}, [], {"PROXY_CONFIG": '{"holdApplicationUntilProxyStarts": "yes"}'},
     ["PROXY_CONFIG", "holdApplicationUntilProxyStarts", '"yes"']),
    ("PROXY_CONFIG MINIMUM", {}, [],
     {"PROXY_CONFIG": '{"proxyMetadata": {"MINIMUM_DRAIN_DURATION": "soon"}}'},
     ["PROXY_CONFIG", "MINIMUM_DRAIN_DURATION", '"soon"']),
    ("PROXY_CONFIG syntax", {}, [], {"PROXY_CONFIG": '{"drainDuration": '},
     ["PROXY_CONFIG"]),
    ("annotation value", {"ann": 'a="b"\nproxy.istio.io/config="drainDuration: \\"20\\""'},
     ["--pod-annotations", "{ann}"], {}, ["ann:2:", "proxy.istio.io/config", "drainDuration",
                                          '"20"']),
    ("annotation EXIT_ON_ZERO", {"ann": d.annotations_line(
        '{"proxyMetadata": {"EXIT_ON_ZERO_ACTIVE_CONNECTIONS": "enabled"}}')},
     ["--pod-annotations", "{ann}"], {}, ["ann:1:", "EXIT_ON_ZERO_ACTIVE_CONNECTIONS",
                                          '"enabled"']),
    ("annotations malformed line", {"ann": 'a="b"\nc="d"\ngarbage'},
     ["--pod-annotations", "{ann}"], {}, ["ann:3:", "garbage"]),
    ("annotations bad escape", {"ann": 'a="b"\nb="\\q"'},
     ["--pod-annotations", "{ann}"], {}, ["ann:2:"]),
    ("annotation twice", {"ann": 'proxy.istio.io/config="{}"\nproxy.istio.io/config="{}"'},
     ["--pod-annotations", "{ann}"], {}, ["ann:2:", "proxy.istio.io/config", "twice"]),
    ("env bool", {}, [], {"EXIT_ON_ZERO_ACTIVE_CONNECTIONS": "yes"},
     ["environment", "EXIT_ON_ZERO_ACTIVE_CONNECTIONS", '"yes"']),
    ("env duration", {}, [], {"MINIMUM_DRAIN_DURATION": "5"},
     ["environment", "MINIMUM_DRAIN_DURATION", '"5"']),
    ("ebb.yaml drain knob", {"f.yaml": "drain:\n  idle_close_after: 1s\n  drain_deadline: 5\n"},
     ["-c", "{f.yaml}"], {}, ["f.yaml:3:", "drain.drain_deadline", '"5"']),
    ("ebb.yaml proxy_config", {"f.yaml": "proxy_config:\n  drainDuration: forever\n"},
     ["-c", "{f.yaml}"], {}, ["f.yaml:2:", "drainDuration", '"forever"']),
    # a typo in a lower source is reported even when a higher source overrides the field
    ("shadowed bad value", {"mesh": "defaultConfig:\n  drainDuration: 5 s\n"},
     ["--mesh-config", "{mesh}"], {"PROXY_CONFIG": '{"drainDuration": "5s"}'},
     ["mesh:2:", "drainDuration", '"5 s"']),
]


def _bad_case(env, i, files, args, ev):
    paths = {name: d.write(env, "bad%d_%s" % (i, name), text) for name, text in files.items()}
    real_args = []
    for a in args:
        for name, p in paths.items():
            a = a.replace("{%s}" % name, p)
        real_args.append(a)
    return real_args, paths


@timeout(90)
def test_bad_values_exit_2_naming_source_and_key(env):
    for i, (what, files, args, ev, want) in enumerate(BAD):
        real_args, paths = _bad_case(env, i, files, args, ev)
        rc, js, err = validate(env, real_args, env_vars=ev)
        check_eq(rc, 2, "%s: ebb validate exit status (stderr %r)" % (what, err))
        errs = [ln for ln in err.splitlines() if "error" in ln]
        check_eq(len(errs), 1, "%s: error lines in %r" % (what, err))
        line = errs[0]
        for w in want:
            w = w.replace("mesh:", "bad%d_mesh:" % i).replace("ann:", "bad%d_ann:" % i)
            w = w.replace("f.yaml:", "bad%d_f.yaml:" % i)
            check(w in line, "%s: error %r lacks %r" % (what, line, w))


@timeout(90)
def test_bad_values_make_run_exit_2_without_listening(env):
    # `ebb run` with the same errors: exit 2 at once, the admin port never opens
    for i, (what, files, args, ev, want) in enumerate(BAD[::3]):
        real_args, _ = _bad_case(env, 100 + i, files, args, ev)
        port = lib.free_port()
        cfg = d.write(env, "run%d.yaml" % i, "admin: {address: 127.0.0.1, port: %d}\n"
                                             "listeners: []\nreadiness: {port: %d}\n"
                                             "status: {port: %d}\n"
                      % (port, lib.free_port(), lib.free_port()))
        if "-c" in real_args:
            cfg_args = []
        else:
            cfg_args = ["-c", cfg]
        penv = dict(os.environ)
        penv.update(ev)
        p = subprocess.run([env.ebb_path, "run"] + cfg_args + real_args, env=penv,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20,
                           cwd=env.tmpdir)
        err = p.stderr.decode("utf-8", "replace")
        check_eq(p.returncode, 2, "%s: ebb run exit status (%r)" % (what, err))
        check("config error" in err, "%s: ebb run stderr %r" % (what, err))
        check(d.connect_refused(port), "%s: admin port open after a config error" % what)


# --- ebb run: config_dump serves the same effective config ---------------------------------

@timeout(60)
def test_run_config_dump_matches_validate(env):
    mesh = SEED_MESH
    ann = 'a="1"\n' + d.annotations_line(json.dumps({"drainDuration": "33s",
                                                      "proxyMetadata": {"X": "ann"}}))
    workers = lib.TEST_CONCURRENCY   # the harness's ebb.yaml (2, or 1 in the ASan suite)
    ev = {"PROXY_CONFIG": json.dumps({"concurrency": workers + 1,
                                      "holdApplicationUntilProxyStarts": "true",
                                      "proxyMetadata": {"X": "pc", "Y": "pc"}}),
          "MINIMUM_DRAIN_DURATION": "1500ms"}
    e = d.start(env, mesh=mesh, annotations=ann, env_vars=ev)
    st, body = e.admin("GET", "/config_dump")
    check_eq(st, 200, "GET /config_dump")
    dump = json.loads(body)
    check_source(dump, "terminationDrainDuration", "20s", "mesh config")
    check_source(dump, "drainDuration", "33s", "annotation")
    check_source(dump, "holdApplicationUntilProxyStarts", True, "PROXY_CONFIG")
    # ebb.yaml's top-level concurrency overrides every ProxyConfig source
    check_source(dump, "concurrency", workers, "file")
    check_knob(dump, "EXIT_ON_ZERO_ACTIVE_CONNECTIONS", "mesh config", "true")
    check_knob(dump, "MINIMUM_DRAIN_DURATION", "env")
    check_eq(dump["proxy_config"]["proxyMetadata"],
             {"EXIT_ON_ZERO_ACTIVE_CONNECTIONS": "true", "X": "ann", "Y": "pc"}, "proxyMetadata")
    check_eq((dump["drain"]["mode"], dump["drain"]["minimum_drain_duration"],
              dump["drain"]["drain_duration"]),
             ("exit_on_zero_active_connections", "1.5s", "33s"), "effective drain knobs (Go format)")
    check_eq(dump.get("drain_state", {}).get("state"), "LIVE", "drain_state")
    check_eq(dump.get("concurrency"), workers, "effective concurrency")
    # validate with the same inputs prints the same config (minus the live drain state)
    js, _ = ok(env, e.argv[2:],                    # -c, --log-level, --mesh-config, ...
               env_vars=ev, cwd=env.tmpdir)
    del dump["drain_state"]
    for k in sorted(set(js) | set(dump)):
        check_eq(json.dumps(dump.get(k), sort_keys=True), json.dumps(js.get(k), sort_keys=True),
                 "config_dump vs validate: %s" % k)
    # `ebb request GET config_dump` prints the body (the seed's §5.1 check)
    p = subprocess.run([env.ebb_path, "request", "--port", str(e.admin_port), "GET",
                        "config_dump"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=20)
    check_eq(p.returncode, 0, "ebb request GET config_dump exit status")
    got = json.loads(p.stdout)
    check_eq(got["sources"]["EXIT_ON_ZERO_ACTIVE_CONNECTIONS"], "mesh config",
             "ebb request GET config_dump: source of EXIT_ON_ZERO_ACTIVE_CONNECTIONS")
