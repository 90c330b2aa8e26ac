// ecq/cpu/thread_pool.hpp — READ ME FIRST
//
// How the CPU entry points (ecq/cpu/tensor_ops.hpp) spread work over cores,
// without tying an engine to ecq's threads. Host only, std-only.
//
//   parallel_for_fn   the executor an engine passes in: a callable
//                     f(count, task) that runs task(i) once for every i in
//                     [0, count), on any threads, and returns when all have
//                     finished. An engine wraps its own pool in one line:
//                       ecq::parallel_for_fn f = [&](std::size_t n, const ecq::task_ref& t) {
//                         my_pool.parallel_for(n, [&](std::size_t i) { t(i); });
//                       };
//   task_ref          a non-owning, copyable reference to the task: valid
//                     only during the parallel_for call that received it.
//   thread_pool       ecq's own executor: `threads - 1` persistent workers
//                     plus the calling thread, which takes part in the work.
//                     Tasks are claimed one index at a time from a shared
//                     counter, so unequal tasks balance themselves.
//   default_thread_pool()
//                     one process-wide pool with a thread per hardware
//                     thread, made on first use.
//
// Rules: tasks must not throw (the library builds without exceptions), and a
// task that itself calls parallel_for on the same pool runs that inner loop
// on its own thread (nesting never deadlocks, it only serialises).
#ifndef ECQ_CPU_THREAD_POOL_HPP
#define ECQ_CPU_THREAD_POOL_HPP

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "../config.hpp"

ECQ_NAMESPACE_BEGIN

/// A non-owning reference to `void(std::size_t)`; see the file comment.
class task_ref {
 public:
  template <class F>
  explicit task_ref(F& f) : object_(&f), call_([](void* o, std::size_t i) { (*static_cast<F*>(o))(i); }) {}
  void operator()(std::size_t i) const { call_(object_, i); }

 private:
  void* object_;
  void (*call_)(void*, std::size_t);
};

/// The executor type the CPU entry points take; see the file comment.
using parallel_for_fn = std::function<void(std::size_t count, const task_ref& task)>;

/// ecq's executor; see the file comment. Not copyable or movable (workers
/// hold its address).
class thread_pool {
 public:
  /// @param threads  threads that run tasks, the caller included; 0 means
  ///                 one per hardware thread.
  explicit thread_pool(unsigned threads = 0) {
    if (threads == 0) threads = std::thread::hardware_concurrency();
    if (threads == 0) threads = 1;
    threads_ = threads;
    for (unsigned k = 1; k < threads; ++k) workers_.emplace_back([this] { work(); });
  }
  thread_pool(const thread_pool&) = delete;
  thread_pool& operator=(const thread_pool&) = delete;
  ~thread_pool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (std::thread& t : workers_) t.join();
  }

  /// Threads that run tasks, the caller included.
  unsigned size() const { return threads_; }

  /// Runs task(i) for i in [0, count) and returns when every call is done.
  /// Calls from several threads at once are serialised.
  void parallel_for(std::size_t count, const task_ref& task) {
    if (count == 0) return;
    if (count == 1 || workers_.empty() || inside_task()) {
      for (std::size_t i = 0; i < count; ++i) task(i);
      return;
    }
    std::lock_guard<std::mutex> caller(caller_mutex_);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      task_ = &task;
      count_ = count;
      next_.store(0, std::memory_order_relaxed);
      busy_ = unsigned(workers_.size());
      ++generation_;
    }
    wake_.notify_all();
    run_tasks();
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return busy_ == 0; });
    task_ = nullptr;
  }

  /// The pool as a parallel_for_fn (the pool must outlive it).
  parallel_for_fn executor() {
    return [this](std::size_t count, const task_ref& task) { parallel_for(count, task); };
  }

 private:
  static bool& inside_task() {
    static thread_local bool inside = false;
    return inside;
  }

  void run_tasks() {
    inside_task() = true;
    for (std::size_t i = next_.fetch_add(1, std::memory_order_relaxed); i < count_;
         i = next_.fetch_add(1, std::memory_order_relaxed))
      (*task_)(i);
    inside_task() = false;
  }

  void work() {
    std::uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
        if (stopping_) return;
        seen = generation_;
      }
      run_tasks();
      std::lock_guard<std::mutex> lock(mutex_);
      if (--busy_ == 0) done_.notify_one();
    }
  }

  unsigned threads_ = 1;
  std::vector<std::thread> workers_;
  std::mutex caller_mutex_;  // one parallel_for at a time
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  const task_ref* task_ = nullptr;
  std::size_t count_ = 0;
  std::atomic<std::size_t> next_{0};
  unsigned busy_ = 0;
  std::uint64_t generation_ = 0;
  bool stopping_ = false;
};

/// The process-wide pool (one thread per hardware thread), made on first use.
inline thread_pool& default_thread_pool() {
  static thread_pool pool;
  return pool;
}

ECQ_NAMESPACE_END

#endif  // ECQ_CPU_THREAD_POOL_HPP
