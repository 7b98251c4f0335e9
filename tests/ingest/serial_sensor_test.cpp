// serial_sensor_test.cpp — SerialSensor against real pseudo-terminals (openpty): binary frames and
// text lines arrive in order with the right channel names and timestamps; closing the far end
// takes the sensor offline with an error naming sensor and port; a port that comes back (a symlink
// re-pointed to a new pty) is reopened; bad configurations, missing ports and rejected line
// settings are reported; callback exceptions, stop() from a callback and destruction mid-read are
// safe. Every io_context run is bounded by a deadline, and writer threads give up after a deadline.
#include "vibgate/ingest/serial_sensor.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "vibgate/ingest/serial_frame.hpp"

namespace vibgate::ingest {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// A pseudo-terminal pair in raw mode. The test writes to the master; the sensor opens the slave by
// path. The test keeps its own slave descriptor open so bytes written before the sensor opens the
// port are kept (not flushed by a hangup).
struct Pty {
  int master = -1, slave = -1;
  std::string path;

  Pty() {
    termios raw{};
    cfmakeraw(&raw);
    char name[256] = {};
    if (openpty(&master, &slave, name, &raw, nullptr) != 0)
      throw std::runtime_error("openpty failed");
    path = name;
    ::fcntl(master, F_SETFL, ::fcntl(master, F_GETFL) | O_NONBLOCK);
  }
  ~Pty() { close_all(); }
  Pty(const Pty&) = delete;
  Pty& operator=(const Pty&) = delete;
  void close_all() {
    if (master >= 0) ::close(master);
    if (slave >= 0) ::close(slave);
    master = slave = -1;
  }
};

// Writes all of `data` to the (non-blocking) fd in chunks of `chunk` bytes; false if the deadline
// passes first (reader stuck) or the fd fails.
bool write_all(int fd, const std::vector<std::uint8_t>& data, std::size_t chunk,
               Clock::time_point deadline) {
  std::size_t pos = 0;
  while (pos < data.size()) {
    if (Clock::now() > deadline) return false;
    const ssize_t n = ::write(fd, data.data() + pos, std::min(chunk, data.size() - pos));
    if (n > 0) {
      pos += static_cast<std::size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      pollfd p{fd, POLLOUT, 0};
      ::poll(&p, 1, 50);
    } else {
      return false;
    }
  }
  return true;
}

std::vector<std::uint8_t> bytes_of(const std::string& s) { return {s.begin(), s.end()}; }

// Runs the loop until `done()` or the deadline; returns done().
bool run_until(boost::asio::io_context& io, const std::function<bool()>& done,
               std::chrono::milliseconds limit = 5000ms) {
  const auto deadline = Clock::now() + limit;
  while (!done() && Clock::now() < deadline) {
    io.run_for(10ms);
    if (io.stopped()) io.restart();
  }
  return done();
}

SerialSensorConfig binary_config(const std::string& port) {
  SerialSensorConfig c;
  c.name = "acc1";
  c.line.port = port;
  c.line.baud = 115200;
  c.line.parity = Parity::none;
  c.mode = SerialMode::binary;
  c.units = AccelUnits::m_per_s2;
  return c;
}

SerialSensorOptions fast_retry() {
  SerialSensorOptions o;
  o.backoff_initial = 20ms;
  o.backoff_max = 100ms;
  return o;
}

// Sample k of channel c in frame `seq`: exact in int16 with scale 1/1024.
float sample(std::uint32_t seq, std::size_t c, std::size_t i) {
  return static_cast<float>(static_cast<int>((seq * 64 + i) % 2000) - 1000 +
                            static_cast<int>(c) * 3) /
         1024.0f;
}

std::vector<std::uint8_t> test_frame(std::uint32_t seq, std::size_t nch, std::size_t spc) {
  std::vector<std::vector<float>> ch(nch, std::vector<float>(spc));
  for (std::size_t c = 0; c < nch; ++c)
    for (std::size_t i = 0; i < spc; ++i) ch[c][i] = sample(seq, c, i);
  return encode_frame({seq, 25600, SampleFormat::int16, 1.0f / 1024.0f}, ch);
}

TEST(SerialSensor, BinaryFramesArriveInOrderWithChannelNames) {
  Pty pty;
  boost::asio::io_context io;
  constexpr std::size_t kChannels = 8, kSpc = 64, kFrames = 60;
  std::vector<SampleBlock> blocks;
  SerialSensor sensor(
      io, binary_config(pty.path), [&](const SampleBlock& b) { blocks.push_back(b); },
      fast_retry());
  sensor.start();
  EXPECT_EQ(sensor.state(), SensorState::online) << sensor.stats().last_error;

  std::vector<std::uint8_t> stream;
  for (std::uint32_t seq = 0; seq < kFrames; ++seq) {
    const auto f = test_frame(seq, kChannels, kSpc);
    stream.insert(stream.end(), f.begin(), f.end());
  }
  const std::int64_t wall_before = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                       std::chrono::system_clock::now().time_since_epoch())
                                       .count();
  std::atomic<bool> wrote{false};
  std::thread writer([&] {
    // Odd chunk sizes so frames straddle reads.
    wrote = write_all(pty.master, stream, 777, Clock::now() + 5s);
  });
  const bool done = run_until(io, [&] { return blocks.size() >= kFrames * kChannels; });
  writer.join();
  ASSERT_TRUE(wrote);
  ASSERT_TRUE(done) << "got " << blocks.size() << " blocks";

