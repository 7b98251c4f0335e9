// metrics_http_test.cpp — the Prometheus endpoint: prometheus_text() format details (grouping,
// HELP/TYPE, name sanitizing, label escaping, NaN/Inf, integer formatting) and MetricsHttpServer
// on 127.0.0.1 (ephemeral port, io_context on its own thread) driven by a raw TCP client:
// /metrics, /, 404, 405, 413, HEAD, keep-alive, pipelining, HTTP/1.0, oversized headers, garbage,
// the connection limit, idle timeout, a throwing collector, listen errors and close().
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <future>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "vibgate/daemon/metrics_http.hpp"

namespace vd = vibgate::daemon;
using namespace std::chrono_literals;
using Type = vd::MetricSample::Type;

namespace {

// ---- text format -------------------------------------------------------------------------------

std::string one_value(double v) { return vd::prometheus_text({{"m", "", Type::gauge, {}, v}}); }

TEST(PrometheusText, EmptyInputGivesEmptyText) { EXPECT_EQ(vd::prometheus_text({}), ""); }

TEST(PrometheusText, GroupsFamiliesInOrderOfFirstAppearance) {
  const std::vector<vd::MetricSample> samples = {
      {"vib_rms", "Velocity RMS.", Type::gauge, {{"asset", "pump1"}}, 1.5},
      {"vib_windows_total", "Windows scored.", Type::counter, {}, 10},
      {"vib_rms", "", Type::gauge, {{"asset", "pump2"}}, 2.25},
      {"up", "", Type::gauge, {}, 1},
      {"vib_windows_total", "ignored: not the first help", Type::counter, {}, 11},
  };
  EXPECT_EQ(vd::prometheus_text(samples),
            "# HELP vib_rms Velocity RMS.\n"
            "# TYPE vib_rms gauge\n"
            "vib_rms{asset=\"pump1\"} 1.5\n"
            "vib_rms{asset=\"pump2\"} 2.25\n"
            "# HELP vib_windows_total Windows scored.\n"
            "# TYPE vib_windows_total counter\n"
            "vib_windows_total 10\n"
            "vib_windows_total 11\n"
            "# TYPE up gauge\n"
            "up 1\n");
}

TEST(PrometheusText, HelpIsTheFirstNonEmptyOneAndTypeTheFirstSamples) {
  const std::vector<vd::MetricSample> samples = {
      {"x", "", Type::counter, {{"a", "1"}}, 1},
      {"x", "second", Type::gauge, {{"a", "2"}}, 2},
      {"x", "third", Type::gauge, {{"a", "3"}}, 3},
  };
  EXPECT_EQ(vd::prometheus_text(samples),
            "# HELP x second\n# TYPE x counter\nx{a=\"1\"} 1\nx{a=\"2\"} 2\nx{a=\"3\"} 3\n");
}

TEST(PrometheusText, EscapesLabelValuesAndHelp) {
  const std::vector<vd::MetricSample> samples = {
      {"m",
       "a \\ back\nslash \"quoted\"",
       Type::gauge,
       {{"path", "C:\\dir\\\"x\"\nnext"}, {"plain", "ok {} = ,"}},
       7},
  };
  EXPECT_EQ(vd::prometheus_text(samples),
            "# HELP m a \\\\ back\\nslash \"quoted\"\n"
            "# TYPE m gauge\n"
            "m{path=\"C:\\\\dir\\\\\\\"x\\\"\\nnext\",plain=\"ok {} = ,\"} 7\n");
}

TEST(PrometheusText, SanitizesMetricAndLabelNames) {
  const std::vector<vd::MetricSample> samples = {
      {"vib-gate.rms mm/s", "", Type::gauge, {{"asset-id", "a"}, {"ns:key", "b"}}, 1},
      {"9lives", "", Type::gauge, {{"0x", "c"}, {"", "d"}}, 2},
      {"ok:name_1", "", Type::gauge, {}, 3},
      {"", "", Type::gauge, {}, 4},
      {"caf\xc3\xa9", "", Type::gauge, {}, 5},
  };
  EXPECT_EQ(vd::prometheus_text(samples),
            "# TYPE vib_gate_rms_mm_s gauge\n"
            "vib_gate_rms_mm_s{asset_id=\"a\",ns_key=\"b\"} 1\n"
            "# TYPE _lives gauge\n"
            "_lives{_x=\"c\",_=\"d\"} 2\n"
            "# TYPE ok:name_1 gauge\n"
            "ok:name_1 3\n"
            "# TYPE _ gauge\n"
            "_ 4\n"
            "# TYPE caf__ gauge\n"
            "caf__ 5\n");
}

TEST(PrometheusText, NamesThatSanitizeAlikeFormOneFamily) {
  const std::vector<vd::MetricSample> samples = {
      {"a-b", "first", Type::gauge, {{"k", "1"}}, 1},
      {"a_b", "second", Type::gauge, {{"k", "2"}}, 2},
  };
  EXPECT_EQ(vd::prometheus_text(samples),
            "# HELP a_b first\n# TYPE a_b gauge\na_b{k=\"1\"} 1\na_b{k=\"2\"} 2\n");
}

TEST(PrometheusText, SpecialValues) {
  EXPECT_EQ(one_value(std::numeric_limits<double>::quiet_NaN()), "# TYPE m gauge\nm NaN\n");
  EXPECT_EQ(one_value(-std::numeric_limits<double>::quiet_NaN()), "# TYPE m gauge\nm NaN\n");
  EXPECT_EQ(one_value(std::numeric_limits<double>::infinity()), "# TYPE m gauge\nm +Inf\n");
  EXPECT_EQ(one_value(-std::numeric_limits<double>::infinity()), "# TYPE m gauge\nm -Inf\n");
}

TEST(PrometheusText, IntegersWithoutExponentOthersShortestRoundTrip) {
  const auto v = [](double x) {
    const std::string t = one_value(x);
    const std::string prefix = "# TYPE m gauge\nm ";
    EXPECT_EQ(t.substr(0, prefix.size()), prefix);
    EXPECT_EQ(t.back(), '\n');
    return t.substr(prefix.size(), t.size() - prefix.size() - 1);
  };
  EXPECT_EQ(v(0.0), "0");
  EXPECT_EQ(v(-0.0), "0");
  EXPECT_EQ(v(1.0), "1");
  EXPECT_EQ(v(-42.0), "-42");
  EXPECT_EQ(v(12345678.0), "12345678");
  EXPECT_EQ(v(1e15), "1000000000000000");
  EXPECT_EQ(v(1700000000123.0), "1700000000123");        // a timestamp in ms
  EXPECT_EQ(v(9007199254740993.0), "9007199254740992");  // 2^53 + 1 is not a double
  EXPECT_EQ(v(1e18), "1000000000000000000");
  EXPECT_EQ(v(-9223372036854775808.0), "-9223372036854775808");
  EXPECT_EQ(v(0.1), "0.1");
  EXPECT_EQ(v(2.5), "2.5");
  EXPECT_EQ(v(-0.001), "-0.001");
  EXPECT_EQ(v(1.5e-7), "1.5e-07");
  EXPECT_EQ(v(1e300), "1e+300");
  EXPECT_EQ(v(123456.789), "123456.789");
  // Whatever the form, it reads back to the same double.
  for (double x : {0.1, 1.0 / 3.0, 2.0 / 3.0 * 1e-300, 6.02214076e23, 9223372036854775808.0,
                   -1.7976931348623157e308, 4.9e-324, 12345678.9}) {
    const std::string t = v(x);
    EXPECT_EQ(std::strtod(t.c_str(), nullptr), x) << t;
    EXPECT_EQ(t.find(' '), std::string::npos) << t;
  }
}

// ---- raw TCP client ----------------------------------------------------------------------------

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string header(const std::string& name) const {
    const auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

// A blocking client socket with a receive timeout, so a broken server fails the test instead of
// hanging it.
class Client {
 public:
  explicit Client(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error("socket failed");
    timeval tv{};
    tv.tv_sec = 10;
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connect_errno_ =
        ::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0 ? 0 : errno;
  }
  ~Client() { close(); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  int connect_errno() const { return connect_errno_; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // False if the peer closed or reset the connection.
  bool send(const std::string& data) {
    std::size_t off = 0;
    while (off < data.size()) {
      const ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      off += static_cast<std::size_t>(n);
    }
    return true;
  }

  // Reads one response; nullopt if the connection ended (or timed out) before a whole one.
  std::optional<HttpResponse> read_response(bool head = false) {
    std::size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (!fill()) return std::nullopt;
    }
    HttpResponse r;
    const std::string head_text = buf_.substr(0, end);
    buf_.erase(0, end + 4);
    std::size_t line_end = head_text.find("\r\n");
    const std::string status_line = head_text.substr(0, line_end);
    if (status_line.rfind("HTTP/1.", 0) != 0 || status_line.size() < 12) return std::nullopt;
    r.status = std::atoi(status_line.c_str() + 9);
    while (line_end != std::string::npos) {
      const std::size_t start = line_end + 2;
      line_end = head_text.find("\r\n", start);
      const std::string line = head_text.substr(
          start, line_end == std::string::npos ? std::string::npos : line_end - start);
      const std::size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string name = line.substr(0, colon);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      r.headers[name] = value;
    }
    const std::size_t length = std::stoul(
        r.header("content-length").empty() ? std::string("0") : r.header("content-length"));
    if (!head) {
      while (buf_.size() < length) {
        if (!fill()) return std::nullopt;
      }
      r.body = buf_.substr(0, length);
      buf_.erase(0, length);
    }
    return r;
  }

  // Everything until the server closes; nullopt on the receive timeout. A reset counts as closed.
  std::optional<std::string> read_until_closed() {
    for (;;) {
      char chunk[4096];
      const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n > 0) {
        buf_.append(chunk, static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return std::nullopt;
      std::string all = std::move(buf_);
      buf_.clear();
      return all;
    }
  }

  // True if nothing arrives within `wait` and the connection is still open.
  bool quiet_for(std::chrono::milliseconds wait) {
    timeval tv{};
    tv.tv_usec = static_cast<suseconds_t>(wait.count() * 1000);
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char c;
    const ssize_t n = ::recv(fd_, &c, 1, MSG_PEEK);
    const int err = errno;
    tv.tv_sec = 10;
    tv.tv_usec = 0;
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return n < 0 && (err == EAGAIN || err == EWOULDBLOCK);
  }

 private:
  bool fill() {
    char chunk[4096];
    for (;;) {
      const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      buf_.append(chunk, static_cast<std::size_t>(n));
      return true;
    }
  }

  int fd_ = -1;
  int connect_errno_ = 0;
  std::string buf_;
};

std::string get(const std::string& target, const std::string& method = "GET") {
  std::string r = method;
  r += ' ';
  r += target;
  r += " HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: metrics_http_test\r\n\r\n";
  return r;
}

// ---- server fixture ----------------------------------------------------------------------------

std::vector<vd::MetricSample> sample_metrics(int scrape) {
  return {
      {"vibgate_scrapes_total", "Scrapes so far.", Type::counter, {}, static_cast<double>(scrape)},
      {"vibgate_asset_rms_mm_s", "Velocity RMS.", Type::gauge, {{"asset", "pump \"1\""}}, 2.5},
      {"vibgate_asset_rms_mm_s", "", Type::gauge, {{"asset", "fan"}}, 12345678},
  };
}

class MetricsServer : public ::testing::Test {
 protected:
  void start(vd::MetricsHttpOptions options = {}) {
    server_ = std::make_unique<vd::MetricsHttpServer>(
        io_,
        [this] {
          collect_thread_ = std::this_thread::get_id();
          if (throw_in_collect_) throw std::runtime_error("sensor table locked");
          return sample_metrics(++scrapes_);
        },
        options);
    const std::string err = server_->listen("127.0.0.1", 0);
    ASSERT_EQ(err, "");
    port_ = server_->port();
    ASSERT_NE(port_, 0);
    loop_ = std::thread([this] { io_.run(); });
  }

  void TearDown() override {
    if (loop_.joinable()) {
      on_loop([this] {
        server_.reset();
        return 0;
      });
      work_.reset();
      loop_.join();
    }
  }

  // Runs `f` on the loop thread and returns its result.
  template <typename F>
  auto on_loop(F f) -> decltype(f()) {
    using R = decltype(f());
    auto task = std::make_shared<std::packaged_task<R()>>(std::move(f));
    auto result = task->get_future();
    boost::asio::post(io_, [task] { (*task)(); });
    return result.get();
  }

  vd::MetricsHttpStats stats() {
    return on_loop([this] { return server_->stats(); });
  }
  std::size_t active() {
    return on_loop([this] { return server_->active_connections(); });
  }
  // Waits until the server has `n` open connections (it learns of accepts and closes
  // asynchronously).
  bool wait_active(std::size_t n) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (active() == n) return true;
      std::this_thread::sleep_for(5ms);
    }
    return false;
  }

  void expect_metrics_ok(Client& c) {
    ASSERT_TRUE(c.send(get("/metrics")));
    const auto r = c.read_response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_NE(r->body.find("# TYPE vibgate_scrapes_total counter\n"), std::string::npos);
  }

  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{
      io_.get_executor()};
  std::thread loop_;
  std::unique_ptr<vd::MetricsHttpServer> server_;
  std::uint16_t port_ = 0;
  std::atomic<int> scrapes_{0};
  std::atomic<bool> throw_in_collect_{false};
  std::thread::id collect_thread_;
};

TEST_F(MetricsServer, ServesMetricsOnTheLoopThread) {
  start();
  Client c(port_);
  ASSERT_EQ(c.connect_errno(), 0);
  ASSERT_TRUE(c.send(get("/metrics")));
  const auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(r->body, vd::prometheus_text(sample_metrics(1)));
  EXPECT_EQ(r->header("content-length"), std::to_string(r->body.size()));
  EXPECT_NE(r->body.find("vibgate_asset_rms_mm_s{asset=\"fan\"} 12345678\n"), std::string::npos);
  EXPECT_EQ(collect_thread_, loop_.get_id());
  // A query string is ignored.
  ASSERT_TRUE(c.send(get("/metrics?name[]=up")));
  const auto r2 = c.read_response();
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->status, 200);
  EXPECT_EQ(r2->body, vd::prometheus_text(sample_metrics(2)));
  EXPECT_EQ(stats().served, 2u);
}

TEST_F(MetricsServer, RootPointsToMetrics) {
  start();
  Client c(port_);
  ASSERT_TRUE(c.send(get("/")));
  const auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->body.find("/metrics"), std::string::npos);
  EXPECT_EQ(scrapes_, 0);
}

