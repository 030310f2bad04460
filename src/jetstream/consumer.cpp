// The pull consumer. One internal subscription per consumer object, on "<inbox>.<consumer id>.*": every pull request
// replies to "<inbox>.<consumer id>.<pull number>", so a status (404, 408, 409, heartbeat) names the pull it
// belongs to and never ends a later one. Messages are copied once from the read buffer into pooled slots.
#include <natsbus/consumer.hpp>

#include "connection/connection_impl.hpp"
#include "jetstream/jetstream_impl.hpp"
#include "jetstream/ring.hpp"

#include <natsbus/protocol/consumer.hpp>
#include <natsbus/protocol/headers.hpp>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <charconv>
#include <deque>
#include <future>
#include <optional>
#include <tuple>

namespace natsbus {
namespace detail {

using clock_type = std::chrono::steady_clock;

class pull_consumer_impl final : public frame_listener,
                                 public lifecycle_listener,
                                 public std::enable_shared_from_this<pull_consumer_impl> {
 public:
  using next_handler = asio::any_completion_handler<void(error_code, js_message*)>;
  using fetch_handler = asio::any_completion_handler<void(error_code, message_batch)>;

  pull_consumer_impl(std::shared_ptr<connection_impl> conn, std::string api_prefix, std::string stream,
                     std::string consumer)
      : conn_(std::move(conn)),
        api_prefix_(api_prefix),
        next_subject_(api_prefix + ".CONSUMER.MSG.NEXT." + stream + "." + consumer),
        stream_(std::move(stream)),
        consumer_(std::move(consumer)),
        timer_(conn_->executor()) {}

  [[nodiscard]] const connection_impl::strand_type& executor() const { return conn_->executor(); }
  [[nodiscard]] bool owner_thread() const { return conn_->on_owner_thread(); }

  // ---- on the connection's executor ----

  error_code start_consume(const consume_options& o) {
    if (mode_ != mode::idle) return error::invalid_argument;
    if (o.max_messages == 0 || o.expires.count() <= 0 || o.threshold <= 0 || o.threshold > 1)
      return error::invalid_argument;
    copts_ = o;
    if (copts_.heartbeat.count() <= 0)
      copts_.heartbeat = std::min(std::chrono::milliseconds(30000), copts_.expires / 2);
    if (copts_.heartbeat * 2 > copts_.expires) return error::invalid_argument;  // the server refuses it too
    if (auto ec = ensure_subscribed()) return ec;
    mode_ = mode::consuming;
    fatal_ = {};
    last_frame_ = clock_type::now();
    keep_alive_ = std::max(std::chrono::milliseconds(0), o.keep_alive);
    if (o.keep_alive.count() < 0) learn_ack_wait();
    maybe_pull();
    arm_heartbeat_check();
    return {};
  }

  // `local`: the handler's own executor is the connection's (a coroutine on a single-threaded io_context).
  void next(next_handler h, bool local) {
    recycle_current();
    if (next_waiter_) return complete_next(std::move(h), local, error::invalid_argument, nullptr);
    if (js_message* m = take_ready()) return complete_next(std::move(h), local, error_code{}, m);
    if (auto ec = take_error()) return complete_next(std::move(h), local, ec, nullptr);
    if (mode_ != mode::consuming) return complete_next(std::move(h), local, error::subscription_closed, nullptr);
    next_waiter_.emplace(std::move(h));
    next_local_ = local;
  }

  js_message* try_next() {
    recycle_current();
    return take_ready();
  }

  // `ack` (optional): a message of this consumer acknowledged by the pull itself ("+NXT"), one frame for both.
  void fetch(const fetch_options& o, js_message* ack, fetch_handler h, bool local) {
    if (mode_ != mode::idle || fetch_waiter_) return fail_fetch(std::move(h), error::invalid_argument);
    if (ack && ack->owner_ != this) return fail_fetch(std::move(h), error::invalid_argument);
    if (ack && ack->acked_.load(std::memory_order_acquire))
      return fail_fetch(std::move(h), error::already_acknowledged);
    if (o.batch == 0 || (!o.no_wait && o.expires.count() <= 0) ||
        (o.heartbeat.count() > 0 && o.heartbeat * 2 > o.expires))
      return fail_fetch(std::move(h), error::invalid_argument);
    if (auto ec = ensure_subscribed()) return fail_fetch(std::move(h), ec);
    mode_ = mode::fetching;
    fopts_ = o;
    fetched_.clear();
    if (fetched_.capacity() < o.batch && spare_.capacity() > fetched_.capacity()) fetched_.swap(spare_);
    fetch_local_ = local;
    fetch_status_ = {};
    // Messages that arrived after an earlier fetch ended are this one's first.
    while (fetched_.size() < o.batch && !ready_.empty()) {
      fetched_.push_back(ready_.front());
      ready_.pop_front();
    }
    if (fetched_.size() == o.batch) {
      fetch_waiter_.emplace(std::move(h));
      if (ack) (void)send_ack(*ack, protocol::ack_body(protocol::ack_kind::ack), true);
      return finish_fetch();
    }
    fetch_waiter_.emplace(std::move(h));
    protocol::pull_request r;
    r.batch = static_cast<std::int64_t>(o.batch - fetched_.size());
    r.max_bytes = static_cast<std::int64_t>(o.max_bytes);
    r.no_wait = o.no_wait;
    if (!o.no_wait) r.expires = o.expires;
    if (o.heartbeat.count() > 0) r.idle_heartbeat = o.heartbeat;
    fetch_pull_ = send_pull(r, ack);
    if (fetch_pull_ == 0) {
      fetch_status_ = error::disconnected;
      return finish_fetch();
    }
    last_frame_ = clock_type::now();
    // The client's own bound: the server ends the pull at `expires`; a lost link must not hold the fetch longer.
    const auto bound = (o.no_wait ? std::chrono::milliseconds(0) : o.expires) + std::chrono::seconds(1);
    arm_fetch_deadline(bound);
  }

  void stop() {
    mode_ = mode::stopped;
    timer_.cancel();
    // Messages buffered and never handed out go back to the server at once (a nak), rather than after ack_wait.
    ready_.for_each([&](js_message* m) {
      if (!ordered_ && conn_->writable() && !m->acked_.exchange(true, std::memory_order_acq_rel))
        (void)append_ack(m->reply(), protocol::ack_body(protocol::ack_kind::nak));
      free_.push_back(m);
    });
    ready_.clear();
    pulls_.clear();
    outstanding_ = 0;
    if (sid_ != 0) {
      conn_->unsubscribe_raw(sid_);
      sid_ = 0;
    }
    if (next_waiter_) complete_next(take(next_waiter_), next_local_, error::subscription_closed, nullptr);
    if (start_waiter_) complete(take(start_waiter_), error_code(error::subscription_closed));
    if (fetch_waiter_) {
      fetch_status_ = error::subscription_closed;
      finish_fetch();
    }
    if (ordered_ && !consumer_.empty() && conn_->writable())
      conn_->do_request(api_prefix_ + ".CONSUMER.DELETE." + stream_ + "." + consumer_, {}, nullptr,
                        conn_->options().request_timeout, [](error_code, message) {});
  }

  void release(std::vector<js_message*>& msgs) {
    for (auto* m : msgs) free_.push_back(m);
    msgs.clear();
    if (msgs.capacity() > spare_.capacity()) spare_.swap(msgs);  // the next fetch fills it again
  }

  // An acknowledgement: a publish to the message's reply subject, queued with the other frames.
  error_code send_ack(js_message& m, std::string_view body, bool final) {
    // A final ack claims the message first, so one from another thread at the same moment is refused.
    if (final ? m.acked_.exchange(true, std::memory_order_acq_rel) : m.acked_.load(std::memory_order_acquire))
      return error::already_acknowledged;
    if (auto ec = append_ack(m.reply(), body)) {
      if (final) m.acked_.store(false, std::memory_order_release);
      return ec;
    }
    return {};
  }
  error_code append_ack(std::string_view reply, std::string_view body) {
    if (reply.empty()) return error::invalid_argument;
    if (!conn_->accepting()) return error::disconnected;
    std::size_t at = 0;
    if (auto ec = conn_->append_publish(reply, {}, {}, body, at)) return ec;
    conn_->wake_writer();
    return {};
  }

  void ack_sync(js_message& m, asio::any_completion_handler<void(error_code)> h) {
    if (m.acked_.exchange(true, std::memory_order_acq_rel))
      return conn_->done(std::move(h), error_code(error::already_acknowledged));
    conn_->do_request(m.reply(), protocol::ack_body(protocol::ack_kind::ack), nullptr,
                      conn_->options().request_timeout,
                      [h = std::move(h)](error_code ec, message) mutable { std::move(h)(ec); });
  }

  // Whether the server takes "+TERM <reason>" (2.10.4 and later); an older one would not read it as a term.
  [[nodiscard]] bool term_reason_supported() const {
    int major = 0, minor = 0, patch = 0;
    if (!protocol::parse_server_version(conn_->current_info().version, major, minor, patch)) return false;
    const auto& v = protocol::term_reason_version;
    return protocol::version_at_least(major, minor, patch, v.major, v.minor, v.patch);
  }

  pull_consumer::stats get_stats() const {
    return {delivered_, pulls_sent_, heartbeats_, ready_.size(), outstanding_, kept_alive_};
  }

  // ---- push ----

  error_code start_push(const push_options& o) {
    if (mode_ != mode::idle || o.deliver_subject.empty()) return error::invalid_argument;
    if (!conn_->accepting()) return error::disconnected;
    sid_ = conn_->subscribe_raw(o.deliver_subject, this, o.queue_group);
    if (sid_ == 0) return error::disconnected;
    push_ = true;
    mode_ = mode::consuming;
    copts_.heartbeat = o.heartbeat;
    last_frame_ = clock_type::now();
    if (o.heartbeat.count() > 0) arm_heartbeat_check();
    return {};
  }
  [[nodiscard]] std::uint64_t flow_control_replies() const { return fc_replies_; }

  // ---- the ordered consumer ----

  void start_ordered(const ordered_options& o, asio::any_completion_handler<void(error_code)> h) {
    if (mode_ != mode::idle) return conn_->done(std::move(h), error_code(error::invalid_argument));
    consume_options co;
    co.max_messages = o.max_messages;
    co.expires = o.expires;
    co.heartbeat = o.heartbeat;
    if (o.max_messages == 0 || o.expires.count() <= 0 || o.heartbeat.count() <= 0 || o.heartbeat * 2 > o.expires)
      return conn_->done(std::move(h), error_code(error::invalid_argument));
    if (auto ec = ensure_subscribed()) return conn_->done(std::move(h), ec);
    ordered_ = true;
    oopts_ = o;
    copts_ = co;
    mode_ = mode::consuming;
    last_frame_ = clock_type::now();
    start_waiter_.emplace(std::move(h));
    recreate();
    arm_heartbeat_check();
  }
  [[nodiscard]] std::uint64_t resets() const { return resets_; }

  // ---- frame_listener: inline in the reader, on the connection's executor ----

  void on_frame(const protocol::event& ev) override {
    last_frame_ = clock_type::now();
    protocol::pull_status_info st;
    // A status has no payload and no ack reply (a flow-control request's reply is its own subject); anything
    // else is a message, whatever headers it carries.
    if (!ev.headers.empty() && ev.payload.empty() && ev.reply.substr(0, 8) != "$JS.ACK.") {
      if (auto ec = protocol::classify_pull_status(ev.headers, st)) {
        conn_->log()->warn("natsbus: consumer {} > {}: bad status from the server: {}", stream_, consumer_,
                           ec.message());
        return;
      }
      if (st.kind != protocol::pull_status::message) return on_status(ev, st);
    }
    on_message(ev);
  }

  // ---- lifecycle_listener ----

  void on_disconnect() override {}
  void on_reconnect() override {
    // The server forgot the pulls of the old session: ask again at once.
    pulls_.clear();
    outstanding_ = 0;
    if (mode_ == mode::consuming) {
      last_frame_ = clock_type::now();
      if (ordered_) recreate();  // an ephemeral, in-memory consumer may not have survived
      else maybe_pull();        // (a push consumer's subscription is replayed by the connection)
      fc_.clear();              // flow-control requests of the old session are void
    } else if (mode_ == mode::fetching) {
      fetch_status_ = error::disconnected;
      finish_fetch();
    }
  }
  void on_close(error_code reason) override {
    sid_ = 0;
    if (mode_ == mode::consuming) set_error(reason ? reason : error_code(error::connection_closed), true);
    if (fetch_waiter_) {
      fetch_status_ = error::connection_closed;
      finish_fetch();
    }
    mode_ = mode::stopped;
  }

 private:
  enum class mode { idle, fetching, consuming, stopped };
  struct pull {
    std::uint64_t id = 0;
    std::size_t requested = 0;
    std::size_t remaining = 0;
  };

  template <class H, class... A>
  void complete(H&& h, A&&... a) {
    conn_->done(std::forward<H>(h), std::forward<A>(a)...);
  }
  template <class T>
  static T take(std::optional<T>& o) {
    T v(std::move(*o));
    o.reset();
    return v;
  }
  // A next() completes through a posted job. A handler whose executor is the connection's own is invoked from it
  // directly: asking an erased handler for its executor would wrap (and allocate) a type-erased executor each time.
  void complete_next(next_handler h, bool local, error_code ec, js_message* m) {
    if (!local) return complete(std::move(h), ec, m);
    asio::post(conn_->executor(), [h = std::move(h), ec, m]() mutable { std::move(h)(ec, m); });
  }
  void fail_fetch(fetch_handler h, error_code ec) { complete(std::move(h), ec, message_batch{}); }

  error_code ensure_subscribed() {
    if (sid_ != 0) return {};
    if (!conn_->accepting()) return error::disconnected;
    if (inbox_.empty()) inbox_ = conn_->inbox_prefix() + "c" + std::to_string(++ids_) + ".";
    sid_ = conn_->subscribe_raw(inbox_ + "*", this);
    return sid_ == 0 ? error_code(error::disconnected) : error_code{};
  }

  // Sends one pull request; its id (0 when it could not be queued). With `ack`, the request is that message's
  // "+NXT" acknowledgement (acked and pulled in one frame).
  std::uint64_t send_pull(const protocol::pull_request& r, js_message* ack = nullptr) {
    if (!conn_->writable()) return 0;  // while reconnecting: on_reconnect pulls again
    if (ack && ack->acked_.exchange(true, std::memory_order_acq_rel)) return 0;
    const std::uint64_t id = next_pull_++;
    reply_.assign(inbox_);
    char digits[24];
    auto [end, ec] = std::to_chars(digits, digits + sizeof digits, id);
    (void)ec;
    reply_.append(digits, end);
    body_.clear();
    if (ack) protocol::encode_ack_next(body_, r);
    else protocol::encode_pull_request(body_, r);
    std::size_t at = 0;
    if (conn_->append_publish(ack ? ack->reply() : std::string_view(next_subject_), reply_, {}, body_, at)) {
      if (ack) ack->acked_.store(false, std::memory_order_release);
      return 0;
    }
    // Written at once, not on the writer's next turn: the server may be idle until it reads this, and whatever the
    // application does with the messages it just took (handlers, acks) would otherwise go first.
    (void)conn_->write_now();
    pulls_.push_back({id, static_cast<std::size_t>(r.batch), static_cast<std::size_t>(r.batch)});
    outstanding_ += static_cast<std::size_t>(r.batch);
    ++pulls_sent_;
    return id;
  }

  void maybe_pull() {
    if (push_ || mode_ != mode::consuming || fatal_ || creating_ || need_reset_ || !conn_->writable()) return;
    const std::size_t have = ready_.size() + outstanding_;
    const auto low = static_cast<std::size_t>(static_cast<double>(copts_.max_messages) * copts_.threshold);
    if (have > low || have >= copts_.max_messages) return;
    protocol::pull_request r;
    r.batch = static_cast<std::int64_t>(copts_.max_messages - have);
    r.max_bytes = static_cast<std::int64_t>(copts_.max_bytes);
    r.expires = copts_.expires;
    r.idle_heartbeat = copts_.heartbeat;
    (void)send_pull(r);
  }

  // The pull `id` ended on the server with `remaining` messages undelivered.
  void end_pull(std::uint64_t id) {
    for (std::size_t i = 0; i < pulls_.size(); ++i) {
      if (pulls_[i].id != id) continue;
      outstanding_ -= std::min(outstanding_, pulls_[i].remaining);
      pulls_.erase(i);
      return;
    }
  }

  std::uint64_t pull_id_of(std::string_view subject) const {
    if (subject.size() <= inbox_.size() || subject.substr(0, inbox_.size()) != inbox_) return 0;
    std::uint64_t id = 0;
    auto tail = subject.substr(inbox_.size());
    auto [p, ec] = std::from_chars(tail.data(), tail.data() + tail.size(), id);
    return (ec == std::errc{} && p == tail.data() + tail.size()) ? id : 0;
  }

  void on_message(const protocol::event& ev) {
    if (ordered_ && !in_order(ev)) return;
    js_message* m = slot();
    m->owner_ = this;
    m->acked_.store(false, std::memory_order_relaxed);
    m->kept_ = last_frame_;
    auto& d = m->data_;
    d.clear();
    d.reserve(ev.subject.size() + ev.reply.size() + ev.headers.size() + ev.payload.size());
    auto put = [&d](std::string_view part, std::uint32_t& at, std::uint32_t& len) {
      at = static_cast<std::uint32_t>(d.size());
      len = static_cast<std::uint32_t>(part.size());
      d.append(part);
    };
    put(ev.subject, m->subject_at_, m->subject_len_);
    put(ev.reply, m->reply_at_, m->reply_len_);
    put(ev.headers, m->headers_at_, m->headers_len_);
    put(ev.payload, m->payload_at_, m->payload_len_);
    ++delivered_;
    // A message cannot name its pull; the oldest pull delivers first.
    if (!pulls_.empty()) {
      auto& p = pulls_.front();
      if (p.remaining > 0) --p.remaining;
      if (outstanding_ > 0) --outstanding_;
      if (p.remaining == 0) pulls_.pop_front();
    }
    if (mode_ == mode::fetching) {
      fetched_.push_back(m);
      if (fetched_.size() >= fopts_.batch) finish_fetch();
      return;
    }
    ready_.push_back(m);
    if (next_waiter_) {
      recycle_current();
      complete_next(take(next_waiter_), next_local_, error_code{}, take_ready());
    }
    maybe_pull();
  }

  void on_status(const protocol::event& ev, const protocol::pull_status_info& st) {
    using protocol::pull_status;
    const std::uint64_t id = pull_id_of(ev.subject);
    // Whether the pull delivered nothing before this status (a message larger than a whole pull's max_bytes).
    bool delivered_none = true;
    pulls_.for_each([&](const pull& p) {
      if (p.id == id) delivered_none = p.remaining == p.requested;
    });
    if (mode_ == mode::fetching && id == fetch_pull_) delivered_none = fetched_.empty();
    switch (st.kind) {
      case pull_status::idle_heartbeat:
        ++heartbeats_;
        if (!st.consumer_stalled.empty()) answer(st.consumer_stalled);  // the server waits for this to go on
        return;
      case pull_status::flow_control:
        if (!ev.reply.empty()) {
          // Answered once the application has taken every message that came before it.
          fc_.push_back({std::string(ev.reply), delivered_});
          answer_flow_control();
        }
        return;
      case pull_status::no_messages:
      case pull_status::request_timeout:
      case pull_status::batch_completed:
        end_pull(id);
        if (mode_ == mode::fetching && id == fetch_pull_) return finish_fetch();
        // An expiry means the stream went quiet: while other pulls still wait, no new one joins them, so an idle
        // consume settles on a single waiting pull (asking for everything missing) once they have expired too.
        if (pulls_.empty()) maybe_pull();
        return;
      default: break;
    }
    end_pull(id);
    error_code ec;
    bool fatal = false;
    switch (st.kind) {
      case pull_status::consumer_deleted: ec = error::consumer_deleted, fatal = true; break;
      case pull_status::consumer_is_push_based: ec = error::consumer_is_push_based, fatal = true; break;
      case pull_status::message_size_exceeds_max_bytes:
        // Routine when a partly filled pull meets a message larger than its remaining bytes: pull again. When the
        // pull got nothing, the message is larger than any pull of this size: stop and say so, no re-pull loop.
        if (!delivered_none) {
          maybe_pull();
          return;
        }
        ec = error::message_exceeds_max_bytes, fatal = true;
        break;
      case pull_status::leadership_change: ec = error::leadership_change; break;
      case pull_status::no_responders: ec = error::no_responders; break;
      case pull_status::exceeded_max_waiting:
      case pull_status::exceeded_max_request_batch:
      case pull_status::exceeded_max_request_expires:
      case pull_status::exceeded_max_request_max_bytes: ec = error::pull_request_refused; break;
      default: ec = error::server_error; break;
    }
    conn_->log()->warn("natsbus: consumer {} > {}: pull ended: {} {}", stream_, consumer_, st.code,
                       std::string(st.description));
    if (mode_ == mode::fetching && id == fetch_pull_) {
      fetch_status_ = ec;
      return finish_fetch();
    }
    if (ordered_ && (ec == error::consumer_deleted || ec == error::no_responders || ec == error::leadership_change)) {
      recreate();  // a consumer that cannot be trusted: a new one at the next sequence
      return;
    }
    if (mode_ == mode::consuming && ec == error::no_responders && !push_) return check_consumer_exists(ec);
    if (mode_ == mode::consuming) set_error(ec, fatal);
  }

  // A pull nobody answered (503, or silence: the account's JetStream API import always "responds", so a pull for
  // a consumer that is gone is usually just dropped): the consumer may be gone (an ephemeral one lost in an
  // outage, a deleted durable whose 409 was lost with the link). One CONSUMER.INFO tells: not found stops the
  // consume with consumer_deleted, rather than a missed heartbeat every two intervals; otherwise `otherwise` is
  // reported and the consume goes on.
  void check_consumer_exists(error_code otherwise) {
    if (checking_) return;
    checking_ = true;
    check_fallback_ = otherwise;
    ask_consumer_info([](pull_consumer_impl& self, error_code ec, const consumer_info&, const api_error& err) {
      self.checking_ = false;
      if (self.mode_ != mode::consuming) return;
      if (!ec && err.err_code == jetstream_errc::consumer_not_found) {
        self.conn_->log()->warn("natsbus: consumer {} > {}: not found", self.stream_, self.consumer_);
        return self.set_error(error::consumer_deleted, true);
      }
      if (self.check_fallback_) self.set_error(self.check_fallback_, false);
    });
  }

  // One CONSUMER.INFO; `then(self, ec, info, err)` runs while this consumer lives (ec: the request's error, or
  // invalid_json when the answer cannot be read; an API error such as "consumer not found" is in err).
  template <class F>
  void ask_consumer_info(F then) {
    conn_->do_request(api_prefix_ + ".CONSUMER.INFO." + stream_ + "." + consumer_, {}, nullptr,
                      conn_->options().request_timeout,
                      [w = weak_from_this(), then = std::move(then)](error_code ec, message m) mutable {
                        auto self = w.lock();
                        if (!self) return;
                        consumer_info info;
                        api_error err;
                        // An API error (err) is an answer, not an unreadable one.
                        if (!ec && protocol::decode(m.payload, info, err) && err.code == 0) ec = error::invalid_json;
                        then(*self, ec, info, err);
                      });
  }

  // An error for the consume's next(): once. A fatal one stops the pulls; others are followed by a new pull
  // after a pause (not at once: a refused pull would be refused again).
  void set_error(error_code ec, bool fatal) {
    if (fatal) fatal_ = ec;
    pending_error_ = ec;
    if (next_waiter_ && ready_.empty()) complete_next(take(next_waiter_), next_local_, take_error(), nullptr);
    if (!fatal) retry_after_ = clock_type::now() + std::chrono::milliseconds(250);
  }

  error_code take_error() {
    error_code ec = pending_error_;
    pending_error_ = {};
    return ec;
  }

  js_message* take_ready() {
    if (ready_.empty()) return nullptr;
    current_ = ready_.front();
    ready_.pop_front();
    ++taken_;
    if (!fc_.empty()) answer_flow_control();
    maybe_pull();
    return current_;
  }

  // An empty publish to `subject`: a flow-control reply, or the answer to a stalled consumer's heartbeat.
  void answer(std::string_view subject) {
    std::size_t at = 0;
    if (!conn_->accepting() || conn_->append_publish(subject, {}, {}, {}, at)) return;
    conn_->wake_writer();
  }
  void answer_flow_control() {
    while (!fc_.empty() && fc_.front().after <= taken_) {
      answer(fc_.front().reply);
      fc_.pop_front();
      ++fc_replies_;
    }
  }

  void recycle_current() {
    if (current_) free_.push_back(std::exchange(current_, nullptr));
  }

  js_message* slot() {
    if (!free_.empty()) {
      js_message* m = free_.back();
      free_.pop_back();
      return m;
    }
    all_.push_back(std::make_unique<js_message>());
    return all_.back().get();
  }

  void finish_fetch() {
    if (!fetch_waiter_) return;
    timer_.cancel();
    end_pull(fetch_pull_);
    fetch_pull_ = 0;
    mode_ = mode::idle;
    message_batch b;
    b.owner_ = shared_from_this();
    b.msgs_.swap(fetched_);
    b.status_ = fetch_status_;
    if (!fetch_local_) return complete(take(fetch_waiter_), error_code{}, std::move(b));
    asio::post(conn_->executor(), [h = take(fetch_waiter_), b = std::move(b)]() mutable { std::move(h)(error_code{}, std::move(b)); });
  }

  // The deadline of this fetch only: a completion already queued when the fetch ended (its batch filled in the
  // turn its timer expired) must not end a later fetch, which cancelling the timer cannot prevent. Completions
  // are posted, so the next fetch starts after it today; the id keeps that from being a precondition.
  void arm_fetch_deadline(std::chrono::milliseconds bound) {
    timer_.expires_after(bound);
    timer_.async_wait([w = weak_from_this(), id = fetch_pull_](error_code ec) {
      auto self = w.lock();
      if (ec || !self || self->mode_ != mode::fetching || self->fetch_pull_ != id) return;
      self->finish_fetch();
    });
  }

  // Every heartbeat interval: two intervals without a frame while a pull waits on the server is a missed
  // heartbeat. Only frames count; the time a handler takes between next() calls does not, since the reader keeps
  // reading meanwhile.
  void arm_heartbeat_check() {
    // A quarter of the interval: the miss is seen within a quarter interval of two intervals of silence. Half the
    // keep-alive period, when shorter, so no buffered message goes longer than that without an in-progress ack.
    auto tick = copts_.heartbeat.count() > 0 ? copts_.heartbeat / 4 : std::chrono::milliseconds(0);
    if (keep_alive_.count() > 0 && (tick.count() == 0 || keep_alive_ / 2 < tick)) tick = keep_alive_ / 2;
    if (tick.count() <= 0) return;
    timer_.expires_after(tick);
    timer_.async_wait([w = weak_from_this()](error_code ec) {
      auto self = w.lock();
      if (ec || !self || self->mode_ != mode::consuming) return;
      self->heartbeat_check();
      self->arm_heartbeat_check();
    });
  }

  void heartbeat_check() {
    const auto now = clock_type::now();
    keep_buffered_alive(now);
    if ((push_ || !pulls_.empty()) && conn_->writable() && now - last_frame_ > 2 * copts_.heartbeat) {
      conn_->log()->warn("natsbus: consumer {} > {}: missed heartbeats", stream_, consumer_);
      pulls_.clear();
      outstanding_ = 0;
      last_frame_ = now;
      if (ordered_) {
        recreate();
      } else {
        // Said at once; meanwhile one CONSUMER.INFO asks whether the consumer is still there.
        set_error(error::missed_heartbeat, false);
        if (!push_) check_consumer_exists({});
      }
    }
    if (ordered_ && need_reset_ && !creating_ && now >= retry_after_) recreate();
    if (!fatal_ && now >= retry_after_ && !creating_) maybe_pull();
  }

  // In-progress acks for what waits in the buffer, and for the message last handed out until it is acked, once
  // every keep-alive period: the server's ack_wait runs from delivery, not from when the application takes it.
  void keep_buffered_alive(clock_type::time_point now) {
    if (keep_alive_.count() <= 0 || !conn_->writable()) return;
    auto keep = [&](js_message* m) {
      if (m->acked_.load(std::memory_order_acquire) || now - m->kept_ < keep_alive_) return;
      if (append_ack(m->reply(), protocol::ack_body(protocol::ack_kind::in_progress))) return;
      m->kept_ = now;
      ++kept_alive_;
    };
    ready_.for_each(keep);
    if (current_) keep(current_);
  }

  // The consumer's ack_wait, for the keep-alive: a third of it (nothing under ack policy none).
  void learn_ack_wait() {
    ask_consumer_info([](pull_consumer_impl& self, error_code ec, const consumer_info& info, const api_error& err) {
      if (ec || err.code != 0 || self.mode_ != mode::consuming) return;
      if (info.config.ack == ack_policy::none || info.config.ack_wait.count() <= 0) return;
      self.keep_alive_ = std::max(std::chrono::milliseconds(10),
                                  std::chrono::duration_cast<std::chrono::milliseconds>(info.config.ack_wait) / 3);
      self.timer_.cancel();
      self.arm_heartbeat_check();
    });
  }

  // Ordered: a message of the current consumer whose consumer sequence follows the last one. A stale consumer's
  // message is dropped; a gap recreates the consumer at the last stream sequence + 1.
  bool in_order(const protocol::event& ev) {
    protocol::message_metadata md;
    if (protocol::parse_ack_subject(ev.reply, md) || creating_ || md.consumer != consumer_) return false;
    if (md.consumer_sequence != last_cseq_ + 1) {
      conn_->log()->info("natsbus: ordered consumer on {}: gap (consumer sequence {} after {}); recreating", stream_,
                         md.consumer_sequence, last_cseq_);
      recreate();
      return false;
    }
    last_cseq_ = md.consumer_sequence;
    last_sseq_ = md.stream_sequence;
    return true;
  }

  // Deletes the current consumer (without waiting) and creates a new one from the next stream sequence.
  void recreate() {
    need_reset_ = true;
    if (creating_ || !conn_->writable()) return;  // on_reconnect or the periodic check comes back here
    creating_ = true;
    pulls_.clear();
    outstanding_ = 0;
    const auto timeout = conn_->options().request_timeout;
    if (!consumer_.empty()) {
      conn_->do_request(api_prefix_ + ".CONSUMER.DELETE." + stream_ + "." + consumer_, {}, nullptr, timeout,
                        [](error_code, message) {});
      consumer_.clear();
      ++resets_;
    }
    consumer_config cc;
    cc.ack = ack_policy::none;
    cc.mem_storage = true;
    cc.num_replicas = 1;
    cc.inactive_threshold = std::chrono::minutes(5);  // an abandoned one goes away by itself
    if (oopts_.filter_subjects.size() == 1) cc.filter_subject = oopts_.filter_subjects.front();
    else cc.filter_subjects = oopts_.filter_subjects;
    if (last_sseq_ > 0) {
      cc.deliver = deliver_policy::by_start_sequence;
      cc.opt_start_seq = last_sseq_ + 1;
    } else {
      cc.deliver = oopts_.deliver;
      cc.opt_start_seq = oopts_.start_sequence;
    }
    int major = 0, minor = 0, patch = 0;
    const bool v210 = protocol::parse_server_version(conn_->current_info().version, major, minor, patch) &&
                      protocol::version_at_least(major, minor, patch, 2, 10, 0);
    if (!v210 && cc.filter_subjects.size() > 1) return created({}, error::not_supported_by_server);
    const std::string body = protocol::encode_consumer_create(stream_, cc, v210 ? "create" : "");
    conn_->do_request(api_prefix_ + ".CONSUMER.CREATE." + stream_, body, nullptr, timeout,
                      [w = weak_from_this()](error_code ec, message m) {
                        if (auto self = w.lock()) self->created(m.payload, ec);
                      });
  }

  void created(std::string_view json, error_code ec) {
    creating_ = false;
    consumer_info info;
    api_error err;
    if (!ec && protocol::decode(json, info, err)) ec = error::invalid_json;
    if (!ec && err.code != 0) ec = err.err_code ? make_jetstream_error(err.err_code) : error::server_error;
    if (mode_ != mode::consuming) return;
    if (ec) {
      conn_->log()->warn("natsbus: ordered consumer on {}: create failed: {}", stream_, ec.message());
      retry_after_ = clock_type::now() + std::chrono::milliseconds(500);
      if (start_waiter_) {
        mode_ = mode::idle;
        ordered_ = false;
        return complete(take(start_waiter_), ec);
      }
      return set_error(ec, false);
    }
    need_reset_ = false;
    consumer_ = info.name;
    next_subject_ = api_prefix_ + ".CONSUMER.MSG.NEXT." + stream_ + "." + consumer_;
    last_cseq_ = 0;
    last_frame_ = clock_type::now();
    if (start_waiter_) complete(take(start_waiter_), error_code{});
    maybe_pull();
  }

  struct flow_control_request {
    std::string reply;
    std::uint64_t after;  // answered once this many messages have been taken
  };
  std::deque<flow_control_request> fc_;
  bool push_ = false;
  bool checking_ = false;  // a CONSUMER.INFO after a 503 or a missed heartbeat is in flight
  error_code check_fallback_;
  std::uint64_t taken_ = 0, fc_replies_ = 0;

  std::shared_ptr<connection_impl> conn_;
  std::string api_prefix_;
  bool ordered_ = false;
  ordered_options oopts_;
  bool creating_ = false;
  bool need_reset_ = false;
  std::uint64_t last_sseq_ = 0, last_cseq_ = 0, resets_ = 0;
  std::optional<asio::any_completion_handler<void(error_code)>> start_waiter_;
  std::string next_subject_;
  std::string stream_, consumer_;
  std::string inbox_;  // "<connection inbox>c<n>."
  static inline std::atomic<std::uint64_t> ids_{0};
  std::uint64_t sid_ = 0;
  mode mode_ = mode::idle;
  consume_options copts_;
  fetch_options fopts_;

  std::vector<std::unique_ptr<js_message>> all_;  // every slot, for their lifetime
  std::vector<js_message*> free_;
  ring<js_message*> ready_;
  js_message* current_ = nullptr;  // handed out by next(); recycled on the following call

  ring<pull> pulls_;
  std::uint64_t next_pull_ = 1;
  std::size_t outstanding_ = 0;
  std::string reply_, body_;

  std::optional<next_handler> next_waiter_;
  bool next_local_ = false;
  std::optional<fetch_handler> fetch_waiter_;
  bool fetch_local_ = false;
  std::vector<js_message*> spare_;  // a dropped batch's array, kept for the next fetch
  std::vector<js_message*> fetched_;
  std::uint64_t fetch_pull_ = 0;
  error_code fetch_status_;
  error_code pending_error_;
  error_code fatal_;
  clock_type::time_point retry_after_{};
  clock_type::time_point last_frame_{};
  asio::steady_timer timer_;

  std::uint64_t delivered_ = 0, pulls_sent_ = 0, heartbeats_ = 0, kept_alive_ = 0;
  std::chrono::milliseconds keep_alive_{0};
};

}  // namespace detail

// ---- js_message ----

error_code js_message::get_headers(headers& out) const {
  out = headers{};
  if (headers_len_ == 0) return {};
  return protocol::decode_headers(header_block(), out);
}

error_code js_message::info(message_info& out) const {
  protocol::message_metadata md;
  if (auto ec = protocol::parse_ack_subject(reply(), md)) return ec;
  out.domain.assign(md.domain);
  out.stream.assign(md.stream);
  out.consumer.assign(md.consumer);
  out.num_delivered = md.num_delivered;
  out.stream_sequence = md.stream_sequence;
  out.consumer_sequence = md.consumer_sequence;
  out.timestamp_ns = md.timestamp_ns;
  out.num_pending = md.num_pending;
  return {};
}

error_code js_message::send(std::string_view body, bool final) {
  if (!owner_) return error::invalid_argument;
  if (owner_->owner_thread()) return owner_->send_ack(*this, body, final);
  // Another thread: the frame is queued on the connection's executor; a second ack is still refused here.
  if (final ? acked_.exchange(true, std::memory_order_acq_rel) : acked_.load(std::memory_order_acquire))
    return error::already_acknowledged;
  asio::post(owner_->executor(), [o = owner_->shared_from_this(), r = std::string(reply()), b = std::string(body)] {
    (void)o->append_ack(r, b);
  });
  return {};
}

error_code js_message::ack() { return send(protocol::ack_body(protocol::ack_kind::ack), true); }
error_code js_message::in_progress() { return send(protocol::ack_body(protocol::ack_kind::in_progress), false); }

error_code js_message::nak(std::chrono::milliseconds delay) {
  if (delay.count() <= 0) return send(protocol::ack_body(protocol::ack_kind::nak), true);
  std::string body;
  protocol::encode_nak_with_delay(body, delay);
  return send(body, true);
}

error_code js_message::term(std::string_view reason) {
  if (reason.empty() || !owner_ || !owner_->term_reason_supported())
    return send(protocol::ack_body(protocol::ack_kind::term), true);
  std::string body;
  protocol::encode_term_with_reason(body, reason);
  return send(body, true);
}

void js_message::ack_sync_impl(asio::any_completion_handler<void(error_code)> h) {
  if (!owner_) return std::move(h)(error::invalid_argument);
  auto o = owner_->shared_from_this();
  asio::dispatch(o->executor(), [o, m = this, h = std::move(h)]() mutable { o->ack_sync(*m, std::move(h)); });
}

// ---- message_batch ----

message_batch& message_batch::operator=(message_batch&& other) noexcept {
  if (this != &other) {
    release();
    owner_ = std::move(other.owner_);
    msgs_ = std::move(other.msgs_);
    status_ = other.status_;
  }
  return *this;
}

message_batch::~message_batch() { release(); }

void message_batch::release() noexcept {
  if (!owner_ || msgs_.empty()) return;
  auto o = std::move(owner_);
  if (o->owner_thread()) {
    o->release(msgs_);
    return;
  }
  asio::post(o->executor(), [o, msgs = std::move(msgs_)]() mutable { o->release(msgs); });
}

// ---- pull_consumer ----

pull_consumer::pull_consumer(jetstream& js, std::string stream, std::string consumer) {
  auto& j = *js.impl();
  impl_ = std::make_shared<detail::pull_consumer_impl>(j.connection_ptr(), j.api_prefix(), std::move(stream),
                                                       std::move(consumer));
  auto impl = impl_;
  asio::dispatch(impl->executor(), [impl, conn = j.connection_ptr()] { conn->add_listener(impl); });
}

pull_consumer::~pull_consumer() { stop(); }

error_code pull_consumer::consume(const consume_options& opts) {
  if (impl_->owner_thread()) return impl_->start_consume(opts);
  std::promise<error_code> done;
  auto f = done.get_future();
  asio::post(impl_->executor(), [impl = impl_, opts, &done] { done.set_value(impl->start_consume(opts)); });
  return f.get();
}

const asio::any_io_executor& pull_consumer::executor() const noexcept { return impl_->executor(); }
const asio::any_io_executor& push_consumer::executor() const noexcept { return impl_->executor(); }
const asio::any_io_executor& ordered_consumer::executor() const noexcept { return impl_->executor(); }

js_message* pull_consumer::try_next() { return impl_->owner_thread() ? impl_->try_next() : nullptr; }

void pull_consumer::stop() {
  if (!impl_) return;
  if (impl_->owner_thread()) return impl_->stop();
  asio::post(impl_->executor(), [impl = impl_] { impl->stop(); });
}

pull_consumer::stats pull_consumer::get_stats() const { return impl_->get_stats(); }

void pull_consumer::fetch_impl(fetch_options o, js_message* ack,
                               asio::any_completion_handler<void(error_code, message_batch)> h, bool local) {
  asio::dispatch(impl_->executor(), [impl = impl_, o, ack, local, h = std::move(h)]() mutable {
    impl->fetch(o, ack, std::move(h), local);
  });
}

void pull_consumer::next_impl(asio::any_completion_handler<void(error_code, js_message*)> h, bool local) {
  asio::dispatch(impl_->executor(),
                 [impl = impl_, local, h = std::move(h)]() mutable { impl->next(std::move(h), local); });
}

// ---- ordered_consumer ----

ordered_consumer::ordered_consumer(jetstream& js, std::string stream, ordered_options opts) {
  auto& j = *js.impl();
  impl_ = std::make_shared<detail::pull_consumer_impl>(j.connection_ptr(), j.api_prefix(), std::move(stream), "");
  opts_holder_ = std::move(opts);
  auto impl = impl_;
  asio::dispatch(impl->executor(), [impl, conn = j.connection_ptr()] { conn->add_listener(impl); });
}

ordered_consumer::~ordered_consumer() { stop(); }

void ordered_consumer::start_impl(asio::any_completion_handler<void(error_code)> h) {
  asio::dispatch(impl_->executor(), [impl = impl_, o = opts_holder_, h = std::move(h)]() mutable {
    impl->start_ordered(o, std::move(h));
  });
}

void ordered_consumer::next_impl(asio::any_completion_handler<void(error_code, js_message*)> h, bool local) {
  asio::dispatch(impl_->executor(),
                 [impl = impl_, local, h = std::move(h)]() mutable { impl->next(std::move(h), local); });
}

js_message* ordered_consumer::try_next() { return impl_->owner_thread() ? impl_->try_next() : nullptr; }

void ordered_consumer::stop() {
  if (!impl_) return;
  if (impl_->owner_thread()) return impl_->stop();
  asio::post(impl_->executor(), [impl = impl_] { impl->stop(); });
}

std::uint64_t ordered_consumer::resets() const { return impl_->resets(); }

// ---- push_consumer ----

push_consumer::push_consumer(jetstream& js, std::string stream, std::string consumer, push_options opts)
    : opts_(std::move(opts)) {
  auto& j = *js.impl();
  impl_ = std::make_shared<detail::pull_consumer_impl>(j.connection_ptr(), j.api_prefix(), std::move(stream),
                                                       std::move(consumer));
  auto impl = impl_;
  asio::dispatch(impl->executor(), [impl, conn = j.connection_ptr()] { conn->add_listener(impl); });
}

push_consumer::~push_consumer() { stop(); }

error_code push_consumer::start() {
  if (impl_->owner_thread()) return impl_->start_push(opts_);
  std::promise<error_code> done;
  auto f = done.get_future();
  asio::post(impl_->executor(), [impl = impl_, o = opts_, &done] { done.set_value(impl->start_push(o)); });
  return f.get();
}

void push_consumer::next_impl(asio::any_completion_handler<void(error_code, js_message*)> h, bool local) {
  asio::dispatch(impl_->executor(),
                 [impl = impl_, local, h = std::move(h)]() mutable { impl->next(std::move(h), local); });
}

js_message* push_consumer::try_next() { return impl_->owner_thread() ? impl_->try_next() : nullptr; }

void push_consumer::stop() {
  if (!impl_) return;
  if (impl_->owner_thread()) return impl_->stop();
  asio::post(impl_->executor(), [impl = impl_] { impl->stop(); });
}

pull_consumer::stats push_consumer::get_stats() const { return impl_->get_stats(); }
std::uint64_t push_consumer::flow_control_replies() const { return impl_->flow_control_replies(); }

}  // namespace natsbus
