"""The access log is JSON lines that any JSON parser accepts, whatever bytes a client sends."""

import json

from lib import check, check_eq, http, wait_for


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
