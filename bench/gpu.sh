#!/usr/bin/env bash
# GPU validation in two halves, so every session does it the same way.
#
#   bench/gpu.sh prepare        on the build machine: builds the release binary and every test binary (in
#                               $CARGO_TARGET_DIR if set), and lays them in .device/ (git-ignored) to be
#                               copied to the GPU machine.
#   bench/gpu.sh run [FILTER]   on the GPU machine, from the repository root: nvidia-smi, `gensync info`,
#                               every test binary with --include-ignored, compute-sanitizer memcheck over the
#                               GPU tests, and the benchmarks with --profile. The log goes to
#                               $OUT (or bench/results/) as <date>-<gpu>.log; commit it under bench/results/.
#   bench/gpu.sh peer           on the GPU machine: our rasterizer against gsplat on the same scene
#                               (bench/raster_vs_gsplat.py), then the PyTorch + gsplat peer (torch_peer.py,
#                               copied into .device/peer/ by `PEERS=<folder with torch_peer.py> bench/gpu.sh
#                               prepare`), with gsplat and its missing dependencies installed from wheels in
#                               .whl/ (carry it); the log is <date>-<gpu>-peer.log.
#   bench/gpu.sh check TEST..   on the GPU machine, a shorter run for kernel work: the named test binaries
#                               with --include-ignored, memcheck and racecheck over the rasterizer's and the
#                               dense layers' GPU tests, the mlp / raster / deform / canonical benches, an
#                               Nsight Compute report of raster_bwd (B = 8), and a profiled canonical
#                               training of one identity; everything in <date>-<gpu>-check.tgz (one file).
#   bench/gpu.sh deform [TEST..] on the GPU machine: the deformation network's tests (with memcheck and
#                               racecheck), its bench at B = 1, 8, 32 and the network part of torch_peer.py
#                               in one log (<date>-<gpu>-deform.log), then the named test binaries.
#   bench/gpu.sh deform-speed   on the GPU machine: deform's bench and peer half alone, no tests
#                               (<date>-<gpu>-deform-speed.log).
#   bench/gpu.sh raster         on the GPU machine: the rasterizer's tests (GPU against the twin, with the
#                               error of every output), memcheck and racecheck over them, its bench at
#                               B = 1 and 8 with the per-kernel profile, and gsplat on the same scenes
#                               (bench/raster_vs_gsplat.py, wheels from .whl/ as for `peer`) in one log
#                               (<date>-<gpu>-raster.log); then the named test binaries.
#   bench/gpu.sh deform-check [NAME..] on the GPU machine: the deformation network's tests, memcheck over
#                               them, racecheck over the tensor-core ones and the tensor-core path's errors
#                               against the twins, nothing else (about a minute; needs
#                               only .device/tests/deform and .device/commit), in
#                               <date>-<gpu>-deform-check-<commit>.log; with NAMEs, the same for each named
#                               variant's deform tests (variant's DEFORM_TESTS) instead, each in its own log.
#                               The name `portable` (here and in deform-ab) is the prepared build with
#                               GENSYNC_PORTABLE_PTX=1: its sm_80 kernels where a Hopper takes the sm_90a ones.
#   bench/gpu.sh deform-ncu [KERNEL..] on the GPU machine: Nsight Compute reports of the named kernels of
#                               bench deform (default: the four tensor-core kernels; N = 50 000, B = 8): every
#                               section, and the per-instruction SASS counters (executed instructions, stall
#                               samples) as CSV, in <date>-<gpu>-deform-ncu.tgz.
#                               The PTX is JIT-compiled without line information: bench/sass_stalls.py
#                               attributes a CSV's rows to source functions and lines (it disassembles
#                               `ptxas -lineinfo` of the same PTX, the same SASS row for row).
#   bench/gpu.sh variant NAME [BINARY [COMMIT [DEFORM_TESTS]]] on the build machine, after `prepare` and a
#                               build of another version: lays BINARY (default release/gensync under
#                               $CARGO_TARGET_DIR or target/, COMMIT
#                               default HEAD) in .device/var/ as variant NAME (an A/B's other side), and with
#                               it that version's deform test binary if given (for deform-check NAME).
#   bench/gpu.sh build-variant NAME REV [REVERT..] on the build machine, after `prepare`: builds REV (a
#                               commit or branch) in a temporary worktree, into target/variant/, with the
#                               REVERT commits reverted on it in order (a change applied and reverted on main
#                               comes back by reverting its revert), and lays its binary and deform test
#                               binary as variant NAME, named REV-REVERT-… (set NVCC so that the PTX is
#                               rebuilt).
#   bench/gpu.sh deform-ab NAME.. on the GPU machine: `bench deform` at N = 50 000, B = 8 for each named
#                               variant and the prepared binary ("new") in turn, ROUNDS times (default 3), so
#                               that all sides share the card and its state, then once more per side with the
#                               per-kernel profile: the step medians (timed without the profiler) and the
#                               deformation kernels' means in <date>-<gpu>-deform-ab.log.
#   bench/gpu.sh deform-pick NAME.. on the GPU machine: deform-check of the prepared build, deform-ab against
#                               the named variants (ROUNDS, default 2), and deform-speed of the fastest side
#                               whose check passed (a variant gets its own deform-check first): one call for
#                               kernel work. A hung test or bench side is cut off (TESTS_S, AB_RUN_S seconds).
#   bench/gpu.sh canonical      on the GPU machine: the canonical stage with the real schedule on the default
#                               corpus (4 identities × 20 s, 512²), held-out renders, then `gensync demo`:
#                               logs, contact sheets and metrics in <date>-<gpu>-canonical-train.tgz.
set -euo pipefail
cd "$(dirname "$0")/.."

