// Internal: a completion handler kept in place, by its concrete type, with no allocation.
//
// Meant for a coroutine awaiting on the connection's own executor: its handler (a few pointers) fits here, so
// waiting costs no any_completion_handler allocation and no executor conversion, and the connection may resume
// it directly (see connection_impl::after_batch) instead of posting.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/post.hpp>

#include <cstddef>
#include <new>
#include <tuple>
#include <type_traits>
#include <utility>

namespace natsbus::detail {

template <class... Args>
class inline_handler {
 public:
  static constexpr std::size_t capacity = 96;

  template <class H>
  static constexpr bool fits = sizeof(H) <= capacity && alignof(H) <= alignof(std::max_align_t) &&
                               std::is_nothrow_move_constructible_v<H>;

  inline_handler() = default;
  inline_handler(const inline_handler&) = delete;
  inline_handler& operator=(const inline_handler&) = delete;
  ~inline_handler() { reset(); }

  template <class H>
    requires fits<std::decay_t<H>>
  void emplace(H&& h) {
    reset();
    using T = std::decay_t<H>;
    ::new (static_cast<void*>(buf_)) T(std::forward<H>(h));
    ops_ = &ops_for<T>;
  }

  explicit operator bool() const noexcept { return ops_ != nullptr; }

  void reset() noexcept {
    if (ops_) std::exchange(ops_, nullptr)->destroy(buf_);
  }

  // Runs the handler here and now. The handler leaves this storage first: it may free the object holding it.
  void invoke(Args... args) {
    auto* ops = std::exchange(ops_, nullptr);
    ops->invoke(buf_, std::move(args)...);
  }

  // Posts the handler to `ex`, which must be its own executor.
  void post(const boost::asio::any_io_executor& ex, Args... args) {
    auto* ops = std::exchange(ops_, nullptr);
    ops->post(buf_, ex, std::move(args)...);
  }

 private:
  struct ops_table {
    void (*destroy)(void*) noexcept;
    void (*invoke)(void*, Args&&...);
    void (*post)(void*, const boost::asio::any_io_executor&, Args&&...);
  };

  template <class T>
  static T take(void* p) noexcept {
    T* h = std::launder(static_cast<T*>(p));
    T out(std::move(*h));
    h->~T();
    return out;
  }

  template <class T>
  static constexpr ops_table ops_for = {
      [](void* p) noexcept { std::launder(static_cast<T*>(p))->~T(); },
      [](void* p, Args&&... a) { take<T>(p)(std::move(a)...); },
      [](void* p, const boost::asio::any_io_executor& ex, Args&&... a) {
        boost::asio::post(ex, [h = take<T>(p), t = std::tuple<Args...>(std::move(a)...)]() mutable {
          std::apply([&](auto&&... v) { std::move(h)(std::move(v)...); }, std::move(t));
        });
      }};

  alignas(std::max_align_t) unsigned char buf_[capacity];
  const ops_table* ops_ = nullptr;
};

}  // namespace natsbus::detail
