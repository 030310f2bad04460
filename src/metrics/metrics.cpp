// natsbus::metrics: the registry, the application's families, and the Prometheus text exposition format.
#include <natsbus/metrics.hpp>

#include "metrics/latency_bounds.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace natsbus::metrics {

namespace {

// In seconds, from the one list in nanoseconds (an integer over 1e9 rounds to the same double as the decimal).
constexpr auto latency_bounds = [] {
  std::array<double, natsbus::detail::latency_bounds_ns.size()> s{};
  for (std::size_t i = 0; i < s.size(); ++i) s[i] = static_cast<double>(natsbus::detail::latency_bounds_ns[i]) / 1e9;
  return s;
}();

bool name_char(char c, bool first, bool colon) noexcept {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') return true;
  if (colon && c == ':') return true;
  return !first && c >= '0' && c <= '9';
}

// The shortest text that reads back the same, in the style Prometheus's own clients use (Go's 'g' with the
// shortest precision): plain digits for exponents from -4 to 20, an exponent otherwise. 300, 0.0005, 5e-05, 1e+21.
std::size_t format_double(char (&buf)[40], double v) {
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  (void)ec;
  const char* e = std::find(buf, end, 'e');
  int exponent = 0;
  std::from_chars(e + 1 + (e[1] == '+'), end, exponent);
  if (exponent < -4 || exponent >= 21) return static_cast<std::size_t>(end - buf);
  auto [fend, fec] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
  (void)fec;
  return static_cast<std::size_t>(fend - buf);
}

void append_value(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else {
    char buf[40];
    out.append(buf, format_double(buf, v));
  }
}

void append_value(std::string& out, std::uint64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  (void)ec;
  out.append(buf, end);
}

void append_help(std::string& out, std::string_view help) {
  for (char c : help) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
}

const char* type_name(metric_type t) noexcept {
  switch (t) {
    case metric_type::counter: return "counter";
    case metric_type::gauge: return "gauge";
    case metric_type::histogram: return "histogram";
  }
  return "untyped";
}

bool valid_bounds(std::span<const double> b) noexcept {
  for (std::size_t i = 0; i < b.size(); ++i)
    if (!std::isfinite(b[i]) || (i > 0 && !(b[i - 1] < b[i]))) return false;
  return true;
}

}  // namespace

std::span<const double> latency_buckets() noexcept { return latency_bounds; }

bool valid_metric_name(std::string_view name) noexcept {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i)
    if (!name_char(name[i], i == 0, true)) return false;
  return true;
}

bool valid_label_name(std::string_view name) noexcept {
  if (name.empty() || name.starts_with("__")) return false;
  for (std::size_t i = 0; i < name.size(); ++i)
    if (!name_char(name[i], i == 0, false)) return false;
  return true;
}

void append_escaped_label_value(std::string& out, std::string_view value) {
  for (char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
}

// ---- one scrape: families in the order first opened, each with its samples' text ----

namespace detail {

struct family_text {
  std::string name, help;
  metric_type type{};
  std::string body;
  std::uint64_t generation = 0;  // the scrape that last opened it
};

// Kept from one scrape to the next (under the registry's lock), so that a scrape of a steady process allocates
// nothing: a large one is hundreds of kilobytes, and fresh pages cost more than writing the text.
struct scrape {
  std::vector<std::unique_ptr<family_text>> order;
  std::unordered_map<std::string_view, family_text*> by_name;  // keys view family_text::name
  std::uint64_t generation = 0;

  // Families not opened in this scrape stay, empty, and are not written.
  void begin() { ++generation; }

  void write(std::string& out) const {
    std::size_t size = 0;
    for (const auto& f : order)
      if (f->generation == generation) size += f->body.size() + f->help.size() + 2 * f->name.size() + 32;
    out.reserve(out.size() + size);
    for (const auto& f : order) {
      if (f->generation != generation || f->body.empty()) continue;
      out += "# HELP ";
      out += f->name;
      out += ' ';
      append_help(out, f->help);
      out += "\n# TYPE ";
      out += f->name;
      out += ' ';
      out += type_name(f->type);
      out += '\n';
      out += f->body;
    }
  }
};

}  // namespace detail

sample_writer::family sample_writer::open(std::string_view name, std::string_view help, metric_type type) {
  detail::family_text* f = nullptr;
  if (auto it = s_.by_name.find(name); it != s_.by_name.end()) {
    f = it->second;
    if (f->generation == s_.generation) return family(f->type == type ? f : nullptr);
  } else {
    if (!valid_metric_name(name)) return family(nullptr);
    auto made = std::make_unique<detail::family_text>();
    made->name.assign(name);
    f = made.get();
    s_.order.push_back(std::move(made));
    s_.by_name.emplace(f->name, f);
  }
  // First opened in this scrape: its type and help are this caller's.
  f->generation = s_.generation;
  f->help.assign(help);
  f->type = type;
  f->body.clear();
  return family(f);
}

void sample_writer::family::open_sample(std::string_view suffix, std::span<const label> labels) {
  auto& b = f_->body;
  b += f_->name;
  b += suffix;
  if (labels.empty()) return;
  b += '{';
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (i) b += ',';
    b += labels[i].name;
    b += "=\"";
    append_escaped_label_value(b, labels[i].value);
    b += '"';
  }
  b += '}';
}

