"""The access log is JSON lines that any JSON parser accepts, whatever bytes a client sends."""

import json
import os

from lib import Client, check, check_eq, http, wait_for


def _lines(e):
    """The access log file's lines as raw bytes."""
    try:
        with open(e.cfg["access_log"], "rb") as f:
            return [ln for ln in f.read().split(b"\n") if ln]
    except OSError:
        return []


def test_access_log_invalid_utf8_header(env):
    """An x-request-id with bytes >= 0x80 that are not UTF-8 (a stray byte, an
    overlong sequence, a surrogate, a truncated sequence) and a valid UTF-8 character:
    the line is strict UTF-8, json.loads accepts it, and each bad byte reads as U+FFFD."""
    e = env.start()
    rid = "\xff\xc0\xaf\xed\xa0\x80-\xc3\xa9-\xe2\x82"   # latin-1: one char per byte
    r = http(e.port("inbound"), "GET", "/hello?utf8", [("X-Request-Id", rid)])
    check_eq(r.status, 200, "request with non-UTF-8 header bytes")
    lines = wait_for(lambda: [ln for ln in _lines(e) if b"/hello?utf8" in ln] or None, 5,
                     what="the access log line of /hello?utf8 in %s" % e.cfg["access_log"])
    raw = lines[-1]
    try:
        text = raw.decode("utf-8")   # strict: raises on any invalid byte
    except UnicodeDecodeError as ex:
        check(False, "access log line is not UTF-8 (%s): %r" % (ex, raw))
    entry = json.loads(text)
    check_eq(entry["x_request_id"], "\ufffd" * 6 + "-\u00e9-" + "\ufffd" * 2, "x_request_id")


def test_access_log_batched_every_record_written_by_exit(env):
    # records are written in batches (no write per request), within about a second, and
    # all of them by the time ebb has exited
    e = env.start()
    ids = ["batch-%04d" % i for i in range(400)]
    with Client(e.port("inbound")) as c:
        for rid in ids:
            c.request("GET", "/hello", headers=[("x-request-id", rid)])
            check_eq(c.response().status, 200, "request %s" % rid)
    e.wait_access(lambda recs: any(r.get("x_request_id") == ids[0] for r in recs), timeout=10,
                  what="the first records written while ebb runs (flushed once a second)")
    check_eq(e.stat("access_log.records_dropped"), 0, "records dropped")
    check_eq(e.stop(), 0, "exit status")
    got = [r.get("x_request_id") for r in e.access_log()
           if str(r.get("x_request_id", "")).startswith("batch-")]
    check_eq(sorted(got), ids, "every record once, after the exit")


def _threads(pid):
    """{tid: thread name} of process pid."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
            out[tid] = f.read().strip()
    return out


def _tsan(pid):
    with open("/proc/%d/maps" % pid) as f:
        return "libtsan" in f.read()


def test_one_worker_runs_on_the_main_thread_and_the_writer_keeps_only_the_log(env):
    # docs/design.md, "Threads": with concurrency 1 the control loop is the worker's (no
    # ebb-worker thread; a ThreadSanitizer build keeps it), and the access-log writer has an fd
    # table of its own holding the log file only
    e = env.start(extra={"concurrency": 1})
    check_eq(http(e.port("inbound"), "GET", "/hello").status, 200, "a request through ebb")
    # threads name themselves when they start, which may come after ebb reports ready
    want = ["ebb-access-log"] + (["ebb-worker-0"] if _tsan(e.pid) else [])
    names = wait_for(lambda: (lambda n: n if sorted(v for v in n.values() if v != "ebb") == want
                              else None)(_threads(e.pid)),
                     what="threads %s besides the main one (have %s)" % (want, _threads(e.pid)))
    if not _tsan(e.pid):   # its runtime adds a thread of its own
        check_eq(len(names), len(want) + 1, "threads (%s)" % names)
    writer = [tid for tid, n in names.items() if n == "ebb-access-log"]
    fd_dir = "/proc/%d/task/%s/fd" % (e.pid, writer[0])
    targets = sorted(os.readlink(os.path.join(fd_dir, fd)) for fd in os.listdir(fd_dir))
    check_eq(targets, [os.path.realpath(e.cfg["access_log"])], "the writer's fds")
    main_fds = os.listdir("/proc/%d/fd" % e.pid)
    check(len(main_fds) > 5, "the loop's table keeps its sockets: %d fds" % len(main_fds))
    e.wait_access(lambda recs: any(r.get("path") == "/hello" for r in recs), timeout=10,
                  what="the request's record, written by the writer")


def test_two_workers_are_two_threads(env):
    e = env.start(extra={"concurrency": 2})
    check_eq(http(e.port("inbound"), "GET", "/hello").status, 200, "a request through ebb")
    # a worker names its thread when it starts, which may come after ebb reports ready
    want = ["ebb-worker-0", "ebb-worker-1"]
    wait_for(lambda: sorted(n for n in _threads(e.pid).values() if n.startswith("ebb-worker"))
             == want, what="threads named %s (have %s)" % (want, _threads(e.pid)))
    if not _tsan(e.pid):
        check_eq(len(_threads(e.pid)), 4, "threads: main, 2 workers, the access-log writer")
