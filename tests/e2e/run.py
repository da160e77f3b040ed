#!/usr/bin/python3
"""run.py - runs ebb's end-to-end tests against the real binary.

    /usr/bin/python3 tests/e2e/run.py [--ebb build/ebb] [-k PATTERN] [--timeout S] [--keep] [-v]
    /usr/bin/python3 tests/e2e/run.py --list

Tests are plain functions `def test_x(env)` in tests/e2e/test_*.py, run in file and source
order.  Each runs in its own process group (so a hung test and every process it started are
killed at its timeout: the default --timeout, or the function's `timeout` attribute set with
lib.timeout(S)).  Output: `ok name (1.2s)`, `skip name: reason`, or `FAIL name (1.2s)` followed
by the reason and the tails of ebb's and the backend's logs.  The last line is exactly
`N passed, N failed`; the exit status is 1 if anything failed.  -k PATTERN is a regular
expression searched in "file.function" (e.g. -k 'http1|ws', -k test_errors.test_504).
"""

import argparse
import glob
import importlib
import inspect
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
SKIP_RC = 77


def discover(pattern):
    """[(name, module, function-name, timeout)] in file and source order; import errors as
    (name, None, message, 0)."""
    sys.path.insert(0, HERE)
    tests = []
    for path in sorted(glob.glob(os.path.join(HERE, "test_*.py"))):
        mod_name = os.path.basename(path)[:-3]
        try:
            mod = importlib.import_module(mod_name)
        except Exception:
            tests.append((mod_name + ".<import>", None, traceback.format_exc(), 0))
            continue
        # definition order (vars() keeps it), which also keeps generated tests in table order
        fns = [(n, f) for n, f in vars(mod).items()
               if n.startswith("test_") and inspect.isfunction(f) and f.__module__ == mod_name]
        for n, f in fns:
            tests.append(("%s.%s" % (mod_name, n), mod_name, n, getattr(f, "timeout", None)))
    if pattern:
        rx = re.compile(pattern)
        tests = [t for t in tests if rx.search(t[0])]
    return tests


def child(mod_name, fn_name, tmpdir, ebb_path):
    """Runs one test in this process; exit 0 pass, 1 fail, 77 skip."""
    sys.path.insert(0, HERE)
    import lib
    env = lib.Env(tmpdir, ebb_path)
    rc = 0
    try:
        fn = getattr(importlib.import_module(mod_name), fn_name)
        fn(env)
    except lib.Skip as e:
        print("skipped: %s" % e)
        rc = SKIP_RC
    except lib.TestFailure as e:
        tb = traceback.extract_tb(e.__traceback__)
        where = [f for f in tb if os.path.basename(f.filename).startswith("test_")]
        loc = " (%s:%d)" % (os.path.basename(where[-1].filename), where[-1].lineno) if where else ""
        print("%s%s" % (e, loc))
        rc = 1
    except BaseException:
        traceback.print_exc(file=sys.stdout)
        rc = 1
    finally:
        try:
            problems = env.finish()
        except Exception:
            problems = ["cleanup failed: " + traceback.format_exc()]
        if problems and rc != 1:
            rc = 1
        for p in problems:
            print(p)
        lib.release_ports()
    sys.stdout.flush()
    os._exit(rc)


def indent(text, n=4):
    return "\n".join(" " * n + ln for ln in text.rstrip("\n").splitlines())


def log_tails(tmpdir, lines):
    out = []
    for pat in ("ebb*.stderr", "ebb*.stdout", "backend*.log", "access.log"):
        for path in sorted(glob.glob(os.path.join(tmpdir, pat))):
            try:
                with open(path, "rb") as f:
                    f.seek(0, 2)
                    size = f.tell()
                    f.seek(max(0, size - 32768))
                    text = f.read().decode("utf-8", "replace").splitlines()[-lines:]
            except OSError:
                continue
            if text:
                out.append("--- %s (last %d lines) ---" % (os.path.basename(path), len(text)))
                out += text
    return "\n".join(out)


