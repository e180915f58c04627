// Aligned memory for the kernels' buffers, with a cache of freed blocks.
//
// A call at realistic sizes allocates tens of MB of workspace and outputs. Fresh large
// allocations come from the OS as untouched pages, and faulting them in costs as much
// as a good part of the arithmetic; at the course's sizes the allocator's own work is a
// visible share of a call. So freed blocks are kept and handed out again: small ones in
// power-of-two classes (32 per class), large ones (256 KiB and up) by best fit, up to
// 64 MiB in all.
#pragma once

#include <cstddef>

namespace rnnx {

constexpr std::size_t kAlign = 64;  // every block starts on a 64-byte boundary

// Throw std::bad_alloc when the memory cannot be had.
void* aligned_allocate(std::size_t bytes);
void aligned_release(void* p) noexcept;

}  // namespace rnnx
