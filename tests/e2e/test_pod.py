"""A real container-runtime pod (SPEC §10, issue 10): ebb's image, `podman kube play`, capture.

The image is built from the binary under test (scripts/image.sh: FROM scratch, nothing pulled).
The pod is the classic-sidecar shape: init container `ebb init` (root, NET_ADMIN + NET_RAW), the
app (tests/e2e/podapp.c: GET /work?ms=L answers after L ms; on SIGTERM it finishes what is in
flight), and ebb as uid 1337; restartPolicy Never (podman restarts init containers otherwise).
A client in a network namespace of the test's own, joined to the pod by a veth pair, sends to the
pod's IP:8080 -- captured by the pod's nat rules to ebb's 15006, forwarded to the app.

With a long request in flight, `podman pod stop -t 30` sends SIGTERM to every container at once
(Kubernetes' classic sidecars):
  - with the seed's annotation (EXIT_ON_ZERO_ACTIVE_CONNECTIONS) the request completes and ebb
    exits right after, with exit status 0, long before the SIGKILL at 30 s;
  - in Istio's default mode ebb exits terminationDrainDuration (5 s) after SIGTERM and the request
    is cut.
The seed's verification runs against the pod: `podman exec <ebb> env | grep EXIT_ON_ZERO` and
`podman exec <ebb> pilot-agent request GET config_dump`.

Podman here (4.3) has no downwardAPI volumes: the test writes /etc/istio/pod/annotations in
kubelet's format (key="value", Go quoting) from the pod's own annotations, on a hostPath volume; and
it refuses annotation values over 63 characters, so the pod carries the seed's JSON without its
blanks (60 characters, same meaning). PROXY_CONFIG comes from the annotation through a downward-API
fieldRef, as in deploy/kubernetes/ (what Istio's injector puts in the proxy's environment).

Pods, images and the client namespace are removed on every way out: in `finally`, and by a guard
process in its own session that waits for this test's process to end (even by SIGKILL at the
timeout), since containers live outside the test's process group. A machine where podman cannot
run a container skips the test with the reason.
"""

import json
import os
import re
import subprocess
import tarfile
import threading
import time

import netnslib
from lib import REPO, Skip, check, check_eq, fail, timeout, wait_for

CONF = os.path.join(REPO, "scripts", "podman", "containers.conf")
PAUSE = "localhost/ebb-pause:latest"      # containers.conf's infra_image (scripts/image.sh)
SEED_COMPACT = '{"proxyMetadata":{"EXIT_ON_ZERO_ACTIVE_CONNECTIONS":"true"}}'
LONG_MS = 8000                            # the long request: longer than terminationDrainDuration
# In default mode the request must still be in flight when ebb exits, 5 s after its SIGTERM; on a
# busy machine `podman pod stop` takes seconds to deliver that SIGTERM, so there the request is
# longer still (it is cut, so the test does not wait for it).
CUT_MS = 20000
STOP_T = 30                               # podman pod stop -t (the grace period)


def _penv():
    return dict(os.environ, CONTAINERS_CONF=CONF)


def podman(*args, check_rc=True, timeout=120):
    p = subprocess.run(["podman"] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=_penv(), timeout=timeout)
    if check_rc and p.returncode != 0:
        fail("podman %s: exit %d: %s" % (" ".join(args), p.returncode,
                                         p.stderr.decode("utf-8", "replace").strip()[-800:]))
    return p


def _text(b):
    return b.decode("utf-8", "replace")


def _last_line(b):
    lines = _text(b).strip().splitlines()
    return lines[-1] if lines else "(no message)"


