"""ebb started as `pilot-agent` (the image's symlink, SPEC §10): the seed's
`pilot-agent request GET config_dump`, pilot-agent's flag names, and a refusal for the rest."""

import json
import os
import subprocess

from lib import check, check_eq


def _pilot_agent(env):
    link = os.path.join(env.tmpdir, "pilot-agent")
    if not os.path.islink(link):
        os.symlink(os.path.abspath(env.ebb_path), link)
    return link


def _run(argv, **kw):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20, **kw)


def test_pilot_agent_request_config_dump(env):
    e = env.start()
    pa = _pilot_agent(env)
    p = _run([pa, "request", "--debug-port", str(e.admin_port), "GET", "config_dump"])
    check_eq(p.returncode, 0, "pilot-agent request exit status (stderr %r)" % p.stderr)
    dump = json.loads(p.stdout)
    check("drain" in json.dumps(dump), "config_dump has no drain section: %r" % p.stdout[:300])
    # the same bytes as `ebb request` (one implementation behind both names)
    q = _run([env.ebb_path, "request", "--port", str(e.admin_port), "GET", "config_dump"])
    check_eq(json.loads(q.stdout).keys(), dump.keys(), "config_dump keys via ebb request")
    # cobra's --flag=value form, and the status port
    p = _run([pa, "request", "GET", "/healthz/ready", "--debug-port=%d" % e.status_port])
    check_eq(p.returncode, 0, "pilot-agent request --debug-port=N status (stderr %r)" % p.stderr)


def test_pilot_agent_wait_and_refusal(env):
    e = env.start()
    pa = _pilot_agent(env)
    url = "http://127.0.0.1:%d/healthz/ready" % e.readiness_port
    p = _run([pa, "wait", "--url", url, "--timeoutSeconds", "10", "--periodMillis", "100"])
    check_eq(p.returncode, 0, "pilot-agent wait on a ready sidecar (stderr %r)" % p.stderr)
    p = _run([pa, "proxy", "sidecar"])
    check_eq(p.returncode, 2, "pilot-agent proxy exit status")
    check(b'"proxy" is not supported' in p.stderr, "refusal names the command: %r" % p.stderr)
    p = _run([pa, "wait", "--bogus", "1"])
    check_eq(p.returncode, 2, "pilot-agent wait --bogus exit status")
    check(b"--bogus" in p.stderr, "refusal names the flag: %r" % p.stderr)
