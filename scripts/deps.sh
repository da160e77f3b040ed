#!/usr/bin/env bash
# scripts/deps.sh [build|demo|test|bench|all] - install the Debian 12 packages ebb needs.
#
#   build  compiler, make, pkg-config, libyaml, libnghttp2
#   demo   build + curl, python3 (scripts/demo.sh)
#   test   build + curl, python3 + h2 + grpcio, nghttp/h2load, wrk, clang + libFuzzer runtime, iptables, ps, ss,
#          nginx-light (origin for the HTTP/2 load tests), podman + runc (the image and the pod
#          test; a static libc for the pod's pause binary), Node.js + npm, and the pinned npm
#          packages of the offline manifest check (tests/k8s/package.json and its lock file) in
#          tests/k8s/node_modules (project-local, not committed; `npm ci` only when missing)
#   bench  test + haproxy, valgrind (bench/instructions.sh; system services of nginx/haproxy are kept stopped)
#   all    = bench
#
# Only missing packages are installed (checked with dpkg-query); `apt-get update` runs at most
# once, and only when something is missing. Idempotent: with everything present it does nothing
# and takes well under a second. Needs root (or sudo) only when it has to install.
set -euo pipefail

what=${1:-test}

build_pkgs=(gcc make pkg-config libyaml-dev libnghttp2-dev)
# nginx-light is in the test set: the HTTP/2 load tests use it as a fast origin
test_pkgs=("${build_pkgs[@]}" curl python3 python3-h2 python3-grpcio python3-prometheus-client nghttp2-client wrk clang libclang-rt-14-dev iptables
           procps iproute2 nginx-light podman runc libc6-dev)
bench_pkgs=("${test_pkgs[@]}" haproxy valgrind)
demo_pkgs=("${build_pkgs[@]}" curl python3)

case "$what" in
    build) want=("${build_pkgs[@]}") ;;
    demo)  want=("${demo_pkgs[@]}") ;;
    test)  want=("${test_pkgs[@]}") ;;
    bench|all) want=("${bench_pkgs[@]}") ;;
    -h|--help|help)
        sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: $0 [build|demo|test|bench|all]" >&2; exit 2 ;;
esac

# missing PKG... - print the names among PKG that are not fully installed (one dpkg-query call).
missing_of() {
    local have
    have=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "$@" 2>/dev/null |
           awk '$2 == "installed" { print $1 }' || true)
    local p
    for p in "$@"; do
        grep -qxF "$p" <<<"$have" || echo "$p"
    done
}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
npm_wanted=0
case "$what" in test|bench|all) npm_wanted=1 ;; esac
# Node.js may come from elsewhere than Debian (the machine's own build): only a missing `npm`
# command makes Debian's nodejs + npm wanted.
if [ "$npm_wanted" = 1 ] && ! command -v npm >/dev/null; then want+=(nodejs npm); fi

# npm_deps - the manifest check's npm packages, at the versions tests/k8s/package-lock.json pins,
# into tests/k8s/node_modules; nothing when every pinned top-level package is there already.
npm_deps() {
    local dir=$ROOT/tests/k8s
    if node -e '
        const fs = require("fs"), d = process.argv[1];
        const want = require(d + "/package.json").dependencies;
        for (const [n, v] of Object.entries(want)) {
            const f = d + "/node_modules/" + n + "/package.json";
            if (!fs.existsSync(f) || JSON.parse(fs.readFileSync(f)).version !== v) process.exit(1);
        }' "$dir" 2>/dev/null; then
        echo "deps.sh: npm packages of tests/k8s present"
        return 0
    fi
    echo "deps.sh: npm ci in tests/k8s (pinned: tests/k8s/package-lock.json)"
    npm ci --prefix "$dir" --no-audit --no-fund --ignore-scripts --loglevel=error >/tmp/ebb-deps-npm.log 2>&1 || {
        tail -n 20 /tmp/ebb-deps-npm.log >&2
        echo "deps.sh: npm ci failed (full log: /tmp/ebb-deps-npm.log)" >&2
        return 1
    }
}

mapfile -t missing < <(missing_of "${want[@]}")

if [ ${#missing[@]} -eq 0 ]; then
    echo "deps.sh: all ${#want[@]} '$what' packages present"
    if [ "$npm_wanted" = 1 ]; then npm_deps; fi
    exit 0
fi

echo "deps.sh: installing: ${missing[*]}"
SUDO=
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "deps.sh: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
    SUDO="sudo -n"
fi

# Installing nginx/haproxy would start their system services (port 80 etc.). invoke-rc.d asks
# /usr/sbin/policy-rc.d first; exit 101 means "action forbidden". Put one in place for the
# duration of the install unless the machine already has one (Debian container images do).
policy=/usr/sbin/policy-rc.d
own_policy=0
cleanup() { if [ "$own_policy" = 1 ]; then $SUDO rm -f "$policy"; fi; }
trap cleanup EXIT
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# written by ebb scripts/deps.sh during apt-get install\nexit 101\n' |
        $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    own_policy=1
fi

export DEBIAN_FRONTEND=noninteractive
apt_opts=(-q -y -o Dpkg::Use-Pty=0 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
$SUDO apt-get update -qq
$SUDO apt-get install "${apt_opts[@]}" --no-install-recommends "${missing[@]}" >/tmp/ebb-deps-apt.log 2>&1 || {
    tail -n 30 /tmp/ebb-deps-apt.log >&2
    echo "deps.sh: apt-get install failed (full log: /tmp/ebb-deps-apt.log)" >&2
    exit 1
}

# Belt and braces: if a system nginx/haproxy got started anyway, stop and disable it so it does
# not hold ports or skew benchmarks. (There may be no systemd: PID 1 is often not init.)
for svc in nginx haproxy; do
    [ -e "/etc/init.d/$svc" ] && command -v pgrep >/dev/null || continue
    if pgrep -x "$svc" >/dev/null 2>&1; then
        echo "deps.sh: stopping system $svc service"
        if [ -d /run/systemd/system ]; then
            $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || true
        else
            $SUDO service "$svc" stop >/dev/null 2>&1 || true
            $SUDO update-rc.d "$svc" disable >/dev/null 2>&1 || true
        fi
    fi
done

mapfile -t still < <(missing_of "${missing[@]}")
if [ ${#still[@]} -ne 0 ]; then
    echo "deps.sh: still missing after install: ${still[*]}" >&2
    exit 1
fi
echo "deps.sh: installed ${#missing[@]} package(s)"
if [ "$npm_wanted" = 1 ]; then npm_deps; fi
