// The bytes the process holds on its heap now (live allocations only: freed memory, and AddressSanitizer's
// quarantine of it, does not count), for tests that check memory stays flat over many cycles.
#pragma once

#include <cstddef>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/allocator_interface.h>
#else
#include <malloc.h>
#endif

namespace natsbus::test {

inline std::size_t live_heap_bytes() {
#if defined(__SANITIZE_ADDRESS__)
  return __sanitizer_get_current_allocated_bytes();
#else
  return mallinfo2().uordblks;
#endif
}

}  // namespace natsbus::test
