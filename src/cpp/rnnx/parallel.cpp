#include "rnnx/parallel.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sched.h>
#include <unistd.h>
#endif
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define RNNX_PAUSE() _mm_pause()
#else
#define RNNX_PAUSE() std::this_thread::yield()
#endif

namespace rnnx {
namespace {

int default_threads() {
  if (const char* env = std::getenv("RNNX_NUM_THREADS")) {
    const int n = std::atoi(env);
    if (n >= 1) return std::min(n, 256);
  }
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
#endif
  return std::max(1u, std::thread::hardware_concurrency());
}

class Pool {
 public:
  Pool() : threads_(default_threads()) {}

  int threads() const { return threads_; }

  void set_threads(int n) {
    std::lock_guard<std::mutex> run(run_mutex_);
    stop_workers();
    threads_ = std::max(1, n);
  }

  void run(Index n, TaskRef task, bool parallel, bool reverse) {
    if (n <= 1 || !parallel || threads_ == 1) return run_inline(n, task, reverse);
    std::unique_lock<std::mutex> run(run_mutex_, std::try_to_lock);
    if (!run.owns_lock()) return run_inline(n, task, reverse);  // nested, or another caller
    start_workers();
    const int used = int(std::min<Index>(threads_, n));
    task_ = &task;
    n_tasks_ = n;
    stride_ = used;
    reverse_ = reverse;
    error_ = nullptr;
    pending_.store(used - 1, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lk(sleep_mutex_);
      generation_.store(next_generation(generation_.load(std::memory_order_relaxed), used),
                        std::memory_order_release);
    }
    sleep_cv_.notify_all();
    run_share(0);
    while (pending_.load(std::memory_order_acquire) != 0) RNNX_PAUSE();
    task_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void run_share(int id) {
    try {
      if (reverse_) {
        if (id < n_tasks_)
          for (Index i = id + (n_tasks_ - 1 - id) / stride_ * stride_; i >= id; i -= stride_)
            (*task_)(i);
      } else {
        for (Index i = id; i < n_tasks_; i += stride_) (*task_)(i);
      }
    } catch (...) {
      std::lock_guard<std::mutex> lk(error_mutex_);
      if (!error_) error_ = std::current_exception();
    }
  }

  void worker(int id, std::uint64_t seen) {
    for (;;) {
      std::uint64_t g;
      int spins = 0;
      while ((g = generation_.load(std::memory_order_acquire)) == seen) {
        if (stop_.load(std::memory_order_relaxed)) return;
        if (++spins < 4096) {
          RNNX_PAUSE();
        } else {
          std::unique_lock<std::mutex> lk(sleep_mutex_);
          sleep_cv_.wait(lk, [&] {
            return generation_.load(std::memory_order_acquire) != seen ||
                   stop_.load(std::memory_order_relaxed);
          });
        }
      }
      seen = g;
      if (stop_.load(std::memory_order_relaxed)) return;
      // The region's thread count comes with its generation, in one atomic word: a
      // worker left out of a region (id >= its count) that reads the count late must
      // not see the next region's (it would run that region's share under this
      // generation, then again under the next: tasks twice, or a call through a null
      // task after the caller returned).
      if (id < threads_of(g)) {
        run_share(id);
        pending_.fetch_sub(1, std::memory_order_acq_rel);
      }
    }
  }

  void start_workers() {
#if defined(__linux__)
    if (!workers_.empty() && owner_pid_ != getpid()) {
      // A forked child: the parent's workers do not exist here. Forget them.
      new (&workers_) std::vector<std::thread>();
    }
#endif
    if (int(workers_.size()) == threads_ - 1) return;
    stop_workers();
    stop_.store(false);
    const std::uint64_t g = generation_.load();
    for (int id = 1; id < threads_; ++id) workers_.emplace_back([this, id, g] { worker(id, g); });
#if defined(__linux__)
    owner_pid_ = getpid();
#endif
  }

  void stop_workers() {
    if (workers_.empty()) return;
    {
      std::lock_guard<std::mutex> lk(sleep_mutex_);
      stop_.store(true);
    }
    sleep_cv_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
    stop_.store(false);
  }

  // generation_: a region counter (high 32 bits) and the region's thread count (low 32).
  static std::uint64_t next_generation(std::uint64_t g, int used) {
    return (((g >> 32) + 1) << 32) | std::uint32_t(used);
  }
  static int threads_of(std::uint64_t g) { return int(std::uint32_t(g)); }

  int threads_;
  std::vector<std::thread> workers_;
  std::mutex run_mutex_, sleep_mutex_, error_mutex_;
  std::condition_variable sleep_cv_;
  std::atomic<std::uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  const TaskRef* task_ = nullptr;
  Index n_tasks_ = 0;
  int stride_ = 1;
  bool reverse_ = false;
  std::exception_ptr error_;
#if defined(__linux__)
  pid_t owner_pid_ = 0;
#endif
};

// Never destroyed: worker threads must not be joined during static destruction.
Pool& pool() {
  static Pool* p = new Pool();
  return *p;
}

}  // namespace

int num_threads() { return pool().threads(); }

void set_num_threads(int n) {
  RNNX_REQUIRE(n >= 1, "the number of threads must be >= 1, got " + std::to_string(n));
  pool().set_threads(n);
}

void parallel_for_ref(Index n, TaskRef task, bool parallel, bool reverse) {
  pool().run(n, task, parallel, reverse);
}

Index pool_self_check(Index rounds) {
  // Regions of 2 tasks and of one per thread in turn: in the first, most workers are
  // left out, and the next region needs them all.
  const Index most = std::max(2, num_threads());
  std::vector<std::atomic<int>> runs(static_cast<size_t>(most));
  Index wrong = 0;
  for (Index r = 0; r < rounds; ++r) {
    const Index n = r % 2 == 0 ? 2 : most;
    for (Index i = 0; i < n; ++i) runs[size_t(i)].store(0, std::memory_order_relaxed);
    parallel_for(n, [&](Index i) { runs[size_t(i)].fetch_add(1, std::memory_order_relaxed); },
                 true, (r / 2) % 2 != 0);
    for (Index i = 0; i < n; ++i) wrong += runs[size_t(i)].load(std::memory_order_relaxed) != 1;
  }
  return wrong;
}

}  // namespace rnnx
