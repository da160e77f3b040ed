#!/usr/bin/env python3
"""check-layers.py [--root DIR] - fail on an include that points up the layers.

The layers, lowest first (docs/design.md, "Module map"):

    core -> event -> net -> proto -> proxy -> control -> cli

A file may include headers of its own layer and lower ones only.  Every
src/<dir>/*.c and *.h takes the layer of its directory (DIRS below); every
include/ebb/*.h has its layer in HEADERS below.  A header or a src directory
that is not in these tables is a failure (a new one must be placed), and so
is a table entry whose file is gone.  Quoted includes that are not "ebb/..."
are resolved relative to the including file, so "../proxy/x.h" is caught too.

Upward includes that only a planned rewrite can remove are listed, one per
(file, header) with a reason, in scripts/layers.allow.  An upward include
not listed there fails, and so does a listed one that no longer exists or no
longer points up: the list can only shrink.

Prints each failure, then "N passed, N failed" (a clean file and an
allowlist entry still in use are one pass each; each problem is one
failure).  Exit status 1 when anything failed.
"""
import os
import re
import sys

LAYERS = ["core", "event", "net", "proto", "proxy", "control", "cli"]

# src/<dir>/ -> layer
DIRS = {
    "core": "core",
    "event": "event",
    "net": "net",
    "proto": "proto",
    "proxy": "proxy",
    "control": "control",
    "cli": "cli",
    "drill": "cli",
}

# include/ebb/<name> -> layer.  A header placed below the module that
# implements it says why (HAProxy's -t.h type headers are the model).
HEADERS = """
core.h       core
list.h       core
buf.h        core
log.h        core
stats.h      core    low on purpose: counter types and macros every layer bumps; only ebb_stats_new/free are control's (stats.c)
config.h     core    low on purpose: the config structs every layer reads; the loader is control's (config_load.h)
proxy_config.h core  low on purpose: the ProxyConfig struct config.h embeds (data only); its loader is control's
parse.h      core
h1_parse.h   core    low on purpose: pure HTTP/1 parser (no I/O, no allocation, no state) whose limits struct the config embeds
loop.h       event
conn.h       net
wctx.h       net
listener.h   net
codecs.h     proto
h2.h         proto
http.h       proto
tunnel.h     proto
cluster.h    proxy
exchange.h   proxy
proxy.h      proxy
upstream.h   proxy
ustream.h    proxy
stream.h     proxy
admin.h      control
admin_query.h control
capture.h    control
config_load.h control
config_sources.h control
config_table.h control
config_walk.h control
config_yaml.h control
control.h    control
server.h     control
worker.h     control
cli.h        cli
drill.h      cli
drill_report.h cli
"""

INCLUDE_RE = re.compile(r'^\s*#\s*include\s*([<"])([^">]+)[">]')


def parse_headers(fails):
    table = {}
    for line in HEADERS.strip().splitlines():
        name, layer = line.split()[:2]
        if layer not in LAYERS:
            fails.append(f"HEADERS: {name}: unknown layer {layer!r} (one of {', '.join(LAYERS)})")
            continue
        table[name] = layer
    return table


def read_allow(path, fails):
    """Returns {(file, header): line number} from the allowlist."""
    allow = {}
    if not os.path.exists(path):
        return allow
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(None, 2)
            if len(parts) < 3:
                fails.append(f"{os.path.basename(path)}:{n}: needs three fields: file header reason")
                continue
            allow[(parts[0], parts[1])] = n
    return allow


class Tree:
    def __init__(self, root, fails):
        self.root = root
        self.headers = parse_headers(fails)

    def layer_of(self, relpath):
        """Layer of a tree file, None when it is outside the layered tree,
        "?" when it is in it but not placed."""
        parts = relpath.split(os.sep)
        if len(parts) == 3 and parts[0] == "include" and parts[1] == "ebb":
            return self.headers.get(parts[2], "?")
        if len(parts) == 3 and parts[0] == "src":
            return DIRS.get(parts[1], "?")
        return None

    def files(self):
        out = []
        inc = os.path.join(self.root, "include", "ebb")
        for name in sorted(os.listdir(inc)):
            if name.endswith(".h"):
                out.append(os.path.join("include", "ebb", name))
        src = os.path.join(self.root, "src")
        for d in sorted(os.listdir(src)):
            if not os.path.isdir(os.path.join(src, d)):
                continue
            for name in sorted(os.listdir(os.path.join(src, d))):
                if name.endswith((".c", ".h")):
                    out.append(os.path.join("src", d, name))
        return out

    def includes(self, relpath):
        """Yields (line number, spelled name, tree path or None) for each include."""
        with open(os.path.join(self.root, relpath), encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, 1):
                m = INCLUDE_RE.match(line)
                if not m:
                    continue
                name = m.group(2)
                if name.startswith("ebb/"):
                    yield n, name, os.path.join("include", name)
                elif m.group(1) == '"':
                    target = os.path.normpath(os.path.join(os.path.dirname(relpath), name))
                    inside = os.path.exists(os.path.join(self.root, target))
                    yield n, name, target if inside else None


def check(root):
    fails, passes = [], 0
    tree = Tree(root, fails)
    files = tree.files()
    allow_path = os.path.join(root, "scripts", "layers.allow")
    allow = read_allow(allow_path, fails)
    used = set()

    for d in sorted(os.listdir(os.path.join(root, "src"))):
        if os.path.isdir(os.path.join(root, "src", d)) and d not in DIRS:
            fails.append(f"src/{d}/: directory not placed in a layer (add it to DIRS in scripts/check-layers.py)")
    for name in tree.headers:
        if not os.path.exists(os.path.join(root, "include", "ebb", name)):
            fails.append(f"include/ebb/{name}: in HEADERS but the file is gone (remove it)")

    for f in files:
        mine = tree.layer_of(f)
        if mine == "?":
            if f.startswith("include"):   # a src/ file: its directory is reported above
                fails.append(f"{f}: not placed in a layer (add it to HEADERS in scripts/check-layers.py)")
            continue
        clean = True
        for n, name, target in tree.includes(f):
            theirs = tree.layer_of(target) if target else None
            if theirs is None:
                continue   # system or third-party header
            if theirs == "?":
                if not os.path.exists(os.path.join(root, target)):
                    fails.append(f"{f}:{n}: includes {name}, which does not exist")
                    clean = False
                continue   # an unplaced header on disk is reported once, as itself
            if LAYERS.index(theirs) <= LAYERS.index(mine):
                continue
            key = (f, name)
            if key in allow:
                used.add(key)
                continue
            fails.append(f"{f}:{n}: includes {name} ({theirs} layer) from the {mine} layer")
            clean = False
        passes += clean

    for key, n in sorted(allow.items(), key=lambda kv: kv[1]):
        if key in used:
            passes += 1
        else:
            fails.append(f"scripts/layers.allow:{n}: {key[0]} no longer includes {key[1]} upward: "
                         f"remove the entry")

    for msg in fails:
        print("FAIL " + msg)
    print(f"layers: {len(files)} files checked, {len(used)} upward includes allowed "
          f"(scripts/layers.allow)")
    print(f"{passes} passed, {len(fails)} failed")
    return 1 if fails else 0


def main(argv):
    root = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    if len(argv) == 3 and argv[1] == "--root":
        root = argv[2]
    elif len(argv) != 1:
        print(__doc__.split("\n")[0], file=sys.stderr)
        return 2
    return check(root)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
