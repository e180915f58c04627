#include "rnnx/memory.hpp"

#include <cstdlib>
#include <mutex>
#include <new>
#include <vector>

namespace rnnx {
namespace {

constexpr std::size_t kCacheMin = std::size_t(256) << 10;  // blocks this size and up are cached
constexpr std::size_t kCacheMax = std::size_t(64) << 20;   // total bytes the cache may hold

// Each block is preceded by a header of kAlign bytes that records its usable size.
struct Header {
  std::size_t bytes;
};

struct Cache {
  std::mutex mutex;
  std::vector<void*> blocks;  // user pointers of free blocks
  std::size_t held = 0;
};

Cache& cache() {
  static Cache* c = new Cache();  // never destroyed (used until the process ends)
  return *c;
}

std::size_t& size_of(void* user) { return (static_cast<Header*>(user))[-1].bytes; }

}  // namespace

void* aligned_allocate(std::size_t bytes) {
  bytes = (bytes + kAlign - 1) / kAlign * kAlign;
  if (bytes == 0) bytes = kAlign;
  if (bytes >= kCacheMin) {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    std::size_t best = c.blocks.size();
    for (std::size_t i = 0; i < c.blocks.size(); ++i) {
      const std::size_t have = size_of(c.blocks[i]);
      if (have >= bytes && have <= 2 * bytes &&
          (best == c.blocks.size() || have < size_of(c.blocks[best])))
        best = i;
    }
    if (best != c.blocks.size()) {
      void* p = c.blocks[best];
      c.held -= size_of(p);
      c.blocks.erase(c.blocks.begin() + std::ptrdiff_t(best));
      return p;
    }
  }
  char* raw = static_cast<char*>(std::aligned_alloc(kAlign, bytes + kAlign));
  if (!raw) throw std::bad_alloc();
  void* user = raw + kAlign;
  size_of(user) = bytes;
  return user;
}

void aligned_release(void* p) noexcept {
  if (!p) return;
  const std::size_t bytes = size_of(p);
  if (bytes >= kCacheMin && bytes <= kCacheMax) {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    while (c.held + bytes > kCacheMax && !c.blocks.empty()) {  // evict the oldest
      void* old = c.blocks.front();
      c.held -= size_of(old);
      c.blocks.erase(c.blocks.begin());
      std::free(static_cast<char*>(old) - kAlign);
    }
    c.blocks.push_back(p);
    c.held += bytes;
    return;
  }
  std::free(static_cast<char*>(p) - kAlign);
}

}  // namespace rnnx
