// sd_notify_test.cpp — SystemdNotifier against real AF_UNIX datagram sockets standing in for
// systemd's notify socket (a file in a temp dir under the build tree, and an abstract one):
// READY/STATUS/WATCHDOG/STOPPING datagrams, newline stripping, disabled without NOTIFY_SOCKET,
// error strings for missing/stale/unsupported sockets, never blocking on a full receiver, and
// WATCHDOG_USEC / WATCHDOG_PID parsing.
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "vibgate/daemon/sd_notify.hpp"

namespace vd = vibgate::daemon;
using namespace std::chrono_literals;

namespace {

// Concatenation with += (GCC 12 warns falsely about -Wrestrict for "literal" + std::string).
std::string cat(std::initializer_list<std::string_view> parts) {
  std::string s;
  for (const std::string_view p : parts) s += p;
  return s;
}

std::string make_temp_dir() {
  std::string tmpl = VIBGATE_SD_NOTIFY_TEST_DIR;
  tmpl += "/sdnXXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  return tmpl;
}

// A datagram socket playing systemd: bound to a path, or to an abstract name when `abstract`.
class Receiver {
 public:
  Receiver(const std::string& name, bool abstract, int rcvbuf = 0) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error("socket failed");
    if (rcvbuf > 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    timeval tv{};
    tv.tv_sec = 5;
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    socklen_t len = 0;
    if (abstract) {
      std::memcpy(addr.sun_path + 1, name.data(), name.size());
      len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
    } else {
      std::memcpy(addr.sun_path, name.data(), name.size());
      len = sizeof addr;
    }
    if (::bind(fd_, reinterpret_cast<const sockaddr*>(&addr), len) != 0) {
      std::string m = "bind failed: ";
      m += std::strerror(errno);
      throw std::runtime_error(m);
    }
  }
  ~Receiver() { close(); }
  Receiver(const Receiver&) = delete;
  Receiver& operator=(const Receiver&) = delete;

  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // The next datagram, or nullopt after 5 s.
  std::optional<std::string> receive() {
    char buf[4096];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0) return std::nullopt;
    return std::string(buf, static_cast<std::size_t>(n));
  }

  // True if no datagram is waiting.
  bool empty() {
    char c;
    return ::recv(fd_, &c, 1, MSG_DONTWAIT | MSG_PEEK) < 0 && errno == EAGAIN;
  }

 private:
  int fd_ = -1;
};

