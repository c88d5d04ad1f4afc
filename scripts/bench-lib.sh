# Shared by the bench scripts (sourced, not run).

# ns_holder [--no-unified] [--run-tmpfs]: starts a process that holds a fresh network and
# mount namespace (loopback up; with --no-unified, also without the hybrid cgroup2 mount
# /sys/fs/cgroup/unified, which crun refuses; with --run-tmpfs, with a tmpfs of its own on
# /run, as systemd hosts have) and waits until that set-up is done. Sets NS_UNSHARE_PID
# (unshare, to SIGKILL last) and NS_HOLDER_PID (the holder, whose /proc/PID/ns/* the caller
# enters; /proc/PID/root/... shows files as the namespace sees them).
ns_holder() {
    local setup='ip link set lo up'
    local opt
    for opt in "$@"; do
        case "$opt" in
        --no-unified) setup="$setup && { umount /sys/fs/cgroup/unified 2>/dev/null || true; }" ;;
        --run-tmpfs) setup="$setup && mount -t tmpfs -o mode=0755 k1s-bench-run /run" ;;
        *) echo "ns_holder: unknown option $opt" >&2; return 1 ;;
        esac
    done
    unshare --net --mount --propagation private --kill-child sh -c "$setup && exec sleep infinity" &
    NS_UNSHARE_PID=$!
    NS_HOLDER_PID=""
    for _ in $(seq 100); do
        NS_HOLDER_PID="$(pgrep -P "$NS_UNSHARE_PID" || true)"
        # The holder execs sleep once its set-up is done.
        [[ -n "$NS_HOLDER_PID" && "$(readlink "/proc/$NS_HOLDER_PID/exe")" == */sleep ]] && return 0
        sleep 0.05
    done
    echo "the namespace holder did not start" >&2
    return 1
}
