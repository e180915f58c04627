// A persistent thread pool for the kernels (no thread start per step or per call).
//
// Work is split into tasks whose boundaries depend only on the problem's sizes, never
// on the number of threads (the one exception, balanced_split below, moves only
// boundaries that no sum depends on), and task i always runs on thread i % P (the caller
// is thread 0). So every number is computed by the same sequence of operations whatever
// the thread count (bit-identical results), and a thread that owns a slice of the
// recurrent weights at one step owns it at every step (it stays in that core's cache).
#pragma once

#include <algorithm>
#include <type_traits>

#include "rnnx/common.hpp"

namespace rnnx {

// Threads the kernels use, the calling thread included (default: RNNX_NUM_THREADS or
// the CPUs this process may run on).
int num_threads();
void set_num_threads(int n);
// Runs `rounds` parallel regions of 2 and of num_threads() tasks in turn (tasks that only
// count their runs) and returns how many tasks did not run exactly once: 0 unless the
// pool is broken (a test of its hand-over from one region to the next).
Index pool_self_check(Index rounds);

// A non-owning reference to a callable void(Index) (no allocation per parallel region).
class TaskRef {
 public:
  template <typename F>
  TaskRef(F& f)  // NOLINT: implicit by design
      : obj_(static_cast<void*>(&f)),
        call_([](void* o, Index i) { (*static_cast<F*>(o))(i); }) {}
  void operator()(Index i) const { call_(obj_, i); }

 private:
  void* obj_;
  void (*call_)(void*, Index);
};

void parallel_for_ref(Index n, TaskRef task, bool parallel, bool reverse);

// Run task(i) for i in [0, n) and wait for all. Runs inline (in order) when n == 1,
// when parallel is false, when one thread is configured, or when the pool is busy with
// another caller's work (nested or concurrent calls). An exception thrown by a task is
// rethrown here once all tasks have finished.
//
// Thread p runs the tasks p, p + P, p + 2P, ... (P threads), in increasing order, or in
// decreasing order with reverse (inline: n-1 down to 0). A time loop alternates the
// order from step to step: each thread then sweeps its tasks' weights back and forth,
// and starts every step with those it used last, still in its cache, where a sweep in
// the same order would find the least recent ones gone from a cache too small for all
// (e.g. an LSTM's 4 MB of recurrent weights at H = 512 against a 2 MB L2). Tasks write
// disjoint outputs, so the order changes no result.
//
// The inline cases the caller can tell (n <= 1, or parallel false) run right here, as the
// pool would run them, without the call through the pool and the task's reference (a
// W_tiny Tagger call opens about 9 such regions forward, more in training: 1-2% of its
// instructions, callgrind).
template <typename F>
void run_inline(Index n, F& task, bool reverse) {  // task(0..n-1), or n-1 down to 0
  if (reverse)
    for (Index i = n - 1; i >= 0; --i) task(i);
  else
    for (Index i = 0; i < n; ++i) task(i);
}
template <typename F>
void parallel_for(Index n, F&& task, bool parallel = true, bool reverse = false) {
  if (n <= 1 || !parallel) return run_inline(n, task, reverse);
  parallel_for_ref(n, TaskRef(task), parallel, reverse);
}

// Fixed task sizes (they define the summation order, so they never depend on P).
constexpr Index kUnitsPerTask = 64;  // hidden units per task in the time loop
constexpr Index kRowsPerTask = 256;  // rows of a (T*B x n) matrix per task in whole-sequence GEMMs

inline Index ceil_div(Index a, Index b) { return (a + b - 1) / b; }

// Task k of the time loop: hidden units [j0, j0 + c) of H.
struct Units {
  Index j0, c;
  Units(Index k, Index H) : j0(k * kUnitsPerTask), c(std::min(kUnitsPerTask, H - j0)) {}
};
// Task k of blocks of `size` rows of R: rows [j0, j0 + c).
struct Block {
  Index j0, c;
  Block(Index k, Index R, Index size) : j0(k * size), c(std::min(size, R - j0)) {}
};

// A split of n items (output rows or columns of a product) into tasks of about
// max_per_task items at most (rounded up to a multiple of quantum) for the threads there
// are: a multiple of num_threads() tasks of equal size where possible, each a multiple of
// quantum items (the last one takes the rest).
// The one place where boundaries follow the thread count: only where no sum depends on
// them, i.e. splits of independent outputs at multiples of the micro-kernel's panel
// width (every panel keeps its columns whatever the split). Sets per_task; returns the
// number of tasks.
inline Index balanced_split(Index n, Index max_per_task, Index quantum, Index& per_task) {
  per_task = quantum;
  if (n <= 0) return 0;
  const Index P = num_threads();
  Index tasks = (n + max_per_task - 1) / max_per_task;
  if (P > 1) tasks = (std::max(tasks, P) + P - 1) / P * P;
  per_task = std::max<Index>(1, ((n + tasks - 1) / tasks + quantum - 1) / quantum) * quantum;
  return (n + per_task - 1) / per_task;
}

// Whether per-step work of about `madds` multiply-adds is worth waking other threads.
inline bool worth_parallel(double madds) { return madds >= 32768.0; }

}  // namespace rnnx
