// The names the server uses for the JetStream enums, both ways, in one place.
#include "jetstream_names.hpp"

namespace natsbus::protocol {

std::string_view to_string(retention_policy p) noexcept {
  switch (p) {
    case retention_policy::limits: return "limits";
    case retention_policy::interest: return "interest";
    case retention_policy::workqueue: return "workqueue";
  }
  return "limits";
}

std::string_view to_string(storage_type s) noexcept {
  switch (s) {
    case storage_type::file: return "file";
    case storage_type::memory: return "memory";
  }
  return "file";
}

std::string_view to_string(discard_policy d) noexcept {
  switch (d) {
    case discard_policy::old: return "old";
    case discard_policy::new_: return "new";
  }
  return "old";
}

std::string_view to_string(deliver_policy p) noexcept {
  switch (p) {
    case deliver_policy::all: return "all";
    case deliver_policy::last: return "last";
    case deliver_policy::new_: return "new";
    case deliver_policy::by_start_sequence: return "by_start_sequence";
    case deliver_policy::by_start_time: return "by_start_time";
    case deliver_policy::last_per_subject: return "last_per_subject";
  }
  return "all";
}

std::string_view to_string(ack_policy p) noexcept {
  switch (p) {
    case ack_policy::none: return "none";
    case ack_policy::all: return "all";
    case ack_policy::explicit_: return "explicit";
  }
  return "explicit";
}

std::string_view to_string(replay_policy p) noexcept {
  switch (p) {
    case replay_policy::instant: return "instant";
    case replay_policy::original: return "original";
  }
  return "instant";
}

bool from_string(std::string_view s, retention_policy& out) noexcept {
  if (s == "limits") out = retention_policy::limits;
  else if (s == "interest") out = retention_policy::interest;
  else if (s == "workqueue") out = retention_policy::workqueue;
  else return false;
  return true;
}

bool from_string(std::string_view s, storage_type& out) noexcept {
  if (s == "file") out = storage_type::file;
  else if (s == "memory") out = storage_type::memory;
  else return false;
  return true;
}

bool from_string(std::string_view s, discard_policy& out) noexcept {
  if (s == "old") out = discard_policy::old;
  else if (s == "new") out = discard_policy::new_;
  else return false;
  return true;
}

bool from_string(std::string_view s, deliver_policy& out) noexcept {
  if (s == "all") out = deliver_policy::all;
  else if (s == "last") out = deliver_policy::last;
  else if (s == "new") out = deliver_policy::new_;
  else if (s == "by_start_sequence") out = deliver_policy::by_start_sequence;
  else if (s == "by_start_time") out = deliver_policy::by_start_time;
  else if (s == "last_per_subject") out = deliver_policy::last_per_subject;
  else return false;
  return true;
}

bool from_string(std::string_view s, ack_policy& out) noexcept {
  if (s == "none") out = ack_policy::none;
  else if (s == "all") out = ack_policy::all;
  else if (s == "explicit") out = ack_policy::explicit_;
  else return false;
  return true;
}

bool from_string(std::string_view s, replay_policy& out) noexcept {
  if (s == "instant") out = replay_policy::instant;
  else if (s == "original") out = replay_policy::original;
  else return false;
  return true;
}

}  // namespace natsbus::protocol