class Guard:
    """Removes pods, images and namespaces when this process ends, however it ends: a shell in its
    own session blocks on a pipe whose only writer is this process."""

    def __init__(self, pods, images, netns):
        q = " ".join
        script = ("cat >/dev/null; podman pod rm -f -t 0 --ignore %s; podman rmi -f --ignore %s; "
                  "for n in %s; do ip netns del \"$n\" 2>/dev/null; done; exit 0"
                  % (q(pods), q(images), q(netns)))
        r, self.w = os.pipe()
        self.proc = subprocess.Popen(["sh", "-c", script], stdin=r, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, env=_penv(),
                                     start_new_session=True)
        os.close(r)

    def release(self):
        """Cleans up now (the normal way out) and waits for it."""
        os.close(self.w)
        self.proc.wait(timeout=120)


def _require(env):
    netnslib.require("curl")
    for t in ("podman", "runc", "cc"):
        if not netnslib.which(t):
            raise Skip("%s not installed (scripts/deps.sh test installs it)" % t)
    p = podman("info", "--format", "{{.Host.OCIRuntime.Name}}", check_rc=False, timeout=60)
    if p.returncode != 0:
        raise Skip("podman cannot run here: %s" % _last_line(p.stderr))


def _build_images(env, tag, app_tag):
    """The image from the binary under test (and the pause image), and the app's image."""
    t0 = time.monotonic()
    archive = os.path.join(env.tmpdir, "ebb-image.tar")
    p = subprocess.run([os.path.join(REPO, "scripts", "image.sh"), "--ebb", env.ebb_path,
                        "--tag", tag, "--pause-tag", PAUSE, "--archive", archive],
                       stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, env=_penv(), timeout=300)
    check_eq(p.returncode, 0, "scripts/image.sh: %s" % _text(p.stdout))
    build_s = time.monotonic() - t0
    _check_archive(archive, tag)
    appdir = os.path.join(env.tmpdir, "appimg")
    os.makedirs(appdir)
    cc = subprocess.run(["cc", "-static", "-O2", "-Wall", "-Werror", "-pthread", "-o",
                         os.path.join(appdir, "podapp"), os.path.join(REPO, "tests", "e2e", "podapp.c")],
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    check_eq(cc.returncode, 0, "cc podapp.c: %s" % _text(cc.stdout))
    with open(os.path.join(appdir, "Containerfile"), "w") as f:
        f.write('FROM scratch\nCOPY podapp /podapp\nUSER 1000:1000\nENTRYPOINT ["/podapp"]\n')
    podman("build", "-q", "--pull=never", "--network=none", "-t", app_tag, appdir)
    # Can this machine run a container at all? /usr/bin/env is Debian's own, so a failure here is
    # the runtime's, not ebb's (the test skips); ebb's own start is checked as part of the test.
    p = podman("run", "--rm", "--network", "none", "--entrypoint", "/usr/bin/env", tag,
               check_rc=False, timeout=60)
    if p.returncode != 0:
        raise Skip("podman cannot run a container here: %s" % _last_line(p.stderr))
    return build_s


def _check_archive(path, tag):
    """The OCI archive (what `make image` leaves in build/ebb-image.tar for a cluster's runtime)
    is an OCI image layout whose image is named tag, runs as 1337 and starts `ebb run`."""
    with tarfile.open(path) as t:
        def blob(digest):
            return json.load(t.extractfile("blobs/" + digest.replace(":", "/")))
        check_eq(json.load(t.extractfile("oci-layout")).get("imageLayoutVersion"), "1.0.0",
                 "oci-layout of %s" % path)
        index = json.load(t.extractfile("index.json"))
        check_eq(len(index["manifests"]), 1, "images in %s" % path)
        m = index["manifests"][0]
        check_eq(m["annotations"]["org.opencontainers.image.ref.name"], tag, "archive's image name")
        cfg = blob(blob(m["digest"])["config"]["digest"])["config"]
        check_eq((cfg.get("User"), cfg.get("Entrypoint"), cfg.get("Cmd")),
                 ("1337:1337", ["/usr/local/bin/ebb"], ["run"]), "archive's image config")


def _kubelet_annotations(annotations):
    """The downward-API annotations file as kubelet writes it: sorted key="value" lines."""
    return "\n".join("%s=%s" % (k, json.dumps(v)) for k, v in sorted(annotations.items()))


def _pod_manifest(name, tag, app_tag, podinfo, annotations, san_env):
    ebb_env = [{"name": "PROXY_CONFIG", "valueFrom": {"fieldRef": {
                   "fieldPath": "metadata.annotations['proxy.istio.io/config']"}}}] + san_env
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {
            "restartPolicy": "Never",
            "initContainers": [{
                "name": "ebb-init", "image": tag, "args": ["init", "--pod-annotations",
                                                            "/etc/istio/pod/annotations"],
                "env": san_env,
                # the security contexts of deploy/kubernetes/
                "securityContext": {"runAsUser": 0, "runAsGroup": 0,
                                    "allowPrivilegeEscalation": False,
                                    "readOnlyRootFilesystem": True,
                                    "capabilities": {"add": ["NET_ADMIN", "NET_RAW"],
                                                     "drop": ["ALL"]}},
                "volumeMounts": [{"name": "podinfo", "mountPath": "/etc/istio/pod"},
                                 {"name": "init-run", "mountPath": "/run"}]}],
            "containers": [
                {"name": "app", "image": app_tag, "args": ["8080"]},
                {"name": "ebb", "image": tag, "args": ["run"], "env": ebb_env,
                 "securityContext": {"runAsUser": 1337, "runAsGroup": 1337,
                                     "allowPrivilegeEscalation": False,
                                     "readOnlyRootFilesystem": True,
                                     "capabilities": {"drop": ["ALL"]}},
                 "volumeMounts": [{"name": "podinfo", "mountPath": "/etc/istio/pod"}]}],
            "volumes": [{"name": "podinfo", "hostPath": {"path": podinfo, "type": "Directory"}},
                        {"name": "init-run", "emptyDir": {}}],
        },
    }


