#!/usr/bin/env bash
# Pod benchmark of the whole node (API server + scheduler + kubelet + runtime), with podman
# measured in the same run for the ratio:
#
#   bash scripts/bench-pods.sh [N]        (root; N pods, default 100)
#
# Prints: create->Running p50/p99 over N pods created one at a time, N pods at once to all
# Running, resident memory of k1s plus its shims idle with 0 and with N pods (and per pod),
# and `podman kube play` of the same pod (podman's own storage under a temp dir, `--network
# none`, which spares podman its network setup: the ratio is in podman's favour; needs Debian's
# podman and catatonit). The podman runs are interleaved with k1s's sequential pods, one before
# the first and one after every tenth (never while a k1s pod is being timed), so that a drift
# in the machine's speed during the run hits both sides alike; their median is the figure.
# Everything runs inside a fresh network+mount namespace and is removed at the end.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
N="${1:-100}"
TOOLS="${K1S_TOOLS_DIR:-$REPO/target/tools/bin}"
KUBECTL="$TOOLS/kubectl"
IMAGE_TAR="${K1S_BUSYBOX_IMAGE:-$REPO/target/test-images/busybox.tar}"
IMAGE="k1s.local/busybox:latest"
[[ $EUID -eq 0 ]] || { echo "bench-pods: run as root" >&2; exit 1; }
[[ -x "$KUBECTL" ]] || { echo "bench-pods: $KUBECTL missing (run scripts/install-test-deps.sh)" >&2; exit 1; }
[[ -f "$IMAGE_TAR" ]] || bash "$REPO/scripts/make-busybox-image.sh" "$IMAGE_TAR" >/dev/null
(cd "$REPO" && cargo build --release -q -p k1s)
K1S="$REPO/target/release/k1s"
# shellcheck source=scripts/bench-lib.sh
source "$REPO/scripts/bench-lib.sh"

