// Internal, sans-I/O: what the connection has to send. Every frame of every floor is appended here, whole or not at
// all, and the writer takes everything appended since its last write as one batch (a double buffer: producers
// append to `pending` while `wire` is on the socket).
#pragma once

#include <natsbus/error.hpp>
#include <natsbus/protocol/encoder.hpp>

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

namespace natsbus::detail {

class write_buffer {
 public:
  write_buffer() {
    pending_.reserve(64 * 1024);
    wire_.reserve(64 * 1024);
  }

  // ---- producers ----
  // A publish: PUB, or HPUB with `hdrs` (subject and reply already checked by the caller).
  error_code append_publish(std::string_view subject, std::string_view reply, const headers* hdrs,
                            std::string_view payload) {
    const auto before = pending_.size();
    if (auto ec = protocol::encode_publish(pending_, subject, reply, hdrs, payload, protocol::prechecked)) return ec;
    return bounded(before);
  }
  // A publish whose header block is already encoded (empty: PUB).
  error_code append_publish(std::string_view subject, std::string_view reply, std::string_view header_block,
                            std::string_view payload) {
    const auto before = pending_.size();
    error_code ec = header_block.empty()
                        ? protocol::encode_pub(pending_, subject, reply, payload, protocol::prechecked)
                        : protocol::encode_hpub(pending_, subject, reply, header_block, payload, protocol::prechecked);
    if (ec) return ec;
    return bounded(before);
  }
  // A frame encoded elsewhere (a publish encoded off the owner thread; a JetStream resend).
  error_code append_frame(std::string_view frame) {
    const auto before = pending_.size();
    pending_.append(frame);
    return bounded(before);
  }
  // Control frames are never refused: they are small, and the connection cannot work without them.
  error_code append_sub(std::string_view subject, std::string_view queue, std::uint64_t sid) {
    return protocol::encode_sub(pending_, subject, queue, sid);
  }
  void append_unsub(std::uint64_t sid, std::uint64_t max_msgs = 0) {
    if (max_msgs) protocol::encode_unsub(pending_, sid, max_msgs);
    else protocol::encode_unsub(pending_, sid);
  }
  void append_ping() {
    protocol::encode_ping(pending_);
    ++pings_;
  }
  void append_pong() { protocol::encode_pong(pending_); }

  // The last frame appended, from the offset the buffer had before it (size_before): a copy kept for a resend.
  [[nodiscard]] std::string_view since(std::size_t size_before) const noexcept {
    return std::string_view(pending_).substr(size_before);
  }

  // While reconnecting, what is appended is bounded by the reconnect buffer; a frame that would overflow it is
  // refused whole (reconnect_buffer_full). Connected, the bound is the writer's backpressure instead (limit()).
  void set_bound(std::size_t bytes) noexcept { bound_ = bytes; }
  void clear_bound() noexcept { bound_ = std::numeric_limits<std::size_t>::max(); }

  // ---- the writer ----
  [[nodiscard]] std::size_t size() const noexcept { return pending_.size(); }
  [[nodiscard]] bool idle() const noexcept { return pending_.empty() && wire_.empty(); }
  [[nodiscard]] const std::string& pending() const noexcept { return pending_; }
  [[nodiscard]] const std::string& wire() const noexcept { return wire_; }
  // The batch to write: the rest of an earlier partial write, or everything pending.
  std::string_view take() {
    if (wire_.empty()) {
      wire_.swap(pending_);
      ++generation_;
      pings_ = 0;
    }
    return wire_;
  }
  // A direct write from the producer's side (write_now): the rest of an earlier partial write, else the pending
  // frames in place, so the pending buffer keeps its capacity (a swap would hand it the wire's smaller one, and a
  // burst would grow it again on every write).
  [[nodiscard]] std::string_view direct() const noexcept { return wire_.empty() ? pending_ : wire_; }
  // n bytes of direct() left (n > 0).
  void wrote_direct(std::size_t n) {
    if (!wire_.empty()) return wrote(n);
    ++generation_;  // every pending frame has left, in whole or in part
    pings_ = 0;
    if (n < pending_.size()) wire_.assign(pending_, n, std::string::npos);
    pending_.clear();
  }
  // n bytes of the batch left.
  void wrote(std::size_t n) {
    if (n >= wire_.size()) wire_.clear();
    else wire_.erase(0, n);
  }

  // Bumped each time the writer takes the pending frames: a frame appended while it was g has left once it is past g.
  [[nodiscard]] std::uint64_t generation() const noexcept { return generation_; }
  // PING frames pending (not taken by the writer yet): their PONGs can still come after a reconnect.
  [[nodiscard]] std::size_t pings_pending() const noexcept { return pings_; }

  // The connection is lost: the batch on the wire may have arrived in part and is dropped; the pending frames,
  // which never left, become the reconnect buffer.
  void lost() noexcept { wire_.clear(); }
  // After a reconnect the frames that never left wait aside (their PINGs still count) while the subscription
  // replay and the resends are appended; then they follow, so publish order is kept and nothing goes twice.
  [[nodiscard]] std::string set_aside() {
    std::string held;
    held.swap(pending_);
    return held;
  }
  void put_back(const std::string& held) { pending_.append(held); }
  // The held frames without their SUB, UNSUB and PONG frames: the replay re-creates the subscriptions from the
  // table as they are now (a SUB queued at the drop would go twice; one unsubscribed while disconnected would come
  // back), and a PONG answers a PING of the old session. Publishes and PINGs (flushes waiting for them) stay, in
  // order. The frames are whole and our own: PUB/HPUB's last control-line token is the size that follows.
  [[nodiscard]] static std::string publishes_and_pings(std::string_view held);
  void clear() noexcept {
    pending_.clear();
    wire_.clear();
    pings_ = 0;
  }

 private:
  error_code bounded(std::size_t before) {
    if (pending_.size() <= bound_) return {};
    pending_.resize(before);  // never a partial frame
    return error::reconnect_buffer_full;
  }

  std::string pending_;
  std::string wire_;
  std::uint64_t generation_ = 0;
  std::size_t pings_ = 0;
  std::size_t bound_ = std::numeric_limits<std::size_t>::max();
};

}  // namespace natsbus::detail