TEST_F(MetricsServer, UnknownPathIs404AndConnectionStaysOpen) {
  start();
  Client c(port_);
  for (const char* path : {"/metric", "/metrics/", "/favicon.ico", "*"}) {
    ASSERT_TRUE(c.send(get(path)));
    const auto r = c.read_response();
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 404) << path;
  }
  expect_metrics_ok(c);
}

TEST_F(MetricsServer, OtherMethodsAre405) {
  start();
  Client c(port_);
  for (const char* method : {"DELETE", "PUT", "OPTIONS", "POST"}) {
    std::string req = get("/metrics", method);
    if (std::string(method) == "POST" || std::string(method) == "PUT") {
      req.insert(req.size() - 2, "Content-Length: 0\r\n");
    }
    ASSERT_TRUE(c.send(req));
    const auto r = c.read_response();
    ASSERT_TRUE(r) << method;
    EXPECT_EQ(r->status, 405) << method;
    EXPECT_EQ(r->header("allow"), "GET, HEAD");
  }
  expect_metrics_ok(c);
  EXPECT_EQ(scrapes_, 1);
}

TEST_F(MetricsServer, RequestWithBodyIs413AndClosed) {
  start();
  Client c(port_);
  ASSERT_TRUE(c.send("POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"));
  const auto all = c.read_until_closed();
  ASSERT_TRUE(all);
  EXPECT_EQ(all->rfind("HTTP/1.1 413", 0), 0u) << *all;
  Client chunked(port_);
  ASSERT_TRUE(
      chunked.send("GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
                   "chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"));
  const auto all2 = chunked.read_until_closed();
  ASSERT_TRUE(all2);
  EXPECT_EQ(all2->rfind("HTTP/1.1 413", 0), 0u) << *all2;
  EXPECT_EQ(stats().bad_requests, 2u);
  Client ok(port_);
  expect_metrics_ok(ok);
}

