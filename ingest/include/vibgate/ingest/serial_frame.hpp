// vibgate/ingest/serial_frame.hpp — wire formats of streaming serial vibration sensors.
//
// Binary mode: a self-delimiting frame (sync word, header, interleaved little-endian payload,
// CRC-32), specified byte by byte in docs/serial-protocol.md. encode_frame() builds one (for the
// simulator and tests); FrameDecoder turns an arbitrary byte stream — split anywhere, with garbage,
// lost and corrupted bytes — back into frames, resynchronising on the sync word.
// Text mode: TextLineDecoder, one line of N comma/whitespace separated numbers per sample instant.
//
// Both decoders are plain objects with no I/O and no threads: one owner feeds them. Their memory is
// bounded whatever the input (FrameDecoder: 2 × the largest frame; TextLineDecoder: one line).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace vibgate::ingest {

// ---- frame layout (docs/serial-protocol.md) ----
inline constexpr std::uint8_t kFrameSync0 = 0xA5;
inline constexpr std::uint8_t kFrameSync1 = 0x5A;
inline constexpr std::uint8_t kFrameVersion = 1;
inline constexpr std::size_t kFrameHeaderBytes = 20;  // sync .. scale
inline constexpr std::size_t kFrameCrcBytes = 4;
inline constexpr std::size_t kFrameMaxChannels = 16;
inline constexpr std::size_t kFrameMaxPayloadBytes = 65536;  // 64 KiB
inline constexpr std::uint32_t kFrameMaxSampleRateHz = 1'000'000;
inline constexpr std::size_t kFrameMaxBytes =
    kFrameHeaderBytes + kFrameMaxPayloadBytes + kFrameCrcBytes;

enum class SampleFormat : std::uint8_t {
  int16 = 0,    // value = raw · scale (the header's float32 scale factor)
  float32 = 1,  // value = raw · scale (senders normally write scale 1.0)
};

std::size_t sample_bytes(SampleFormat f);  // 2 or 4

// What encode_frame() writes into the header.
struct FrameParams {
  std::uint32_t sequence = 0;        // incremented by 1 per frame by the sender, wraps at 2^32
  std::uint32_t sample_rate_hz = 0;  // 1 .. kFrameMaxSampleRateHz
  SampleFormat format = SampleFormat::int16;
  float scale = 1.0f;  // finite, non-zero
};

// Builds one frame from per-channel samples (channels[c][i]; every channel the same length).
// int16: raw = round(value / scale), saturated to [-32768, 32767]; float32: raw = value / scale
// (exact when scale is 1 or a power of two). Throws std::invalid_argument when the frame would be
// invalid: 0 or > 16 channels, unequal lengths, 0 or > 65535 samples per channel, payload over
// kFrameMaxPayloadBytes, rate out of range, scale not finite or zero.
std::vector<std::uint8_t> encode_frame(const FrameParams& params,
                                       const std::vector<std::vector<float>>& channels);

// One valid frame as the decoder delivers it. Only valid during the callback (buffers are reused).
struct DecodedFrame {
  std::uint32_t sequence = 0;
  std::uint32_t sample_rate_hz = 0;
  SampleFormat format = SampleFormat::int16;
  float scale = 1.0f;
  std::size_t samples_per_channel = 0;
  std::size_t frame_bytes = 0;  // header + payload + CRC
  // Samples were lost since the previous delivered frame: the sequence skipped or went backwards,
  // or a frame was dropped for non-finite values. False for the first frame after reset().
  bool gap_before = false;
  std::vector<std::vector<float>> channels;  // channels.size() = channel count; raw · scale
};

struct FrameDecoderStats {
  std::uint64_t bytes_in = 0;          // bytes passed to feed()
  std::uint64_t frames_ok = 0;         // frames delivered to the callback
  std::uint64_t crc_errors = 0;        // plausible header, complete frame, CRC mismatch
  std::uint64_t invalid_headers = 0;   // sync word followed by an impossible header
  std::uint64_t oversize_headers = 0;  // otherwise valid header whose payload exceeds the limit
  std::uint64_t bad_values = 0;        // CRC-valid frames dropped for non-finite sample values
  std::uint64_t sequence_gaps = 0;     // frames missing according to the sequence numbers
  std::uint64_t sequence_resets = 0;   // sequence went backwards/repeated (sender restart)
  std::uint64_t bytes_discarded = 0;   // bytes consumed that were not part of a CRC-valid frame
};