# The test binaries that `cargo test --no-run --message-format=json` (on stdin) built, a line each: the path,
# then the name (the test target's; a library's or binary's own tests get "-unit").
test_binaries() {
    python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        kind = m["target"]["kind"][0]
        print(m["executable"], m["target"]["name"] + ("-unit" if kind in ("lib", "bin") else ""))
'
}

prepare() {
    rm -rf .device && mkdir -p .device/tests
    cargo build --release
    cargo test --release --no-run --message-format=json 2>/dev/null | test_binaries |
        while read -r path name; do cp "$path" ".device/tests/$name"; done
    cp "${CARGO_TARGET_DIR:-target}/release/gensync" .device/gensync
    rm -f .device/tests/ptx_fresh  # a source check; it runs in CI
    # The copy to the GPU machine is size-limited: strip, and compress (the embedded PTX is text).
    strip .device/gensync .device/tests/*
    gzip -9 .device/gensync .device/tests/*
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

# The named test binaries with --include-ignored: their test lines and results.
named_tests() {
    for name in "$@"; do
        echo "## tests: $name"
        timeout 300 ".device/tests/$name" --include-ignored --test-threads=1 2>&1 | grep -E "^test |test result|panicked" || true
    done
}

# gsplat and the dependencies the GPU machine lacks, from the wheels in .whl/, into /tmp/site.
install_wheels() {
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
}

# Unpacks what `prepare` compressed (once per machine).
unpack() {
    find .device -name '*.gz' -exec gunzip -f {} +
}

run() {
    unpack
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
            # The runtime test of a deliberately bad launch makes an API error on purpose: skipped here.
            compute-sanitizer --tool memcheck --error-exitcode 9 --print-limit 20 \
                "$t" --ignored --test-threads=1 --skip bad_launches $filter > "$out/memcheck.tmp" 2>&1 || failed=1
            grep -E "ERROR SUMMARY|test result|FAILED|Invalid|panicked" "$out/memcheck.tmp" || true
        done
        echo "## compute-sanitizer racecheck (rasterizer)"
        [ -x .device/tests/raster ] && { timeout 300 compute-sanitizer --tool racecheck --error-exitcode 9 --print-limit 20 \
            .device/tests/raster --ignored --test-threads=1 --skip face_like --skip random_scenes $filter 2>&1 | grep -E "RACECHECK SUMMARY|ERROR SUMMARY|test result|FAILED" || failed=1; }
        local g=.device/gensync
        rm -f "$out/memcheck.tmp"
        echo "## bench adam (10M parameters)"
        $g --device cuda --profile --profile-csv "$out/profile-adam.csv" bench adam --params 10000000 --reps 100 2>&1
        echo "## bench raster (512x512, N=50000, face-like scene)"
        for b in 1 8; do $g --device cuda bench raster --gaussians 50000 --batch $b --size 512 2>&1 || failed=1; done
        $g --device cuda --profile --profile-csv "$out/profile-raster-b8.csv" bench raster --gaussians 50000 --batch 8 --size 512 2>&1 || failed=1
        echo "## bench mlp"
        for m in 50000 400000; do $g --device cuda bench mlp --rows $m --in 64 --out 128 2>&1 || failed=1; done
        $g --device cuda bench mlp --rows 400000 --in 128 --out 128 2>&1 || failed=1
        echo "## bench loss (B=8, 512x512)"
        $g --device cuda bench loss --batch 8 2>&1 || failed=1
        echo "## bench canonical (512x512, up to 50000 Gaussians from the head mesh)"
        $g --device cuda bench canonical --gaussians 50000 --size 512 2>&1 || failed=1
        $g --device cuda --profile --profile-csv "$out/profile-canonical.csv" bench canonical --gaussians 50000 --size 512 --reps 20 2>&1 || failed=1
        echo "## bench deform (N=50000)"
        for b in 1 8 32; do $g --device cuda bench deform --gaussians 50000 --batch $b 2>&1 || failed=1; done
        $g --device cuda --profile --profile-csv "$out/profile-deform-b8.csv" bench deform --gaussians 50000 --batch 8 2>&1 || failed=1
        echo "## result: $([ $failed = 0 ] && echo all passed || echo FAILURES)"
    } 2>&1 | tee "$log"
}

peer() {
    unpack
    local log; log=$(log_path "-peer")
    install_wheels
    {
        echo "# PyTorch + gsplat peer: $(date -u +%FT%TZ), gensync commit $(tr '\n' ' ' < .device/commit)"
        export PYTHONPATH=/tmp/site MAX_JOBS=16 TORCH_CUDA_ARCH_LIST=9.0 PYTHONUNBUFFERED=1
        echo "## rasterizer: gensync vs gsplat on the same scene"
        python3 bench/raster_vs_gsplat.py --gensync .device/gensync --batches 1,8 --json "$out/raster_vs_gsplat.json"
        echo "## torch_peer.py"
        python3 .device/peer/torch_peer.py
    } 2>&1 | tee "$log"
}

check() {
    unpack
    local g=.device/gensync dir; dir=$(mktemp -d)
    local L=$dir/tests.log B=$dir/bench.log
    export GENSYNC_BIN="$PWD/.device/gensync"
    { nvidia-smi --query-gpu=name --format=csv,noheader; cat .device/commit; } > "$L"
    for t in "$@"; do
        echo "## $t" >> "$L"
        timeout 200 ".device/tests/$t" --include-ignored --test-threads=1 >> "$L" 2>&1 || true
    done
    for t in mlp raster; do
        echo "## memcheck $t" >> "$L"
        timeout 150 compute-sanitizer --tool memcheck --error-exitcode 9 ".device/tests/$t" --ignored --test-threads=1 \
            --skip face_like --skip random_scenes 2>&1 | grep -E "ERROR SUMMARY|test result|FAILED|Invalid|panicked" >> "$L" || true
    done
    for t in raster mlp; do
        echo "## racecheck $t" >> "$L"
        timeout 200 compute-sanitizer --tool racecheck ".device/tests/$t" --ignored --test-threads=1 --skip face_like \
            --skip random_scenes 2>&1 | grep -E "RACECHECK SUMMARY|ERROR SUMMARY|test result|FAILED" >> "$L" || true
    done
    {
        for m in 50000 400000; do $g --device cuda bench mlp --rows $m --in 64 --out 128; done
        $g --device cuda bench mlp --rows 32736 --in 128 --out 128
        for b in 1 8; do $g --device cuda bench raster --gaussians 50000 --batch $b --size 512; done
        $g --device cuda bench deform --gaussians 50000 --batch 8
        $g --device cuda bench canonical --gaussians 50000 --size 512
        $g --device cuda --profile --profile-csv "$dir/profile-canonical-step.csv" bench canonical --gaussians 50000 --size 512 --reps 20
    } > "$B" 2>&1 || true
    timeout 120 ncu --clock-control none --kernel-name raster_bwd --launch-skip 3 --launch-count 1 --section SpeedOfLight \
        --section WarpStateStats --section SchedulerStats --section ComputeWorkloadAnalysis \
        $g --device cuda bench raster --gaussians 50000 --batch 8 --size 512 --reps 2 > "$dir/ncu-raster-bwd.txt" 2>&1 || true
    echo "## profiled canonical training, identity 0 of the default corpus" >> "$B"
    $g --quiet synth --identities 1 --out "$dir/corpus" > /dev/null
    $g --device cuda --profile --profile-csv "$dir/profile-canonical-train.csv" train --stage canonical --data "$dir/corpus" \
        --out "$dir/canonical.safetensors" >> "$B" 2>&1 || true
    rm -rf "$dir/corpus" "$dir/canonical.safetensors"
    grep -E "^## |test result|FAILED|panicked|SUMMARY" "$L" || true
    grep -E "median|fwd|forward|steps in|memory" "$B" || true
    tar czf "$(log_path -check | sed 's/\.log$/.tgz/')" -C "$dir" .
    rm -rf "$dir"
}

canonical() {
    unpack
    local g=.device/gensync work; work=$(mktemp -d)
    local prefix; prefix=$(basename "$(log_path -canonical-train)" .log)
    local res=$work/results && mkdir -p "$res"
    {
        echo "# canonical stage on the GPU: $(date -u +%FT%TZ), commit $(tr '\n' ' ' < .device/commit)"
        nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
        echo "## synth (default corpus)"
        local t0=$SECONDS
        $g --quiet synth --out "$work/corpus"
        echo "synth: $((SECONDS - t0)) s wall"
        echo "## train --stage canonical (8000 steps per identity)"
        $g --device cuda train --stage canonical --data "$work/corpus" --out "$work/canonical.safetensors"
        echo "## render the held-out frames"
        for k in 0 1 2 3; do
            $g --device cuda --quiet render --checkpoint "$work/canonical.safetensors" --identity $k --out "$work/render-$k"
            cp "$work/render-$k/contact-sheet.png" "$res/$prefix-contact-sheet-$k.png"
            cp "$work/render-$k/metrics.txt" "$res/$prefix-metrics-$k.txt"
        done
    } 2>&1 | tee "$res/$prefix.log"
    $g --device cuda demo --out "$work/demo" 2>&1 | grep -v "step [0-9]*/8000" | tee "$res/${prefix%-canonical-train}-demo.log"
    tar czf "$out/$prefix.tgz" -C "$res" .
    rm -rf "$work"
}

