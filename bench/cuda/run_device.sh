#!/usr/bin/env bash
# bench/cuda/run_device.sh — what one device run does (see docs/cuda-notes.md).
#
# Runs on the GPU machine from the repository root, with the binaries built
# here beforehand (build/cuda-carry, carried by the device tool):
#   1. the GPU's state (nvidia-smi), tool versions;
#   2. SASS of the benchmark's kernels (cuobjdump is on the device machine only);
#   3. the GPU unit tests ($BIN/tests/*_test, plainly and under memcheck), and
#      the benchmark's kernels under compute-sanitizer memcheck and racecheck
#      (--test: small shapes, every kernel once, every result checked);
#   4. with NCU=1: Nsight Compute sections for one launch of each main kernel;
#   5. the benchmark (all shapes, or --quick), JSON and log under $OUT.
# SKIP_SASS=1, SKIP_SANITIZER=1, SKIP_BENCH=1 leave steps out.
# Usage: bench/cuda/run_device.sh [gpu_bench arguments...]
set -uo pipefail
OUT="${OUT:-/tmp/ecq-out}"
BIN="${BIN:-build/cuda-carry}"
mkdir -p "$OUT"
export PATH="$PATH:/usr/local/cuda/bin"
{
  nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,power.draw,power.limit,temperature.gpu \
    --format=csv
  nvcc --version | tail -2
  compute-sanitizer --version | head -1
  date -u
} 2>&1 | tee "$OUT/device.txt"
if [ "${SKIP_SASS:-0}" != 1 ]; then
  cuobjdump -sass "$BIN/gpu_bench" 2>&1 | gzip -c >"$OUT/sass.txt.gz"
  cuobjdump -res-usage "$BIN/gpu_bench" >"$OUT/res-usage.txt" 2>&1
fi
rc=0
# GPU unit tests (tests/*_test.cu, built here into $BIN/tests): plainly, then under memcheck.
if [ -d "$BIN/tests" ]; then
  for t in "$BIN"/tests/*_test; do
    "$t" --gtest_brief=1 >"$OUT/tests.txt" 2>&1 || rc=1
    timeout 120 compute-sanitizer --tool memcheck --error-exitcode 7 "$t" --gtest_brief=1 >>"$OUT/tests.txt" 2>&1 || rc=1
    echo "$(basename "$t"): $(grep -c '^\[  PASSED' "$OUT/tests.txt") passed runs, $(grep -c 'FAILED\|ERROR SUMMARY: [1-9]' "$OUT/tests.txt") failures"
    cat "$OUT/tests.txt" >>"$OUT/tests-all.txt"
  done
fi
if [ "${SKIP_SANITIZER:-0}" != 1 ]; then
  for tool in memcheck racecheck; do
    # cuBLAS is left out: racecheck reports hazards inside its own kernels (nvjet), not ours.
    timeout 240 compute-sanitizer --tool "$tool" --error-exitcode 7 "$BIN/gpu_bench" --test --no-cublas >"$OUT/$tool.txt" 2>&1
    r=$?
    echo "compute-sanitizer $tool: exit $r ($(grep -c FAIL "$OUT/$tool.txt") FAIL lines; $(tail -1 "$OUT/$tool.txt"))"
    [ $r -ne 0 ] && rc=1
  done
fi
if [ "${NCU:-0}" = 1 ]; then
  # One launch of each main kernel at 28672 x 8192, batch 1: where the time goes.
  stalls=""
  for r in long_scoreboard short_scoreboard wait mio_throttle math_pipe_throttle not_selected selected barrier \
           dispatch_stall lg_throttle no_instruction branch_resolving membar sleeping drain misc tex_throttle; do
    stalls="$stalls${stalls:+,}smsp__average_warps_issue_stalled_${r}_per_issue_active.ratio"
  done
  timeout 300 ncu --clock-control none -k 'regex:fused|plain|decode' \
    --section SpeedOfLight --section WarpStateStats --section SchedulerStats --section ComputeWorkloadAnalysis \
    --section InstructionStats --section MemoryWorkloadAnalysis --section MemoryWorkloadAnalysis_Tables \
    --section LaunchStats --section Occupancy --metrics "$stalls" \
    "$BIN/gpu_bench" --profile --no-cublas >"$OUT/ncu.txt" 2>&1
  echo "ncu: exit $? ($(grep -c 'Duration' "$OUT/ncu.txt") kernels)"
fi
if [ "${SKIP_BENCH:-0}" != 1 ]; then
  "$BIN/gpu_bench" --json "$OUT/bench.json" "$@" 2>&1 | tee "$OUT/bench.txt"
  [ "${PIPESTATUS[0]}" -ne 0 ] && rc=1
fi
exit $rc
