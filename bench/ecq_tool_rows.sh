#!/usr/bin/env bash
# bench/ecq_tool_rows.sh — the `ecq` tool's rows of docs/performance.md ("The CPU product path", the tool
# table): the synthetic 268 M-weight checkpoint as a 512 MiB BF16 .safetensors file packed with --scheme bf16,
# then `ecq verify` and `ecq unpack` with 2 threads, unpack with its default output (O_DIRECT) and with
# --write buffered, next to `dd` of the same 512 MiB into the same folder, buffered and O_DIRECT (the floor of
# unpack's output); each unpacked file is compared with the source byte for byte. Every command starts with no
# dirty pages (`sync` before it) and is preceded by the load average.
# Usage: bench/ecq_tool_rows.sh [BUILD_DIR (default build/bench): for ecq_bench_synthetic_safetensors]
#        ECQ_TOOL=path/to/ecq (default build/test/examples/ecq); ECQ_TOOL_DIR: where the 1.4 GB of files go
#        (default /tmp); RUNS: repetitions (default 3).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
build="${1:-build/bench}"
tool="${ECQ_TOOL:-build/test/examples/ecq}"
runs="${RUNS:-3}"
if [ ! -x "$tool" ]; then
  echo "== no ecq tool at $tool: skipping its rows"
  exit 0
fi
dir="$(mktemp -d "${ECQ_TOOL_DIR:-/tmp}/ecq_tool_rows.XXXXXX")"
trap 'rm -rf "$dir"' EXIT
load() { echo "  (load: $(cut -d' ' -f1-3 /proc/loadavg))"; }
timed() { /usr/bin/time -f "time: %e s wall, %U s user, %S s sys" "$@"; }
"$build/bench/ecq_bench_synthetic_safetensors" "$dir/synthetic268M.safetensors"
"$tool" pack "$dir/synthetic268M.safetensors" "$dir/synthetic268M_bf16.ecq" --scheme bf16 --quiet
ls -l "$dir/synthetic268M.safetensors" "$dir/synthetic268M_bf16.ecq" | awk '{print $5, $NF}'
echo "== ecq verify, synthetic 268M weights packed with --scheme bf16, 2 threads"
for run in $(seq "$runs"); do
  load
  timed "$tool" verify "$dir/synthetic268M_bf16.ecq" --threads 2
done
echo "== ecq unpack (O_DIRECT, the default; --write buffered), 2 threads, and dd of 512 MiB to a new file in the same folder"
for run in $(seq "$runs"); do
  echo "-- run $run, $(date -u +%H:%M:%S) UTC"
  for write in auto buffered; do
    rm -f "$dir/unpacked.safetensors"
    sync
    load
    timed "$tool" unpack "$dir/synthetic268M_bf16.ecq" "$dir/unpacked.safetensors" --threads 2 --write "$write"
    cmp "$dir/unpacked.safetensors" "$dir/synthetic268M.safetensors" && echo "  unpacked file == source file"
  done
  rm -f "$dir/unpacked.safetensors"
  for flag in "" "oflag=direct"; do
    rm -f "$dir/zeros"
    sync
    load
    echo "  dd if=/dev/zero bs=16M count=32 $flag"
    timed dd if=/dev/zero of="$dir/zeros" bs=16M count=32 $flag status=none
  done
  rm -f "$dir/zeros"
done
