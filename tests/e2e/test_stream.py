"""Bodies are streamed with back-pressure, never buffered whole (SPEC §2): huge uploads and
downloads keep their bytes intact while ebb's resident memory stays small."""

import hashlib
import json
import os
import socket
import subprocess
import threading
import time

from lib import (Client, GiB, MiB, PATTERN, RssMonitor, build_request, check, check_eq, fail,
                 have, nginx_origin, pattern_sha256, Skip, timeout)

RSS_LIMIT_KIB = 32 * 1024


def _sanitized(env):
    return "/san/" in env.ebb_path or os.environ.get("EBB_E2E_SAN") == "1"


def _check_rss(env, mon, base, what):
    """Absolute bound (32 MiB) for a normal build; growth bound under sanitizers."""
    mx = mon.max_kib
    check(mon.samples, "no RSS samples for %s" % what)
    if _sanitized(env):
        check(mx - base < 64 * 1024, "%s: ebb RSS grew from %d KiB to %d KiB (sanitizer build)"
              % (what, base, mx))
    else:
        check(mx < RSS_LIMIT_KIB, "%s: ebb max RSS %d KiB >= 32 MiB (baseline %d KiB, %d samples)"
              % (what, mx, base, len(mon.samples)))


def _blocks(total, seed):
    """Yields total bytes in 1 MiB blocks, each block distinct (index prefixed)."""
    base = hashlib.sha256(seed).digest() * (MiB // 32)
    i = 0
    left = total
    while left:
        blk = i.to_bytes(8, "big") + base[8:]
        k = min(left, len(blk))
        yield blk if k == len(blk) else blk[:k]
        left -= k
        i += 1


def _upload(env, port, total, path="/sha256", deadline_s=240, host="app.local"):
    """Streams total bytes with content-length on one connection; returns (response doc,
    sha256 sent, seconds)."""
    h = hashlib.sha256()
    t0 = time.monotonic()
    sent = 0
    with Client(port, timeout=20) as c:
        c.send(build_request("POST", path, [("Content-Length", str(total)),
                                            ("Content-Type", "application/octet-stream")],
                             host=host))
        try:
            for blk in _blocks(total, b"upload"):
                h.update(blk)
                c.send(blk)
                sent += len(blk)
                if time.monotonic() - t0 > deadline_s:
                    fail("upload too slow: more than %ds" % deadline_s)
            r = c.response()
        except socket.timeout:
            fail("upload stalled: ebb accepted no byte for 20 s after %d of %d bytes sent"
                 % (sent, total))
    check_eq(r.status, 200, "upload status (%r)" % r.body[:200])
    return r.json(), h.hexdigest(), time.monotonic() - t0


@timeout(300)
def test_upload_2gib_sha256_rss(env):
    e = env.start()
    base = e.rss_kib()
    total = 2 * GiB
    with RssMonitor(e.pid) as mon:
        doc, want, dt = _upload(env, e.port("inbound"), total)
    check_eq(doc["bytes"], total, "bytes the backend received")
    check_eq(doc["sha256"], want, "sha256 at the backend")
    _check_rss(env, mon, base, "2 GiB upload")
    print("2 GiB upload in %.1fs; ebb RSS baseline %d KiB, max %d KiB" % (dt, base, mon.max_kib))


@timeout(180)
def test_upload_chunked_curl_512mib(env):
    """curl -T - (chunked, from a pipe) through the outbound listener."""
    if not have("curl"):
        raise Skip("curl not installed")
    e = env.start()
    base = e.rss_kib()
    total = 512 * MiB
    h = hashlib.sha256()
    p = subprocess.Popen(["curl", "-sS", "--max-time", "150", "--speed-limit", "1", "--speed-time", "20",
                          "-T", "-", "-H", "Host: app.local",
                          "-H", "Expect:", "http://127.0.0.1:%d/sha256" % e.port("outbound")],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with RssMonitor(e.pid) as mon:
        try:
            for blk in _blocks(total, b"chunked"):
                h.update(blk)
                p.stdin.write(blk)
            p.stdin.close()
        except BrokenPipeError:
            pass
        try:
            p.wait(150)
        except subprocess.TimeoutExpired:
            p.kill()
            fail("curl upload did not finish")
        out, err = p.stdout.read(), p.stderr.read()
    check_eq(p.returncode, 0, "curl exit status (%r)" % err)
    doc = json.loads(out)
    check_eq(doc["bytes"], total, "bytes")
    check_eq(doc["sha256"], h.hexdigest(), "sha256")
    _check_rss(env, mon, base, "512 MiB chunked upload")


@timeout(180)
def test_download_1gib_rss(env):
    e = env.start()
    base = e.rss_kib()
    total = GiB
    h = hashlib.sha256()
    n = [0]

    def sink(d):
        h.update(d)
        n[0] += len(d)
    t0 = time.monotonic()
    with RssMonitor(e.pid) as mon:
        with Client(e.port("inbound"), timeout=20) as c:
            c.request("GET", "/size?n=%d" % total)
            try:
                r = c.response(sink=sink)
            except socket.timeout:
                fail("download stalled: no byte for 20 s after %d of %d bytes" % (n[0], total))
    check_eq(r.status, 200, "status")
    check_eq(n[0], total, "bytes received")
    check_eq(h.hexdigest(), pattern_sha256(total), "sha256 of the body")
    _check_rss(env, mon, base, "1 GiB download")
    print("1 GiB download in %.1fs; ebb RSS max %d KiB" % (time.monotonic() - t0, mon.max_kib))


@timeout(120)
def test_slow_reader_backpressure(env):
    """A client that stops reading: ebb must stop reading the upstream, not buffer 512 MiB."""
    e = env.start()
    base = e.rss_kib()
    total = 512 * MiB
    with RssMonitor(e.pid) as mon:
        with Client(e.port("inbound"), timeout=60) as c:
            c.request("GET", "/size?n=%d" % total)
            st, _, _, headers, _ = c.read_head()
            check_eq(st, 200, "status")
            time.sleep(2.0)              # a stalled reader: the point of the test
            stalled = mon.max_kib
            got = len(c.buf)
            deadline = time.monotonic() + 90
            c.sock.settimeout(20)
            while got < total:
                try:
                    d = c.sock.recv(1 << 20)
                except socket.timeout:
                    fail("download stalled: no byte for 20 s after %d of %d bytes" % (got, total))
                if not d:
                    fail("EOF after %d of %d bytes" % (got, total))
                got += len(d)
                if time.monotonic() > deadline:
                    fail("download too slow")
    check_eq(got, total, "bytes")
    if not _sanitized(env):
        check(stalled < RSS_LIMIT_KIB, "ebb RSS reached %d KiB while the client was stalled" % stalled)
    _check_rss(env, mon, base, "stalled download")


@timeout(240)
def test_readers_of_a_fast_upstream_get_every_byte(env):
    """1 GiB downloads from nginx (sendfile: an upstream as fast as the kernel): first a client
    that stops reading for half a second after every 64 MiB, then reads as fast as Python
    can; then four curl downloads into /dev/null.  Once its read buffer is empty, ebb reads an
    identity body straight from the upstream's socket into the client's buffer, for as long as
    the socket has bytes.  A run of the HTTP/1 codec stops after 1,000 rounds to give other
    connections their turn, and the upstream socket has no read interest while its owner is
    known to pull: the run must ask for its next turn itself.  Before it did, the first curl
    download stopped for good in 4 runs of 4 (after 65 to 624 MB)."""
    origin = nginx_origin(env, big=GiB)
    e = env.ebb(env.config(env.backend(), app_endpoint=origin))
    got = 0
    with Client(e.port("inbound"), timeout=60) as c:
        c.request("GET", "/big")
        st, _, _, headers, _ = c.read_head()
        check_eq(st, 200, "status")
        got = len(c.buf)
        check(not c.buf.strip(b"\0"), "the body is the file's zero bytes")
        c.sock.settimeout(20)
        buf = bytearray(1 << 20)
        next_stall, nonzero = 64 * MiB, 0
        while got < GiB:
            if got >= next_stall:
                time.sleep(0.5)              # the stalled reader: the behaviour under test
                next_stall += 64 * MiB
                nonzero += buf.count(0) != len(buf)   # a sample of the bytes: all zeros
            try:
                n = c.sock.recv_into(buf)    # as fast as Python reads: into one buffer
            except socket.timeout:
                fail("download stopped: no byte for 20 s after %d of %d bytes" % (got, GiB))
            if not n:
                fail("EOF after %d of %d bytes" % (got, GiB))
            got += n
    check_eq(got, GiB, "bytes")
    check_eq(nonzero, 0, "sampled reads holding a byte other than the file's zeros")
    # and readers faster than Python: curl into /dev/null, on the pooled upstream connection
    for i in range(4):
        out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_download}",
                              "--max-time", "60", "--speed-time", "20", "--speed-limit", "1",
                              "http://127.0.0.1:%d/big" % e.port("inbound")],
                             capture_output=True, text=True, timeout=90)
        check_eq(out.stdout, "200 %d" % GiB, "curl download %d (%s)" % (i + 1, out.stderr.strip()))


@timeout(120)
def test_slow_upstream_backpressure(env):
    """An app that reads its request body late: ebb must stop reading the client."""
    e = env.start()
    base = e.rss_kib()
    with RssMonitor(e.pid) as mon:
        doc, want, dt = _upload(env, e.port("inbound"), 512 * MiB, path="/sha256?delay_ms=2000")
    check_eq(doc["sha256"], want, "sha256")
    _check_rss(env, mon, base, "upload to a slow reader")
