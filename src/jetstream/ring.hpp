// A FIFO over one growing array: push at the back (or, to jump the queue, the front), pop at the front, and,
// rarely, insert or erase in the middle. Unlike
// std::deque it allocates only when it outgrows its capacity, never as items pass through it (a deque allocates
// and frees a block every few hundred pushes), so a consumer's steady state allocates nothing.
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

namespace natsbus::detail {

template <class T>
class ring {
 public:
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  T& front() noexcept { return slots_[head_]; }
  T& back() noexcept { return (*this)[size_ - 1]; }
  T& operator[](std::size_t i) noexcept { return slots_[(head_ + i) & (slots_.size() - 1)]; }
  const T& operator[](std::size_t i) const noexcept { return slots_[(head_ + i) & (slots_.size() - 1)]; }

  void push_back(T v) {
    if (size_ == slots_.size()) grow();
    slots_[(head_ + size_) & (slots_.size() - 1)] = std::move(v);
    ++size_;
  }
  void push_front(T v) {
    if (size_ == slots_.size()) grow();
    head_ = (head_ + slots_.size() - 1) & (slots_.size() - 1);
    slots_[head_] = std::move(v);
    ++size_;
  }
  void pop_front() noexcept {
    slots_[head_] = T{};
    head_ = (head_ + 1) & (slots_.size() - 1);
    --size_;
  }
  // Inserts v before item i (i == size() appends), keeping the order; the shorter side moves.
  void insert(std::size_t i, T v) {
    if (i >= size_) return push_back(std::move(v));
    if (size_ == slots_.size()) grow();
    if (i < size_ / 2) {
      head_ = (head_ + slots_.size() - 1) & (slots_.size() - 1);
      ++size_;
      for (std::size_t j = 0; j < i; ++j) (*this)[j] = std::move((*this)[j + 1]);
    } else {
      ++size_;
      for (std::size_t j = size_ - 1; j > i; --j) (*this)[j] = std::move((*this)[j - 1]);
    }
    (*this)[i] = std::move(v);
  }
  // Removes item i, keeping the order of the others; the shorter side moves (the front costs nothing).
  void erase(std::size_t i) {
    if (i < size_ / 2) {
      for (; i > 0; --i) (*this)[i] = std::move((*this)[i - 1]);
      return pop_front();
    }
    for (; i + 1 < size_; ++i) (*this)[i] = std::move((*this)[i + 1]);
    (*this)[size_ - 1] = T{};
    --size_;
  }
  void clear() noexcept {
    while (size_ > 0) pop_front();
    head_ = 0;
  }
  template <class F>
  void for_each(F&& f) {
    for (std::size_t i = 0; i < size_; ++i) f((*this)[i]);
  }

 private:
  void grow() {
    std::vector<T> bigger(slots_.empty() ? 16 : slots_.size() * 2);  // a power of two: the index is a mask
    for (std::size_t i = 0; i < size_; ++i) bigger[i] = std::move((*this)[i]);
    slots_.swap(bigger);
    head_ = 0;
  }
  std::vector<T> slots_;
  std::size_t head_ = 0, size_ = 0;
};

}  // namespace natsbus::detail