TEST_F(MetricsServer, HeadHasHeadersButNoBody) {
  start();
  Client c(port_);
  ASSERT_TRUE(c.send(get("/metrics", "HEAD")));
  const auto r = c.read_response(/*head=*/true);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(r->header("content-length"),
            std::to_string(vd::prometheus_text(sample_metrics(1)).size()));
  // No body bytes followed: the next response on the connection starts cleanly.
  ASSERT_TRUE(c.send(get("/metrics")));
  const auto r2 = c.read_response();
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->status, 200);
  EXPECT_EQ(r2->body, vd::prometheus_text(sample_metrics(2)));
}

TEST_F(MetricsServer, KeepAliveAndPipelining) {
  start();
  Client c(port_);
  ASSERT_TRUE(c.send(get("/metrics")));
  const auto r1 = c.read_response();
  ASSERT_TRUE(r1);
  EXPECT_EQ(r1->status, 200);
  EXPECT_NE(r1->header("connection"), "close");
  ASSERT_TRUE(c.send(get("/metrics")));
  const auto r2 = c.read_response();
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->status, 200);
  EXPECT_EQ(r2->body, vd::prometheus_text(sample_metrics(2)));
  // Two requests in one write.
  ASSERT_TRUE(c.send(get("/metrics") + get("/nope")));
  const auto r3 = c.read_response();
  const auto r4 = c.read_response();
  ASSERT_TRUE(r3 && r4);
  EXPECT_EQ(r3->status, 200);
  EXPECT_EQ(r4->status, 404);
  const auto s = stats();
  EXPECT_EQ(s.connections, 1u);
  EXPECT_EQ(s.served, 4u);
}

