#!/usr/bin/python3
"""capture_app.py - the app of a pod in the capture tests: it does not know ebb exists.

    capture_app.py --http 8080,9090 --echo 7070 --banner 2525,2526 --ready-file F

Every port listens on 0.0.0.0 and on :: (IPv6 only), as a pod's app listens on its pod address.
  --http P     HTTP/1.1 keep-alive: every request gets 200 and a JSON body
               {"port": P, "peer": "<client address>", "host": "<Host>", "path": "<target>"};
               the peer is how the tests see that ebb's inbound passthrough came from 127.0.0.6
  --echo P     TCP: bytes echoed until EOF, then the write side shut
  --banner P   TCP, server-first: "220 banner P\\r\\n" on accept, then echo (SMTP and MySQL
               speak first: a proxy that waits for the client's bytes never sees any)
Standard library only (asyncio).  --ready-file is written once every port listens.
"""

import argparse
import asyncio
import json
import os
import socket


async def http_conn(port, reader, writer):
    peer = writer.get_extra_info("peername")[0]
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            target = lines[0].split(" ")[1] if len(lines[0].split(" ")) > 2 else ""
            hdrs = {}
            for ln in lines[1:]:
                if ":" in ln:
                    k, v = ln.split(":", 1)
                    hdrs[k.strip().lower()] = v.strip()
            n = int(hdrs.get("content-length", "0"))
            if n:
                await reader.readexactly(n)
            body = json.dumps({"port": port, "peer": peer, "host": hdrs.get("host", ""),
                               "path": target}).encode()
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                         b"content-length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()
            if hdrs.get("connection", "").lower() == "close":
                break
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def echo_conn(banner, reader, writer):
    try:
        if banner is not None:
            writer.write(b"220 banner %d\r\n" % banner)
            await writer.drain()
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        writer.write_eof()
        await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


def sockets(port):
    out = []
    for fam, addr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        s = socket.socket(fam)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if fam == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((addr, port))
        out.append(s)
    return out


def ports(text):
    return [int(p) for p in text.split(",") if p] if text else []


async def main(a):
    for p in ports(a.http):
        for s in sockets(p):
            await asyncio.start_server(lambda r, w, p=p: http_conn(p, r, w), sock=s)
    for p in ports(a.echo):
        for s in sockets(p):
            await asyncio.start_server(lambda r, w: echo_conn(None, r, w), sock=s)
    for p in ports(a.banner):
        for s in sockets(p):
            await asyncio.start_server(lambda r, w, p=p: echo_conn(p, r, w), sock=s)
    if a.ready_file:
        with open(a.ready_file + ".tmp", "w") as f:
            f.write("ready\n")
        os.rename(a.ready_file + ".tmp", a.ready_file)
    await asyncio.Event().wait()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--http", default="")
    ap.add_argument("--echo", default="")
    ap.add_argument("--banner", default="")
    ap.add_argument("--ready-file")
    asyncio.run(main(ap.parse_args()))
