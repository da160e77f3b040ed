#!/usr/bin/env bash
# scripts/image.sh [--ebb BIN] [--tag TAG] [--archive FILE] [--pause-tag TAG] - build ebb's OCI image.
#
# `make image` runs it with the defaults: build/ebb -> localhost/ebb:latest and the OCI archive
# build/ebb-image.tar (load it into a cluster's runtime, docs/kubernetes.md), plus the pod infra
# ("pause") image localhost/ebb-pause:latest that podman needs for `podman kube play`.
#
# Nothing is pulled (there is no registry to pull from): the image is FROM scratch with
#   /usr/local/bin/ebb and /usr/local/bin/pilot-agent -> ebb   (`pilot-agent request GET config_dump`)
#   /usr/bin/env                                               (`kubectl exec ... -- env | grep ...`)
#   iptables, ip6tables (nft and legacy) and their extensions  (`ebb init` in the init container)
#   every shared library `ldd` lists for those files, /etc/passwd with istio-proxy (1337)
# and runs as uid 1337 with `ebb run` by default (SPEC §10).
#
# Podman runs with scripts/podman/containers.conf (CONTAINERS_CONF): runc, cgroupfs, ulimits
# within the machine's hard limits; the machine's own containers configuration is not touched.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
EBB=$ROOT/build/ebb
TAG=localhost/ebb:latest
ARCHIVE=
PAUSE_TAG=localhost/ebb-pause:latest
while [ $# -gt 0 ]; do
    case "$1" in
        --ebb) EBB=$2; shift 2 ;;
        --tag) TAG=$2; shift 2 ;;
        --archive) ARCHIVE=$2; shift 2 ;;
        --pause-tag) PAUSE_TAG=$2; shift 2 ;;
        -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "usage: $0 [--ebb BIN] [--tag TAG] [--archive FILE] [--pause-tag TAG]" >&2; exit 2 ;;
    esac
done

CONTAINERS_CONF=$(readlink -f "${CONTAINERS_CONF:-$ROOT/scripts/podman/containers.conf}")
export CONTAINERS_CONF
for t in podman ldd objdump cc; do
    command -v "$t" >/dev/null || { echo "image.sh: $t not installed (scripts/deps.sh test)" >&2; exit 1; }
done
[ -x "$EBB" ] || { echo "image.sh: $EBB does not exist (run make first)" >&2; exit 1; }

SBIN=/usr/sbin
IPT_NAMES=(iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore
           iptables-nft iptables-nft-save iptables-nft-restore
           ip6tables-nft ip6tables-nft-save ip6tables-nft-restore
           iptables-legacy iptables-legacy-save iptables-legacy-restore
           ip6tables-legacy ip6tables-legacy-save ip6tables-legacy-restore)
XT_DIR=$(dirname "$(readlink -f "$(ldd "$SBIN/xtables-nft-multi" | awk '/libxtables/ { print $3 }')")")/xtables