TEST_F(MetricsServer, ConnectionCloseAndHttp10AreHonoured) {
  start();
  Client c(port_);
  ASSERT_TRUE(c.send("GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  auto all = c.read_until_closed();
  ASSERT_TRUE(all);
  EXPECT_EQ(all->rfind("HTTP/1.1 200", 0), 0u) << *all;
  Client old(port_);
  ASSERT_TRUE(old.send("GET /metrics HTTP/1.0\r\n\r\n"));
  all = old.read_until_closed();
  ASSERT_TRUE(all);
  EXPECT_EQ(all->rfind("HTTP/1.0 200", 0), 0u) << *all;
  EXPECT_NE(all->find("vibgate_scrapes_total 2\n"), std::string::npos) << *all;
}

TEST_F(MetricsServer, OversizedHeaderClosesOnlyThatConnection) {
  start();
  Client other(port_);
  expect_metrics_ok(other);
  Client big(port_);
  std::string req = "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Padding: ";
  req += std::string(10000, 'a');
  req += "\r\n\r\n";
  big.send(req);  // may fail midway once the server has closed
  const auto all = big.read_until_closed();
  ASSERT_TRUE(all) << "server kept the connection open";
  EXPECT_TRUE(all->empty() || all->rfind("HTTP/1.1 431", 0) == 0 ||
              all->rfind("HTTP/1.1 400", 0) == 0)
      << *all;
  EXPECT_EQ(stats().bad_requests, 1u);
  expect_metrics_ok(other);
  // Just below the limit is fine.
  Client fits(port_);
  std::string ok = "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Padding: ";
  ok += std::string(7000, 'b');
  ok += "\r\n\r\n";
  ASSERT_TRUE(fits.send(ok));
  const auto r = fits.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(MetricsServer, GarbageClientLosesOnlyItsOwnConnection) {
  start();
  Client other(port_);
  expect_metrics_ok(other);
  Client garbage(port_);
  std::string junk("\x00\x01\x02\xff\xfe garbage \r\n\x16\x03\x01\r\n\r\n", 22);
  ASSERT_TRUE(garbage.send(junk));
  const auto all = garbage.read_until_closed();
  ASSERT_TRUE(all);
  EXPECT_TRUE(all->empty() || all->rfind("HTTP/1.1 400", 0) == 0) << *all;
  Client bad_version(port_);
  ASSERT_TRUE(bad_version.send("GET /metrics HTTP/9.9\r\n\r\n"));
  ASSERT_TRUE(bad_version.read_until_closed());
  Client no_crlf(port_);
  ASSERT_TRUE(no_crlf.send("GET /metrics HTTP/1.1\nHost: x\n\n"));
  ASSERT_TRUE(no_crlf.read_until_closed());
  // A client that sends half a request and hangs up.
  {
    Client half(port_);
    ASSERT_TRUE(half.send("GET /metr"));
  }
  expect_metrics_ok(other);
  Client fresh(port_);
  expect_metrics_ok(fresh);
  EXPECT_GE(stats().bad_requests, 2u);
}

TEST_F(MetricsServer, FifthConcurrentConnectionIsRefused) {
  start();
  std::vector<std::unique_ptr<Client>> idle;
  for (int i = 0; i < 4; ++i) {
    idle.push_back(std::make_unique<Client>(port_));
    ASSERT_EQ(idle.back()->connect_errno(), 0);
  }
  ASSERT_TRUE(wait_active(4));
  Client fifth(port_);
  const auto all = fifth.read_until_closed();
  ASSERT_TRUE(all) << "fifth connection not closed";
  EXPECT_EQ(all->rfind("HTTP/1.1 503", 0), 0u) << *all;
  EXPECT_EQ(stats().refused, 1u);
  // The four are still served.
  expect_metrics_ok(*idle[0]);
  expect_metrics_ok(*idle[3]);
  idle.clear();
  ASSERT_TRUE(wait_active(0));
  Client after(port_);
  expect_metrics_ok(after);
  EXPECT_EQ(stats().refused, 1u);
}

TEST_F(MetricsServer, IdleConnectionTimesOut) {
  vd::MetricsHttpOptions options;
  options.io_timeout = 200ms;
  start(options);
  Client idle(port_);
  const auto t0 = std::chrono::steady_clock::now();
  const auto all = idle.read_until_closed();
  ASSERT_TRUE(all);
  EXPECT_TRUE(all->empty()) << *all;
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 150ms);
  // A slow request (one byte at a time past the deadline) is cut off too.
  Client slow(port_);
  bool cut = false;
  for (const char ch : std::string("GET /metrics HTTP/1.1\r\nHost: x\r\n")) {
    if (!slow.send(std::string(1, ch))) {
      cut = true;
      break;
    }
    std::this_thread::sleep_for(20ms);
  }
  if (!cut) {
    const auto rest = slow.read_until_closed();
    ASSERT_TRUE(rest);
    EXPECT_TRUE(rest->empty()) << *rest;
  }
  EXPECT_EQ(stats().timeouts, 2u);
  Client ok(port_);
  expect_metrics_ok(ok);
}

TEST_F(MetricsServer, ThrowingCollectorGives500) {
  start();
  throw_in_collect_ = true;
  Client c(port_);
  ASSERT_TRUE(c.send(get("/metrics")));
  const auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500);
  EXPECT_NE(r->body.find("sensor table locked"), std::string::npos);
  throw_in_collect_ = false;
  expect_metrics_ok(c);
}

TEST_F(MetricsServer, ListenErrors) {
  start();
  boost::asio::io_context other_io;
  vd::MetricsHttpServer second(other_io, [] { return std::vector<vd::MetricSample>{}; });
  const std::string err = second.listen("127.0.0.1", port_);
  std::string expected = "prometheus: cannot listen on 127.0.0.1:";
  expected += std::to_string(port_);
  expected += ": Address already in use";
  EXPECT_EQ(err, expected);
  EXPECT_EQ(second.port(), 0);

  vd::MetricsHttpServer third(other_io, [] { return std::vector<vd::MetricSample>{}; });
  EXPECT_EQ(third.listen("localhost", 9464),
            "prometheus: cannot listen on localhost:9464: invalid IP address");
  vd::MetricsHttpServer fourth(other_io, [] { return std::vector<vd::MetricSample>{}; });
  const std::string v6 = fourth.listen("2001:db8::1", 9464);  // not a local address
  EXPECT_EQ(v6.rfind("prometheus: cannot listen on [2001:db8::1]:9464: ", 0), 0u) << v6;
  // The first server is unaffected.
  Client c(port_);
  expect_metrics_ok(c);
}

TEST_F(MetricsServer, CloseWithClientsConnected) {
  start();
  Client busy(port_);
  expect_metrics_ok(busy);  // accepted and in a keep-alive wait
  Client idle(port_);
  ASSERT_TRUE(wait_active(2));
  on_loop([this] {
    server_->close();
    server_->close();  // idempotent
    return 0;
  });
  const auto a = busy.read_until_closed();
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->empty()) << *a;
  const auto b = idle.read_until_closed();
  ASSERT_TRUE(b);
  EXPECT_EQ(active(), 0u);
  Client late(port_);
  EXPECT_EQ(late.connect_errno(), ECONNREFUSED);
}

}  // namespace
