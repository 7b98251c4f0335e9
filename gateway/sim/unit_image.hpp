// unit_image.hpp — the register image of one simulated Modbus unit: its libmodbus mapping, the
// scalar tags written into it, and the waveform blocks it publishes in simulated real time
// (docs/modbus-waveform.md).
//
// Not thread-safe: the simulator's event loop calls update_tags()/advance_waveforms() between
// serving requests, so every request sees a consistent image; the sequence register is still
// written last, exactly as the convention requires of a real device.
#pragma once

#include <modbus.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "machine_source.hpp"
#include "sim_config.hpp"

namespace vibgate::sim {

struct UnitStats {
  std::uint64_t blocks_published = 0;
  std::uint64_t blocks_skipped = 0;     // dropped after the loop stalled (sequence still advanced)
  std::uint64_t samples_saturated = 0;  // int16 samples clipped to ±32767 counts
};

class UnitImage {
 public:
  // Allocates a mapping that covers exactly the configured addresses of each table (requests
  // outside get ILLEGAL DATA ADDRESS). `processes` holds one ProcessModel per configured machine
  // and must outlive the image, as must `spec` and `machines`. `consumer_counter` counts the
  // streams opened per machine (seeds of several sensors on one machine). Throws std::bad_alloc.
  UnitImage(const UnitSpec& spec, const std::vector<MachineConfig>& machines,
            std::vector<ProcessModel>& processes, std::vector<std::uint64_t>& consumer_counter);
  ~UnitImage();
  UnitImage(const UnitImage&) = delete;
  UnitImage& operator=(const UnitImage&) = delete;

  int id() const { return spec_->id; }
  modbus_mapping_t* mapping() { return mapping_; }

  // Writes every tag at t = 0 and the first block of every waveform (sequence 1).
  void start();
  // Recomputes the tags whose value changes (all but constants; a master's write to a constant
  // holding register/coil therefore persists). t: seconds since start.
  void update_tags(double t);
  // Generates the samples acquired up to t and publishes every block completed: block k (k >= 1)
  // is published at k·n/rate with sequence k+1. After a stall of more than max(4 blocks, 1 s)
  // the missed blocks are skipped (not computed) but still counted in the sequence.
  void advance_waveforms(double t);

  const UnitStats& stats() const { return stats_; }

 private:
  struct Tag {
    const TagSpec* spec;
    ProcessModel* process;  // derived models only
  };
  struct Waveform {
    const WaveformSpec* spec;
    SampleStream stream;
    std::vector<float> back;   // block being acquired
    std::size_t filled = 0;
    std::uint16_t sequence = 0;
  };

  void write_tag(const Tag& tag, double t);
  void publish(Waveform& w);
  std::uint16_t* registers(ingest::RegisterType reg, std::uint16_t address);

  const UnitSpec* spec_;
  modbus_mapping_t* mapping_ = nullptr;
  std::vector<Tag> tags_;
  std::vector<Waveform> waveforms_;
  UnitStats stats_;
};

}  // namespace vibgate::sim
