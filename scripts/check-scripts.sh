#!/usr/bin/env bash
# Checks the helper scripts against the real tools (scripts/test.sh runs it; a few seconds):
# the busybox image is deterministic and readable by skopeo as both an OCI archive and a docker
# archive, and local-registry.sh serves it on 127.0.0.1 and stops what it started.
#
#   scripts/check-scripts.sh
set -euo pipefail

SCRIPTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WORK="$(mktemp -d)"
cleanup() {
    bash "$SCRIPTS/local-registry.sh" stop "$WORK/registry" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
fail() {
    echo "check-scripts: FAIL: $*" >&2
    exit 1
}

a="$(bash "$SCRIPTS/make-busybox-image.sh" "$WORK/a.tar")"
b="$(bash "$SCRIPTS/make-busybox-image.sh" "$WORK/b.tar")"
if [[ "$a" != "$b" ]] || ! cmp -s "$WORK/a.tar" "$WORK/b.tar"; then
    fail "busybox image is not deterministic"
fi

oci="$(skopeo inspect "oci-archive:$WORK/a.tar" | jq -r .Digest)"
[[ "$oci" == "$a" ]] || fail "oci-archive digest $oci != $a"
skopeo inspect "oci-archive:$WORK/a.tar:k1s.local/busybox:latest" >/dev/null ||
    fail "oci-archive ref name k1s.local/busybox:latest not found"
cmd="$(skopeo inspect --config "docker-archive:$WORK/a.tar" | jq -c .config.Cmd)"
[[ "$cmd" == '["sh"]' ]] || fail "docker-archive config Cmd is $cmd"
tags="$(tar -xOf "$WORK/a.tar" manifest.json | jq -c '.[0].RepoTags')"
[[ "$tags" == '["k1s.local/busybox:latest"]' ]] || fail "manifest.json RepoTags is $tags"

addr="$(K1S_BUSYBOX_IMAGE="$WORK/a.tar" bash "$SCRIPTS/local-registry.sh" start "$WORK/registry")"
[[ "$addr" == 127.0.0.1:* ]] || fail "registry address $addr"
pushed="$(skopeo inspect --tls-verify=false "docker://$addr/busybox:latest" | jq -r .Digest)"
[[ "$pushed" == "$a" ]] || fail "registry serves $pushed, pushed $a"
pid="$(cat "$WORK/registry/registry.pid")"
bash "$SCRIPTS/local-registry.sh" stop "$WORK/registry" 2>/dev/null
[[ "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" != *docker-registry* ]] ||
    fail "registry pid $pid still running after stop"

echo "check-scripts: ok (busybox image $a)"
