// natsbus::metrics: one registry of counters, gauges and histograms, written in the Prometheus text exposition
// format (version 0.0.4) by natsbus itself.
//
// A registry holds two kinds of metrics:
//  - families the application owns (counter_family, gauge_family, histogram_family): one child per set of label
//    values, updated from any thread;
//  - collectors: callbacks run at scrape time that read figures kept elsewhere. The library's own objects are
//    registered this way (add(connection), add(jetstream), add(event_bus)): they already keep their figures in
//    relaxed single-writer counters, so being measured adds nothing to their hot paths.
//
// Samples of one metric name from several sources (two connections, each registered with its own `client`
// label) are written together under one HELP and TYPE line, as the format requires.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace natsbus {

class connection;
class jetstream;
class event_bus;

namespace metrics {

namespace detail {
struct scrape;
struct family_text;
struct registry_state;
}  // namespace detail

enum class metric_type { counter, gauge, histogram };

struct label {
  std::string_view name;
  std::string_view value;
};

// The bucket bounds natsbus's latency histograms use, in seconds: 10 µs to 30 s.
[[nodiscard]] std::span<const double> latency_buckets() noexcept;

// [a-zA-Z_:][a-zA-Z0-9_:]* and [a-zA-Z_][a-zA-Z0-9_]* (names starting with "__" are reserved to Prometheus).
[[nodiscard]] bool valid_metric_name(std::string_view name) noexcept;
[[nodiscard]] bool valid_label_name(std::string_view name) noexcept;
// Appends `value` as a label value: backslash, double quote and line feed escaped.
void append_escaped_label_value(std::string& out, std::string_view value);

// What collectors write into during a scrape.
class sample_writer {
 public:
  // The samples of one metric family. A handle for a name already opened with another type, or an invalid name,
  // drops what it is given (a collector never breaks a scrape).
  class family {
   public:
    // One counter or gauge sample. Integers are written exactly.
    void add(std::span<const label> labels, double value);
    void add(std::span<const label> labels, std::uint64_t value);
    void add(std::initializer_list<label> labels, double value) { add(std::span(labels.begin(), labels.size()), value); }
    void add(std::initializer_list<label> labels, std::uint64_t value) {
      add(std::span(labels.begin(), labels.size()), value);
    }
    // One histogram: per-bucket counts (not cumulative), one more than `bounds` (the last: above every bound),
    // and the sum of the observations.
    void add_histogram(std::span<const label> labels, std::span<const double> bounds,
                       std::span<const std::uint64_t> counts, double sum);
    void add_histogram(std::initializer_list<label> labels, std::span<const double> bounds,
                       std::span<const std::uint64_t> counts, double sum) {
      add_histogram(std::span(labels.begin(), labels.size()), bounds, counts, sum);
    }
    [[nodiscard]] bool valid() const noexcept { return f_ != nullptr; }

   private:
    friend class sample_writer;
    explicit family(detail::family_text* f) : f_(f) {}
    void open_sample(std::string_view suffix, std::span<const label> labels);
    detail::family_text* f_ = nullptr;
  };

  [[nodiscard]] family open(std::string_view name, std::string_view help, metric_type type);

 private:
  friend struct detail::registry_state;
  explicit sample_writer(detail::scrape& s) : s_(s) {}
  detail::scrape& s_;
};

// ---- metrics the application owns ----

class counter {
 public:
  void inc(double v = 1) noexcept { v_.fetch_add(v, std::memory_order_relaxed); }  // v >= 0
  [[nodiscard]] double value() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> v_{0};
};

class gauge {
 public:
  void set(double v) noexcept { v_.store(v, std::memory_order_relaxed); }
  void inc(double v = 1) noexcept { v_.fetch_add(v, std::memory_order_relaxed); }
  void dec(double v = 1) noexcept { v_.fetch_sub(v, std::memory_order_relaxed); }
  [[nodiscard]] double value() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> v_{0};
};

class histogram {
 public:
  // Bounds ascending, finite; an observation v lands in the first bucket whose bound is >= v.
  explicit histogram(std::span<const double> bounds);
  void observe(double v) noexcept;
  [[nodiscard]] std::span<const double> bounds() const noexcept { return bounds_; }
  // Per-bucket counts (bounds().size() + 1 of them, not cumulative) and the sum.
  void read(std::span<std::uint64_t> counts, double& sum) const noexcept;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;
  std::atomic<double> sum_{0};
};

// One metric name with its label names, and a child per set of label values.
template <class Metric>
class family {
 public:
  // The child for these label values (as many as the family has label names; std::invalid_argument otherwise),
  // made on first use. The reference stays valid for the registry's life: keep it rather than looking it up per
  // update.
  Metric& with(std::initializer_list<std::string_view> values);
  Metric& with(std::span<const std::string> values);