# The deform test binary $1 (errors below 1e-5 left out of the log), memcheck over its GPU tests, racecheck
# over the tensor-core ones (racecheck is slow; they are the kernels with shared-memory staging).
deform_tests() {
    echo "## tests: deform"
    # A hung kernel stops here (TESTS_S seconds), not at the device call's limit.
    timeout "${TESTS_S:-300}" "$1" --include-ignored --test-threads=1 2>&1 |
        grep -vE "rel err [0-9.]+e-([5-9]|[1-9][0-9])," || echo "deform tests: FAILED or timed out (${TESTS_S:-300} s)"
    echo "## memcheck: deform GPU tests"
    timeout 200 compute-sanitizer --tool memcheck --print-limit 20 "$1" --ignored --test-threads=1 2>&1 \
        | grep -E "ERROR SUMMARY|test result" || true
    echo "## racecheck: gpu_tensor_core_path_matches_cpu_twin"
    timeout 200 compute-sanitizer --tool racecheck --print-limit 20 "$1" --ignored --test-threads=1 gpu_tensor_core_path 2>&1 \
        | grep -E "RACECHECK SUMMARY|test result" || true
    # The tensor-core path's errors against the twins (the tests pass or fail on them, but print them only
    # with --nocapture): the outputs, d_kv, d_f and d_params of each case, and the loss curves' largest gap.
    echo "## tensor-core errors"
    "$1" --ignored --test-threads=1 --nocapture gpu_tensor_core tensor_core_training 2>&1 \
        | grep -E "TensorCores\) ([a-z_]+|d_canonical\.[a-z_]+): rel err|largest relative gap" || true
}

