#!/usr/bin/env bash
# A throw-away OCI registry (Debian's docker-registry) on 127.0.0.1 only, holding busybox.
#
#   scripts/local-registry.sh start DIR [PORT]   start it (PORT default: a free one), push
#                                               busybox:latest, print 127.0.0.1:PORT
#   scripts/local-registry.sh stop DIR          stop the registry started for DIR
#   scripts/local-registry.sh addr DIR          print 127.0.0.1:PORT of a running one
#
# DIR holds everything: config.yml, storage/, registry.log, registry.pid, registry.addr, and
# (with auth) htpasswd. Nothing else is written. `stop` kills only the PID in DIR/registry.pid,
# and only if that process is still the docker-registry serving DIR/config.yml.
#
# Environment:
#   K1S_BUSYBOX_IMAGE            image archive to push (default: built into DIR/busybox.tar by
#                                scripts/make-busybox-image.sh)
#   K1S_REGISTRY_USER/_PASSWORD  when both are set, the registry requires htpasswd (bcrypt)
#                                basic auth with them; pushing uses them too
#
# Plain HTTP: clients need --tls-verify=false (skopeo) or an insecure-registry setting.
set -euo pipefail

SCRIPTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log() { echo "local-registry: $*" >&2; }
die() {
    log "$*"
    exit 1
}
usage() {
    echo "usage: $0 start DIR [PORT] | stop DIR | addr DIR" >&2
    exit 2
}

[[ $# -ge 2 ]] || usage
CMD="$1"
DIR="$2"
mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"
PIDFILE="$DIR/registry.pid"
CONFIG="$DIR/config.yml"

# True if PID is alive and is the docker-registry serving our config.
is_ours() {
    local pid="$1" cmdline
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
    [[ "$cmdline" == *docker-registry*"$CONFIG"* ]]
}

# True if PID exists and is not a zombie (right after the fork its cmdline is still ours).
alive() {
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
    stat="${stat##*) }"
    [[ "${stat%% *}" != Z ]]
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

write_config() {
    local port="$1" auth=""
    if [[ -n "${K1S_REGISTRY_USER:-}" && -n "${K1S_REGISTRY_PASSWORD:-}" ]]; then
        python3 -W ignore - "$K1S_REGISTRY_USER" "$K1S_REGISTRY_PASSWORD" >"$DIR/htpasswd" <<'PY'
import crypt, sys
print(f"{sys.argv[1]}:{crypt.crypt(sys.argv[2], crypt.mksalt(crypt.METHOD_BLOWFISH))}")
PY
        auth="auth:
  htpasswd:
    realm: k1s-test-registry
    path: $DIR/htpasswd"
    fi
    cat >"$CONFIG" <<EOF
version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $DIR/storage
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
$auth
EOF
}

wait_ready() {
    local addr="$1" pid="$2" code deadline=$((SECONDS + 15))
    while ((SECONDS < deadline)); do
        alive "$pid" || { tail -n 20 "$DIR/registry.log" >&2; die "docker-registry exited"; }
        code="$(curl --noproxy '*' -s -o /dev/null -m 2 -w '%{http_code}' "http://$addr/v2/" || true)"
        [[ "$code" == 200 || "$code" == 401 ]] && return 0
        sleep 0.1
    done
    die "docker-registry did not answer on $addr within 15s (see $DIR/registry.log)"
}

start() {
    local port="${1:-}"
    command -v docker-registry >/dev/null || die "docker-registry missing: run scripts/install-test-deps.sh"
    command -v skopeo >/dev/null || die "skopeo missing: run scripts/install-test-deps.sh"
    if [[ -f "$PIDFILE" ]] && is_ours "$(cat "$PIDFILE")"; then
        log "already running (pid $(cat "$PIDFILE"))"
        cat "$DIR/registry.addr"
        return 0
    fi
    [[ -n "$port" ]] || port="$(free_port)"
    [[ "$port" =~ ^[0-9]+$ ]] || die "bad port: $port"
    local addr="127.0.0.1:$port"
    write_config "$port"
    mkdir -p "$DIR/storage"
    # setsid (not forking: a background job is no group leader) keeps $! the registry's PID and
    # detaches it from the caller's terminal signals.
    setsid docker-registry serve "$CONFIG" >"$DIR/registry.log" 2>&1 </dev/null &
    local pid=$!
    echo "$pid" >"$PIDFILE"
    echo "$addr" >"$DIR/registry.addr"
    wait_ready "$addr" "$pid"

    local image="${K1S_BUSYBOX_IMAGE:-}"
    if [[ -z "$image" || ! -f "$image" ]]; then
        image="$DIR/busybox.tar"
        bash "$SCRIPTS/make-busybox-image.sh" "$image" >/dev/null
    fi
    local creds=()
    if [[ -f "$DIR/htpasswd" ]]; then
        creds=(--dest-creds "$K1S_REGISTRY_USER:$K1S_REGISTRY_PASSWORD")
    fi
    if ! skopeo copy -q --dest-tls-verify=false "${creds[@]}" \
        "oci-archive:$image" "docker://$addr/busybox:latest" >&2; then
        stop
        die "pushing $image to $addr failed"
    fi
    log "registry pid $pid on $addr holds busybox:latest"
    echo "$addr"
}

stop() {
    [[ -f "$PIDFILE" ]] || {
        log "not running (no $PIDFILE)"
        return 0
    }
    local pid
    pid="$(cat "$PIDFILE")"
    if is_ours "$pid"; then
        kill -TERM "$pid"
        local _
        for _ in $(seq 50); do
            is_ours "$pid" || break
            sleep 0.1
        done
        if is_ours "$pid"; then
            log "pid $pid ignored SIGTERM; sending SIGKILL"
            kill -KILL "$pid"
        fi
        log "stopped pid $pid"
    else
        log "pid $pid is not our docker-registry any more; not killing it"
    fi
    rm -f "$PIDFILE" "$DIR/registry.addr"
}

case "$CMD" in
start)
    [[ $# -le 3 ]] || usage
    start "${3:-}"
    ;;
stop)
    [[ $# -eq 2 ]] || usage
    stop
    ;;
addr)
    if ! [[ -f "$PIDFILE" ]] || ! is_ours "$(cat "$PIDFILE")"; then die "not running"; fi
    cat "$DIR/registry.addr"
    ;;
*) usage ;;
esac
