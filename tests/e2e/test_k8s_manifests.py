"""deploy/kubernetes/ (SPEC §10): the offline schema check passes on the manifests and fails on
broken copies of them (a misspelled field, a wrong type, a missing required field); the pods are
wired as SPEC §10 says; and the ConfigMaps hold configuration that ebb itself accepts, with
drain_deadline = terminationGracePeriodSeconds - 1 s."""

import glob
import json
import os
import re
import shutil
import subprocess

from lib import REPO, Skip, check, check_eq, fail

CHECKER = os.path.join(REPO, "tests", "k8s", "check-manifests.mjs")
MANIFESTS = sorted(glob.glob(os.path.join(REPO, "deploy", "kubernetes", "*.yaml")))
SEED_ANNOTATION = '{ "proxyMetadata": { "EXIT_ON_ZERO_ACTIVE_CONNECTIONS": "true" } }'


def _checker(*args):
    node = shutil.which("node")
    if not node:
        raise Skip("node not installed (scripts/deps.sh test installs it)")
    mods = os.path.join(REPO, "tests", "k8s", "node_modules")
    for pkg in ("kubernetes-models", "@kubernetes/client-node", "yaml"):
        if not os.path.isdir(os.path.join(mods, pkg)):
            raise Skip("npm package %s missing in tests/k8s/node_modules "
                       "(scripts/deps.sh test installs it)" % pkg)
    return subprocess.run([node, CHECKER] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=60)


def _out(p):
    return (p.stdout + p.stderr).decode("utf-8", "replace")


def test_manifests_pass_schema_check(env):
    check(len(MANIFESTS) >= 3, "deploy/kubernetes has %d manifests" % len(MANIFESTS))
    p = _checker(*MANIFESTS)
    check_eq(p.returncode, 0, "check-manifests on deploy/kubernetes: %s" % _out(p))
    check("6 document(s)" in _out(p), "every document was checked: %s" % _out(p))


def _broken(env, name, old, new):
    """A copy of deploy/kubernetes/NAME with the first `old` replaced by `new`."""
    with open(os.path.join(REPO, "deploy", "kubernetes", name)) as f:
        text = f.read()
    check(old in text, "%r is in %s" % (old, name))
    path = os.path.join(env.tmpdir, "broken-" + name)
    with open(path, "w") as f:
        f.write(text.replace(old, new, 1))
    line = text[:text.index(old)].count("\n") + 1
    return path, line


def test_manifest_schema_check_fails_broken_copies(env):
    cases = [
        # (file, text, replacement, what the message must say)
        ("native-sidecar.yaml", "terminationGracePeriodSeconds: 60",
         "terminationGracePeriodSecond: 60",
         'spec.template.spec.terminationGracePeriodSecond: unknown field '
         '"terminationGracePeriodSecond" in V1PodSpec (did you mean "terminationGracePeriodSeconds"?)'),
        ("classic.yaml", "          readinessProbe:\n",
         "          readinesProbe:\n", 'unknown field "readinesProbe" in V1Container'),
        ("native-sidecar.yaml", "      annotations:\n", "      anotations:\n",
         'spec.template.metadata.anotations: unknown field "anotations" in V1ObjectMeta'),
        ("native-sidecar.yaml", "replicas: 2", 'replicas: "two"', "spec.replicas: must be integer"),
        ("classic.yaml", "  selector:\n    matchLabels:\n      app: demo-classic\n", "",
         'spec: missing required field "selector"'),
    ]
    for name, old, new, want in cases:
        path, line = _broken(env, name, old, new)
        p = _checker(path)
        out = _out(p)
        check_eq(p.returncode, 1, "check-manifests on %s with %r -> %r (output %s)"
                 % (name, old, new, out))
        check(want in out, "message for %r -> %r says %r: %s" % (old, new, want, out))
        check(re.search(r"%s:\d+: Deployment/" % re.escape(path), out),
              "message names file:line and the object: %s" % out)
        if new:   # an edited line is named exactly (a removed one: its parent)
            check("%s:%d:" % (path, line) in out, "message names line %d: %s" % (line, out))


def _docs(env):
    out = os.path.join(env.tmpdir, "extract")
    p = _checker("--extract", out, *MANIFESTS)
    check_eq(p.returncode, 0, "check-manifests --extract: %s" % _out(p))
    docs = {}
    for f in glob.glob(os.path.join(out, "*.json")):
        with open(f) as fh:
            docs[os.path.basename(f)[:-5]] = json.load(fh)
    return out, docs


def _by_name(items, name):
    for it in items or []:
        if it.get("name") == name:
            return it
    fail("no %r among %r" % (name, [i.get("name") for i in items or []]))


def _go_seconds(d):
    m = re.fullmatch(r"(\d+)s", d)
    check(m, "drain_deadline %r is whole seconds" % d)
    return int(m.group(1))


