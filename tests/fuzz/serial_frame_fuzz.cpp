// serial_frame_fuzz.cpp — libFuzzer target for the serial sensors' stream decoders
// (ingest/serial_frame.hpp): FrameDecoder (binary frames) and TextLineDecoder (text lines).
//
// Input layout: byte 0 selects the decoder and its parameters (bit 0: text mode; bits 1-4: text
// channel count − 1; bits 5-7: the binary decoder's max_payload_bytes), bytes 1-2 seed the split
// of the stream into feed() calls, the rest is the byte stream from the serial port.
//
// Asserted beyond "no crash, no sanitizer report":
//  - split invariance: the stream fed in one call and fed in pseudo-random pieces yields the same
//    frames/lines (values bit for bit) and the same counters;
//  - bounds: every frame has 1..16 channels of equal length, a payload within the limit and
//    finite values; the decoder buffers less than one maximal frame between calls; every text
//    line has exactly `channels` finite values;
//  - byte accounting: bytes_in = frame bytes delivered + dropped for bad values + discarded +
//    buffered (docs/serial-protocol.md);
//  - round trip: a delivered frame re-encoded with encode_frame() (int16, or float32 with scale 1,
//    where re-encoding is exact) decodes to the same frame; a delivered text line printed with
//    %.9g decodes to the same values.
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <vector>

#include "fuzz_util.hpp"
#include "vibgate/ingest/serial_frame.hpp"

namespace vibgate::fuzz {
namespace {

using ingest::DecodedFrame;
using ingest::FrameDecoder;
using ingest::FrameDecoderStats;
using ingest::SampleFormat;
using ingest::TextLineDecoder;
using ingest::TextLineStats;

constexpr std::size_t kPayloadLimits[8] = {
    ingest::kFrameMaxPayloadBytes, 64, 256, 1024, 4096, 16384, 32, 2};

// A delivered frame copied out of the decoder's reused buffers.
struct Frame {
  std::uint32_t sequence = 0, rate = 0;
  SampleFormat format = SampleFormat::int16;
  std::uint32_t scale_bits = 0;
  std::size_t frame_bytes = 0;
  bool gap_before = false;
  std::vector<std::vector<std::uint32_t>> bits;  // sample bit patterns per channel

