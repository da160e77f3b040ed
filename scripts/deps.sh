#!/usr/bin/env bash
# scripts/deps.sh [build|demo|test|bench|all] - install the Debian 12 packages ebb needs.
#
#   build  compiler, make, pkg-config, libyaml, libnghttp2
#   demo   build + curl, python3 (scripts/demo.sh)
#   test   build + curl, python3 + h2, nghttp/h2load, wrk, clang + libFuzzer runtime, iptables, ps, ss,
#          nginx-light (origin for the HTTP/2 load tests), podman + runc (the image and the pod
#          test; a static libc for the pod's pause binary)
#   bench  test + haproxy (system services of nginx/haproxy are kept stopped)
#   all    = bench
#
# Only missing packages are installed (checked with dpkg-query); `apt-get update` runs at most
# once, and only when something is missing. Idempotent: with everything present it does nothing
# and takes well under a second. Needs root (or sudo) only when it has to install.
set -euo pipefail

what=${1:-test}

build_pkgs=(gcc make pkg-config libyaml-dev libnghttp2-dev)
# nginx-light is in the test set: the HTTP/2 load tests use it as a fast origin
test_pkgs=("${build_pkgs[@]}" curl python3 python3-h2 nghttp2-client wrk clang libclang-rt-14-dev iptables
           procps iproute2 nginx-light podman runc libc6-dev)
bench_pkgs=("${test_pkgs[@]}" haproxy)
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

mapfile -t missing < <(missing_of "${want[@]}")

if [ ${#missing[@]} -eq 0 ]; then
    echo "deps.sh: all ${#want[@]} '$what' packages present"
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