def remove_netns(pid):
    """Deletes the network namespaces a killed test could not remove itself (netnslib names
    them ebb-<prefix>-<pid>[-<name>] after the test process's pid)."""
    try:
        names = os.listdir("/run/netns")
    except OSError:
        return
    rx = re.compile(r"^ebb-.+?-%d(-.*)?$" % pid)
    for n in names:
        if rx.match(n):
            subprocess.run(["ip", "netns", "del", n], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=10)


def run_one(name, mod, fn, timeout, args):
    tmpdir = tempfile.mkdtemp(prefix="ebb-e2e-%s-" % name.replace(".", "-"))
    out_path = os.path.join(tmpdir, "test.out")
    t0 = time.monotonic()
    with open(out_path, "wb") as out:
        p = subprocess.Popen([PY, os.path.abspath(__file__), "--child", mod, fn, "--tmp", tmpdir,
                              "--ebb", args.ebb],
                             stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True, cwd=REPO,
                             env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
        timed_out = False
        try:
            rc = p.wait(timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            rc = None
    # whatever the test left behind (ebb, backend, curl...) is in its process group
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except OSError:
        pass
    if timed_out:
        p.wait()
    remove_netns(p.pid)
    dt = time.monotonic() - t0
    with open(out_path, "rb") as f:
        output = f.read().decode("utf-8", "replace")
    if timed_out:
        output += "\ntimed out after %ss" % timeout
    if rc == 0:
        print("ok %s (%.1fs)" % (name, dt))
        if args.verbose and output.strip():
            print(indent(output))
        result = "pass"
    elif rc == SKIP_RC:
        print("skip %s: %s" % (name, output.strip().splitlines()[-1] if output.strip() else ""))
        result = "skip"
    else:
        print("FAIL %s (%.1fs)" % (name, dt))
        lines = output.rstrip().splitlines()
        print(indent("\n".join(lines[-60:])))
        tails = log_tails(tmpdir, args.log_lines)
        if tails:
            print(indent(tails))
        print(indent("(files kept in %s)" % tmpdir))
        result = "fail"
    if result != "fail" and not args.keep:
        shutil.rmtree(tmpdir, ignore_errors=True)
    sys.stdout.flush()
    return result


def main():
    ap = argparse.ArgumentParser(description="ebb end-to-end tests")
    ap.add_argument("--ebb", default=os.path.join(REPO, "build", "ebb"), help="the ebb binary")
    ap.add_argument("-k", dest="pattern", help="regex searched in file.function")
    ap.add_argument("--timeout", type=float, default=60, help="default per-test timeout (s)")
    ap.add_argument("--keep", action="store_true", help="keep every test's temp dir")
    ap.add_argument("-v", "--verbose", action="store_true", help="print passing tests' output")
    ap.add_argument("--log-lines", type=int, default=30, help="log lines shown per failure")
    ap.add_argument("--list", action="store_true", help="list the tests and exit")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--tmp", help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.ebb = os.path.abspath(args.ebb)

    if args.child:
        child(args.child[0], args.child[1], args.tmp, args.ebb)
        return

    tests = discover(args.pattern)
    if args.list:
        for t in tests:
            print(t[0])
        return
    passed = failed = skipped = 0
    ebb_ok = os.path.isfile(args.ebb) and os.access(args.ebb, os.X_OK)
    if not ebb_ok:
        print("ebb binary not found or not executable: %s (build it with make, or give --ebb)"
              % args.ebb)
    for name, mod, fn, timeout in tests:
        if mod is None:
            print("FAIL %s (0.0s)" % name)
            print(indent(fn))
            failed += 1
            continue
        if not ebb_ok:
            print("FAIL %s (0.0s)\n    ebb binary not found: %s" % (name, args.ebb))
            failed += 1
            continue
        r = run_one(name, mod, fn, timeout or args.timeout, args)
        if r == "fail":
            failed += 1
        elif r == "skip":
            skipped += 1
        else:
            passed += 1
    if skipped:
        print("(%d skipped)" % skipped)
    print("%d passed, %d failed" % (passed, failed))
    sys.stdout.flush()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
