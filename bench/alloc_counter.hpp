// Counts heap allocations made by the whole program, for allocs_per_msg. Include from exactly one
// translation unit: it replaces the global operator new.
#pragma once

#include <atomic>
#include <cstdlib>
#include <new>
#include <execinfo.h>
#include <unistd.h>

namespace bench {
inline std::atomic<unsigned long long> allocation_count{0};
bool trace_allocs = false;
unsigned long long allocations() noexcept { return allocation_count.load(std::memory_order_relaxed); }
}  // namespace bench

void* operator new(std::size_t n) {
  bench::allocation_count.fetch_add(1, std::memory_order_relaxed);
  if (bench::trace_allocs) {
    bench::trace_allocs = false;
    void* frames[24];
    int k = backtrace(frames, 24);
    (void)!write(2, "----\n", 5);
    backtrace_symbols_fd(frames, k, 2);
    bench::trace_allocs = true;
  }
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return operator new(n); }
void* operator new(std::size_t n, std::align_val_t al) {
  bench::allocation_count.fetch_add(1, std::memory_order_relaxed);
  auto a = static_cast<std::size_t>(al);
  if (void* p = std::aligned_alloc(a, (n + a - 1) / a * a)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n, std::align_val_t al) { return operator new(n, al); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
