// ecq/ecq.hpp — READ ME FIRST
//
// Umbrella header: includes every host/device public header of the codec.
// Pipeline, one header per stage:
//   ecq/histogram.hpp         count symbols, empirical entropy
//   ecq/frequency_table.hpp   normalise counts to frequencies summing to 2^S
//   ecq/symbol_table.hpp      encode table and packed decode table (+ view)
//   ecq/rans_state.hpp        one rANS state: parameters and operations
//   ecq/interleaved_rans.hpp  N-way interleaved encoder and decoders
//   ecq/symbol_packing.hpp    several small codes per symbol, raw low bits
// Container (one encoded tensor, docs/format.md):
//   ecq/checksum.hpp            XXH64
//   ecq/frequency_table_io.hpp  compact, validated frequency-table serialisation
//   ecq/tensor_view.hpp         trivially copyable tensor/block views, block decoders
//   ecq/container.hpp           encoded_tensor: encode, checked open, decode
// On the CPU, one call per tensor (decode, dequantise, fused GEMV; SIMD
// kernels, all cores) and the .ecq file:
//   ecq/cpu/tensor_ops.hpp      decode_to_symbols/float/bf16, gemv
//   ecq/io/ecq_file.hpp         .ecq files (several tensors)
// The GPU layout (docs/format.md section 15), on the host:
//   ecq/gpu_layout.hpp          its constants and bit placements (device-usable)
//   ecq/gpu_container.hpp       its encoder, checks and decode tables
// Support: ecq/config.hpp (macros), ecq/status.hpp (error codes).
// Not included here, include them by name: ecq/schemes/*.hpp (the schemes'
// quantisers; tensor_ops.hpp brings their dequantisers), ecq/fused_dot.hpp,
// ecq/io/safetensors.hpp, ecq/cpu_decode.hpp and ecq/cpu_encode.hpp (the raw
// SIMD stream kernels), and the CUDA headers ecq/*.cuh (collectives, the
// device loader ecq/device_tensor.cuh, decode at load ecq/device_decode.cuh).
#ifndef ECQ_ECQ_HPP
#define ECQ_ECQ_HPP

#include "checksum.hpp"
#include "config.hpp"
#include "container.hpp"
#include "cpu/tensor_ops.hpp"
#include "frequency_table.hpp"
#include "frequency_table_io.hpp"
#include "gpu_container.hpp"
#include "gpu_layout.hpp"
#include "histogram.hpp"
#include "interleaved_rans.hpp"
#include "io/ecq_file.hpp"
#include "rans_state.hpp"
#include "status.hpp"
#include "symbol_packing.hpp"
#include "symbol_table.hpp"
#include "tensor_view.hpp"

#endif  // ECQ_ECQ_HPP
