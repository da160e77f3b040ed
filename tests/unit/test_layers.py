#!/usr/bin/env python3
"""test_layers.py - the layer check (scripts/check-layers.py) fails when it should.

Each case copies include/, src/ and the check with its allowlist into a
temporary tree, plants one problem, runs the check on the copy and expects
a failure that names the planted file and header, on top of whatever the
tree itself fails.  The untouched copy must pass, so a check that always
fails fails here too.  Ends with
"N passed, N failed".
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def copy_tree(dst):
    for d in ("include", "src"):
        shutil.copytree(os.path.join(ROOT, d), os.path.join(dst, d))
    os.makedirs(os.path.join(dst, "scripts"))
    for f in ("check-layers.py", "layers.allow"):
        shutil.copy(os.path.join(ROOT, "scripts", f), os.path.join(dst, "scripts", f))


def run_check(tree):
    p = subprocess.run([sys.executable, os.path.join(tree, "scripts", "check-layers.py"),
                        "--root", tree], capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout + p.stderr


def add_include(tree, relpath, header):
    """Puts #include "header" after the file's last include; returns its line number."""
    path = os.path.join(tree, relpath)
    with open(path) as f:
        lines = f.read().split("\n")
    last = max(i for i, l in enumerate(lines) if l.startswith("#include"))
    lines.insert(last + 1, f'#include "{header}"')
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return last + 2


def upward(relpath, header, theirs, mine):
    """A case that plants #include "header" in relpath, of layer mine."""
    def plant(tree):
        n = add_include(tree, relpath, header)
        return [f"{relpath}:{n}: includes {header} ({theirs} layer) from the {mine} layer"]
    return plant


def plant_stale_allow_entry(tree):
    """An entry for an include the file does not have (the list is empty today, so the
    case brings its own entry)."""
    with open(os.path.join(tree, "scripts/layers.allow"), "a") as f:
        f.write("src/proto/tcp.c ebb/worker.h reads the worker\n")
    return ["src/proto/tcp.c no longer includes ebb/worker.h upward: remove the entry"]


def plant_allow_entry_without_reason(tree):
    with open(os.path.join(tree, "scripts/layers.allow"), "a") as f:
        f.write("src/net/conn.c ebb/server.h\n")
    return ["needs three fields: file header reason"]


def plant_unplaced_header(tree):
    with open(os.path.join(tree, "include/ebb/zz_new.h"), "w") as f:
        f.write("/* zz_new.h */\n")
    return ["include/ebb/zz_new.h: not placed in a layer"]


def plant_unplaced_dir(tree):
    os.makedirs(os.path.join(tree, "src/zz_tls"))
    with open(os.path.join(tree, "src/zz_tls/tls.c"), "w") as f:
        f.write('#include "ebb/core.h"\n')
    return ["src/zz_tls/: directory not placed in a layer"]


CASES = [
    ("clean copy passes", None),
    ("upward include in a net .c file", upward("src/net/conn.c", "ebb/server.h", "control", "net")),
    ("upward include in a header", upward("include/ebb/loop.h", "ebb/conn.h", "net", "event")),
    ("upward include through a relative path",
     upward("src/core/buf.c", "../../include/ebb/worker.h", "control", "core")),
    ("upward include from a codec to the exchange layer",
     upward("src/proto/tcp.c", "ebb/upstream.h", "proxy", "proto")),
    ("allowlist entry whose include is gone", plant_stale_allow_entry),
    ("allowlist entry without a reason", plant_allow_entry_without_reason),
    ("header not placed in a layer", plant_unplaced_header),
    ("src directory not placed in a layer", plant_unplaced_dir),
]


def failures(out):
    m = re.search(r"^\d+ passed, (\d+) failed$", out, re.M)
    return int(m.group(1)) if m else -1


def main():
    passed = failed = 0
    # A planted problem must add exactly one failure to what the tree has
    # (nothing, unless the layers entry of the same run fails too).
    with tempfile.TemporaryDirectory(prefix="ebb-layers-") as tree:
        copy_tree(tree)
        base = failures(run_check(tree)[1])
    for name, plant in CASES:
        with tempfile.TemporaryDirectory(prefix="ebb-layers-") as tree:
            copy_tree(tree)
            want = plant(tree) if plant else []
            rc, out = run_check(tree)
            if not want:
                ok = rc == 0 and failures(out) == 0
                why = "expected exit 0 and no failure"
            else:
                ok = rc == 1 and all(w in out for w in want) and failures(out) == base + 1
                why = f"expected exit 1, one failure more than the tree's {base}, and {want!r}"
        if ok:
            passed += 1
            print(f"ok {name}")
        else:
            failed += 1
            print(f"FAIL {name}: {why}; got exit {rc}:")
            print("  " + out.replace("\n", "\n  "))
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
