// metrics_http.cpp — the Prometheus endpoint (see the header and docs/observability.md): the text
// format 0.0.4 renderer and a small HTTP/1.1 server on Boost.Beast, one accept coroutine and one
// coroutine per connection on the daemon's io_context. Each request read and each reply write
// runs under the beast::tcp_stream deadline, which closes the socket when it expires; Boost 1.74
// has no as_tuple, so errors come back through redirect_error and nothing here throws into the
// loop.
#include "vibgate/daemon/metrics_http.hpp"

#include <charconv>
#include <cmath>
#include <exception>
#include <set>
#include <string_view>
#include <unordered_map>
#include <utility>  // before Boost: 1.74 awaitable.hpp uses std::exchange unincluded

#include <spdlog/spdlog.h>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

namespace vibgate::daemon {
namespace {

// ---- text format -----------------------------------------------------------------------------

bool is_ascii_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_ascii_digit(char c) { return c >= '0' && c <= '9'; }

// Metric names: [a-zA-Z_:][a-zA-Z0-9_:]*; label names: the same without ':'.
std::string sanitize_name(std::string_view name, bool allow_colon) {
  if (name.empty()) return "_";
  std::string out(name);
  for (std::size_t i = 0; i < out.size(); ++i) {
    const char c = out[i];
    const bool ok =
        is_ascii_letter(c) || c == '_' || (allow_colon && c == ':') || (i > 0 && is_ascii_digit(c));
    if (!ok) out[i] = '_';
  }
  return out;
}

// HELP text: backslash and newline escaped.
void append_help(std::string& out, std::string_view help) {
  for (const char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

// Label values: backslash, double quote and newline escaped.
void append_label_value(std::string& out, std::string_view value) {
  for (const char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

void append_value(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
    return;
  }
  if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
    return;
  }
  if (v == 0.0) {  // also -0
    out += '0';
    return;
  }
  char buf[64];
  std::to_chars_result r{};
  constexpr double kTwoTo63 = 9223372036854775808.0;
  if (std::trunc(v) == v && std::fabs(v) < kTwoTo63) {
    r = std::to_chars(buf, buf + sizeof buf, static_cast<long long>(v));
  } else {
    r = std::to_chars(buf, buf + sizeof buf, v);  // shortest form that round-trips
  }
  out.append(buf, r.ptr);
}

const char* type_name(MetricSample::Type t) {
  return t == MetricSample::Type::counter ? "counter" : "gauge";
}

}  // namespace

std::string prometheus_text(const std::vector<MetricSample>& samples) {
  struct Family {
    std::string name;  // sanitized
    std::vector<const MetricSample*> samples;
  };
  std::vector<Family> families;
  std::unordered_map<std::string, std::size_t> index;
  for (const MetricSample& s : samples) {
    std::string name = sanitize_name(s.name, true);
    auto [it, inserted] = index.try_emplace(name, families.size());
    if (inserted) families.push_back(Family{std::move(name), {}});
    families[it->second].samples.push_back(&s);
  }

  std::string out;
  for (const Family& f : families) {
    for (const MetricSample* s : f.samples) {
      if (s->help.empty()) continue;
      out += "# HELP ";
      out += f.name;
      out += ' ';
      append_help(out, s->help);
      out += '\n';
      break;
    }
    out += "# TYPE ";
    out += f.name;
    out += ' ';
    out += type_name(f.samples.front()->type);
    out += '\n';
    for (const MetricSample* s : f.samples) {
      out += f.name;
      if (!s->labels.empty()) {
        out += '{';
        bool first = true;
        for (const auto& [label, value] : s->labels) {
          if (!first) out += ',';
          first = false;
          out += sanitize_name(label, false);
          out += "=\"";
          append_label_value(out, value);
          out += '"';
        }
        out += '}';
      }
      out += ' ';
      append_value(out, s->value);
      out += '\n';
    }
  }
  return out;
}

// ---- HTTP server
// ---------------------------------------------------------------------------------

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Tcp = asio::ip::tcp;
using boost::system::error_code;
using Request = http::request<http::empty_body>;
using Response = http::response<http::string_body>;

constexpr int kBacklog = 16;
constexpr const char* kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";
constexpr const char* kTextContentType = "text/plain; charset=utf-8";

// "127.0.0.1:9464", "[::1]:9464".
std::string host_port(const std::string& address, std::uint16_t port) {
  std::string s;
  if (address.find(':') != std::string::npos) {
    s += '[';
    s += address;
    s += ']';
  } else {
    s += address;
  }
  s += ':';
  s += std::to_string(port);
  return s;
}

std::string listen_error(const std::string& address, std::uint16_t port,
                         const std::string& reason) {
  std::string s = "prometheus: cannot listen on ";
  s += host_port(address, port);
  s += ": ";
  s += reason;
  return s;
}

Response text_response(http::status status, unsigned version, bool keep_alive, std::string body,
                       const char* content_type = kTextContentType) {
  Response res{status, version};
  res.set(http::field::server, "vibgated");
  res.set(http::field::content_type, content_type);
  res.keep_alive(keep_alive);
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

// Parse failures answered with a status before closing; 0 = just close (I/O error, EOF
// mid-request, ...).
unsigned bad_request_status(const error_code& ec) {
  if (ec == http::error::header_limit || ec == http::error::buffer_overflow) return 431;
  if (ec == http::error::body_limit || ec == http::error::unexpected_body) return 413;
  if (ec == http::error::end_of_stream || ec == http::error::partial_message) return 0;
  if (ec.category() == http::make_error_code(http::error::bad_method).category()) return 400;
  return 0;
}

}  // namespace

struct MetricsHttpServer::State {
  struct Conn {
    Conn(Tcp::socket s, std::size_t buffer_limit) : stream(std::move(s)), buffer(buffer_limit) {}
    beast::tcp_stream stream;
    beast::flat_buffer buffer;
    std::string peer;  // "ip:port" for log lines
  };

  State(asio::io_context& io_in, std::function<std::vector<MetricSample>()> collect_in,
        MetricsHttpOptions options_in)
      : io(io_in), collect(std::move(collect_in)), options(options_in), acceptor(io_in) {}

  asio::io_context& io;
  std::function<std::vector<MetricSample>()> collect;
  MetricsHttpOptions options;
  Tcp::acceptor acceptor;
  std::string where;  // "127.0.0.1:9464"
  std::uint16_t port = 0;
  bool listened = false;
  bool closed = false;
  std::set<std::shared_ptr<Conn>> conns;
  MetricsHttpStats stats;

  // The reply to a well-formed request; never throws but for std::bad_alloc.
  Response respond(const Request& req);

  static asio::awaitable<void> accept_loop(std::shared_ptr<State> s);
  static asio::awaitable<void> serve(std::shared_ptr<State> s, std::shared_ptr<Conn> c);
};

Response MetricsHttpServer::State::respond(const Request& req) {
  const unsigned version = req.version();
  const bool keep_alive = req.keep_alive();
  std::string_view target(req.target().data(), req.target().size());
  if (const auto q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);
  const bool get = req.method() == http::verb::get;
  const bool head = req.method() == http::verb::head;

  Response res;
  if (target != "/metrics" && target != "/") {
    res = text_response(http::status::not_found, version, keep_alive,
                        "not found: the metrics are at /metrics\n");
  } else if (!get && !head) {
    res = text_response(http::status::method_not_allowed, version, keep_alive,
                        "method not allowed: use GET or HEAD\n");
    res.set(http::field::allow, "GET, HEAD");
  } else if (target == "/") {
    res = text_response(http::status::ok, version, keep_alive,
                        "vibgated Prometheus exporter: the metrics are at /metrics\n");
  } else {
    std::string body;
    std::string failure;
    try {
      body = prometheus_text(collect ? collect() : std::vector<MetricSample>{});
    } catch (const std::exception& e) {
      failure = e.what();
    } catch (...) {
      failure = "unknown exception";
    }
    if (failure.empty()) {
      res = text_response(http::status::ok, version, keep_alive, std::move(body),
                          kMetricsContentType);
    } else {
      spdlog::warn("prometheus {}: collecting the metrics failed: {}", where, failure);
      std::string msg = "collecting the metrics failed: ";
      msg += failure;
      msg += '\n';
      res = text_response(http::status::internal_server_error, version, keep_alive, std::move(msg));
    }
  }
  res.set(http::field::cache_control, "no-store");
  if (head) res.body().clear();  // Content-Length stays that of the GET reply
  return res;
}

asio::awaitable<void> MetricsHttpServer::State::accept_loop(std::shared_ptr<State> s) {
  for (;;) {
    error_code ec;
    Tcp::socket sock(s->io);
    co_await s->acceptor.async_accept(sock, asio::redirect_error(asio::use_awaitable, ec));
    if (s->closed || ec == asio::error::operation_aborted) co_return;
    if (ec) {
      // EMFILE and friends: log and back off instead of spinning.
      spdlog::warn("prometheus {}: accept: {}", s->where, ec.message());
      asio::steady_timer pause(s->io, std::chrono::milliseconds(100));
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (s->closed) co_return;
      continue;
    }
    std::string peer = "unknown peer";
    if (const auto ep = sock.remote_endpoint(ec); !ec) {
      peer = host_port(ep.address().to_string(), ep.port());
    }
    if (s->conns.size() >= s->options.max_connections) {
      ++s->stats.refused;
      spdlog::debug("prometheus {}: refused {}: {} connections already open", s->where, peer,
                    s->conns.size());
      static constexpr std::string_view kBusy =
          "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
          "Content-Length: 28\r\nConnection: close\r\n\r\ntoo many connections, retry\n";
      static_assert(kBusy.size() - kBusy.find("\r\n\r\n") - 4 == 28, "Content-Length");
      // A fresh socket's send buffer is empty: a non-blocking write of a few bytes never waits.
      sock.non_blocking(true, ec);
      asio::write(sock, asio::buffer(kBusy.data(), kBusy.size()), ec);
      sock.shutdown(Tcp::socket::shutdown_both, ec);
      sock.close(ec);
      continue;
    }
    // Each reply goes out in one write; without Nagle pipelined replies are not held back.
    sock.set_option(Tcp::no_delay(true), ec);
    // Header limit plus room for a pipelined request's start: the parser reports header_limit
    // before the buffer can overflow.
    auto c = std::make_shared<Conn>(std::move(sock), s->options.header_limit + 4096);
    c->peer = std::move(peer);
    s->conns.insert(c);
    ++s->stats.connections;
    asio::co_spawn(s->io, serve(s, c), asio::detached);
  }
}

asio::awaitable<void> MetricsHttpServer::State::serve(std::shared_ptr<State> s,
                                                      std::shared_ptr<Conn> c) {
  std::string drop;  // why the connection ended abnormally, for one debug line
  try {
    for (;;) {
      error_code ec;
      http::request_parser<http::empty_body> parser;
      parser.header_limit(s->options.header_limit);
      parser.body_limit(0);
      c->stream.expires_after(s->options.io_timeout);
      co_await http::async_read(c->stream, c->buffer, parser,
                                asio::redirect_error(asio::use_awaitable, ec));
      if (s->closed) break;
      if (ec == beast::error::timeout) {
        ++s->stats.timeouts;
        drop = "no complete request within the timeout";
        break;
      }
      if (ec) {
        const unsigned status = bad_request_status(ec);
        if (status == 0) {
          if (ec != http::error::end_of_stream) {
            drop = "read: ";
            drop += ec.message();
          }
          break;
        }
        ++s->stats.bad_requests;
        drop = "bad request: ";
        drop += ec.message();
        std::string body = ec.message();
        body += '\n';
        Response res = text_response(static_cast<http::status>(status), 11, false, std::move(body));
        c->stream.expires_after(s->options.io_timeout);
        co_await http::async_write(c->stream, res, asio::redirect_error(asio::use_awaitable, ec));
        break;
      }
      Response res = s->respond(parser.get());
      ++s->stats.served;
      const bool keep_alive = res.keep_alive();
      c->stream.expires_after(s->options.io_timeout);
      co_await http::async_write(c->stream, res, asio::redirect_error(asio::use_awaitable, ec));
      if (s->closed) break;
      if (ec == beast::error::timeout) {
        ++s->stats.timeouts;
        drop = "did not read its reply within the timeout";
        break;
      }
      if (ec) {
        drop = "write: ";
        drop += ec.message();
        break;
      }
      if (!keep_alive) break;
    }
  } catch (const std::exception& e) {
    drop = "internal error: ";
    drop += e.what();
  }
  if (!drop.empty() && !s->closed) {
    spdlog::debug("prometheus {}: closed connection from {}: {}", s->where, c->peer, drop);
  }
  error_code ignored;
  c->stream.socket().shutdown(Tcp::socket::shutdown_send, ignored);
  c->stream.close();
  s->conns.erase(c);
}

MetricsHttpServer::MetricsHttpServer(asio::io_context& io,
                                     std::function<std::vector<MetricSample>()> collect,
                                     MetricsHttpOptions options)
    : state_(std::make_shared<State>(io, std::move(collect), options)) {}

MetricsHttpServer::~MetricsHttpServer() { close(); }

std::string MetricsHttpServer::listen(const std::string& address, std::uint16_t port) {
  State& s = *state_;
  if (s.listened || s.closed) return listen_error(address, port, "listen() may be called once");
  if (s.options.max_connections == 0) {
    return listen_error(address, port, "max_connections must be >= 1");
  }
  error_code ec;
  const asio::ip::address ip = asio::ip::make_address(address, ec);
  if (ec) return listen_error(address, port, "invalid IP address");
  const Tcp::endpoint endpoint(ip, port);
  const auto fail = [&](const error_code& e) {
    error_code ignored;
    s.acceptor.close(ignored);
    return listen_error(address, port, e.message());
  };
  s.acceptor.open(endpoint.protocol(), ec);
  if (ec) return fail(ec);
  // Lets a restarted daemon bind while old connections linger in TIME_WAIT; on Linux it does
  // not let two listeners share the port.
  s.acceptor.set_option(Tcp::acceptor::reuse_address(true), ec);
  if (ec) return fail(ec);
  s.acceptor.bind(endpoint, ec);
  if (ec) return fail(ec);
  s.acceptor.listen(kBacklog, ec);
  if (ec) return fail(ec);
  const Tcp::endpoint bound = s.acceptor.local_endpoint(ec);
  if (ec) return fail(ec);
  s.port = bound.port();
  s.where = host_port(address, s.port);
  s.listened = true;
  asio::co_spawn(s.io, State::accept_loop(state_), asio::detached);
  spdlog::info("prometheus: serving metrics at http://{}/metrics", s.where);
  return {};
}

std::uint16_t MetricsHttpServer::port() const { return state_->listened ? state_->port : 0; }

void MetricsHttpServer::close() {
  State& s = *state_;
  if (s.closed) return;
  s.closed = true;
  error_code ignored;
  s.acceptor.close(ignored);
  for (const auto& c : s.conns) {
    c->stream.socket().shutdown(Tcp::socket::shutdown_both, ignored);
    c->stream.close();
  }
  s.conns.clear();
}

std::size_t MetricsHttpServer::active_connections() const { return state_->conns.size(); }

MetricsHttpStats MetricsHttpServer::stats() const { return state_->stats; }

}  // namespace vibgate::daemon
