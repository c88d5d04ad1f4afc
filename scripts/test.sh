#!/usr/bin/env bash
# The one test command (CI runs it through .ci/run):
#
#   bash scripts/test.sh [ARGS...]
#
# 1. scripts/install-test-deps.sh (Debian packages, kubectl/helm, rustfmt/clippy)
# 2. builds the busybox test image into target/test-images/busybox.tar, and checks the helper
#    scripts with scripts/check-scripts.sh (skopeo, a loopback docker-registry)
# 3. cargo fmt --all -- --check
# 4. cargo clippy --workspace --all-targets -- -D warnings
# 5. builds the tests and `-p k1s`, then runs the tests: cargo nextest run --workspace [ARGS...]
#    (cargo test --workspace [ARGS...] when cargo-nextest is missing)
#
# The tests see: K1S_TOOLS_DIR and PATH (kubectl, kubectl-1.35, kubectl-1.32, helm, helm-4,
# helm-3) and K1S_BUSYBOX_IMAGE (docker-save + OCI layout archive of busybox). `cargo build -p
# k1s` runs before the tests, so the e2e harness finds target/debug/k1s up to date.
#
# Exits non-zero if any step fails. Every step runs even after a lint failure, so one run shows
# everything; with CI=true the tests also run with --no-fail-fast (and nextest's `ci` profile,
# when .config/nextest.toml defines one).
#
# Environment: K1S_TOOLS_DIR (default target/tools/bin), K1S_SKIP_LINT=1 (skip fmt and clippy),
# K1S_SKIP_DEPS=1 (skip step 1).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

K1S_TOOLS_DIR="${K1S_TOOLS_DIR:-$REPO/target/tools/bin}"
mkdir -p "$K1S_TOOLS_DIR"
K1S_TOOLS_DIR="$(cd "$K1S_TOOLS_DIR" && pwd)"
export K1S_TOOLS_DIR
export PATH="$K1S_TOOLS_DIR:$PATH"
CI="${CI:-}"
if [[ "$CI" == true ]]; then
    export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
fi

FAILED=()
step() {
    local name="$1"
    shift
    echo "==> $name: $*" >&2
    local start=$SECONDS
    if "$@"; then
        echo "==> $name: ok ($((SECONDS - start))s)" >&2
    else
        echo "==> $name: FAILED ($((SECONDS - start))s)" >&2
        FAILED+=("$name")
        return 1
    fi
}
finish() {
    if ((${#FAILED[@]} > 0)); then
        echo "==> scripts/test.sh: failed steps: ${FAILED[*]}" >&2
        exit 1
    fi
}

# Without the tools the tests cannot mean anything: stop here.
if [[ "${K1S_SKIP_DEPS:-}" != 1 ]]; then
    step deps bash scripts/install-test-deps.sh || finish
fi

export K1S_BUSYBOX_IMAGE="$REPO/target/test-images/busybox.tar"
if [[ ! -f "$K1S_BUSYBOX_IMAGE" || scripts/make-busybox-image.sh -nt "$K1S_BUSYBOX_IMAGE" ||
    /bin/busybox -nt "$K1S_BUSYBOX_IMAGE" ]]; then
    step busybox-image bash scripts/make-busybox-image.sh "$K1S_BUSYBOX_IMAGE" || finish
fi

step scripts bash scripts/check-scripts.sh || true

if [[ "${K1S_SKIP_LINT:-}" != 1 ]]; then
    color=auto
    [[ -t 1 ]] || color=never # rustfmt colours its diff even into a log file
    step fmt cargo fmt --all -- --check --color "$color" || true
    step clippy cargo clippy --workspace --all-targets -- -D warnings || true
fi

if cargo nextest --version >/dev/null 2>&1; then
    run=(cargo nextest run --workspace)
    build=(cargo nextest run --workspace --no-run)
    if [[ "$CI" == true ]]; then
        run+=(--no-fail-fast)
        if grep -qs '^\[profile\.ci\]' .config/nextest.toml; then
            run+=(--profile ci)
        fi
    fi
else
    echo "==> cargo-nextest not found; using cargo test" >&2
    run=(cargo test --workspace)
    build=(cargo test --workspace --no-run)
    [[ "$CI" == true ]] && run+=(--no-fail-fast)
fi

# The e2e harness runs `cargo build -p k1s` itself; doing it here first keeps that build out of
# the tests' time and makes its failure plain.
if step build-tests "${build[@]}" && step build-k1s cargo build -p k1s; then
    echo "==> env: K1S_TOOLS_DIR=$K1S_TOOLS_DIR K1S_BUSYBOX_IMAGE=$K1S_BUSYBOX_IMAGE" >&2
    # Nothing is printed after a passing test run, so the runner's summary closes the log.
    step test "${run[@]}" "$@" || true
fi
finish