WORK="$(mktemp -d /tmp/k1s-bench-pods.XXXXXX)"
UNSHARE_PID=""
SERVER_PID=""
HOLDER=""
PODMAN_HOLDER=""
PODMAN_UNSHARE_PID=""
kc() { nsenter "--net=/proc/$HOLDER/ns/net" -- env KUBECONFIG="$WORK/kc.yaml" HOME="$WORK" "$KUBECTL" "$@"; }
# PIDs of the shims of this run's data dir (their command line names it), the server's spare
# shim included.
shims() { pgrep -f "shim (start|spare) $WORK/data/runtime" || true; }
sandboxes_left() { [[ -n "$(ls -A "$WORK/data/runtime/state/sandboxes" 2>/dev/null)" ]]; }
cleanup() {
    set +e # clean up as much as possible, whatever fails
    # Let the kubelet remove every pod (containers, cgroups, veths) before stopping k1s.
    if [[ -n "$SERVER_PID" ]] && sandboxes_left; then
        kc delete pods --all -A --grace-period=1 --timeout=60s >/dev/null 2>&1 || true
        for _ in $(seq 300); do sandboxes_left || break; sleep 0.2; done
    fi
    [[ -n "$SERVER_PID" ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    # Shims outlive the server by design: stop the ones of this data dir, by PID.
    for p in $(shims); do kill -9 "$p" 2>/dev/null || true; done
    # unshare --kill-child ignores SIGTERM while it waits: SIGKILL the holder, then unshare.
    [[ -n "$HOLDER" ]] && kill -9 "$HOLDER" 2>/dev/null
    [[ -n "$UNSHARE_PID" ]] && kill -9 "$UNSHARE_PID" 2>/dev/null
    if command -v podman >/dev/null && [[ -n "$PODMAN_HOLDER" ]]; then
        P=(nsenter "--net=/proc/$PODMAN_HOLDER/ns/net" "--mount=/proc/$PODMAN_HOLDER/ns/mnt" --
            podman --root "$WORK/podman/root" --runroot "$WORK/podman/run" --cgroup-manager cgroupfs)
        "${P[@]}" pod rm -af >/dev/null 2>&1 || true
        "${P[@]}" system reset -f >/dev/null 2>&1 || true
        kill -9 "$PODMAN_HOLDER" "$PODMAN_UNSHARE_PID" 2>/dev/null
        # podman leaves its (empty) cgroups behind: remove the ones this run made.
        find /sys/fs/cgroup/*/libpod_parent -depth -type d 2>/dev/null | grep -vxFf "$WORK/podman/cgroups-before" |
            while read -r d; do rmdir "$d" 2>/dev/null; done
    fi
    # Sandbox state kept in /run/k1s/<hash> (where /run is a tmpfs), outside $WORK.
    local state
    state="$(readlink "$WORK/data/runtime/state" 2>/dev/null)"
    [[ "$state" == /run/k1s/* ]] && rm -rf "$state"
    # K1S_BENCH_LOG=debug K1S_BENCH_KEEP_LOG=FILE keeps the server's log for profiling.
    [[ -n "${K1S_BENCH_KEEP_LOG:-}" ]] && cp "$WORK/server.log" "$K1S_BENCH_KEEP_LOG"
    umount -R "$WORK" 2>/dev/null || true
    rm -rf "$WORK" 2>/dev/null || true
}
trap cleanup EXIT

PODMAN_ONCE=""
if command -v podman >/dev/null; then
    # podman in a namespace of its own, without the hybrid cgroup2 mount (crun, its runtime,
    # refuses hybrid layouts), and with container ulimits no higher than ours: rootful podman
    # asks for nofile=1048576 and nproc=4194304, which needs CAP_SYS_RESOURCE (some VMs and
    # containers do not grant it).
    ns_holder --no-unified
    PODMAN_UNSHARE_PID="$NS_UNSHARE_PID"
    PODMAN_HOLDER="$NS_HOLDER_PID"
    NS=(nsenter "--net=/proc/$PODMAN_HOLDER/ns/net" "--mount=/proc/$PODMAN_HOLDER/ns/mnt" --)
    mkdir -p "$WORK/podman"
    find /sys/fs/cgroup/*/libpod_parent -type d >"$WORK/podman/cgroups-before" 2>/dev/null || true
    printf '[containers]\ndefault_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]\n' >"$WORK/podman/containers.conf"
    export CONTAINERS_CONF="$WORK/podman/containers.conf"
    P=(podman --root "$WORK/podman/root" --runroot "$WORK/podman/run" --cgroup-manager cgroupfs --events-backend none)
    "${NS[@]}" "${P[@]}" load -q -i "$IMAGE_TAR" >/dev/null
    cat >"$WORK/pod.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata: {name: bench}
spec:
  containers: [{name: c, image: $IMAGE, imagePullPolicy: IfNotPresent, command: [sleep, "3600"]}]
EOF
    # One timed run, appended to podman-ms.txt; bench_pods.py calls it between k1s's pods.
    PODMAN_ONCE="$WORK/podman-once.sh"
    {
        echo 'set -euo pipefail'
        printf 'P=(%s)\n' "$(printf '%q ' "${NS[@]}" "${P[@]}")"
        printf 'export CONTAINERS_CONF=%q\n' "$CONTAINERS_CONF"
        printf 'POD=%q\nOUT=%q\n' "$WORK/pod.yaml" "$WORK/podman-ms.txt"
        cat <<'EOS'
t0="$(date +%s%N)"
"${P[@]}" kube play --network none "$POD" >/dev/null
t1="$(date +%s%N)"
# Checked outside the timed part: kube play returns once the pod's containers run.
[[ "$("${P[@]}" pod inspect bench --format '{{.State}}')" == Running ]] ||
    { echo "podman kube play did not leave the pod running" >&2; exit 1; }
echo $(((t1 - t0) / 1000000)) >>"$OUT"
"${P[@]}" kube down "$POD" >/dev/null 2>&1 || true
EOS
    } >"$PODMAN_ONCE"
else
    echo "podman not installed: no ratio"
fi

ns_holder
UNSHARE_PID="$NS_UNSHARE_PID"
HOLDER="$NS_HOLDER_PID"
NS=(nsenter "--net=/proc/$HOLDER/ns/net" "--mount=/proc/$HOLDER/ns/mnt" --)
mkdir -p "$WORK/data/images"
cp "$IMAGE_TAR" "$WORK/data/images/"
"${NS[@]}" "$K1S" server --data-dir "$WORK/data" --write-kubeconfig "$WORK/kc.yaml" \
    --https-listen-port 6443 --log "${K1S_BENCH_LOG:-warn}" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 600); do
    kc get nodes 2>/dev/null | grep -q ' Ready' && break
    sleep 0.1
done

rss_kb() { # k1s server plus every shim of this data dir
    local total
    total="$(awk '/VmRSS/ {print $2}' "/proc/$SERVER_PID/status")"
    for p in $(shims); do
        total=$((total + $(awk '/VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)))
    done
    echo "$total"
}
settle() { sleep 15; } # idle means idle: let the trim and resyncs pass

settle
RSS0="$(rss_kb)"
echo "== k1s ($(cd "$REPO" && git rev-parse --short HEAD)), $N pods, $(nproc) cores"
nsenter "--net=/proc/$HOLDER/ns/net" -- env K1S_BENCH_BETWEEN="${PODMAN_ONCE:+bash $PODMAN_ONCE}" \
    python3 "$REPO/scripts/bench_pods.py" "$WORK/kc.yaml" "$N" "$IMAGE" | tee "$WORK/k1s.txt"
settle
RSSN="$(rss_kb)"
SHIMS="$(shims | wc -l)"
# RSS counts the shared pages of the k1s binary in every shim; PSS shares them out.
SHIM_PSS="$(for p in $(shims); do awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null; done | awk '{s += $1} END {if (NR) printf "%d", s / NR; else print 0}')"
echo "idle_rss_0_pods_mb $((RSS0 / 1024))"
SERVER_N="$(awk '/VmRSS/ {print $2}' "/proc/$SERVER_PID/status")"
echo "idle_rss_${N}_pods_mb $((RSSN / 1024)) (server $((SERVER_N / 1024)) MB + $SHIMS shims $(((RSSN - SERVER_N) / SHIMS)) KB each)"
echo "per_pod_kb $(((RSSN - RSS0) / N)) (RSS); shim PSS ${SHIM_PSS} KB each"

if [[ -s "$WORK/podman-ms.txt" ]]; then
    mapfile -t times <"$WORK/podman-ms.txt"
    PODMAN_MS="$(printf '%s\n' "${times[@]}" | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}')"
    K1S_MS="$(awk '/create_to_running_p50_ms/ {print $2}' "$WORK/k1s.txt")"
    echo "== podman $("${P[@]}" --version | awk '{print $3}') kube play, ${#times[@]} runs between k1s's pods (ms: ${times[*]})"
    echo "podman_kube_play_p50_ms $PODMAN_MS"
    awk -v p="$PODMAN_MS" -v k="$K1S_MS" 'BEGIN {printf "ratio_podman_over_k1s %.1fx\n", p / k}'
fi
echo "targets: p50 <= 50 ms, >= 10x faster than podman kube play, idle RSS <= 40 MB"
