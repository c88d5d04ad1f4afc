#!/usr/bin/env bash
# Run the cargo-fuzz targets (nightly): bash scripts/fuzz.sh SECONDS [TARGET...]
# Prints, per target, the runs executed and whether it found anything. Exit 1 on any finding.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs="${1:-600}"
shift || true
targets=("$@")
if ((${#targets[@]} == 0)); then
    targets=(body_decode patch selectors admit)
fi
status=0
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    log="artifacts/$t/run.log"
    if cargo +nightly fuzz run "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=1 -artifact_prefix="artifacts/$t/" >"$log" 2>&1; then
        echo "$t: ok, $(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | awk '{print $2}') runs in ${secs}s, corpus $(ls "corpus/$t" | wc -l)"
    else
        echo "$t: FINDING (see fuzz/$log and fuzz/artifacts/$t/)"
        status=1
    fi
done
exit $status
