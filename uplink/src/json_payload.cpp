// json_payload.cpp — JSON profile encoding with nlohmann::json (see the header).
#include "json_payload.hpp"

#include <cmath>
#include <nlohmann/json.hpp>

namespace vibgate::uplink::json {

std::string record_topic(const std::string& prefix, const std::string& node,
                         const std::string& asset_level, RecordKind kind) {
  std::string t = prefix;
  t += '/';
  t += node;
  t += '/';
  t += asset_level;
  t += '/';
  t += to_string(kind);
  return t;
}

std::string status_topic(const std::string& prefix, const std::string& node) {
  std::string t = prefix;
  t += '/';
  t += node;
  t += "/status";
  return t;
}

std::string encode_record(const UplinkRecord& record, const std::string& node,
                          std::uint64_t session, std::uint64_t seq, bool historical) {
  nlohmann::json metrics = nlohmann::json::object();
  for (const Metric& m : record.metrics) {
    std::visit(
        [&](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, double>) {
            if (std::isfinite(v))
              metrics[m.name] = v;
            else
              metrics[m.name] = nullptr;
          } else {
            metrics[m.name] = v;
          }
        },
        m.value);
  }
  nlohmann::json j = {{"msg_id", record.id},
                      {"session", session},
                      {"seq", seq},
                      {"node", node},
                      {"asset", record.asset},
                      {"kind", to_string(record.kind)},
                      {"lane", to_string(record.lane)},
                      {"ts", record.wall_ms},
                      {"historical", historical},
                      {"metrics", std::move(metrics)}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string encode_status(bool online, std::uint64_t session, std::int64_t now_ms) {
  nlohmann::json j = {{"online", online}, {"session", session}, {"ts", now_ms}};
  return j.dump();
}

}  // namespace vibgate::uplink::json
