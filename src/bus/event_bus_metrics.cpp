// The event bus's side of metrics: each topic's counters and the list of durable subscriptions, kept where a
// scrape can read them from any thread (see src/metrics/collectors.cpp).
#include "bus/event_bus_impl.hpp"
#include "bus/bus_subscriber.hpp"

namespace natsbus::detail {

void event_bus_impl::number(topic_entry& e, const std::string& topic) {
  e.id = next_id_++;
  topic_by_id_[e.id] = topic;
  e.counters = &counters_for(topic);
  if (counters_by_id_.size() <= e.id) counters_by_id_.resize(e.id + 1, nullptr);
  counters_by_id_[e.id] = e.counters;
}

topic_counters& event_bus_impl::counters_for(std::string_view topic) {
  std::lock_guard lock(scraped_.mutex);
  auto it = scraped_.topics.find(topic);
  if (it == scraped_.topics.end())
    it = scraped_.topics.emplace(std::string(topic), std::make_unique<topic_counters>()).first;
  return *it->second;
}

void event_bus_impl::note_subscriber(const std::shared_ptr<bus_subscriber>& s) {
  std::lock_guard lock(scraped_.mutex);
  std::erase_if(scraped_.subscribers, [](const auto& w) { return w.expired(); });
  scraped_.subscribers.push_back(s);
}

}  // namespace natsbus::detail