namespace {
bool valid_labels(std::span<const label> labels) noexcept {
  return std::all_of(labels.begin(), labels.end(), [](const label& l) { return valid_label_name(l.name); });
}
}  // namespace

void sample_writer::family::add(std::span<const label> labels, double value) {
  if (!f_ || f_->type == metric_type::histogram || !valid_labels(labels)) return;
  open_sample({}, labels);
  f_->body += ' ';
  append_value(f_->body, value);
  f_->body += '\n';
}

void sample_writer::family::add(std::span<const label> labels, std::uint64_t value) {
  if (!f_ || f_->type == metric_type::histogram || !valid_labels(labels)) return;
  open_sample({}, labels);
  f_->body += ' ';
  append_value(f_->body, value);
  f_->body += '\n';
}

void sample_writer::family::add_histogram(std::span<const label> labels, std::span<const double> bounds,
                                          std::span<const std::uint64_t> counts, double sum) {
  if (!f_ || f_->type != metric_type::histogram || counts.size() != bounds.size() + 1 || !valid_labels(labels))
    return;
  for (const auto& l : labels)
    if (l.name == "le") return;  // the bucket label is the format's own
  // The bucket lines: the caller's labels and le="bound", the count of observations <= bound (cumulative).
  std::vector<label> with_le(labels.begin(), labels.end());
  with_le.push_back({"le", {}});
  std::uint64_t total = 0;
  char buf[40];
  for (std::size_t i = 0; i <= bounds.size(); ++i) {
    total += counts[i];
    if (i < bounds.size()) {
      with_le.back().value = std::string_view(buf, format_double(buf, bounds[i]));
    } else {
      with_le.back().value = "+Inf";
    }
    open_sample("_bucket", with_le);
    f_->body += ' ';
    append_value(f_->body, total);
    f_->body += '\n';
  }
  open_sample("_sum", labels);
  f_->body += ' ';
  append_value(f_->body, sum);
  f_->body += '\n';
  open_sample("_count", labels);
  f_->body += ' ';
  append_value(f_->body, total);
  f_->body += '\n';
}

// ---- histogram ----

