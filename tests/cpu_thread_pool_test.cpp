// Tests for ecq/cpu/thread_pool.hpp: every index runs exactly once, on several threads, nested calls finish,
// and one pool serves many callers in turn.
#include <ecq/cpu/thread_pool.hpp>
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace {

TEST(ThreadPool, RunsEveryIndexExactlyOnce) {
  for (unsigned threads : {1u, 2u, 5u}) {
    ecq::thread_pool pool(threads);
    EXPECT_EQ(pool.size(), threads);
    for (std::size_t count : {std::size_t(0), std::size_t(1), std::size_t(7), std::size_t(1000)}) {
      std::vector<std::atomic<int>> hits(count);
      auto f = [&](std::size_t i) { hits[i].fetch_add(1); };
      pool.parallel_for(count, ecq::task_ref(f));
      for (std::size_t i = 0; i < count; ++i) ASSERT_EQ(hits[i].load(), 1) << i;
    }
  }
}

TEST(ThreadPool, UsesSeveralThreads) {
  ecq::thread_pool pool(3);
  std::mutex m;
  std::set<std::thread::id> ids;
  std::atomic<int> waiting{0};
  // Three tasks that wait for each other can only finish if three threads run them at once.
  auto f = [&](std::size_t) {
    {
      std::lock_guard<std::mutex> lock(m);
      ids.insert(std::this_thread::get_id());
    }
    waiting.fetch_add(1);
    while (waiting.load() < 3) std::this_thread::yield();
  };
  pool.parallel_for(3, ecq::task_ref(f));
  EXPECT_EQ(ids.size(), 3u);
}

TEST(ThreadPool, NestedCallsRunOnTheCallingThread) {
  ecq::thread_pool pool(2);
  std::atomic<int> inner{0};
  auto g = [&](std::size_t) { inner.fetch_add(1); };
  auto f = [&](std::size_t) { pool.parallel_for(10, ecq::task_ref(g)); };
  pool.parallel_for(4, ecq::task_ref(f));
  EXPECT_EQ(inner.load(), 40);
}

TEST(ThreadPool, ServesCallersFromSeveralThreads) {
  ecq::thread_pool pool(2);
  std::atomic<long> total{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 4; ++c)
    callers.emplace_back([&] {
      for (int k = 0; k < 50; ++k) {
        auto f = [&](std::size_t i) { total.fetch_add(long(i)); };
        pool.parallel_for(20, ecq::task_ref(f));
      }
    });
  for (auto& t : callers) t.join();
  EXPECT_EQ(total.load(), 4L * 50 * (19 * 20 / 2));
}

TEST(ThreadPool, AsAnExecutor) {
  ecq::thread_pool pool(2);
  const ecq::parallel_for_fn exec = pool.executor();
  std::atomic<int> n{0};
  auto f = [&](std::size_t) { n.fetch_add(1); };
  exec(17, ecq::task_ref(f));
  EXPECT_EQ(n.load(), 17);
  EXPECT_GE(ecq::default_thread_pool().size(), 1u);
}

}  // namespace
