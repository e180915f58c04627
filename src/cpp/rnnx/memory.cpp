#include "rnnx/memory.hpp"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <new>
#include <utility>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

namespace rnnx {

AllocationTooLarge::AllocationTooLarge(std::size_t bytes) : bytes_(bytes) {
  const double gib = double(physical_memory()) / double(std::size_t(1) << 30);
  if (bytes == SIZE_MAX)
    std::snprintf(message_, sizeof message_,
                  "the arrays requested need more than 2**64 bytes (the size overflows)");
  else
    std::snprintf(message_, sizeof message_,
                  "the arrays requested need %zu bytes (%.1f GiB), more than this machine's "
                  "%.1f GiB of memory",
                  bytes, double(bytes) / double(std::size_t(1) << 30), gib);
}

std::size_t physical_memory() {
  static const std::size_t bytes = [] {
#if defined(_SC_PHYS_PAGES) && defined(_SC_PAGESIZE)
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0 && std::size_t(pages) <= SIZE_MAX / std::size_t(page))
      return std::size_t(pages) * std::size_t(page);
#endif
    return std::size_t(0);
  }();
  return bytes;
}

std::size_t checked_bytes(std::size_t n, std::size_t item) {
  if (item && n > (SIZE_MAX - 2 * kAlign) / item) throw AllocationTooLarge(SIZE_MAX);
  return n * item;
}

