// vibgate/daemon/metrics_http.hpp — the daemon's Prometheus endpoint: prometheus_text() renders
// metric samples in the Prometheus text exposition format 0.0.4, and MetricsHttpServer serves
// them over plain HTTP/1.1 (Boost.Beast) at GET /metrics (docs/observability.md).
//
// Threads: the server lives on the daemon's Asio io_context. Construct, listen(), close(),
// stats() and destroy on the loop thread (or before the loop runs). The collect callback is
// called on the loop thread once per GET/HEAD /metrics request; it must be quick (it blocks the
// loop) and should not throw (an exception becomes a 500 reply, the server keeps running).
//
// Robustness: at most max_connections connections at once (a further one gets a one-shot 503 and
// is closed at once); request headers are limited to header_limit bytes (431 and close); any
// request body is refused (413 and close); malformed requests get 400 and close; every read of a
// request and every write of a reply must finish within io_timeout or the connection is closed
// (also an idle keep-alive connection). None of this affects the other clients.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>

namespace vibgate::daemon {

// One sample of a counter or gauge. Samples with the same name form one metric family; its
// `# HELP` is the first non-empty help of the family, its `# TYPE` the first sample's type.
struct MetricSample {
  enum class Type { counter, gauge };
  std::string name;  // sanitized on output to [a-zA-Z_:][a-zA-Z0-9_:]* (invalid chars -> '_')
  std::string help;  // one line; backslash and newline are escaped on output
  Type type = Type::gauge;
  std::vector<std::pair<std::string, std::string>> labels;  // name -> value, output in this order
  double value = 0.0;
};

// Renders `samples` in the Prometheus text format 0.0.4:
//   * one `# HELP` (only if some sample of the family has a help text) and one `# TYPE` line per
//     metric family, then all its samples; families ordered by first appearance in `samples`,
//     samples within a family in input order (also when not adjacent in the input);
//   * metric names sanitized to [a-zA-Z_:][a-zA-Z0-9_:]*, label names to [a-zA-Z_][a-zA-Z0-9_]*
//     (each invalid character, also a leading digit, becomes '_'; an empty name becomes "_");
//   * label values escaped: backslash -> \\, double quote -> \", newline -> \n;
//   * values: NaN, +Inf, -Inf; integral values below 2^63 in magnitude without exponent or
//     fraction (12345678, not 1.23e+07; -0 as 0); others in the shortest form that reads back
//     to the same double (0.1, 1.5e-07, 1e+300).
// Every line ends with '\n'; an empty input gives "". Any thread; throws only std::bad_alloc.
std::string prometheus_text(const std::vector<MetricSample>& samples);

struct MetricsHttpOptions {
  std::size_t max_connections = 4;              // concurrent connections; more get 503 + close
  std::uint32_t header_limit = 8192;            // bytes of request line + headers
  std::chrono::milliseconds io_timeout{5'000};  // per request read and per reply write
};

struct MetricsHttpStats {
  std::uint64_t connections = 0;   // accepted and served
  std::uint64_t served = 0;        // well-formed requests answered (any status: 200/404/405/500)
  std::uint64_t refused = 0;       // connections closed at once: max_connections reached
  std::uint64_t bad_requests = 0;  // malformed, header too large or with a body: 400/431/413
  std::uint64_t timeouts = 0;      // connections closed because a read or write took too long
};

class MetricsHttpServer {
 public:
  // `collect` is called on the loop thread for each scrape; what it captures must outlive the
  // server's coroutines (call close() and let the loop run, or destroy the io_context first).
  // `io` must outlive the server.
  MetricsHttpServer(boost::asio::io_context& io, std::function<std::vector<MetricSample>()> collect,
                    MetricsHttpOptions options = {});
  ~MetricsHttpServer();  // close()s
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  // Binds a TCP listener to `address` (an IPv4 or IPv6 literal such as "127.0.0.1", "0.0.0.0",
  // "::1"; no host names) and `port` (0 = an ephemeral port, see port()) and starts accepting.
  // Returns "" on success, else one line, e.g.
  //   "prometheus: cannot listen on 127.0.0.1:9464: Address already in use"
  //   "prometheus: cannot listen on localhost:9464: invalid IP address"
  // Call once, on the loop thread or before the loop runs.
  [[nodiscard]] std::string listen(const std::string& address, std::uint16_t port);

  // The bound port after a successful listen() (the real one when 0 was asked for), else 0.
  std::uint16_t port() const;

  // Stops accepting and closes every client connection. Idempotent; loop thread. Coroutines
  // finish on the next turns of the loop.
  void close();

  // Loop thread.
  std::size_t active_connections() const;
  MetricsHttpStats stats() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace vibgate::daemon
