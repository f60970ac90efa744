#!/usr/bin/env bash
# GPU validation in two halves, so every session does it the same way.
#
#   bench/gpu.sh prepare        on the build machine: builds the release binary and every test binary, and
#                               lays them in .device/ (git-ignored) to be copied to the GPU machine.
#   bench/gpu.sh run [FILTER]   on the GPU machine, from the repository root: nvidia-smi, `gensync info`,
#                               every test binary with --include-ignored, compute-sanitizer memcheck over the
#                               GPU tests, and the benchmarks with --profile. The log goes to
#                               $OUT (or bench/results/) as <date>-<gpu>.log; commit it under bench/results/.
#   bench/gpu.sh peer           on the GPU machine: the PyTorch + gsplat peer (torch_peer.py, copied into
#                               .device/peer/ by `PEERS=<folder with torch_peer.py> bench/gpu.sh prepare`),
#                               with gsplat and its missing dependencies installed from wheels in .whl/
#                               (carry it); its RESULT line goes to <date>-<gpu>-peer.log.
set -euo pipefail
cd "$(dirname "$0")/.."

prepare() {
    rm -rf .device && mkdir -p .device/tests
    cargo build --release
    cargo test --release --no-run --message-format=json 2>/dev/null | python3 -c '
import json, shutil, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        kind = m["target"]["kind"][0]
        name = m["target"]["name"] + ("-unit" if kind in ("lib", "bin") else "")
        shutil.copy(m["executable"], ".device/tests/" + name)
'
    cp target/release/gensync .device/gensync
    rm -f .device/tests/ptx_fresh  # a source check; it runs in CI
    strip .device/gensync .device/tests/*  # the copy to the GPU machine is size-limited
    if [ -n "${PEERS:-}" ]; then
        mkdir -p .device/peer && cp "$PEERS/torch_peer.py" .device/peer/
    fi
    git rev-parse --short HEAD > .device/commit
    git status --porcelain | grep -q . && echo "+uncommitted" >> .device/commit || true
    ls .device/tests
}

# Where this run's outputs go, and the log name <date>-<gpu><suffix>.log.
out="${OUT:-bench/results}"
log_path() {
    mkdir -p "$out"
    echo "$out/$(date -u +%Y-%m-%d)-$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr ' ' '-')$1.log"
}

run() {
    local filter="${1:-}"
    local log; log=$(log_path "")
    export GENSYNC_BIN="$PWD/.device/gensync"
    {
        echo "# gensync GPU run: $(date -u +%FT%TZ), commit $(tr '\n' ' ' < .device/commit)"
        nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
        .device/gensync info
        local failed=0
        for t in .device/tests/*; do
            echo "## tests: $(basename "$t")"
            "$t" --include-ignored --test-threads=1 $filter 2>&1 || failed=1
        done
        echo "## compute-sanitizer memcheck (GPU tests)"
        for t in .device/tests/*; do
            "$t" --list --ignored 2>/dev/null | grep -q ': test' || continue
            echo "### memcheck: $(basename "$t")"
            compute-sanitizer --tool memcheck --error-exitcode 9 --print-limit 20 \
                "$t" --ignored --test-threads=1 $filter 2>&1 | grep -E "ERROR SUMMARY|test result|FAILED|Invalid" || failed=1
        done
        echo "## bench adam (10M parameters)"
        .device/gensync --device cuda --profile --profile-csv "$out/profile-adam.csv" bench adam --params 10000000 --reps 100 2>&1
        echo "## result: $([ $failed = 0 ] && echo all passed || echo FAILURES)"
    } 2>&1 | tee "$log"
}

peer() {
    local log; log=$(log_path "-peer")
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    {
        echo "# PyTorch + gsplat peer: $(date -u +%FT%TZ), gensync commit $(tr '\n' ' ' < .device/commit)"
        PYTHONPATH=/tmp/site MAX_JOBS=16 TORCH_CUDA_ARCH_LIST=9.0 PYTHONUNBUFFERED=1 python3 .device/peer/torch_peer.py
    } 2>&1 | tee "$log"
}

case "${1:-}" in
    prepare) prepare ;;
    run) shift; run "$@" ;;
    peer) peer ;;
    *) echo "usage: bench/gpu.sh prepare | run [TEST_FILTER] | peer" >&2; exit 2 ;;
esac