  bool operator==(const Frame&) const = default;
};

Frame copy_frame(const DecodedFrame& f, std::size_t max_payload) {
  const std::size_t nch = f.channels.size();
  FUZZ_CHECK(nch >= 1 && nch <= ingest::kFrameMaxChannels, "channel count");
  FUZZ_CHECK(f.samples_per_channel >= 1 && f.samples_per_channel <= 65535, "samples per channel");
  const std::size_t payload = nch * f.samples_per_channel * ingest::sample_bytes(f.format);
  FUZZ_CHECK(payload <= max_payload, "payload over the decoder's limit");
  FUZZ_CHECK(f.frame_bytes == ingest::kFrameHeaderBytes + payload + ingest::kFrameCrcBytes,
             "frame_bytes");
  FUZZ_CHECK(f.sample_rate_hz >= 1 && f.sample_rate_hz <= ingest::kFrameMaxSampleRateHz, "rate");
  FUZZ_CHECK(std::isfinite(f.scale) && f.scale != 0.0f, "scale");
  Frame out{f.sequence,    f.sample_rate_hz, f.format, std::bit_cast<std::uint32_t>(f.scale),
            f.frame_bytes, f.gap_before,     {}};
  out.bits.resize(nch);
  for (std::size_t c = 0; c < nch; ++c) {
    FUZZ_CHECK(f.channels[c].size() == f.samples_per_channel, "channel length");
    for (float v : f.channels[c]) {
      FUZZ_CHECK(std::isfinite(v), "non-finite sample delivered");
      out.bits[c].push_back(std::bit_cast<std::uint32_t>(v));
    }
  }
  return out;
}

bool same_stats(const FrameDecoderStats& a, const FrameDecoderStats& b) {
  return a.bytes_in == b.bytes_in && a.frames_ok == b.frames_ok && a.crc_errors == b.crc_errors &&
         a.invalid_headers == b.invalid_headers && a.oversize_headers == b.oversize_headers &&
         a.bad_values == b.bad_values && a.sequence_gaps == b.sequence_gaps &&
         a.sequence_resets == b.sequence_resets && a.bytes_discarded == b.bytes_discarded;
}

// Feeds `stream` in pieces drawn from `split` (one piece when split is null).
template <typename Decoder>
void feed(Decoder& d, std::span<const std::uint8_t> stream, SplitMix* split) {
  while (!stream.empty()) {
    std::size_t n = stream.size();
    if (split != nullptr) {
      const std::uint64_t r = split->next();
      n = std::min<std::size_t>(n, (r & 3) == 0 ? 1 + (r >> 8) % 4096 : 1 + (r >> 8) % 64);
    }
    d.feed(stream.first(n));
    stream = stream.subspan(n);
  }
}

struct BinaryRun {
  std::vector<Frame> frames;
  FrameDecoderStats stats;
  std::size_t buffered = 0;
};

BinaryRun run_binary(std::span<const std::uint8_t> stream, std::size_t max_payload,
                     SplitMix* split) {
  BinaryRun run;
  FrameDecoder decoder(
      [&](const DecodedFrame& f) { run.frames.push_back(copy_frame(f, max_payload)); },
      max_payload);
  feed(decoder, stream, split);
  run.stats = decoder.stats();
  run.buffered = decoder.buffered();
  FUZZ_CHECK(run.buffered < ingest::kFrameHeaderBytes + max_payload + ingest::kFrameCrcBytes,
             "more than one maximal frame left buffered");
  return run;
}

// Re-encodes a delivered frame where the encoding is exact and checks it decodes identically.
void check_round_trip(const Frame& f, std::size_t max_payload) {
  const float scale = std::bit_cast<float>(f.scale_bits);
  // int16: raw · scale in a normal float has a relative error below 2^-24, so value / scale is
  // within 32768 · 2^-24 of raw and rounds back to it. float32: exact only for scale 1.
  const bool exact =
      f.format == SampleFormat::int16 ? std::fabs(scale) >= 0x1p-100f : scale == 1.0f;
  if (!exact) return;
  std::vector<std::vector<float>> channels(f.bits.size());
  for (std::size_t c = 0; c < f.bits.size(); ++c)
    for (std::uint32_t b : f.bits[c]) channels[c].push_back(std::bit_cast<float>(b));
  const auto bytes = ingest::encode_frame({f.sequence, f.rate, f.format, scale}, channels);
  FUZZ_CHECK(bytes.size() == f.frame_bytes, "re-encoded frame size");
  BinaryRun again = run_binary(bytes, max_payload, nullptr);
  FUZZ_CHECK(again.frames.size() == 1, "re-encoded frame not decoded");
  Frame expect = f;
  expect.gap_before = false;  // first frame of a fresh decoder
  FUZZ_CHECK(again.frames[0] == expect, "re-encoded frame decodes differently");
}

void fuzz_binary(std::span<const std::uint8_t> stream, std::size_t max_payload,
                 std::uint64_t seed) {
  const BinaryRun whole = run_binary(stream, max_payload, nullptr);
  SplitMix split(seed);
  const BinaryRun pieces = run_binary(stream, max_payload, &split);
  FUZZ_CHECK(whole.frames == pieces.frames, "frames depend on how the stream is split");
  FUZZ_CHECK(same_stats(whole.stats, pieces.stats), "counters depend on how the stream is split");
  FUZZ_CHECK(whole.buffered == pieces.buffered, "buffered bytes depend on the split");

  const FrameDecoderStats& s = whole.stats;
  FUZZ_CHECK(s.bytes_in == stream.size(), "bytes_in");
  FUZZ_CHECK(s.frames_ok == whole.frames.size(), "frames_ok");
  std::uint64_t delivered = 0;
  for (const Frame& f : whole.frames) delivered += f.frame_bytes;
  const std::uint64_t accounted = delivered + s.bytes_discarded + whole.buffered;
  FUZZ_CHECK(accounted <= s.bytes_in, "more bytes accounted for than fed");
  // The rest are frames dropped for non-finite values (float32: at least one 4-byte sample).
  const std::uint64_t dropped = s.bytes_in - accounted;
  FUZZ_CHECK(dropped >= s.bad_values * (ingest::kFrameHeaderBytes + 4 + ingest::kFrameCrcBytes) &&
                 dropped <= s.bad_values * ingest::kFrameMaxBytes,
             "bytes_in != frame bytes + discarded + buffered");

  for (const Frame& f : whole.frames) check_round_trip(f, max_payload);
}

struct TextRun {
  std::vector<std::vector<std::uint32_t>> lines;
  TextLineStats stats;
};

TextRun run_text(std::span<const std::uint8_t> stream, std::size_t channels, SplitMix* split) {
  TextRun run;
  TextLineDecoder decoder(channels, [&](std::span<const float> values) {
    FUZZ_CHECK(values.size() == channels, "value count");
    std::vector<std::uint32_t> bits;
    for (float v : values) {
      FUZZ_CHECK(std::isfinite(v), "non-finite value delivered");
      bits.push_back(std::bit_cast<std::uint32_t>(v));
    }
    run.lines.push_back(std::move(bits));
  });
  feed(decoder, stream, split);
  run.stats = decoder.stats();
  return run;
}

void fuzz_text(std::span<const std::uint8_t> stream, std::size_t channels, std::uint64_t seed) {
  const TextRun whole = run_text(stream, channels, nullptr);
  SplitMix split(seed);
  const TextRun pieces = run_text(stream, channels, &split);
  FUZZ_CHECK(whole.lines == pieces.lines, "lines depend on how the stream is split");
  FUZZ_CHECK(whole.stats.lines_ok == pieces.stats.lines_ok &&
                 whole.stats.bad_lines == pieces.stats.bad_lines &&
                 whole.stats.bytes_in == pieces.stats.bytes_in,
             "counters depend on how the stream is split");
  FUZZ_CHECK(whole.stats.lines_ok == whole.lines.size(), "lines_ok");
  std::size_t newlines = 0;
  for (std::uint8_t b : stream) newlines += b == '\n';
  FUZZ_CHECK(whole.stats.lines_ok + whole.stats.bad_lines <= newlines,
             "a line counted without its newline");

  // Round trip through the text format: %.9g prints every float exactly.
  std::string text;
  char buf[32];
  for (const auto& line : whole.lines) {
    for (std::size_t i = 0; i < line.size(); ++i) {
      std::snprintf(buf, sizeof buf, "%s%.9g", i == 0 ? "" : ",",
                    static_cast<double>(std::bit_cast<float>(line[i])));
      text += buf;
    }
    text += "\r\n";
  }
  const auto* p = reinterpret_cast<const std::uint8_t*>(text.data());
  const TextRun again = run_text({p, text.size()}, channels, nullptr);
  FUZZ_CHECK(again.lines == whole.lines, "printed lines decode differently");
  FUZZ_CHECK(again.stats.bad_lines == 0, "a printed line is bad");
}

}  // namespace
}  // namespace vibgate::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace vibgate::fuzz;
  if (size < 3) return 0;
  const std::uint8_t mode = data[0];
  const std::uint64_t seed = static_cast<std::uint64_t>(data[1]) | (data[2] << 8);
  const std::span<const std::uint8_t> stream(data + 3, size - 3);
  if ((mode & 1) != 0)
    fuzz_text(stream, 1 + ((mode >> 1) & 15), seed);
  else
    fuzz_binary(stream, kPayloadLimits[mode >> 5], seed);
  return 0;
}
