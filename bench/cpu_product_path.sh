#!/usr/bin/env bash
# bench/cpu_product_path.sh — the CPU product path measured side by side with its kernel-only baselines, in one
# run per binary (docs/performance.md, "The CPU product path"):
#   ecq_bench_decode  container/<real|synthetic268M>/<affine4-g64|bf16>/{kernel_only,kernel_to_memory,
#                     decode_to_symbols,decode_to_symbol_bytes,
#                     decode_to_float,decode_to_bf16}/threads:{1,all}
#   ecq_bench_gemv    gemv/real/{ecq_fused_*,container_gemv_p1,container_gemv_p2}, gemv/synthetic268M/*
# the compile time and size of examples/decode_file.cpp (the 30-line program of issue #11), and the `ecq` tool's
# verify and unpack of the synthetic 268 M-weight checkpoint as a BF16 .safetensors file packed with --scheme bf16
# (bench/ecq_tool_rows.sh: 2 threads, 3 runs each, next to dd; the unpacked file is compared with the source).
# Usage: bench/cpu_product_path.sh [BUILD_DIR (default build/bench)] [OUT_DIR (default docs/data)]
#        ECQ_TOOL=path/to/ecq (default build/test/examples/ecq); ECQ_TOOL_DIR: where the 1.4 GB of files go (/tmp)
# Build first: cmake --preset bench && cmake --build build/bench -j2 --target ecq_bench_decode ecq_bench_gemv
#   ecq_bench_synthetic_safetensors, and the tool (cmake --preset test && cmake --build build/test --target
#   example_ecq_tool)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
build="${1:-build/bench}"
out="${2:-docs/data}"
day="$(date -u +%Y-%m-%d)"
mkdir -p "$out"

"$build/bench/ecq_bench_decode" --benchmark_filter='^container/' --benchmark_min_time=0.5 \
  --benchmark_repetitions=3 --benchmark_report_aggregates_only=true \
  --benchmark_out="$out/cpu_product_path_decode_$day.json" --benchmark_out_format=json
"$build/bench/ecq_bench_gemv" --benchmark_filter='ecq_fused_pairs_S12/N64|ecq_fused_S7/N64|container_gemv|synthetic268M' \
  --benchmark_min_time=0.5 --benchmark_repetitions=3 --benchmark_report_aggregates_only=true \
  --benchmark_out="$out/cpu_product_path_gemv_$day.json" --benchmark_out_format=json

echo "== compile cost of examples/decode_file.cpp (g++ -std=c++17 -O2)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
/usr/bin/time -f "%e s wall, %U s user, %M KB max RSS" \
  g++ -std=c++17 -O2 -Iinclude -DECQ_SOURCE_DIR="\"$PWD\"" examples/decode_file.cpp -o "$tmp/decode_file"
ls -l "$tmp/decode_file" | awk '{print $5 " bytes"}'

# The tool's verify and unpack rows (and the dd floor of unpack's output).
ECQ_TOOL="${ECQ_TOOL:-build/test/examples/ecq}" bench/ecq_tool_rows.sh "$build"