  [[nodiscard]] const std::string& name() const noexcept { return name_; }

 private:
  friend struct detail::registry_state;
  family(std::string name, std::string help, std::vector<std::string> label_names, std::vector<double> bounds);
  Metric& child(std::vector<std::string> values);
  void write(sample_writer& w) const;

  std::string name_, help_;
  std::vector<std::string> label_names_;
  std::vector<double> bounds_;  // histograms only
  mutable std::mutex mutex_;
  std::map<std::vector<std::string>, std::unique_ptr<Metric>> children_;
};

extern template class family<counter>;
extern template class family<gauge>;
extern template class family<histogram>;

class registry;

// Keeps a collector in its registry: destroying it (or reset()) removes the collector, after which no scrape
// runs it any more. May outlive the registry.
class registration {
 public:
  registration() = default;
  registration(registration&& o) noexcept : state_(std::move(o.state_)), id_(o.id_) { o.id_ = 0; }
  registration& operator=(registration&& o) noexcept;
  registration(const registration&) = delete;
  registration& operator=(const registration&) = delete;
  ~registration() { reset(); }
  void reset();
  [[nodiscard]] bool active() const noexcept { return id_ != 0; }

 private:
  friend class registry;
  registration(std::weak_ptr<detail::registry_state> s, std::uint64_t id) : state_(std::move(s)), id_(id) {}
  std::weak_ptr<detail::registry_state> state_;
  std::uint64_t id_ = 0;
};

class registry {
 public:
  using collector = std::function<void(sample_writer&)>;

  registry();
  ~registry();
  registry(const registry&) = delete;
  registry& operator=(const registry&) = delete;

  // Families: the name must be valid and not taken (std::invalid_argument otherwise). Counters' names end in
  // _total by convention, and units are base units (_seconds, _bytes).
  family<counter>& counter_family(std::string_view name, std::string_view help,
                                  std::vector<std::string> label_names = {});
  family<gauge>& gauge_family(std::string_view name, std::string_view help, std::vector<std::string> label_names = {});
  family<histogram>& histogram_family(std::string_view name, std::string_view help,
                                      std::vector<std::string> label_names = {}, std::vector<double> bounds = {});

  // A collector runs at every scrape, on the scraping thread, with the registry's lock held: it must not call
  // back into the registry, and should only read (atomics, or state under its own short lock).
  [[nodiscard]] registration add_collector(collector c);

  // The library's figures, labelled client="<client>" (empty: the connection's options().name). Read at scrape
  // time from the objects' own counters; the object may be destroyed only after its registration is. The event
  // bus brings its connection, its JetStream context, its topics and every durable subscription started
  // through it.
  [[nodiscard]] registration add(const connection& c, std::string_view client = {});
  [[nodiscard]] registration add(const jetstream& js, std::string_view client = {});
  [[nodiscard]] registration add(const event_bus& bus, std::string_view client = {});

  // Appends the exposition text of every family and collector. Safe from any thread.
  void write_prometheus(std::string& out) const;
  // The same as a function that keeps the registry's state alive (for a server that may outlive the registry).
  [[nodiscard]] std::function<void(std::string&)> writer() const;

  static constexpr std::string_view content_type = "text/plain; version=0.0.4; charset=utf-8";

 private:
  std::shared_ptr<detail::registry_state> state_;
};

}  // namespace metrics
}  // namespace natsbus