// Streaming decoder of binary frames.
//
// Invariant: bytes_in = Σ frame_bytes of CRC-valid frames (delivered or bad_values)
//                       + bytes_discarded + buffered().
// Resynchronisation: after a bad header or CRC the decoder drops only the first sync byte and
// searches again from the next byte, so a frame that starts inside a false one is still found.
// Not thread-safe: one owner calls feed()/reset().
class FrameDecoder {
 public:
  using Callback = std::function<void(const DecodedFrame&)>;

  // `max_payload_bytes` caps the payload size accepted (at most kFrameMaxPayloadBytes; larger
  // values are clamped). Headers announcing more are counted as oversize and skipped.
  explicit FrameDecoder(Callback on_frame, std::size_t max_payload_bytes = kFrameMaxPayloadBytes);

  // Consumes `bytes` (any length, any split). Calls the callback once per valid frame, in stream
  // order, before returning. The callback must not call feed()/reset() on this decoder. If it
  // throws, the exception propagates and the decoder stays consistent: bytes already buffered are
  // decoded by the next feed(); the rest of `bytes` (not buffered, not in bytes_in) is dropped.
  void feed(std::span<const std::uint8_t> bytes);

  // Drops buffered bytes (counted as discarded) and forgets the last sequence number, so the next
  // frame starts a new sequence (used after a reconnect). Counters are kept.
  void reset();

  const FrameDecoderStats& stats() const { return stats_; }
  std::size_t buffered() const { return end_ - begin_; }

 private:
  void process();
  void discard(std::size_t n);
  bool deliver(const std::uint8_t* frame, std::size_t channels, std::size_t samples,
               SampleFormat format, float scale, std::uint32_t sequence, std::uint32_t rate,
               std::size_t frame_bytes);

  Callback on_frame_;
  std::size_t max_payload_;
  std::vector<std::uint8_t> buf_;  // fixed capacity 2 × largest frame; [begin_, end_) pending
  std::size_t begin_ = 0, end_ = 0;
  bool have_sequence_ = false;
  std::uint32_t next_sequence_ = 0;
  bool gap_pending_ = false;  // loss seen since the last delivered frame
  DecodedFrame frame_;        // reused for every delivery
  FrameDecoderStats stats_;
};

// ---- text lines ----
inline constexpr std::size_t kTextMaxLineBytes = 1024;

struct TextLineStats {
  std::uint64_t bytes_in = 0;
  std::uint64_t lines_ok = 0;   // delivered
  std::uint64_t bad_lines = 0;  // wrong value count, not a number, NaN/Inf, out of range, > 1024 B
};

// Streaming decoder of text samples: each line holds exactly `channels` numbers separated by
// whitespace (space/tab) or by a comma with optional whitespace around it, e.g. "0.12,-0.5" or
// "0.12 -0.5". Lines end in \n or \r\n. Numbers: decimal or scientific (std::from_chars, general
// format), optional leading '+'. Blank lines are ignored (not counted). Bad lines are counted and
// skipped; a line longer than kTextMaxLineBytes (excluding the terminator) is bad, and its bytes
// are dropped until the next \n without being buffered. Not thread-safe.
class TextLineDecoder {
 public:
  using Callback = std::function<void(std::span<const float> values)>;  // values.size() = channels

  // Throws std::invalid_argument unless 1 <= channels <= kFrameMaxChannels.
  TextLineDecoder(std::size_t channels, Callback on_line);

  // Consumes `bytes`; calls the callback once per good line before returning (same callback rules
  // as FrameDecoder::feed).
  void feed(std::span<const std::uint8_t> bytes);

  // Drops a partial line (e.g. after a reconnect). Counters are kept.
  void reset();

  const TextLineStats& stats() const { return stats_; }
  std::size_t channels() const { return channels_; }

 private:
  enum class LineResult : std::uint8_t { ok, blank, bad };
  void end_line();
  LineResult parse_line(std::string_view line);

  std::size_t channels_;
  Callback on_line_;
  std::string line_;           // current partial line, at most kTextMaxLineBytes + 1 bytes
  bool overlong_ = false;      // current line exceeded the limit; skipping to '\n'
  std::vector<float> values_;  // parsed values of the current line
  TextLineStats stats_;
};

}  // namespace vibgate::ingest
