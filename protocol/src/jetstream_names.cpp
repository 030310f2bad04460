// The names the server uses for the JetStream enums, both ways, from one table per enum.
#include "jetstream_names.hpp"

#include <utility>

namespace natsbus::protocol {

namespace {

template <class E>
using name_table = std::pair<E, std::string_view>[];

// The first entry is also the name given to a value outside the enum.
constexpr name_table<retention_policy> retention_names = {
    {retention_policy::limits, "limits"},
    {retention_policy::interest, "interest"},
    {retention_policy::workqueue, "workqueue"}};
constexpr name_table<storage_type> storage_names = {{storage_type::file, "file"}, {storage_type::memory, "memory"}};
constexpr name_table<discard_policy> discard_names = {{discard_policy::old, "old"}, {discard_policy::new_, "new"}};
constexpr name_table<deliver_policy> deliver_names = {
    {deliver_policy::all, "all"},
    {deliver_policy::last, "last"},
    {deliver_policy::new_, "new"},
    {deliver_policy::by_start_sequence, "by_start_sequence"},
    {deliver_policy::by_start_time, "by_start_time"},
    {deliver_policy::last_per_subject, "last_per_subject"}};
constexpr name_table<ack_policy> ack_names = {
    {ack_policy::explicit_, "explicit"}, {ack_policy::none, "none"}, {ack_policy::all, "all"}};
constexpr name_table<replay_policy> replay_names = {
    {replay_policy::instant, "instant"}, {replay_policy::original, "original"}};

template <class E, std::size_t N>
std::string_view name_of(const std::pair<E, std::string_view> (&table)[N], E value) noexcept {
  for (const auto& [e, name] : table)
    if (e == value) return name;
  return table[0].second;
}

template <class E, std::size_t N>
bool value_of(const std::pair<E, std::string_view> (&table)[N], std::string_view s, E& out) noexcept {
  for (const auto& [e, name] : table) {
    if (name == s) {
      out = e;
      return true;
    }
  }
  return false;
}

}  // namespace

std::string_view to_string(retention_policy p) noexcept { return name_of(retention_names, p); }
std::string_view to_string(storage_type s) noexcept { return name_of(storage_names, s); }
std::string_view to_string(discard_policy d) noexcept { return name_of(discard_names, d); }
std::string_view to_string(deliver_policy p) noexcept { return name_of(deliver_names, p); }
std::string_view to_string(ack_policy p) noexcept { return name_of(ack_names, p); }
std::string_view to_string(replay_policy p) noexcept { return name_of(replay_names, p); }

bool from_string(std::string_view s, retention_policy& out) noexcept { return value_of(retention_names, s, out); }
bool from_string(std::string_view s, storage_type& out) noexcept { return value_of(storage_names, s, out); }
bool from_string(std::string_view s, discard_policy& out) noexcept { return value_of(discard_names, s, out); }
bool from_string(std::string_view s, deliver_policy& out) noexcept { return value_of(deliver_names, s, out); }
bool from_string(std::string_view s, ack_policy& out) noexcept { return value_of(ack_names, s, out); }
bool from_string(std::string_view s, replay_policy& out) noexcept { return value_of(replay_names, s, out); }

}  // namespace natsbus::protocol
