// serial_source.hpp — a simulated streaming accelerometer board on a pseudo-terminal: binary
// frames (ingest::encode_frame, docs/serial-protocol.md) or text lines, paced in simulated real
// time and fed by the configured machines.
//
// The pty is created with openpty() in raw mode; the gateway opens the slave path (or the symlink
// given by `link`). The master is non-blocking: like a real sensor the simulator never waits for
// the reader — output the pty cannot take is kept up to 16 KiB (a sensor's FIFO), beyond that whole
// frames are dropped (counted; the frame sequence numbers show the gap). Not thread-safe: the event loop owns it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "machine_source.hpp"
#include "sim_config.hpp"

namespace vibgate::sim {

struct SerialStats {
  std::uint64_t frames = 0;          // frames (binary) or bursts of lines (text) produced
  std::uint64_t frames_dropped = 0;  // produced but not written: the reader was too slow/absent
  std::uint64_t frames_skipped = 0;  // not produced after a loop stall (sequence still advanced)
  std::uint64_t bytes_written = 0;
};

class SerialSource {
 public:
  static constexpr std::size_t kMaxPendingBytes = 16 * 1024;

  // Creates the pty and the symlink (replacing a stale symlink; refusing to replace anything
  // else). `machines`/`processes` must outlive the source; `consumer_counter` as in UnitImage.
  // Throws std::runtime_error naming the problem.
  SerialSource(const SerialSpec& spec, const std::vector<MachineConfig>& machines,
               std::vector<ProcessModel>& processes, std::vector<std::uint64_t>& consumer_counter);
  ~SerialSource();  // removes the symlink if it still points to this pty, closes the pty
  SerialSource(const SerialSource&) = delete;
  SerialSource& operator=(const SerialSource&) = delete;

  const std::string& slave_path() const { return slave_path_; }
  const SerialSpec& spec() const { return *spec_; }

  // Produces every frame due by t (frame k, k >= 0, holds samples [k·s, (k+1)·s) and is due at
  // (k+1)·s/rate) and writes as much pending output as the pty accepts. Never blocks.
  void advance(double t);

  const SerialStats& stats() const { return stats_; }

 private:
  void produce_frame();
  void flush();

  const SerialSpec* spec_;
  int master_ = -1, slave_ = -1;
  std::string slave_path_;
  bool own_link_ = false;
  std::vector<SampleStream> streams_;
  std::vector<std::vector<float>> channels_;
  std::uint64_t samples_done_ = 0;   // per channel, produced or skipped
  std::uint32_t sequence_ = 0;
  std::vector<std::uint8_t> pending_;
  std::string text_;
  SerialStats stats_;
};

}  // namespace vibgate::sim