namespace {

constexpr std::size_t kLarge = std::size_t(256) << 10;    // blocks this size and up: best fit

// The memory this process may use: the physical memory, or the cgroup's limit where one
// is set and lower (a container on a larger machine); 0 where neither is known.
std::size_t memory_limit() {
  std::size_t limit = physical_memory();
  for (const char* path : {"/sys/fs/cgroup/memory.max",                      // cgroup v2
                           "/sys/fs/cgroup/memory/memory.limit_in_bytes"}) {  // v1
    if (std::FILE* f = std::fopen(path, "r")) {
      unsigned long long v = 0;
      if (std::fscanf(f, "%llu", &v) == 1 && v > 0 && (!limit || v < limit))
        limit = std::size_t(v);  // "max" (no limit) does not parse as a number
      std::fclose(f);
    }
  }
  return limit;
}

// Total bytes of free large blocks kept: RNNX_MEMORY_CACHE_MB (MiB) where set, else
// 512 MiB, or an eighth of memory_limit() where that is less (64 MiB where it is not
// known). A training step at W_mid's sizes (100 steps of 64 x 512) allocates about
// 160 MB; with a 64 MiB cache the blocks went back to the OS after every step, and
// faulting them in again took 10-24% of the step.
std::size_t large_max() {
  static const std::size_t bytes = [] {
    if (const char* env = std::getenv("RNNX_MEMORY_CACHE_MB")) {
      char* end = nullptr;
      const unsigned long long mb = std::strtoull(env, &end, 10);
      if (end != env && *end == '\0' && mb <= (SIZE_MAX >> 20)) return std::size_t(mb) << 20;
    }
    const std::size_t cap = std::size_t(512) << 20, limit = memory_limit();
    return limit ? std::min(cap, limit / 8) : std::size_t(64) << 20;
  }();
  return bytes;
}

constexpr int kClasses = 13;                              // small blocks: 64 B .. 256 KiB
constexpr std::size_t kPerClass = 32;                     // free small blocks kept per class

// Each block is preceded by kAlign bytes whose last 8 record its usable size.
std::size_t& size_of(void* user) { return static_cast<std::size_t*>(user)[-1]; }

// A spin lock: the critical sections are a few loads and stores, and an uncontended
// atomic exchange costs a fraction of a pthread mutex's lock and unlock.
class SpinLock {
 public:
  void lock() {
    while (flag_.exchange(true, std::memory_order_acquire))
      while (flag_.load(std::memory_order_relaxed)) {
      }
  }
  void unlock() { flag_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> flag_{false};
};

// Free small blocks of one class, the most recently freed last (a fixed array: no
// capacity checks and no allocation when a block is kept).
struct SmallList {
  void* block[kPerClass];
  std::size_t n = 0;
};

struct Cache {
  SpinLock mutex;
  SmallList small[kClasses];  // free blocks of 64 << c bytes
  // free large blocks, oldest first, with their sizes (the best-fit scan then reads this
  // array only, not a word from every block's own page)
  std::vector<std::pair<std::size_t, void*>> large;
  std::size_t large_held = 0;
};

Cache& cache() {
  static Cache* c = new Cache();  // never destroyed: blocks may be released until exit
  return *c;
}

// The smallest c with 64 << c >= bytes (a bit count, not a loop: a W_tiny training
// call allocates about 20 blocks, and the loop took 35 instructions each).
int size_class(std::size_t bytes) {
  return bytes <= 64 ? 0 : 58 - __builtin_clzll(static_cast<unsigned long long>(bytes - 1));
}

void* fresh(std::size_t bytes) {
  char* raw = static_cast<char*>(std::aligned_alloc(kAlign, bytes + kAlign));
  if (!raw) throw std::bad_alloc();
  void* user = raw + kAlign;
  size_of(user) = bytes;
  return user;
}

void destroy(void* user) { std::free(static_cast<char*>(user) - kAlign); }

}  // namespace

void* aligned_allocate(std::size_t bytes) {
  if (bytes == 0) bytes = 1;
  if (bytes > SIZE_MAX - 2 * kAlign) throw AllocationTooLarge(SIZE_MAX);
  const std::size_t ram = physical_memory();
  if (ram && bytes > ram) throw AllocationTooLarge(bytes);
  Cache& c = cache();
  if (bytes < kLarge) {
    const int k = size_class(bytes);
    {
      std::lock_guard<SpinLock> lock(c.mutex);
      SmallList& list = c.small[k];
      if (list.n) return list.block[--list.n];
    }
    return fresh(std::size_t(64) << k);
  }
  bytes = (bytes + kAlign - 1) / kAlign * kAlign;
  {
    std::lock_guard<SpinLock> lock(c.mutex);
    std::size_t best = c.large.size();
    for (std::size_t i = 0; i < c.large.size(); ++i) {
      const std::size_t have = c.large[i].first;
      if (have >= bytes && have <= 2 * bytes &&
          (best == c.large.size() || have < c.large[best].first))
        best = i;
    }
    if (best != c.large.size()) {
      void* p = c.large[best].second;
      c.large_held -= c.large[best].first;
      c.large.erase(c.large.begin() + std::ptrdiff_t(best));
      return p;
    }
  }
  return fresh(bytes);
}

void aligned_release(void* p) noexcept {
  if (!p) return;
  Cache& c = cache();
  const std::size_t bytes = size_of(p);
  std::lock_guard<SpinLock> lock(c.mutex);
  if (bytes < kLarge) {
    SmallList& list = c.small[size_class(bytes)];
    if (list.n < kPerClass)
      list.block[list.n++] = p;
    else
      destroy(p);
    return;
  }
  if (bytes > large_max()) {
    destroy(p);
    return;
  }
  while (c.large_held + bytes > large_max() && !c.large.empty()) {  // evict the oldest
    c.large_held -= c.large.front().first;
    destroy(c.large.front().second);
    c.large.erase(c.large.begin());
  }
  try {
    c.large.emplace_back(bytes, p);
    c.large_held += bytes;
  } catch (...) {
    destroy(p);
  }
}

std::size_t release_cached() noexcept {
  Cache& c = cache();
  std::lock_guard<SpinLock> lock(c.mutex);
  std::size_t freed = 0;
  for (SmallList& list : c.small) {
    for (std::size_t i = 0; i < list.n; ++i) {
      freed += size_of(list.block[i]);
      destroy(list.block[i]);
    }
    list.n = 0;
  }
  for (const auto& [size, p] : c.large) {
    freed += size;
    destroy(p);
  }
  c.large.clear();
  c.large_held = 0;
  return freed;
}

}  // namespace rnnx