histogram::histogram(std::span<const double> bounds)
    : bounds_(bounds.begin(), bounds.end()), counts_(new std::atomic<std::uint64_t>[bounds.size() + 1]) {
  if (!valid_bounds(bounds_)) throw std::invalid_argument("histogram bounds must be finite and ascending");
  for (std::size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void histogram::observe(double v) noexcept {
  auto i = static_cast<std::size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

void histogram::read(std::span<std::uint64_t> counts, double& sum) const noexcept {
  for (std::size_t i = 0; i < counts.size() && i <= bounds_.size(); ++i)
    counts[i] = counts_[i].load(std::memory_order_relaxed);
  sum = sum_.load(std::memory_order_relaxed);
}

// ---- families ----

template <class Metric>
family<Metric>::family(std::string name, std::string help, std::vector<std::string> label_names,
                       std::vector<double> bounds)
    : name_(std::move(name)), help_(std::move(help)), label_names_(std::move(label_names)), bounds_(std::move(bounds)) {}

template <class Metric>
Metric& family<Metric>::with(std::initializer_list<std::string_view> values) {
  return child(std::vector<std::string>(values.begin(), values.end()));
}

template <class Metric>
Metric& family<Metric>::with(std::span<const std::string> values) {
  return child(std::vector<std::string>(values.begin(), values.end()));
}

template <class Metric>
Metric& family<Metric>::child(std::vector<std::string> values) {
  if (values.size() != label_names_.size())
    throw std::invalid_argument(name_ + ": " + std::to_string(label_names_.size()) + " label values expected");
  std::lock_guard lock(mutex_);
  auto it = children_.find(values);
  if (it != children_.end()) return *it->second;
  std::unique_ptr<Metric> m;
  if constexpr (std::is_same_v<Metric, histogram>) m = std::make_unique<histogram>(bounds_);
  else m = std::make_unique<Metric>();
  auto& ref = *m;
  children_.emplace(std::move(values), std::move(m));
  return ref;
}

template <class Metric>
void family<Metric>::write(sample_writer& w) const {
  constexpr auto type = std::is_same_v<Metric, counter> ? metric_type::counter
                        : std::is_same_v<Metric, gauge> ? metric_type::gauge
                                                         : metric_type::histogram;
  auto f = w.open(name_, help_, type);
  std::vector<label> labels(label_names_.size());
  std::vector<std::uint64_t> counts(bounds_.size() + 1);
  std::lock_guard lock(mutex_);
  for (const auto& [values, m] : children_) {
    for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = {label_names_[i], values[i]};
    if constexpr (std::is_same_v<Metric, histogram>) {
      double sum = 0;
      m->read(counts, sum);
      f.add_histogram(labels, bounds_, counts, sum);
    } else {
      f.add(labels, m->value());
    }
  }
}

template class family<counter>;
template class family<gauge>;
template class family<histogram>;

// ---- the registry ----

namespace detail {

struct registry_state {
  mutable std::mutex mutex;
  std::unordered_set<std::string> names;
  // Families in the order they were made; each writer writes one.
  std::vector<std::function<void(sample_writer&)>> family_writers;
  std::vector<std::unique_ptr<family<counter>>> counters;
  std::vector<std::unique_ptr<family<gauge>>> gauges;
  std::vector<std::unique_ptr<family<histogram>>> histograms;
  std::map<std::uint64_t, registry::collector> collectors;  // by id: registration order
  std::uint64_t next_id = 1;

  template <class Metric>
  family<Metric>& make(std::vector<std::unique_ptr<family<Metric>>>& into, std::string_view name,
                       std::string_view help, std::vector<std::string> label_names, std::vector<double> bounds) {
    if (!valid_metric_name(name)) throw std::invalid_argument("metric name '" + std::string(name) + "' is not valid");
    for (const auto& l : label_names)
      if (!valid_label_name(l) || l == "le")
        throw std::invalid_argument(std::string(name) + ": label name '" + l + "' is not valid");
    std::lock_guard lock(mutex);
    if (!names.emplace(name).second) throw std::invalid_argument("metric " + std::string(name) + " exists already");
    into.push_back(std::unique_ptr<family<Metric>>(
        new family<Metric>(std::string(name), std::string(help), std::move(label_names), std::move(bounds))));
    auto* f = into.back().get();
    family_writers.push_back([f](sample_writer& w) { f->write(w); });
    return *f;
  }

  mutable scrape scratch;

  void write(std::string& out) const {
    std::lock_guard lock(mutex);
    auto& s = scratch;
    s.begin();
    sample_writer w(s);
    for (const auto& fw : family_writers) fw(w);
    for (const auto& [id, c] : collectors) {
      try {
        c(w);
      } catch (...) {
        // A collector that throws loses its samples from this scrape, not the scrape.
      }
    }
    s.write(out);
  }
};

}  // namespace detail

registration& registration::operator=(registration&& o) noexcept {
  if (this != &o) {
    reset();
    state_ = std::move(o.state_);
    id_ = std::exchange(o.id_, 0);
  }
  return *this;
}

void registration::reset() {
  if (id_ == 0) return;
  if (auto s = state_.lock()) {
    std::lock_guard lock(s->mutex);
    s->collectors.erase(id_);
  }
  id_ = 0;
  state_.reset();
}

registry::registry() : state_(std::make_shared<detail::registry_state>()) {}
registry::~registry() = default;

family<counter>& registry::counter_family(std::string_view name, std::string_view help,
                                          std::vector<std::string> label_names) {
  return state_->make(state_->counters, name, help, std::move(label_names), {});
}

family<gauge>& registry::gauge_family(std::string_view name, std::string_view help,
                                      std::vector<std::string> label_names) {
  return state_->make(state_->gauges, name, help, std::move(label_names), {});
}

family<histogram>& registry::histogram_family(std::string_view name, std::string_view help,
                                              std::vector<std::string> label_names, std::vector<double> bounds) {
  if (bounds.empty()) bounds.assign(latency_bounds.begin(), latency_bounds.end());
  if (!valid_bounds(bounds)) throw std::invalid_argument(std::string(name) + ": bounds must be finite and ascending");
  return state_->make(state_->histograms, name, help, std::move(label_names), std::move(bounds));
}

registration registry::add_collector(collector c) {
  std::lock_guard lock(state_->mutex);
  auto id = state_->next_id++;
  state_->collectors.emplace(id, std::move(c));
  return registration(state_, id);
}

void registry::write_prometheus(std::string& out) const { state_->write(out); }

std::function<void(std::string&)> registry::writer() const {
  return [s = state_](std::string& out) { s->write(out); };
}

}  // namespace natsbus::metrics
