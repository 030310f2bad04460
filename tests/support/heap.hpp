// The bytes the process holds on its heap now (live allocations only: freed memory, and AddressSanitizer's
// quarantine of it, does not count), for tests that check memory stays flat over many cycles.
#pragma once

#include <cstddef>

#if defined(__SANITIZE_ADDRESS__)
// The sanitizer runtime exports it; GCC ships no header that declares it (clang's allocator_interface.h does).
extern "C" std::size_t __sanitizer_get_current_allocated_bytes();
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
