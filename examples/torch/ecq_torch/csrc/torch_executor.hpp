// examples/torch/ecq_torch/csrc/torch_executor.hpp — READ ME FIRST
//
// ecq's CPU entry points (ecq/cpu/tensor_ops.hpp) run their blocks on an
// executor. Inside PyTorch they should run on PyTorch's intra-op threads, not
// on a second pool of ecq's: two pools on the same cores oversubscribe them,
// and torch.set_num_threads() would not govern the decode. This file hands
// at::parallel_for to ecq as its parallel_for_fn.
//
// at::parallel_for splits [0, count) into one contiguous range per thread;
// grain 1 lets every block be its own unit when there are fewer blocks than
// threads. Inside an already-parallel region it runs the range on the calling
// thread, which is what ecq's own pool does for nested calls too.
#ifndef ECQ_TORCH_TORCH_EXECUTOR_HPP
#define ECQ_TORCH_TORCH_EXECUTOR_HPP

#include <ATen/Parallel.h>
#include <ecq/cpu/tensor_ops.hpp>

#include <cstddef>
#include <cstdint>

namespace ecq_torch {

/// The executor every call of the extension passes to ecq (static: cpu_options holds a pointer to it).
inline const ecq::parallel_for_fn& torch_executor() {
  static const ecq::parallel_for_fn executor = [](std::size_t count, const ecq::task_ref& task) {
    at::parallel_for(0, std::int64_t(count), 1, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t i = begin; i < end; ++i) task(std::size_t(i));
    });
  };
  return executor;
}

/// cpu_options that run on PyTorch's threads.
inline ecq::cpu_options torch_cpu_options() {
  ecq::cpu_options o;
  o.executor = &torch_executor();
  return o;
}

}  // namespace ecq_torch

#endif  // ECQ_TORCH_TORCH_EXECUTOR_HPP
