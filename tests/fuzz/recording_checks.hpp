// recording_checks.hpp — what recording_wav_fuzz and recording_csv_fuzz assert about
// analytics::read_recording() (analytics/recording.hpp) on one input file: the result's shape, and
// that a read with start/end/channel selection is exactly the matching slice of the full read.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>

#include "fuzz_util.hpp"
#include "vibgate/analytics/recording.hpp"

namespace vibgate::fuzz {

// FNV-1a: options drawn from it vary with every input yet stay reproducible.
inline std::uint64_t fnv1a(std::span<const std::uint8_t> data) {
  std::uint64_t h = 0xCBF29CE484222325ull;
  for (std::uint8_t b : data) h = (h ^ b) * 0x100000001B3ull;
  return h;
}

// Either a recording or an error naming the file; a recording has ≥ 1 channel of equal, non-zero
// length, finite samples, a rate of at least 1 Hz (WAV: any whole number the header gives; the
// 1 MHz limit is the caller's for CSV and raw input) and increasing channel indices.
inline void check_result(const analytics::ReadResult& r, const std::string& path) {
  if (!r) {
    FUZZ_CHECK(r.error.rfind(path + ": ", 0) == 0, r.error);
    return;
  }
  const analytics::Recording& rec = *r.recording;
  FUZZ_CHECK(r.error.empty(), r.error);
  FUZZ_CHECK(!rec.channels.empty(), "no channels");
  FUZZ_CHECK(rec.channel_index.size() == rec.channels.size(), "channel_index size");
  FUZZ_CHECK(rec.sample_rate_hz >= 1 && std::isfinite(rec.sample_rate_hz), "sample rate");
  for (std::size_t k = 0; k < rec.channels.size(); ++k) {
    FUZZ_CHECK(!rec.channels[k].empty(), "empty channel");
    FUZZ_CHECK(rec.channels[k].size() == rec.channels[0].size(), "channels of unequal length");
    if (k > 0) FUZZ_CHECK(rec.channel_index[k] > rec.channel_index[k - 1], "channel order");
    for (float v : rec.channels[k]) FUZZ_CHECK(std::isfinite(v), "non-finite sample");
  }
}

// Selection options drawn from `h`: a channel, a start and/or an end (seconds).
inline analytics::ReadOptions selection(std::uint64_t h, analytics::ReadOptions base,
                                        double rate_guess) {
  if ((h & 3) != 0) base.channel = (h >> 2) % 4;
  const double span_s = static_cast<double>((h >> 8) % 4096) / rate_guess;
  if ((h & 16) != 0) base.start_s = span_s;
  if ((h & 32) != 0) base.end_s = span_s + static_cast<double>(1 + (h >> 24) % 8192) / rate_guess;
  return base;
}

// `part` (a read with selection) must be the slice of `all` (the full read) it names.
inline void check_slice(const analytics::Recording& all, const analytics::Recording& part) {
  FUZZ_CHECK(part.sample_rate_hz == all.sample_rate_hz, "rate differs with selection");
  for (std::size_t k = 0; k < part.channels.size(); ++k) {
    const std::size_t c = part.channel_index[k];
    FUZZ_CHECK(c < all.channels.size() && all.channel_index[c] == c, "selected channel index");
    const auto& src = all.channels[c];
    FUZZ_CHECK(part.first_sample + part.channels[k].size() <= src.size(), "slice past the end");
    for (std::size_t i = 0; i < part.channels[k].size(); ++i)
      FUZZ_CHECK(std::bit_cast<std::uint32_t>(part.channels[k][i]) ==
                     std::bit_cast<std::uint32_t>(src[part.first_sample + i]),
                 "selected samples differ from the full read");
  }
}

// Round trip: `again` (`rec` written out and read back) holds the same channels, bit for bit.
inline void check_round_trip(const analytics::ReadResult& again, const analytics::Recording& rec) {
  FUZZ_CHECK(again, again.error);
  FUZZ_CHECK(again.recording->channels.size() == rec.channels.size(), "round trip channels");
  FUZZ_CHECK(again.recording->channels[0].size() == rec.channels[0].size(), "round trip length");
  check_slice(*again.recording, rec);
}

}  // namespace vibgate::fuzz