# The deformation network alone: its test binary (and memcheck and racecheck over its GPU tests), the
# deform bench at B = 1, 8, 32 with the per-kernel profile, and the network part of torch_peer.py (eager
# PyTorch fp32 and bf16 autocast, same B) in the same session; then the named test binaries. One log.
deform() {
    unpack
    local log g=.device/gensync t=.device/tests/deform; log=$(log_path "-deform")
    export GENSYNC_BIN="$PWD/$g"
    {
        echo "# deformation network: $(date -u +%FT%TZ), commit $(tr '\n' ' ' < .device/commit)"
        $g --device cuda info
        deform_tests "$t"
        # Float atomics make every run's sums differ a little: the loss-curve comparison five times.
        echo "## tensor_core_training_matches_fp32, 5 runs"
        for i in 1 2 3 4 5; do
            "$t" --ignored --test-threads=1 --nocapture tensor_core_training 2>&1 | grep -E "largest relative gap|test result" || true
        done
        deform_speed
        named_tests "$@"
    } 2>&1 | tee "$log"
}

# The deform bench at B = 1, 8, 32 with the per-kernel profile, then the peer's network at the same sizes.
deform_speed() {
    local b
    for b in 1 8 32; do
        # The step medians from a run without the profiler, whose events between launches hold back the
        # programmatic dependent launches (its medians sit 30–60 µs higher at B = 8); then the kernels' table.
        echo "## bench deform B = $b"
        .device/gensync --device cuda bench deform --gaussians 50000 --batch $b 2>&1
        echo "## bench deform B = $b, with the per-kernel profile"
        .device/gensync --device cuda --profile --profile-csv "$out/profile-deform-b$b.csv" bench deform --gaussians 50000 --batch $b 2>&1
    done
    echo "## torch_peer.py: the network alone (eager PyTorch; the rest of the script needs gsplat)"
    NETB=1,8,32 timeout 300 python3 .device/peer/torch_peer.py 2>&1 | grep -m 3 net_eager || true
}