class SdNotify : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"}) {
      if (const char* v = std::getenv(name)) saved_.emplace_back(name, v);
      ::unsetenv(name);
    }
    dir_ = make_temp_dir();
  }
  void TearDown() override {
    for (const char* name : {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"}) {
      ::unsetenv(name);
    }
    for (const auto& [name, value] : saved_) ::setenv(name.c_str(), value.c_str(), 1);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  static void set(const char* name, const std::string& value) {
    ASSERT_EQ(::setenv(name, value.c_str(), 1), 0);
  }

  std::string dir_;
  std::vector<std::pair<std::string, std::string>> saved_;
};

TEST_F(SdNotify, DisabledWithoutNotifySocket) {
  vd::SystemdNotifier unset;
  EXPECT_FALSE(unset.enabled());
  EXPECT_EQ(unset.socket_address(), "");
  EXPECT_EQ(unset.notify("READY=1"), "");
  EXPECT_EQ(unset.ready("up"), "");
  EXPECT_EQ(unset.status("x"), "");
  EXPECT_EQ(unset.watchdog(), "");
  EXPECT_EQ(unset.stopping(), "");
  set("NOTIFY_SOCKET", "");
  vd::SystemdNotifier empty;
  EXPECT_FALSE(empty.enabled());
  EXPECT_EQ(empty.ready(), "");
}

TEST_F(SdNotify, SendsDatagramsToAPathSocket) {
  const std::string path = cat({dir_, "/notify.sock"});
  Receiver systemd(path, false);
  set("NOTIFY_SOCKET", path);
  const vd::SystemdNotifier n;
  ASSERT_TRUE(n.enabled());
  EXPECT_EQ(n.socket_address(), path);

  EXPECT_EQ(n.ready("store open\nloop running"), "");
  EXPECT_EQ(systemd.receive(), "READY=1\nSTATUS=store open loop running");
  EXPECT_EQ(n.ready(), "");
  EXPECT_EQ(systemd.receive(), "READY=1");
  EXPECT_EQ(n.status("3 devices\r\nWATCHDOG=1"), "");  // cannot inject an assignment
  EXPECT_EQ(systemd.receive(), "STATUS=3 devices  WATCHDOG=1");
  EXPECT_EQ(n.watchdog(), "");
  EXPECT_EQ(systemd.receive(), "WATCHDOG=1");
  EXPECT_EQ(n.stopping(), "");
  EXPECT_EQ(systemd.receive(), "STOPPING=1");
  EXPECT_EQ(n.notify("RELOADING=1\nSTATUS=reloading"), "");  // raw: sent as is
  EXPECT_EQ(systemd.receive(), "RELOADING=1\nSTATUS=reloading");
  EXPECT_TRUE(systemd.empty());
}

TEST_F(SdNotify, SendsToAnAbstractSocket) {
  std::string name = "vibgate-sd-notify-test-";
  name += std::to_string(::getpid());
  name += '-';
  name += std::filesystem::path(dir_).filename().string();
  Receiver systemd(name, true);
  set("NOTIFY_SOCKET", cat({"@", name}));
  const vd::SystemdNotifier n;
  ASSERT_TRUE(n.enabled());
  EXPECT_EQ(n.ready("abstract"), "");
  EXPECT_EQ(systemd.receive(), "READY=1\nSTATUS=abstract");
  EXPECT_EQ(n.watchdog(), "");
  EXPECT_EQ(systemd.receive(), "WATCHDOG=1");
  // A prefix of the name is another socket: nothing there.
  set("NOTIFY_SOCKET", cat({"@", name.substr(0, name.size() - 1)}));
  const vd::SystemdNotifier wrong;
  EXPECT_NE(wrong.watchdog(), "");
  EXPECT_TRUE(systemd.empty());
}

TEST_F(SdNotify, ErrorsAreStringsNotCrashes) {
  const std::string missing = cat({dir_, "/missing.sock"});
  set("NOTIFY_SOCKET", missing);
  const vd::SystemdNotifier n;
  EXPECT_TRUE(n.enabled());
  std::string expected = "sd_notify: NOTIFY_SOCKET=";
  expected += missing;
  expected += ": sendto: No such file or directory";
  EXPECT_EQ(n.ready("x"), expected);

  // A stale socket file: nobody bound any more.
  const std::string stale = cat({dir_, "/stale.sock"});
  { Receiver gone(stale, false); }
  ASSERT_TRUE(std::filesystem::exists(stale));
  set("NOTIFY_SOCKET", stale);
  const std::string refused = vd::SystemdNotifier().watchdog();
  EXPECT_EQ(refused.rfind(cat({"sd_notify: NOTIFY_SOCKET=", stale, ": sendto: "}), 0), 0u)
      << refused;
  EXPECT_NE(refused.find("Connection refused"), std::string::npos) << refused;

  set("NOTIFY_SOCKET", "relative/notify.sock");
  const std::string relative = vd::SystemdNotifier().ready();
  EXPECT_EQ(relative.rfind("sd_notify: NOTIFY_SOCKET=relative/notify.sock: unsupported", 0), 0u)
      << relative;

  set("NOTIFY_SOCKET", "vsock:2:1234");
  EXPECT_NE(vd::SystemdNotifier().ready(), "");

  set("NOTIFY_SOCKET", cat({"/", std::string(200, 'x')}));
  const std::string too_long = vd::SystemdNotifier().ready();
  EXPECT_NE(too_long.find("longer than 107 bytes"), std::string::npos) << too_long;
  set("NOTIFY_SOCKET", cat({"@", std::string(200, 'x')}));
  EXPECT_NE(vd::SystemdNotifier().ready().find("longer than 107 bytes"), std::string::npos);

  // A socket that is not a datagram socket.
  const std::string stream_path = cat({dir_, "/stream.sock"});
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, stream_path.c_str(), stream_path.size());
  ASSERT_EQ(::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  set("NOTIFY_SOCKET", stream_path);
  EXPECT_NE(vd::SystemdNotifier().ready(), "");
  ::close(fd);
}

TEST_F(SdNotify, NeverBlocksOnAFullReceiver) {
  const std::string path = cat({dir_, "/full.sock"});
  Receiver systemd(path, false, 1024);  // never read below
  set("NOTIFY_SOCKET", path);
  const vd::SystemdNotifier n;
  const auto t0 = std::chrono::steady_clock::now();
  std::string err;
  for (int i = 0; i < 100000 && err.empty(); ++i) err = n.status("filling the queue");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  EXPECT_NE(err.find("Resource temporarily unavailable"), std::string::npos) << err;
  EXPECT_EQ(systemd.receive(), "STATUS=filling the queue");
}

TEST_F(SdNotify, WatchdogInterval) {
  const auto interval = [] { return vd::SystemdNotifier().watchdog_interval(); };
  EXPECT_EQ(interval(), std::nullopt);

  set("WATCHDOG_USEC", "30000000");
  EXPECT_EQ(interval(), std::chrono::microseconds(30'000'000));
  set("WATCHDOG_PID", std::to_string(::getpid()));
  EXPECT_EQ(interval(), std::chrono::microseconds(30'000'000));
  set("WATCHDOG_PID", std::to_string(::getpid() + 1));
  EXPECT_EQ(interval(), std::nullopt);
  set("WATCHDOG_PID", "1");
  EXPECT_EQ(interval(), std::nullopt);
  set("WATCHDOG_PID", "self");
  EXPECT_EQ(interval(), std::nullopt);
  set("WATCHDOG_PID", "");
  EXPECT_EQ(interval(), std::nullopt);
  ::unsetenv("WATCHDOG_PID");

  for (const char* bad :
       {"", "garbage", "0", "-5", "12abc", " 100", "1e6", "3.5", "99999999999999999999999"}) {
    set("WATCHDOG_USEC", bad);
    EXPECT_EQ(interval(), std::nullopt) << '"' << bad << '"';
  }
  set("WATCHDOG_USEC", "1");
  EXPECT_EQ(interval(), std::chrono::microseconds(1));

  // Read once, at construction; independent of NOTIFY_SOCKET.
  set("WATCHDOG_USEC", "2000000");
  const vd::SystemdNotifier n;
  ::unsetenv("WATCHDOG_USEC");
  EXPECT_FALSE(n.enabled());
  EXPECT_EQ(n.watchdog_interval(), std::chrono::microseconds(2'000'000));
}

}  // namespace