work=$(mktemp -d "${TMPDIR:-/tmp}/ebb-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs

# put SRC DEST - copy the file SRC resolves to into the image at DEST (a path as the image sees it).
put() {
    mkdir -p "$rootfs$(dirname "$2")"
    cp -L "$1" "$rootfs$2"
}

# libs FILE... - the absolute library paths ldd lists for each file (and the loader).
libs() {
    ldd "$@" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// && $2 ~ /^\(/ { print $1 }' | sort -u
}

# Debian 12's merged /usr: /bin, /sbin, /lib, /lib64 are links into /usr, so a library is copied
# once, to the path ldd names, and found there through either spelling.
mkdir -p "$rootfs"/usr/{bin,sbin,lib,lib64,local/bin} "$rootfs"/{etc,tmp,run,var/run}
for d in bin sbin lib lib64; do ln -s "usr/$d" "$rootfs/$d"; done
chmod 1777 "$rootfs/tmp"

put "$EBB" /usr/local/bin/ebb
ln -s ebb "$rootfs/usr/local/bin/pilot-agent"
put /usr/bin/env /usr/bin/env
files=("$EBB" /usr/bin/env)
for multi in xtables-nft-multi xtables-legacy-multi; do
    put "$SBIN/$multi" "/usr/sbin/$multi"
    files+=("$SBIN/$multi")
done
for n in "${IPT_NAMES[@]}"; do     # the same backend choice as this machine's alternatives
    ln -s "$(basename "$(readlink -f "$SBIN/$n")")" "$rootfs/usr/sbin/$n"
done
# the extensions are loaded by iptables at run time (-m owner, -j REDIRECT, ...): all of them, and
# the libraries they name (read in one objdump pass; ldd per file takes seconds)
for so in "$XT_DIR"/*.so; do put "$so" "$XT_DIR/$(basename "$so")"; done
for name in $(objdump -p "$XT_DIR"/*.so | awk '$1 == "NEEDED" { print $2 }' | sort -u); do
    lib=$(dirname "$XT_DIR")/$name
    if [ -e "$lib" ]; then put "$lib" "$lib"; files+=("$lib"); fi
done
while read -r lib; do
    dir=$(readlink -f "$(dirname "$lib")")          # /lib/x86_64-linux-gnu -> /usr/lib/...
    put "$lib" "$dir/$(basename "$lib")"
done < <(libs "${files[@]}")

# uid/gid 1337 is Istio's istio-proxy; the names make `ps`/`id` output readable
printf 'root:x:0:0:root:/root:/nonexistent\nistio-proxy:x:1337:1337:istio-proxy:/tmp:/nonexistent\n' \
    >"$rootfs/etc/passwd"
printf 'root:x:0:\nistio-proxy:x:1337:\n' >"$rootfs/etc/group"
mkdir -p "$rootfs"/etc/istio/{config,pod,proxy}

cat >"$work/Containerfile" <<'EOF'
FROM scratch
COPY rootfs/ /
ENV PATH=/usr/local/bin:/usr/sbin:/usr/bin
WORKDIR /
USER 1337:1337
ENTRYPOINT ["/usr/local/bin/ebb"]
CMD ["run"]
EOF
# build_as TAG ARGS... - podman build, then drop the image TAG named before if nothing else does
# (rebuilding a tag would otherwise leave a dangling 7 MB image behind each time).
build_as() {
    local tag=$1 old new
    shift
    old=$(podman image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
    podman build -q --pull=never --network=none -t "$tag" "$@" >/dev/null
    new=$(podman image inspect --format '{{.Id}}' "$tag")
    if [ -n "$old" ] && [ "$old" != "$new" ]; then podman rmi "$old" >/dev/null 2>&1 || true; fi
}

build_as "$TAG" -f "$work/Containerfile" "$work"

# The infra container of a pod: a static pause (deploy/image/pause.c), as Kubernetes' own.
if [ -n "$PAUSE_TAG" ]; then
    mkdir -p "$work/pause"
    cc -static -O2 -Wall -Werror -o "$work/pause/pause" "$ROOT/deploy/image/pause.c"
    printf 'FROM scratch\nCOPY pause /pause\nENTRYPOINT ["/pause"]\n' >"$work/pause/Containerfile"
    build_as "$PAUSE_TAG" "$work/pause"
fi

if [ -n "$ARCHIVE" ]; then
    rm -f "$ARCHIVE"
    podman save -q --format oci-archive -o "$ARCHIVE" "$TAG"
fi
size=$(podman image inspect --format '{{.Size}}' "$TAG")
echo "image.sh: $TAG ($((size / 1024)) KiB uncompressed)${ARCHIVE:+, OCI archive $ARCHIVE ($(( $(stat -c %s "$ARCHIVE") / 1024 )) KiB)}${PAUSE_TAG:+; pause image $PAUSE_TAG}"