class Pod:
    """One pod of the test, with the client namespace and veth that reach it."""

    def __init__(self, env, name, tag, app_tag, annotations, client_ns, addr_no, san_env):
        self.env, self.name, self.client = env, name, client_ns
        self.ip = "10.251.%d.2" % addr_no
        self.client_ip = "10.251.%d.1" % addr_no
        podinfo = os.path.join(env.tmpdir, name + "-podinfo")
        os.makedirs(podinfo)
        os.chmod(podinfo, 0o755)
        with open(os.path.join(podinfo, "annotations"), "w") as f:
            f.write(_kubelet_annotations(annotations))
        self.yaml = os.path.join(env.tmpdir, name + ".yaml")
        with open(self.yaml, "w") as f:
            json.dump(_pod_manifest(name, tag, app_tag, podinfo, annotations, san_env), f, indent=1)
        self.ebb = name + "-ebb"
        self.app = name + "-app"

    def play(self):
        podman("kube", "play", "--network", "none", self.yaml)
        infra = podman("pod", "inspect", "--format", "{{.InfraContainerID}}", self.name).stdout
        pid = _text(podman("inspect", "--format", "{{.State.Pid}}", _text(infra).strip()).stdout)
        pid = pid.strip()
        check(pid.isdigit() and pid != "0", "infra container pid %r" % pid)
        # a veth pair between the client namespace and the pod's ("eth0" in the pod)
        host_end = "ebpc%d" % os.getpid()
        c, p = host_end + self.ip.split(".")[2], "ebpp%d%s" % (os.getpid(), self.ip.split(".")[2])
        for args in (["link", "add", c, "type", "veth", "peer", "name", p],
                     ["link", "set", c, "netns", self.client.name],
                     ["link", "set", p, "netns", pid]):
            r = netnslib._ip(*args)
            if r.returncode != 0:
                fail("ip %s: %s" % (" ".join(args), _text(r.stderr).strip()))
        self.client.ip("addr", "add", self.client_ip + "/24", "dev", c)
        self.client.ip("link", "set", c, "up")
        for args in (["ip", "link", "set", p, "name", "eth0"],
                     ["ip", "addr", "add", self.ip + "/24", "dev", "eth0"],
                     ["ip", "link", "set", "eth0", "up"]):
            r = subprocess.run(["nsenter", "-t", pid, "-n"] + args, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=10)
            if r.returncode != 0:
                fail("in the pod: %s: %s" % (" ".join(args), _text(r.stderr).strip()))

    def curl(self, url_path, port=8080, extra=(), max_time=20):
        """One request from the client namespace: (curl exit status, HTTP code, body)."""
        argv = ["ip", "netns", "exec", self.client.name, "curl", "-sS", "--max-time",
                str(max_time), "-o", "-", "-w", "\n%{http_code}",
                "http://%s:%d%s" % (self.ip, port, url_path)] + list(extra)
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=max_time + 10)
        body, _, code = _text(r.stdout).rpartition("\n")
        return r.returncode, code, body

    def exec_ebb(self, *argv):
        return podman("exec", self.ebb, *argv, check_rc=False, timeout=30)

    def stat(self, name):
        r = self.exec_ebb("pilot-agent", "request", "GET", "stats?filter=" + re.escape(name))
        for ln in _text(r.stdout).splitlines():
            k, _, v = ln.partition(": ")
            if k == name:
                return int(v)
        return None

    def logs(self, ctr):
        r = podman("logs", ctr, check_rc=False, timeout=30)
        return _text(r.stdout + r.stderr)

    def state(self, ctr):
        r = podman("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", ctr)
        status, code = _text(r.stdout).split()
        return status, int(code)


