// Aligned memory for the kernels' buffers, with a small cache of large blocks.
//
// A call at realistic sizes allocates tens of MB of workspace and outputs. Fresh large
// allocations come from the OS as untouched pages, and faulting them in costs as much
// as a good part of the arithmetic; so freed blocks of 256 KiB and more are kept (up to
// 64 MiB in all) and handed out again to the next request they fit.
#pragma once

#include <cstddef>

namespace rnnx {

constexpr std::size_t kAlign = 64;  // every block starts on a 64-byte boundary

// Throw std::bad_alloc when the memory cannot be had.
void* aligned_allocate(std::size_t bytes);
void aligned_release(void* p) noexcept;

}  // namespace rnnx
