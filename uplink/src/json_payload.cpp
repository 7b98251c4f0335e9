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

std::string bundle_command_topic(const std::string& prefix, const std::string& node) {
  std::string t = prefix;
  t += '/';
  t += node;
  t += "/cmd/model_bundle";
  return t;
}

std::optional<std::string> base64_decode(std::string_view text) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() * 3 / 4);
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    const int v = val(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xffu);
    }
  }
  return out;
}

BundleChunk decode_bundle_command(const std::string& payload) {
  BundleChunk c;
  auto j = nlohmann::json::parse(payload, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    c.error = "model_bundle command is not a JSON object";
    return c;
  }
  auto str = [&](const char* key, std::string* out) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_string()) {
      if (c.error.empty())
        c.error = std::string("model_bundle command: \"") + key + "\" missing or not a string";
      return;
    }
    *out = it->get<std::string>();
  };
  auto num = [&](const char* key, std::uint64_t* out) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_number_unsigned()) {
      if (c.error.empty())
        c.error = std::string("model_bundle command: \"") + key +
                  "\" missing or not a non-negative integer";
      return;
    }
    *out = it->get<std::uint64_t>();
  };
  str("bundle_id", &c.bundle_id);
  num("offset", &c.offset);
  num("total", &c.total);
  str("sha256", &c.sha256_hex);
  std::string b64;
  str("data", &b64);
  if (c.error.empty()) {
    auto data = base64_decode(b64);
    if (!data)
      c.error = "model_bundle command: \"data\" is not base64";
    else
      c.data = std::move(*data);
  }
  return c;
}

}  // namespace vibgate::uplink::json