  ASSERT_EQ(blocks.size(), kFrames * kChannels);
  for (std::uint32_t seq = 0; seq < kFrames; ++seq) {
    for (std::size_t c = 0; c < kChannels; ++c) {
      const SampleBlock& b = blocks[seq * kChannels + c];
      EXPECT_EQ(b.channel, "acc1/" + std::to_string(c));
      EXPECT_EQ(b.sample_rate_hz, 25600.0);
      EXPECT_EQ(b.units, AccelUnits::m_per_s2);
      ASSERT_EQ(b.samples.size(), kSpc);
      for (std::size_t i = 0; i < kSpc; ++i)
        ASSERT_EQ(b.samples[i], sample(seq, c, i)) << "frame " << seq << " ch " << c << " i " << i;
      EXPECT_GT(b.first_sample.mono_ns, 0);
      EXPECT_GT(b.first_sample.wall_ns, wall_before - 1'000'000'000);  // ≤ one 1 s of samples back
    }
    // Within one frame all channels share the timestamp.
    EXPECT_EQ(blocks[seq * kChannels].first_sample.mono_ns,
              blocks[seq * kChannels + kChannels - 1].first_sample.mono_ns);
  }
  const SerialSensorStats s = sensor.stats();
  EXPECT_EQ(s.state, SensorState::online);
  EXPECT_EQ(s.bytes, stream.size());
  EXPECT_EQ(s.frames, kFrames);
  EXPECT_EQ(s.blocks, kFrames * kChannels);
  EXPECT_EQ(s.crc_errors, 0u);
  EXPECT_EQ(s.sequence_gaps, 0u);
  EXPECT_EQ(s.bytes_discarded, 0u);
  EXPECT_EQ(s.reconnects, 0u);
  EXPECT_TRUE(s.last_error.empty()) << s.last_error;
}

TEST(SerialSensor, GarbageAndCorruptionOnTheLineAreCounted) {
  Pty pty;
  boost::asio::io_context io;
  std::vector<std::pair<float, bool>> firsts;  // first sample and gap_before of each block
  SerialSensor sensor(
      io, binary_config(pty.path),
      [&](const SampleBlock& b) { firsts.emplace_back(b.samples.at(0), b.gap_before); },
      fast_retry());
  sensor.start();
  std::vector<std::uint8_t> stream = {0x01, 0x02, 0xA5, 0x5A, 0x03};
  for (std::uint32_t seq = 0; seq < 10; ++seq) {
    auto f = test_frame(seq, 2, 32);
    if (seq == 4) f[40] ^= 0xFF;  // corrupted → lost → one sequence gap
    if (seq == 7) continue;       // lost → one more gap
    stream.insert(stream.end(), f.begin(), f.end());
  }
  ASSERT_TRUE(write_all(pty.master, stream, 4096, Clock::now() + 5s));
  ASSERT_TRUE(run_until(io, [&] { return sensor.stats().frames >= 8; }));
  const SerialSensorStats s = sensor.stats();
  EXPECT_EQ(s.frames, 8u);
  EXPECT_EQ(s.crc_errors, 1u);
  EXPECT_EQ(s.sequence_gaps, 2u);
  EXPECT_GE(s.bytes_discarded, 5u);
  // Blocks of frames 0 1 2 3 5 6 8 9 (two channels each); the frames after a loss carry the gap.
  const std::vector<std::uint32_t> seqs = {0, 1, 2, 3, 5, 6, 8, 9};
  ASSERT_EQ(firsts.size(), 16u);
  for (std::size_t k = 0; k < 16; ++k) {
    const std::uint32_t seq = seqs[k / 2];
    EXPECT_EQ(firsts[k].first, sample(seq, k % 2, 0)) << k;
    EXPECT_EQ(firsts[k].second, seq == 5 || seq == 8) << k;
  }
}

TEST(SerialSensor, TextModeLines) {
  Pty pty;
  boost::asio::io_context io;
  SerialSensorConfig cfg;
  cfg.name = "txt";
  cfg.line.port = pty.path;
  cfg.line.baud = 9600;
  cfg.line.parity = Parity::even;
  cfg.line.stop_bits = 2;
  cfg.mode = SerialMode::text;
  cfg.sample_rate_hz = 1000;
  cfg.channels = 3;
  cfg.channel_names = {"x", "y", "z"};
  std::vector<std::vector<float>> got(3);
  std::vector<std::size_t> gap_blocks(3);
  SerialSensor sensor(
      io, cfg,
      [&](const SampleBlock& b) {
        const std::size_t c = b.channel == "x"   ? 0
                              : b.channel == "y" ? 1
                              : b.channel == "z" ? 2
                                                 : 99;
        ASSERT_LT(c, 3u) << b.channel;
        EXPECT_EQ(b.sample_rate_hz, 1000.0);
        EXPECT_EQ(b.units, AccelUnits::g);
        got[c].insert(got[c].end(), b.samples.begin(), b.samples.end());
        gap_blocks[c] += b.gap_before;
      },
      fast_retry());
  sensor.start();

  std::string text;
  std::vector<std::vector<float>> expected(3);
  std::size_t bad = 0;
  for (int i = 0; i < 500; ++i) {
    if (i % 50 == 7) {
      text += (i % 100 == 7) ? "garbage here\n" : "1,2\r\n";
      ++bad;
    }
    const float v[3] = {static_cast<float>(i) * 0.5f, -static_cast<float>(i), 0.125f};
    text += std::to_string(v[0]) + (i % 2 ? "," : " ") + std::to_string(v[1]) + ", " +
            std::to_string(v[2]) + (i % 3 ? "\n" : "\r\n");
    for (int c = 0; c < 3; ++c) expected[c].push_back(v[c]);
  }
  std::thread writer([&] { write_all(pty.master, bytes_of(text), 100, Clock::now() + 5s); });
  const bool done = run_until(io, [&] { return got[0].size() >= 500; });
  writer.join();
  ASSERT_TRUE(done) << got[0].size();
  EXPECT_EQ(got, expected);
  // Every bad line (all between good lines) starts a new block marked as following a gap.
  EXPECT_EQ(gap_blocks, std::vector<std::size_t>(3, bad));
  const SerialSensorStats s = sensor.stats();
  EXPECT_EQ(s.frames, 500u);
  EXPECT_EQ(s.bad_lines, bad);
  EXPECT_EQ(s.bytes, text.size());
}

TEST(SerialSensor, MasterClosedMidStreamGoesOfflineWithError) {
  Pty pty;
  boost::asio::io_context io;
  std::size_t nblocks = 0;
  std::vector<std::pair<SensorState, std::string>> transitions;
  SerialSensorOptions opts = fast_retry();
  opts.on_state_change = [&](SensorState st, const std::string& err) {
    transitions.emplace_back(st, err);
  };
  SerialSensor sensor(
      io, binary_config(pty.path), [&](const SampleBlock&) { ++nblocks; }, opts);
  sensor.start();
  std::vector<std::uint8_t> stream;
  for (std::uint32_t seq = 0; seq < 5; ++seq) {
    const auto f = test_frame(seq, 1, 64);
    stream.insert(stream.end(), f.begin(), f.end());
  }
  const auto partial = test_frame(5, 1, 64);
  stream.insert(stream.end(), partial.begin(), partial.begin() + 30);  // cut mid-frame
  ASSERT_TRUE(write_all(pty.master, stream, 4096, Clock::now() + 5s));
  ASSERT_TRUE(run_until(io, [&] { return nblocks >= 5; }));

  pty.close_all();  // the device goes away
  ASSERT_TRUE(run_until(io, [&] { return sensor.state() == SensorState::offline; }));
  // It keeps retrying (the pty is gone, so opening fails) without crashing or blocking.
  ASSERT_TRUE(run_until(io, [&] { return sensor.stats().open_failures >= 2; }));
  const SerialSensorStats s = sensor.stats();
  EXPECT_EQ(s.state, SensorState::offline);
  EXPECT_NE(s.last_error.find("sensor 'acc1'"), std::string::npos) << s.last_error;
  EXPECT_NE(s.last_error.find(pty.path), std::string::npos) << s.last_error;
  EXPECT_EQ(s.frames, 5u);
  EXPECT_EQ(nblocks, 5u);
  ASSERT_GE(transitions.size(), 2u);
  EXPECT_EQ(transitions[0].first, SensorState::online);
  EXPECT_EQ(transitions[1].first, SensorState::offline);
  EXPECT_NE(transitions[1].second.find("read failed"), std::string::npos) << transitions[1].second;
  sensor.stop();
  EXPECT_EQ(sensor.state(), SensorState::stopped);
}

TEST(SerialSensor, ReconnectsWhenThePortComesBack) {
  // The sensor opens a symlink (as udev's /dev/serial/by-id/... links are); the device is replaced
  // by a new pty and the link re-pointed.
  const std::filesystem::path link = std::filesystem::temp_directory_path() /
                                     ("vibgate-serial-test-" + std::to_string(::getpid()));
  std::filesystem::remove(link);
  auto first = std::make_unique<Pty>();
  std::filesystem::create_symlink(first->path, link);

  boost::asio::io_context io;
  std::vector<float> firsts;  // first sample of each block
  std::vector<bool> gaps;
  SerialSensor sensor(
      io, binary_config(link.string()),
      [&](const SampleBlock& b) {
        firsts.push_back(b.samples.at(0));
        gaps.push_back(b.gap_before);
      },
      fast_retry());
  sensor.start();
  std::vector<std::uint8_t> stream;
  for (std::uint32_t seq = 0; seq < 3; ++seq) {
    const auto f = test_frame(seq, 1, 16);
    stream.insert(stream.end(), f.begin(), f.end());
  }
  ASSERT_TRUE(write_all(first->master, stream, 4096, Clock::now() + 5s));
  ASSERT_TRUE(run_until(io, [&] { return firsts.size() >= 3; }));
  first->close_all();
  ASSERT_TRUE(run_until(io, [&] { return sensor.state() == SensorState::offline; }));

  Pty second;
  const std::filesystem::path tmp = link.string() + ".new";
  std::filesystem::remove(tmp);
  std::filesystem::create_symlink(second.path, tmp);
  std::filesystem::rename(tmp, link);  // atomic re-point
  stream.clear();
  for (std::uint32_t seq = 100; seq < 103; ++seq) {  // the device restarted its sequence elsewhere
    const auto f = test_frame(seq, 1, 16);
    stream.insert(stream.end(), f.begin(), f.end());
  }
  ASSERT_TRUE(write_all(second.master, stream, 4096, Clock::now() + 5s));
  const bool done = run_until(io, [&] { return firsts.size() >= 6; });
  std::filesystem::remove(link);
  ASSERT_TRUE(done) << sensor.stats().last_error;
  const SerialSensorStats s = sensor.stats();
  EXPECT_EQ(s.state, SensorState::online);
  EXPECT_EQ(s.reconnects, 1u);
  EXPECT_EQ(s.frames, 6u);
  EXPECT_EQ(s.sequence_gaps, 0u);      // a new connection starts a new sequence
  EXPECT_FALSE(s.last_error.empty());  // the last failure stays visible
  ASSERT_EQ(firsts.size(), 6u);
  EXPECT_EQ(firsts[0], sample(0, 0, 0));
  EXPECT_EQ(firsts[3], sample(100, 0, 0));
  EXPECT_EQ(firsts[5], sample(102, 0, 0));
  EXPECT_EQ(gaps, (std::vector<bool>{false, false, false, true, false, false}));
}

TEST(SerialSensor, MissingPortIsReportedAndRetriedWithBackoff) {
  boost::asio::io_context io;
  SerialSensor sensor(io, binary_config("/dev/vibgate-no-such-port"), nullptr, fast_retry());
  sensor.start();
  EXPECT_EQ(sensor.state(), SensorState::offline);
  const auto t0 = Clock::now();
  ASSERT_TRUE(run_until(io, [&] { return sensor.stats().open_failures >= 4; }));
  // Delays 20, 40, 80 ms between the four attempts: at least 140 ms.
  EXPECT_GE(Clock::now() - t0, 130ms);
  const SerialSensorStats s = sensor.stats();
  EXPECT_EQ(
      s.last_error,
      "sensor 'acc1' (/dev/vibgate-no-such-port): cannot open port: No such file or directory");
}

TEST(SerialSensor, RejectedLineSettingIsAnOpenFailureNamingTheSetting) {
  // Asio (like termios) knows only the standard rates; a pty accepts every standard setting.
  Pty pty;
  boost::asio::io_context io;
  SerialSensorConfig cfg = binary_config(pty.path);
  cfg.line.baud = 12345;
  SerialSensor sensor(io, cfg, nullptr, fast_retry());
  sensor.start();
  const SerialSensorStats s = sensor.stats();
  EXPECT_EQ(s.state, SensorState::offline);
  EXPECT_EQ(s.open_failures, 1u);
  EXPECT_EQ(s.last_error,
            "sensor 'acc1' (" + pty.path + "): cannot set baud rate 12345: Invalid argument");
  ASSERT_TRUE(run_until(io, [&] { return sensor.stats().open_failures >= 2; }));
  EXPECT_EQ(sensor.state(), SensorState::offline);
}

TEST(SerialSensor, CallbackExceptionsAndStopFromCallbackAreContained) {
  Pty pty;
  boost::asio::io_context io;
  int calls = 0;
  SerialSensor* self = nullptr;
  SerialSensor sensor(
      io, binary_config(pty.path),
      [&](const SampleBlock&) {
        if (++calls == 1) throw std::runtime_error("consumer broke");
        self->stop();  // second block: stop from inside the callback
      },
      fast_retry());
  self = &sensor;
  sensor.start();
  std::vector<std::uint8_t> stream;
  for (std::uint32_t seq = 0; seq < 4; ++seq) {
    const auto f = test_frame(seq, 1, 16);
    stream.insert(stream.end(), f.begin(), f.end());
  }
  // Two writes (frame 0, then frames 1-3) so the exception and the stop happen in different reads.
  ASSERT_EQ(stream.size(), 4u * 56u);
  ASSERT_TRUE(
      write_all(pty.master, {stream.begin(), stream.begin() + 56}, 4096, Clock::now() + 5s));
  ASSERT_TRUE(run_until(io, [&] { return calls >= 1; }));
  EXPECT_NE(sensor.stats().last_error.find("consumer broke"), std::string::npos);
  ASSERT_TRUE(write_all(pty.master, {stream.begin() + 56, stream.end()}, 4096, Clock::now() + 5s));
  ASSERT_TRUE(run_until(io, [&] { return sensor.state() == SensorState::stopped; }));
  io.run_for(100ms);  // nothing more is delivered after stop()
  EXPECT_EQ(calls, 2);
}

TEST(SerialSensor, DestroyedWithReadPending) {
  Pty pty;
  boost::asio::io_context io;
  {
    SerialSensor sensor(
        io, binary_config(pty.path), [](const SampleBlock&) { FAIL(); }, fast_retry());
    sensor.start();
    io.run_for(20ms);
  }  // destroyed while async_read_some is outstanding
  const auto f = test_frame(0, 1, 16);
  write_all(pty.master, f, 4096, Clock::now() + 1s);
  io.restart();
  io.run_for(100ms);
  SUCCEED();
}

TEST(SerialSensor, RejectsBadConfiguration) {
  boost::asio::io_context io;
  auto make = [&](auto mutate) {
    SerialSensorConfig c = binary_config("/dev/null");
    mutate(c);
    SerialSensor s(io, c, nullptr);
  };
  EXPECT_NO_THROW(make([](SerialSensorConfig&) {}));
  EXPECT_THROW(make([](SerialSensorConfig& c) { c.line.port.clear(); }), std::invalid_argument);
  EXPECT_THROW(make([](SerialSensorConfig& c) { c.line.data_bits = 9; }), std::invalid_argument);
  EXPECT_THROW(make([](SerialSensorConfig& c) { c.line.stop_bits = 3; }), std::invalid_argument);
  EXPECT_THROW(make([](SerialSensorConfig& c) { c.mode = SerialMode::text; }),
               std::invalid_argument);  // no sample rate
  EXPECT_THROW(make([](SerialSensorConfig& c) {
                 c.mode = SerialMode::text;
                 c.sample_rate_hz = 100;
                 c.channels = 2;
                 c.channel_names = {"only-one"};
               }),
               std::invalid_argument);
  try {
    make([](SerialSensorConfig& c) { c.line.data_bits = 4; });
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("acc1"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace vibgate::ingest
