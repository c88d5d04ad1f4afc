#!/usr/bin/env bash
# Container runtime benchmark: k1s against runc and crun in the same run.
#
#   bash scripts/bench-runtime.sh [N]      (root; N runs per figure, default 50)
#
# Prints:
#  - create+start+wait+delete of /bin/true, p50/p99 over N runs: `k1s runtime run --rm IMAGE
#    /bin/true` (a fresh sandbox with its own network/IPC/UTS namespaces and shim, an overlay
#    rootfs, cgroups, then everything removed) against `runc run` and `crun run` of one
#    bundle (runc's default spec: new namespaces, read-only root, /bin/true of the same busybox
#    rootfs), and the ratios (targets: k1s <= 1.0x crun, <= 0.3x runc);
#  - the same k1s run with `--net` (veth on bridge k1s0, IPAM), and k1s's own phase timings
#    (`--timings`: open, sandbox, net, create, start, exit, remove), p50 of each; the four
#    commands take turns in blocks of 11 runs (the first of each not counted), in a new random
#    order each round: a change in the machine's load hits them alike, and each is measured in
#    the state its own runs leave the kernel in (runc and crun move processes into cgroups by
#    pid, which waits for an RCU grace period unless such a move came just before: their
#    back-to-back runs share it, single runs between k1s's would each pay it);
#  - memory of K1S_BENCH_PODS (default 100) sandboxes running `sleep`: shim RSS and PSS each;
#  - image import throughput (`k1s image import` of a docker archive with a 128 MB layer), and
#    pull throughput of the same image from a local registry (Debian's docker-registry, on the
#    namespace's loopback), then the time of a second pull that finds everything present.
# Everything runs inside a fresh network+mount namespace, where the hybrid cgroup2 mount
# (/sys/fs/cgroup/unified) is unmounted so crun, which refuses hybrid layouts, can run, and /run
# is a tmpfs, as on systemd hosts (this VM's /run is a directory of the root disk): k1s keeps
# sandbox state there (runtime/state -> /run/k1s/...), and runc and crun their state (their
# default roots, /run/runc and /run/crun). All of it is removed at the end. Needs Debian's runc and crun (figures are skipped without them).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
N="${1:-50}"
PODS="${K1S_BENCH_PODS:-100}"
IMAGE_TAR="${K1S_BUSYBOX_IMAGE:-$REPO/target/test-images/busybox.tar}"
IMAGE="k1s.local/busybox:latest"
[[ $EUID -eq 0 ]] || { echo "bench-runtime: run as root" >&2; exit 1; }
[[ -f "$IMAGE_TAR" ]] || bash "$REPO/scripts/make-busybox-image.sh" "$IMAGE_TAR" >/dev/null
# K1S_BIN: measure that binary instead of building target/release/k1s.
K1S="${K1S_BIN:-}"
if [[ -z "$K1S" ]]; then
    (cd "$REPO" && cargo build --release -q -p k1s)
    K1S="$REPO/target/release/k1s"
fi
PY=(python3 "$REPO/scripts/bench_runtime.py")
# shellcheck source=scripts/bench-lib.sh
source "$REPO/scripts/bench-lib.sh"

