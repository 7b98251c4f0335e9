// vibgate/config/toml_section.hpp — reading one TOML table key by key, with errors that name the
// file, the line and the key ("<file>:<line>: <path>.<key>: <problem>").
//
// Internal to the configuration parsers (ingest, the simulator, later the daemon): it exposes
// toml++ types, so it lives in its own interface target (vibgate_toml_section), never in an
// area's public headers. Every key read is remembered, so reject_unknown() turns typos into
// errors instead of silently using a default. `Error` is the exception type thrown.
#pragma once

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <toml++/toml.h>
#include <type_traits>
#include <utility>

namespace vibgate::config {

// Reads keys of one TOML table, tracking which were used; fail() names file, line and key.
template <typename Error>
class TomlSection {
 public:
  TomlSection(const toml::table& t, std::string path, const std::string& source)
      : t_(t), path_(std::move(path)), source_(source) {}

  [[noreturn]] void fail(std::string_view key, const std::string& problem) const {
    const toml::node* n = key.empty() ? nullptr : t_.get(key);
    const auto line = n ? n->source().begin.line : t_.source().begin.line;
    std::ostringstream o;
    o << source_ << ":" << line << ": " << path_;
    if (!key.empty()) o << (path_.empty() ? "" : ".") << key;
    o << ": " << problem;
    throw Error(o.str());
  }

  bool has(std::string_view key) const { return t_.get(key) != nullptr; }
  bool is_boolean(std::string_view key) const {
    const toml::node* n = t_.get(key);
    return n && n->is_boolean();
  }

  template <typename T>
  std::optional<T> get(std::string_view key) {
    used_.insert(std::string(key));
    const toml::node* n = t_.get(key);
    if (!n) return std::nullopt;
    if constexpr (std::is_same_v<T, std::string>) {
      if (auto v = n->value_exact<std::string>()) return *v;
      fail(key, "must be a string");
    } else if constexpr (std::is_same_v<T, bool>) {
      if (auto v = n->value_exact<bool>()) return *v;
      fail(key, "must be true or false");
    } else if constexpr (std::is_floating_point_v<T>) {
      if (n->is_boolean()) fail(key, "must be a number");
      if (auto v = n->value<double>()) {
        if (!std::isfinite(*v)) fail(key, "must be finite");
        return static_cast<T>(*v);
      }
      fail(key, "must be a number");
    } else {
      if (auto v = n->value_exact<std::int64_t>()) return static_cast<T>(*v);
      fail(key, "must be an integer");
    }
  }

  std::string required_string(std::string_view key) {
    auto v = get<std::string>(key);
    if (!v || v->empty()) fail(key, "is required");
    return *v;
  }

  std::int64_t integer(std::string_view key, std::int64_t def, std::int64_t lo, std::int64_t hi) {
    const std::int64_t v = get<std::int64_t>(key).value_or(def);
    if (v < lo || v > hi)
      fail(key, "must be within " + std::to_string(lo) + "…" + std::to_string(hi) + " (got " +
                    std::to_string(v) + ")");
    return v;
  }

  std::int64_t required_integer(std::string_view key, std::int64_t lo, std::int64_t hi) {
    if (!has(key)) fail(key, "is required");
    return integer(key, 0, lo, hi);
  }

  double number(std::string_view key, double def, double lo, double hi) {
    const double v = get<double>(key).value_or(def);
    if (v < lo || v > hi) {
      std::ostringstream o;
      o << "must be within " << lo << "…" << hi << " (got " << v << ")";
      fail(key, o.str());
    }
    return v;
  }

  const toml::array* array(std::string_view key) {
    used_.insert(std::string(key));
    const toml::node* n = t_.get(key);
    if (!n) return nullptr;
    if (auto* a = n->as_array()) return a;
    fail(key, "must be an array");
  }

  const toml::table* table(std::string_view key) {
    used_.insert(std::string(key));
    const toml::node* n = t_.get(key);
    if (!n) return nullptr;
    if (auto* t = n->as_table()) return t;
    fail(key, "must be a table");
  }

  // Keys that only make sense in another variant (e.g. `value` on a sine tag).
  void forbid(std::string_view key, const std::string& why) {
    if (has(key)) fail(key, why);
    used_.insert(std::string(key));
  }

  void reject_unknown() const {
    for (const auto& [k, v] : t_)
      if (!used_.count(std::string(k.str()))) fail(k.str(), "unknown key");
  }

  const std::string& source() const { return source_; }

 private:
  const toml::table& t_;
  std::string path_;
  const std::string& source_;
  std::set<std::string> used_;
};

template <typename Error, typename E>
E choose(TomlSection<Error>& s, std::string_view key, E def,
         std::initializer_list<std::pair<const char*, E>> names) {
  auto v = s.template get<std::string>(key);
  if (!v) return def;
  std::string all;
  for (const auto& [n, e] : names) {
    if (*v == n) return e;
    all += (all.empty() ? "" : ", ") + std::string(n);
  }
  s.fail(key, "'" + *v + "' is not one of " + all);
}

// Parses a whole document; a syntax error becomes Error("<source>:<line>: <description>").
template <typename Error>
toml::table parse_document(std::string_view text, const std::string& source) {
  try {
    return toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    std::string msg = source;
    msg += ':';
    msg += std::to_string(e.source().begin.line);
    msg += ": ";
    msg += e.description();
    throw Error(msg);
  }
}

// `file` under `dir` unless it is absolute or empty (relative paths of the configuration are
// under the state directory).
inline std::string join_path(const std::string& dir, const std::string& file) {
  if (file.empty() || file.front() == '/' || dir.empty()) return file;
  std::string p = dir;
  if (p.back() != '/') p += '/';
  p += file;
  return p;
}

template <typename Error>
const toml::table& table_at(const toml::array& a, std::size_t i, const std::string& where,
                            const std::string& source) {
  if (auto* t = a.get(i)->as_table()) return *t;
  throw Error(source + ":" + std::to_string(a.get(i)->source().begin.line) + ": " + where +
                       ": must be a table");
}

}  // namespace vibgate::config