def test_manifests_wiring_and_ebb_config(env):
    out, docs = _docs(env)
    for dep, native in (("Deployment-demo", True), ("Deployment-demo-classic", False)):
        d = docs.get(dep) or fail("no %s in deploy/kubernetes (have %s)" % (dep, sorted(docs)))
        tmpl = d["spec"]["template"]
        spec = tmpl["spec"]
        check_eq(tmpl["metadata"]["annotations"].get("proxy.istio.io/config"), SEED_ANNOTATION,
                 "%s: the seed's annotation, verbatim" % dep)
        init = _by_name(spec["initContainers"], "ebb-init")
        check_eq(init["args"][0], "init", "%s: ebb-init runs `ebb init`" % dep)
        check_eq(init["securityContext"]["runAsUser"], 0, "%s: ebb-init runs as root" % dep)
        check_eq(sorted(init["securityContext"]["capabilities"]["add"]), ["NET_ADMIN", "NET_RAW"],
                 "%s: ebb-init capabilities" % dep)
        # read-only root: iptables-legacy's lock file needs a writable /run
        check_eq(init["securityContext"]["readOnlyRootFilesystem"], True, "%s: ebb-init rootfs" % dep)
        run_vol = {m["mountPath"]: m["name"] for m in init["volumeMounts"]}.get("/run")
        check(run_vol and "emptyDir" in {v["name"]: v for v in spec["volumes"]}[run_vol],
              "%s: ebb-init has an emptyDir at /run" % dep)
        ebb = _by_name(spec["initContainers"] if native else spec["containers"], "ebb")
        check_eq(ebb.get("restartPolicy"), "Always" if native else None,
                 "%s: ebb's restartPolicy (native sidecar or not)" % dep)
        if not native:
            check_eq(spec["containers"][0]["name"], "ebb", "%s: classic ebb is the first container" % dep)
            check_eq(ebb["lifecycle"]["postStart"]["exec"]["command"][:2], ["ebb", "wait"],
                     "%s: the app is held until ebb is ready" % dep)
        check_eq(ebb["securityContext"]["runAsUser"], 1337, "%s: ebb runs as uid 1337" % dep)
        for probe in ("readinessProbe",) + (("startupProbe",) if native else ()):
            check_eq(ebb[probe]["httpGet"], {"path": "/healthz/ready", "port": 15021},
                     "%s: ebb %s" % (dep, probe))
        mounts = {m["mountPath"]: m["name"] for m in ebb["volumeMounts"]}
        vols = {v["name"]: v for v in spec["volumes"]}
        podinfo = vols[mounts["/etc/istio/pod"]]["downwardAPI"]["items"]
        check({"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}} in podinfo,
              "%s: downward-API annotations at /etc/istio/pod/annotations: %r" % (dep, podinfo))
        check_eq(vols[mounts["/etc/istio/config"]]["configMap"]["name"], "ebb-mesh",
                 "%s: mesh config at /etc/istio/config/mesh" % dep)
        cfg_dir = mounts[os.path.dirname(ebb["args"][ebb["args"].index("-c") + 1])]
        cm = vols[cfg_dir]["configMap"]["name"]
        env_names = [e["name"] for e in ebb["env"]]
        check("PROXY_CONFIG" in env_names, "%s: PROXY_CONFIG from the annotation" % dep)

        # what kubelet would write into /etc/istio/pod/annotations for this pod
        ann = os.path.join(out, dep + ".annotations")
        with open(ann, "w") as f:
            f.write("\n".join('%s=%s' % (k, json.dumps(v))
                              for k, v in sorted(tmpl["metadata"]["annotations"].items())))
        p = subprocess.run([env.ebb_path, "validate", "-c", os.path.join(out, cm, "ebb.yaml"),
                            "--mesh-config", os.path.join(out, "ebb-mesh", "mesh"),
                            "--pod-annotations", ann],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
        check_eq(p.returncode, 0, "%s: ebb validate of its ConfigMaps: %s" % (dep, p.stderr))
        eff = json.loads(p.stdout)
        check_eq(eff["drain"]["mode"], "exit_on_zero_active_connections", "%s: drain mode" % dep)
        check_eq(eff["sources"]["EXIT_ON_ZERO_ACTIVE_CONNECTIONS"], "annotation",
                 "%s: EXIT_ON_ZERO comes from the annotation" % dep)
        check_eq(eff["sources"]["terminationDrainDuration"], "mesh config",
                 "%s: terminationDrainDuration from the mesh ConfigMap" % dep)
        check_eq(_go_seconds(eff["drain"]["drain_deadline"]),
                 spec["terminationGracePeriodSeconds"] - 1,
                 "%s: drain_deadline = terminationGracePeriodSeconds - 1 s" % dep)
    for svc, app in (("Service-demo", "demo"), ("Service-demo-classic", "demo-classic")):
        s = docs.get(svc) or fail("no %s" % svc)
        check_eq(s["spec"]["selector"], {"app": app}, "%s selector" % svc)
        check_eq(s["spec"]["ports"][0]["targetPort"], 8080, "%s targetPort" % svc)