def _wait_ready(pod):
    # 15021 is excluded from capture (-d 15090,15021,15020): the kubelet's probe path
    wait_for(lambda: pod.curl("/healthz/ready", port=15021, max_time=2)[1] == "200", timeout=60,
             what="ebb's readiness on %s:15021 from the client namespace" % pod.ip)


def _check_captured(pod):
    before = pod.stat("listener.0.0.0.0_15006.downstream_cx_total") or 0
    for i in range(3):
        rc, code, body = pod.curl("/work?ms=1")
        check_eq((rc, code, body), (0, "200", "done 1\n"), "request %d to %s:8080" % (i, pod.ip))
    after = pod.stat("listener.0.0.0.0_15006.downstream_cx_total")
    check_eq(after - before, 3, "connections to %s:8080 captured by ebb's 15006" % pod.ip)
    # the access log is written in batches, at least once a second
    want = '"downstream_remote_address":"%s"' % pod.client_ip
    wait_for(lambda: want in pod.logs(pod.ebb), timeout=10,
             what="ebb's access log showing the client's address %s" % pod.client_ip)


def _long_request_across_stop(pod, ms):
    """Starts an ms-long request, waits until ebb has it in flight, stops the pod. Returns
    (curl exit, HTTP code, body, curl's error, seconds from the stop to the request's end,
    seconds the stop took)."""
    out = os.path.join(pod.env.tmpdir, pod.name + "-long.out")
    argv = ["ip", "netns", "exec", pod.client.name, "curl", "-sS", "--max-time", "60",
            "-o", out, "-w", "%{http_code} %{time_total}",
            "http://%s:8080/work?ms=%d" % (pod.ip, ms)]
    active = pod.stat("http.inbound.downstream_rq_active") or 0
    t_start = time.monotonic()
    cl = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: (pod.stat("http.inbound.downstream_rq_active") or 0) > active,
                 timeout=20, what="the long request in flight at ebb")
        t_stop, wall_stop = time.monotonic(), time.time()
        stop = podman("pod", "stop", "-t", str(STOP_T), pod.name, timeout=STOP_T + 60)
        stop_s = time.monotonic() - t_stop
        cout, cerr = cl.communicate(timeout=90)
    finally:
        if cl.poll() is None:
            cl.kill()
            cl.wait()
    check(stop.returncode == 0, "podman pod stop")
    body = open(out).read() if os.path.exists(out) else ""
    code, _, total = _text(cout).partition(" ")
    req_s = t_start + float(total or 0) - t_stop    # curl's own clock for the request's end
    fin = podman("inspect", "--format", "{{.State.FinishedAt.UnixNano}}", pod.ebb).stdout
    ebb_after_req = int(fin) / 1e9 - (wall_stop + req_s)   # ebb's exit after the request's end
    return cl.returncode, code, body, _text(cerr).strip(), req_s, stop_s, ebb_after_req


