// Aligned memory for the kernels' buffers, with a cache of freed blocks.
//
// A call at realistic sizes allocates tens of MB of workspace and outputs. Fresh large
// allocations come from the OS as untouched pages, and faulting them in costs as much
// as a good part of the arithmetic; at the course's sizes the allocator's own work is a
// visible share of a call. So freed blocks are kept and handed out again: small ones in
// power-of-two classes (32 per class), large ones (256 KiB and up) by best fit, up to
// 512 MiB in all: less where an eighth of the memory the process may use (the physical
// memory or its cgroup's limit) is less, 64 MiB where that is not known, and
// RNNX_MEMORY_CACHE_MB (MiB) where that environment variable is set.
#pragma once

#include <cstddef>
#include <new>

namespace rnnx {

constexpr std::size_t kAlign = 64;  // every block starts on a 64-byte boundary

// A request larger than this machine's physical memory (or whose size overflows): thrown
// before anything is allocated, with the size in the message ("needs 8.0 GiB ...").
// The bindings turn it into Python's MemoryError.
class AllocationTooLarge : public std::bad_alloc {
 public:
  explicit AllocationTooLarge(std::size_t bytes);  // bytes = SIZE_MAX: overflowed
  const char* what() const noexcept override { return message_; }
  std::size_t bytes() const noexcept { return bytes_; }

 private:
  std::size_t bytes_;
  char message_[200];
};

// Physical memory in bytes (0 where the platform does not tell).
std::size_t physical_memory();

// n * item bytes; AllocationTooLarge when the product overflows.
std::size_t checked_bytes(std::size_t n, std::size_t item);

// Throw AllocationTooLarge when the memory cannot exist here, std::bad_alloc when it
// cannot be had now.
void* aligned_allocate(std::size_t bytes);
void aligned_release(void* p) noexcept;

// Return every cached free block to the system; the bytes released.
std::size_t release_cached() noexcept;

}  // namespace rnnx
