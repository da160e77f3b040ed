"""The access log is JSON lines that any JSON parser accepts, whatever bytes a client sends."""

import json

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