def _sanitizer_env(env):
    """The ASan/UBSan options for a sanitizer build of ebb (`make SAN=1 test`): the image then
    holds build/san/ebb and the sanitizer runtimes ldd lists, and the options must reach the
    containers' environment. LeakSanitizer works in the container too (its check at exit would
    otherwise make ebb exit non-zero, which the test sees)."""
    ldd = subprocess.run(["ldd", env.ebb_path], stdout=subprocess.PIPE, timeout=30).stdout
    if b"libasan" not in ldd and b"libubsan" not in ldd:
        return [], False
    asan = os.environ.get("ASAN_OPTIONS", "halt_on_error=1:detect_leaks=1")
    return [{"name": "ASAN_OPTIONS", "value": asan},
            {"name": "UBSAN_OPTIONS",
             "value": os.environ.get("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")}], True


def _no_sanitizer_report(pod):
    """ebb's container log has no sanitizer report (ebb-init's log is gone with the container:
    an error there would have failed `kube play` or the capture checks)."""
    logs = pod.logs(pod.ebb)
    for pat in ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer"):
        check(pat not in logs, "%s in ebb's container log:\n%s" % (pat, logs[-3000:]))


@timeout(300)
def test_pod_stop_long_request(env):
    _require(env)
    me = os.getpid()
    tag, app_tag = "localhost/ebb-pt%d:test" % me, "localhost/ebb-pt%d-app:test" % me
    names = {"exit-on-zero": "ebb-pt%d-eoz" % me, "default": "ebb-pt%d-def" % me}
    client = netnslib.NetNS("client", prefix="pod")
    guard = Guard(list(names.values()), [tag, app_tag], [client.name])
    san_env, san = _sanitizer_env(env)
    report = []
    try:
        build_s = _build_images(env, tag, app_tag)
        size = int(_text(podman("image", "inspect", "--format", "{{.Size}}", tag).stdout))
        arch = os.path.getsize(os.path.join(env.tmpdir, "ebb-image.tar"))
        report.append("image %s: %.1f MiB (OCI archive %.1f MiB), built in %.1f s%s" % (
            tag, size / 1048576.0, arch / 1048576.0, build_s, " (sanitizer build)" if san else ""))
        with client:
            client.ip("link", "set", "lo", "up")
            pods = {}
            for no, (mode, name) in enumerate(names.items()):
                ann = {"proxy.istio.io/config": SEED_COMPACT} if mode == "exit-on-zero" else {}
                pods[mode] = Pod(env, name, tag, app_tag, ann, client, no + 1, san_env)
            t0 = time.monotonic()
            for pod in pods.values():     # both pods up at once: the test takes one long request
                pod.play()
            for pod in pods.values():
                _wait_ready(pod)
            report.append("two pods playing and ready in %.1f s" % (time.monotonic() - t0))

            eoz, dfl = pods["exit-on-zero"], pods["default"]
            # the seed's verification, verbatim commands against the pod's ebb container
            r = eoz.exec_ebb("env")
            lines = [ln for ln in _text(r.stdout).splitlines() if "EXIT_ON_ZERO" in ln]
            check_eq(lines, ["PROXY_CONFIG=" + SEED_COMPACT], "env | grep EXIT_ON_ZERO")
            r = eoz.exec_ebb("pilot-agent", "request", "GET", "config_dump")
            check_eq(r.returncode, 0, "pilot-agent request GET config_dump: %s" % _text(r.stderr))
            dump = json.loads(r.stdout)
            check_eq(dump["drain"]["mode"], "exit_on_zero_active_connections", "config_dump mode")
            check_eq(dump["sources"]["EXIT_ON_ZERO_ACTIVE_CONNECTIONS"], "annotation",
                     "config_dump: EXIT_ON_ZERO's source")
            dump = json.loads(dfl.exec_ebb("pilot-agent", "request", "GET", "config_dump").stdout)
            check_eq(dump["drain"]["mode"], "termination_drain_duration", "default pod's mode")
            uid = _text(podman("inspect", "--format", "{{.Config.User}}", dfl.ebb).stdout).strip()
            check(uid.startswith("1337"), "ebb container runs as 1337 (podman says %r)" % uid)
            ro = podman("inspect", "--format", "{{.HostConfig.ReadonlyRootfs}}", dfl.ebb).stdout
            check_eq(_text(ro).strip(), "true", "ebb container's root filesystem is read-only")

            for pod in pods.values():
                _check_captured(pod)

            # the long request across `podman pod stop`, both pods at once
            results = {}
            errors = []

            def run(mode):
                try:
                    results[mode] = _long_request_across_stop(
                        pods[mode], LONG_MS if mode == "exit-on-zero" else CUT_MS)
                except BaseException as e:      # reported below, in this thread
                    errors.append((mode, e))
            ts = [threading.Thread(target=run, args=(m,)) for m in pods]
            for t in ts:
                t.start()
            for t in ts:
                t.join(200)
            if errors:
                raise errors[0][1]

            rc, code, body, err, req_s, stop_s, ebb_after = results["exit-on-zero"]
            check_eq((rc, code, body), (0, "200", "done %d\n" % LONG_MS),
                     "exit-on-zero: the long request across pod stop (curl: %s)" % err)
            status, ebb_rc = eoz.state(eoz.ebb)
            check_eq((status, ebb_rc), ("exited", 0), "exit-on-zero: ebb exited by itself")
            logs = eoz.logs(eoz.ebb)
            check('exit: reason="zero active connections"' in logs,
                  "exit-on-zero: ebb's exit reason:\n%s" % logs[-1500:])
            check(stop_s < STOP_T, "exit-on-zero: pod stop took %.1fs (SIGKILL at %ds)"
                  % (stop_s, STOP_T))
            report.append("exit-on-zero: long request (%d ms) completed %.1f s after SIGTERM; "
                          "ebb's container finished %d ms after it (status 0, zero active "
                          "connections); pod "
                          "stop returned after %.1f s" % (LONG_MS, req_s, ebb_after * 1000, stop_s))

            rc, code, body, err, req_s, stop_s, ebb_after = results["default"]
            check(rc != 0 and code in ("000", ""), "default: the long request is cut "
                  "(curl exit %d, HTTP %r, body %r)" % (rc, code, body))
            status, ebb_rc = dfl.state(dfl.ebb)
            check_eq((status, ebb_rc), ("exited", 0), "default: ebb exited by itself")
            logs = dfl.logs(dfl.ebb)
            m = re.search(r'exit: reason="terminationDrainDuration[^"]*"', logs)
            check(m, "default: ebb exits at terminationDrainDuration:\n%s" % logs[-1500:])
            # timers never fire early: the cut comes no sooner than the 5 s drain
            check(req_s >= 4.5, "default: request cut %.1f s after SIGTERM (< 5 s)" % req_s)
            report.append("default: long request cut %.1f s after SIGTERM (%s), pod stop "
                          "returned after %.1f s" % (req_s, err or "curl exit %d" % rc, stop_s))
            for pod in pods.values():
                _no_sanitizer_report(pod)
    finally:
        guard.release()
    left = podman("pod", "ps", "-q", "--filter", "name=ebb-pt%d-" % me).stdout.strip()
    check_eq(left, b"", "pods left after cleanup")
    for ln in report:
        print(ln)