WORK="$(mktemp -d /var/tmp/k1s-bench-runtime.XXXXXX)"
DATA="$WORK/data"
UNSHARE_PID=""
HOLDER=""
# k1s's state dir as the namespace sees it: runtime/state is a symlink into the namespace's
# /run, and an absolute link under /proc/PID/root resolves in our root, so follow it by hand.
state() {
    local root="/proc/$HOLDER/root" link
    link="$(readlink "$root$DATA/runtime/state" 2>/dev/null)" || link="$DATA/runtime/state"
    echo "$root$link"
}
sandboxes() { [[ -n "$HOLDER" ]] && ls "$(state)/sandboxes" 2>/dev/null || true; }
cleanup() {
    set +e # clean up as much as possible, whatever fails
    local ids
    ids="$(sandboxes)"
    if [[ -n "$HOLDER" && -n "$ids" ]]; then
        # shellcheck disable=SC2086 # one argument per sandbox
        "${NS[@]}" "$K1S" runtime rmp --data-dir "$DATA" $ids >/dev/null 2>&1
    fi
    if [[ -n "$HOLDER" ]]; then
        for f in "$(state)"/sandboxes/*/shim.pid; do
            [[ -f "$f" ]] && kill -9 "$(cat "$f")" 2>/dev/null
        done
        for rt in runc crun; do
            for id in $("${NS[@]}" "$rt" --root "/run/$rt" list -q 2>/dev/null); do
                "${NS[@]}" "$rt" --root "/run/$rt" delete -f "$id" >/dev/null 2>&1
            done
        done
    fi
    [[ -f "$WORK/registry/registry.pid" ]] && bash "$REPO/scripts/local-registry.sh" stop "$WORK/registry" 2>/dev/null
    [[ -n "$HOLDER" ]] && kill -9 "$HOLDER" 2>/dev/null
    [[ -n "$UNSHARE_PID" ]] && kill -9 "$UNSHARE_PID" 2>/dev/null
    umount -R "$WORK" 2>/dev/null
    rm -rf "$WORK" 2>/dev/null
}
trap cleanup EXIT

ns_holder --no-unified --run-tmpfs
UNSHARE_PID="$NS_UNSHARE_PID"
HOLDER="$NS_HOLDER_PID"
NS=(nsenter "--net=/proc/$HOLDER/ns/net" "--mount=/proc/$HOLDER/ns/mnt" --)

echo "== k1s ($(cd "$REPO" && git rev-parse --short HEAD)) vs $(runc --version | head -1), $(crun --version | head -1); N=$N, $(nproc) cores"

# Image import throughput.
"${PY[@]}" archive "$WORK/big.tar" 128
SIZE="$(stat -c %s "$WORK/big.tar")"
T0="$(date +%s%N)"
"${NS[@]}" "$K1S" image import --data-dir "$DATA" "$WORK/big.tar" >/dev/null
T1="$(date +%s%N)"
awk -v s="$SIZE" -v ns="$((T1 - T0))" 'BEGIN {printf "import_128mb_ms %.0f\nimport_mb_per_s %.0f\n", ns / 1e6, s / 1e6 / (ns / 1e9)}'

# Pull throughput: the same image from a local registry on the namespace's loopback.
if command -v docker-registry >/dev/null && command -v skopeo >/dev/null; then
    REG="$("${NS[@]}" bash "$REPO/scripts/local-registry.sh" start "$WORK/registry" 2>/dev/null)"
    "${NS[@]}" skopeo copy -q --dest-tls-verify=false "docker-archive:$WORK/big.tar" "docker://$REG/big:latest"
    T0="$(date +%s%N)"
    "${NS[@]}" "$K1S" image pull --data-dir "$WORK/pulled" "$REG/big:latest" >/dev/null
    T1="$(date +%s%N)"
    "${NS[@]}" "$K1S" image pull --data-dir "$WORK/pulled" "$REG/big:latest" >/dev/null 2>&1
    T2="$(date +%s%N)"
    bash "$REPO/scripts/local-registry.sh" stop "$WORK/registry" 2>/dev/null
    rm -rf "$WORK/pulled" "$WORK/registry"
    awk -v s="$SIZE" -v ns="$((T1 - T0))" -v again="$((T2 - T1))" 'BEGIN {
        printf "pull_128mb_ms %.0f\npull_mb_per_s %.0f\npull_again_ms %.0f\n", ns / 1e6, s / 1e6 / (ns / 1e9), again / 1e6}'
else
    echo "docker-registry or skopeo not installed: no pull figure"
fi
rm -f "$WORK/big.tar"
"${NS[@]}" "$K1S" image import --data-dir "$DATA" "$IMAGE_TAR" >/dev/null

# One bundle for runc and crun, on a copy of k1s's unpacked busybox layer.
SNAP="$(dirname "$(dirname "$(ls -d "$DATA"/runtime/snapshots/*/bin/busybox)")")"
mkdir -p "$WORK/rootfs"
cp -a "$SNAP/." "$WORK/rootfs/"
mkdir -p "$WORK/rootfs/proc" "$WORK/rootfs/dev" "$WORK/rootfs/sys"
"${PY[@]}" bundle "$WORK/bundle" "$WORK/rootfs"

echo "== create+start+wait+delete of /bin/true (blocks of runs, interleaved), k1s also with --net; k1s's phases"
RUN=("k1s=$K1S runtime run --rm --timings --data-dir $DATA $IMAGE /bin/true"
    "k1s_net=$K1S runtime run --rm --net --timings --data-dir $DATA $IMAGE /bin/true")
for rt in runc crun; do
    if command -v "$rt" >/dev/null; then
        RUN+=("$rt=$rt --root /run/$rt run --bundle $WORK/bundle bench-{i}")
    else
        echo "$rt not installed: no figure"
    fi
done
"${NS[@]}" "${PY[@]}" compare "$N" --block=10 "${RUN[@]}" | tee "$WORK/times.txt"
awk '{v[$1] = $2} END {
    if (v["crun_p50_ms"]) printf "ratio_k1s_over_crun %.2fx (target <= 1.0x)\n", v["k1s_p50_ms"] / v["crun_p50_ms"]
    if (v["runc_p50_ms"]) printf "ratio_k1s_over_runc %.2fx (target <= 0.3x)\n", v["k1s_p50_ms"] / v["runc_p50_ms"]
}' "$WORK/times.txt"

echo "== $PODS sandboxes running sleep"
for _ in $(seq "$PODS"); do
    "${NS[@]}" "$K1S" runtime run -d --data-dir "$DATA" "$IMAGE" sleep 3600 >/dev/null
done
"${PY[@]}" mem "$(state)/sandboxes"
echo "target: shim RSS <= 2048 KB"