# deform's speed half alone (no tests), in <date>-<gpu>-deform-speed.log.
deform_speed_only() {
    unpack
    local log; log=$(log_path "-deform-speed")
    {
        echo "# deformation network speed: $(date -u +%FT%TZ), commit $(tr '\n' ' ' < .device/commit)"
        .device/gensync --device cuda info
        deform_speed
    } 2>&1 | tee "$log"
}

# The deformation network's tests and sanitizers alone (bench/gpu.sh deform-check), for the prepared build
# or the named variants. One log each.
deform_check() {
    unpack
    local name commit t log names=("$@")
    [ ${#names[@]} -gt 0 ] || names=(new)
    for name in "${names[@]}"; do
        unset GENSYNC_PORTABLE_PTX
        if [ "$name" = new ] || [ "$name" = portable ]; then
            t=.device/tests/deform commit=$(tr '\n' ' ' < .device/commit)
            if [ "$name" = portable ]; then
                export GENSYNC_PORTABLE_PTX=1
                commit="${commit%% *}-sm80 ${commit#* }"
            fi
        else
            t=.device/var/deform-$name commit=$(sed -n "s/^variant $name: //p" .device/variants)
        fi
        log=$(log_path "-deform-check-${commit%% *}")
        chmod +x "$t"
        {
            echo "# deformation network tests: $(date -u +%FT%TZ), commit $commit"
            deform_tests "$t"
        } 2>&1 | tee "$log"
    done
}

# Another build's binary as A/B variant NAME (after prepare, which empties .device).
variant() {
    [ -n "${1:-}" ] && [ -d .device ] || { echo "bench/gpu.sh variant NAME: after bench/gpu.sh prepare" >&2; exit 2; }
    local bin="${2:-${CARGO_TARGET_DIR:-target}/release/gensync}" commit="${3:-}"
    if [ -z "$commit" ]; then
        commit="$(git rev-parse --short HEAD)$(git status --porcelain | grep -q . && echo ' +uncommitted' || true)"
    fi
    mkdir -p .device/var
    cp "$bin" ".device/var/gensync-$1"
    [ -n "${4:-}" ] && cp "$4" ".device/var/deform-$1"
    strip ".device/var/gensync-$1" ${4:+".device/var/deform-$1"}
    gzip -9f ".device/var/gensync-$1" ${4:+".device/var/deform-$1"}
    # A name laid again replaces its line (deform-check reads the commit from it).
    { grep -v "^variant $1: " .device/variants 2>/dev/null || true; echo "variant $1: $commit"; } > .device/variants.new
    mv .device/variants.new .device/variants
}

# Another commit built and laid as variant NAME: one target folder serves every variant (they are built
# one at a time, and each is copied out before the next).
build_variant() {
    [ $# -ge 2 ] && [ -d .device ] || { echo "bench/gpu.sh build-variant NAME REV [REVERT..]: after bench/gpu.sh prepare" >&2; exit 2; }
    local name=$1 rev=$2 commit tree target="$PWD/target/variant" tests c label
    shift 2
    commit=$(git rev-parse --short --verify -q "$rev^{commit}") || { echo "bench/gpu.sh build-variant: no commit $rev" >&2; exit 2; }
    # A PTX taken from either side of a conflict is stale until nvcc rebuilds it.
    [ $# -eq 0 ] || [ -x "${NVCC:-}" ] || { echo "bench/gpu.sh build-variant: REVERTs need NVCC (the PTX is rebuilt)" >&2; exit 2; }
    tree=$(mktemp -d)
    git worktree add -q --detach "$tree" "$commit"
    label=$commit
    # Changes applied and reverted on main come back by reverting their reverts: a conflict in the generated
    # PTX takes either side (the build regenerates it with NVCC set); any other conflict stops the build.
    for c in "$@"; do
        if ! (cd "$tree" && git revert --no-edit "$c" >/dev/null 2>&1); then
            if (cd "$tree" && git diff --name-only --diff-filter=U | grep -qv '^ptx/'); then
                (cd "$tree" && git revert --abort)
                git worktree remove --force "$tree"
                echo "bench/gpu.sh build-variant: reverting $c on $commit conflicts outside ptx/" >&2
                exit 2
            fi
            (cd "$tree" && git checkout --theirs ptx/ && git add ptx/ && git -c core.editor=true revert --continue >/dev/null)
        fi
        label="$label-$(git rev-parse --short "$c")"
    done
    tests=$( (cd "$tree" && CARGO_TARGET_DIR="$target" cargo build --release >&2 &&
        CARGO_TARGET_DIR="$target" cargo test --release --no-run --test deform --message-format=json 2>/dev/null) |
        test_binaries | awk '$2 == "deform" { print $1 }') ||
        { git worktree remove --force "$tree"; echo "bench/gpu.sh build-variant: $rev did not build" >&2; exit 2; }
    git worktree remove --force "$tree"
    variant "$name" "$target/release/gensync" "$label" "$tests"
    echo "variant $name: $label"
}

# The deform bench at B = 8 for each named variant and the prepared binary, in turn, ROUNDS times; then one
# profiled run of each for the kernels' means. The step medians come from runs without --profile: the
# profiler's events between launches would hold back a kernel launched to overlap the one before it.
deform_ab() {
    unpack
    local log; log=$(log_path "-deform-ab")
    # One side's bench deform at N = 50 000, B = 8; a side that hangs loses its run (AB_RUN_S seconds), not
    # the others'.
    side_bench() {
        local v=$1 g=".device/var/gensync-$1" portable=()
        shift
        [ "$v" = new ] && g=.device/gensync
        [ "$v" = portable ] && g=.device/gensync portable=(GENSYNC_PORTABLE_PTX=1)
        chmod +x "$g"
        timeout "${AB_RUN_S:-120}" env "${portable[@]}" "$g" --device cuda "$@" bench deform --gaussians 50000 --batch 8 2>&1
    }
    {
        echo "# deform A/B: $(date -u +%FT%TZ), new = commit $(tr '\n' ' ' < .device/commit)"
        echo "# step medians without --profile; kernel means from one profiled run per side after the rounds"
        cat .device/variants 2>/dev/null || true
        for round in $(seq "${ROUNDS:-3}"); do
            for v in "$@" new; do
                echo "## round $round, $v"
                side_bench "$v" | grep -E "tensor cores|error" | sed 's/; [0-9.]* GFLOP.*//' || true
            done
        done
        for v in "$@" new; do
            echo "## profile, $v"
            side_bench "$v" --profile | grep -E "^deform_|^tokens|^fill|^adam|error" || true
        done
    } 2>&1 | tee "$log"
}

# One device call for kernel work (bench/gpu.sh deform-pick NAME..): deform-check of the prepared build,
# deform-ab against the named variants (ROUNDS, default 2), then deform-speed of the fastest side (the lowest
# mean of its step medians) whose check passed: a variant gets its own deform-check first, then stands in
# for the prepared build (.device/gensync, .device/commit) in the speed run.
# Whether a deform-check log (path) shows a failed, hung or panicking test run.
check_failed() {
    grep -qE "test result: FAILED|FAILED or timed out|panicked" "$1"
}

deform_pick() {
    unpack
    local check log best ok_new=1
    deform_check new
    check=$(ls -t "$out"/*-deform-check-"$(head -1 .device/commit | cut -d' ' -f1)".log | head -1)
    check_failed "$check" && ok_new=0
    ROUNDS="${ROUNDS:-2}" deform_ab "$@"
    log=$(ls -t "$out"/*-deform-ab.log | head -1)
    best=$(awk '/^## round/ {side = $NF}
                /deform step, tensor cores/ {for (i = 1; i <= NF; ++i) if ($i == "median") {sum[side] += $(i + 1); n[side]++}}
                END {for (side in sum) print sum[side] / n[side], side}' "$log" |
        sort -n | awk -v ok="$ok_new" '$2 != "new" || ok {print $2; exit}')
    echo "# deform-pick: fastest side that may be checked: ${best:-none}"
    [ -n "$best" ] || return 0
    if [ "$best" != new ]; then
        deform_check "$best"
        check=$(ls -t "$out"/*-deform-check-*.log | head -1)
        if check_failed "$check"; then
            echo "# deform-pick: $best failed its check; no speed run"
            return 0
        fi
        cp ".device/var/gensync-$best" .device/gensync
        sed -n "s/^variant $best: //p" .device/variants > .device/commit
    fi
    deform_speed_only
}

# Nsight Compute on the deformation network's tensor-core kernels: where their time goes, per section and
# per SASS instruction.
deform_ncu() {
    unpack
    local g=.device/gensync dir; dir=$(mktemp -d)
    local kernels=("$@")
    [ ${#kernels[@]} -gt 0 ] || kernels=(deform_fwd_chain_tc deform_fwd_heads_tc deform_bwd_heads_tc deform_bwd_chain_tc)
    for k in "${kernels[@]}"; do
        timeout 300 ncu --set full --kernel-name "$k" --launch-skip 3 --launch-count 1 -o "$dir/$k" \
            $g --device cuda bench deform --gaussians 50000 --batch 8 --reps 2 > "$dir/$k-run.txt" 2>&1 || true
        ncu -i "$dir/$k.ncu-rep" --page details --print-details all > "$dir/$k-details.txt" 2>&1 || true
        ncu -i "$dir/$k.ncu-rep" --page source --print-source sass --csv > "$dir/$k-sass.csv" 2>&1 || true
        rm -f "$dir/$k.ncu-rep"
    done
    tar czf "$(log_path -deform-ncu | sed 's/\.log$/.tgz/')" -C "$dir" .
    rm -rf "$dir"
}

# The rasterizer alone, everything its issue asks for in one log: the GPU-vs-twin errors, the sanitizers,
# our timings and gsplat's on the same card in the same session.
raster() {
    unpack
    local log g=.device/gensync t=.device/tests/raster; log=$(log_path "-raster")
    export GENSYNC_BIN="$PWD/$g"
    {
        echo "# rasterizer: $(date -u +%FT%TZ), commit $(tr '\n' ' ' < .device/commit)"
        echo "## tests: raster"
        "$t" --include-ignored --test-threads=1 --nocapture 2>&1 | grep -E "^test |test result|panicked|rel err" || true
        echo "## memcheck: raster GPU tests"
        timeout 300 compute-sanitizer --tool memcheck --print-limit 20 "$t" --ignored --test-threads=1 2>&1 \
            | grep -E "ERROR SUMMARY|test result|Invalid" || true
        echo "## racecheck: raster GPU tests (the small scenes)"
        timeout 300 compute-sanitizer --tool racecheck --print-limit 20 "$t" --ignored --test-threads=1 --skip face_like \
            --skip random_scenes 2>&1 | grep -E "RACECHECK SUMMARY|test result" || true
        for b in 1 8; do
            echo "## bench raster B = $b"
            $g --device cuda --profile --profile-csv "$out/profile-raster-b$b.csv" bench raster --gaussians 50000 --batch $b --size 512 2>&1
        done
        if [ -d .whl ]; then
            echo "## gsplat on the same scenes"
            install_wheels
            PYTHONPATH=/tmp/site MAX_JOBS=16 TORCH_CUDA_ARCH_LIST=9.0 PYTHONUNBUFFERED=1 \
                python3 bench/raster_vs_gsplat.py --gensync "$g" --batches 1,8 --json "$out/raster_vs_gsplat.json" 2>&1
        fi
        named_tests "$@"
    } 2>&1 | tee "$log"
}

case "${1:-}" in
    prepare) prepare ;;
    deform) shift; deform "$@" ;;
    deform-speed) deform_speed_only ;;
    raster) shift; raster "$@" ;;
    run) shift; run "$@" ;;
    peer) peer ;;
    check) shift; check "$@" ;;
    canonical) canonical ;;
    deform-check) shift; deform_check "$@" ;;
    deform-ncu) shift; deform_ncu "$@" ;;
    variant) shift; variant "$@" ;;
    build-variant) shift; build_variant "$@" ;;
    deform-ab) shift; deform_ab "$@" ;;
    deform-pick) shift; deform_pick "$@" ;;
    *) echo "usage: bench/gpu.sh prepare | variant NAME [BINARY [COMMIT [DEFORM_TESTS]]] | build-variant NAME REV [REVERT..] | run [TEST_FILTER] | peer | check TEST.. | canonical | deform [TEST..] | deform-speed | deform-check [NAME..] | deform-ab NAME.. | deform-pick NAME.. | deform-ncu [KERNEL..] | raster [TEST..]" >&2; exit 2 ;;
esac
