// serial_frame_test.cpp — binary frame encoder/decoder and text line decoder of serial sensors:
// round trips, arbitrary splitting, resynchronisation after garbage and corruption, sequence
// accounting, bounded memory on hostile input (absurd lengths, 10 MB of random bytes), and the
// text format's good/bad lines.
#include "vibgate/ingest/serial_frame.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include <boost/crc.hpp>

namespace vibgate::ingest {
namespace {

using Bytes = std::vector<std::uint8_t>;
using Channels = std::vector<std::vector<float>>;

// A frame as the test callback saw it (copied out of the decoder's reused buffers).
struct Got {
  std::uint32_t sequence;
  std::uint32_t rate;
  SampleFormat format;
  Channels channels;
  bool gap_before = false;
};

struct Collector {
  std::vector<Got> frames;
  FrameDecoder decoder{[this](const DecodedFrame& f) {
    frames.push_back({f.sequence, f.sample_rate_hz, f.format, f.channels, f.gap_before});
  }};
  // Every byte fed is in a CRC-valid frame, discarded, or still buffered.
  void expect_invariant(std::uint64_t valid_frame_bytes) const {
    const auto& s = decoder.stats();
    EXPECT_EQ(s.bytes_in, valid_frame_bytes + s.bytes_discarded + decoder.buffered());
  }
};

// Deterministic test signal; exactly representable in int16 with scale 1/1024.
Channels make_channels(std::size_t nch, std::size_t spc, std::uint32_t seed) {
  Channels ch(nch, std::vector<float>(spc));
  for (std::size_t c = 0; c < nch; ++c)
    for (std::size_t i = 0; i < spc; ++i) {
      const auto k = static_cast<int>((seed * 131 + c * 977 + i * 31) % 60001) - 30000;
      ch[c][i] = static_cast<float>(k) / 1024.0f;
    }
  return ch;
}

constexpr float kScale = 1.0f / 1024.0f;

Bytes frame(std::uint32_t seq, std::size_t nch = 2, std::size_t spc = 16,
            SampleFormat fmt = SampleFormat::int16, std::uint32_t rate = 25600) {
  return encode_frame({seq, rate, fmt, fmt == SampleFormat::int16 ? kScale : 1.0f},
                      make_channels(nch, spc, seq));
}

void append(Bytes& out, const Bytes& in) { out.insert(out.end(), in.begin(), in.end()); }

// Rewrites the CRC of a hand-modified frame so only the intended field is wrong.
void fix_crc(Bytes& f) {
  boost::crc_32_type crc;
  crc.process_bytes(f.data(), f.size() - 4);
  const std::uint32_t v = crc.checksum();
  for (int i = 0; i < 4; ++i) f[f.size() - 4 + i] = static_cast<std::uint8_t>(v >> (8 * i));
}

// Random bytes that contain no 0xA5, so they cannot start a false frame.
Bytes clean_garbage(std::mt19937& rng, std::size_t n) {
  Bytes g(n);
  for (auto& b : g) {
    do b = static_cast<std::uint8_t>(rng());
    while (b == kFrameSync0);
  }
  return g;
}

// ---------------------------------------------------------------------------------------------
struct RoundTripCase {
  SampleFormat format;
  std::size_t channels;
};

class FrameRoundTrip : public ::testing::TestWithParam<RoundTripCase> {};

TEST_P(FrameRoundTrip, DecodesExactlyWhatWasEncoded) {
  const auto [fmt, nch] = GetParam();
  Collector col;
  std::vector<Channels> sent;
  Bytes stream;
  for (std::uint32_t seq = 0; seq < 5; ++seq) {
    sent.push_back(make_channels(nch, 256, seq));
    append(stream, encode_frame({seq, 25600, fmt, fmt == SampleFormat::int16 ? kScale : 1.0f},
                                sent.back()));
  }
  col.decoder.feed(stream);
  ASSERT_EQ(col.frames.size(), 5u);
  for (std::uint32_t seq = 0; seq < 5; ++seq) {
    EXPECT_EQ(col.frames[seq].sequence, seq);
    EXPECT_EQ(col.frames[seq].rate, 25600u);
    EXPECT_EQ(col.frames[seq].format, fmt);
    EXPECT_EQ(col.frames[seq].channels, sent[seq]);  // exact: values are multiples of 1/1024
  }
  const auto& s = col.decoder.stats();
  EXPECT_EQ(s.frames_ok, 5u);
  EXPECT_EQ(s.crc_errors + s.invalid_headers + s.oversize_headers + s.sequence_gaps, 0u);
  EXPECT_EQ(s.bytes_discarded, 0u);
  EXPECT_EQ(col.decoder.buffered(), 0u);
  col.expect_invariant(stream.size());
}

INSTANTIATE_TEST_SUITE_P(
    Formats, FrameRoundTrip,
    ::testing::Values(RoundTripCase{SampleFormat::int16, 1}, RoundTripCase{SampleFormat::int16, 8},
                      RoundTripCase{SampleFormat::float32, 1},
                      RoundTripCase{SampleFormat::float32, 8}),
    [](const auto& param_info) {
      return std::string(param_info.param.format == SampleFormat::int16 ? "int16" : "float32") +
             "_" + std::to_string(param_info.param.channels) + "ch";
    });

TEST(FrameEncode, LayoutMatchesTheDocumentedExample) {
  // docs/serial-protocol.md: 2 channels, 3 samples, int16, scale 1/1024, sequence 7, 25600 Hz.
  const Bytes f = encode_frame({7, 25600, SampleFormat::int16, kScale},
                               {{1.0f, -1.0f, 0.5f}, {0.0f, 2.0f, -0.25f}});
  const Bytes header = {0xA5, 0x5A, 0x01, 0x00, 0x02, 0x00, 0x07, 0x00, 0x00, 0x00,
                        0x00, 0x64, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x80, 0x3A};
  const Bytes payload = {0x00, 0x04, 0x00, 0x00, 0x00, 0xFC, 0x00, 0x08, 0x00, 0x02, 0x00, 0xFF};
  ASSERT_EQ(f.size(), 20u + 12u + 4u);
  EXPECT_EQ(Bytes(f.begin(), f.begin() + 20), header);
  EXPECT_EQ(Bytes(f.begin() + 20, f.begin() + 32), payload);
  boost::crc_32_type crc;
  crc.process_bytes(f.data(), 32);
  const std::uint32_t expected = crc.checksum();
  EXPECT_EQ(expected, 0x0D8F264Du) << std::hex << expected;  // value printed in the doc
  for (int i = 0; i < 4; ++i) EXPECT_EQ(f[32 + i], static_cast<std::uint8_t>(expected >> (8 * i)));
}

TEST(FrameEncode, Int16RoundsAndSaturates) {
  Collector col;
  col.decoder.feed(
      encode_frame({0, 1000, SampleFormat::int16, 0.5f}, {{0.74f, 0.76f, -0.76f, 1e6f, -1e6f}}));
  ASSERT_EQ(col.frames.size(), 1u);
  EXPECT_EQ(col.frames[0].channels[0],
            (std::vector<float>{0.5f, 1.0f, -1.0f, 32767 * 0.5f, -32768 * 0.5f}));
}

TEST(FrameEncode, RejectsInvalidFrames) {
  const FrameParams ok{0, 1000, SampleFormat::int16, 1.0f};
  EXPECT_THROW(encode_frame(ok, {}), std::invalid_argument);
  EXPECT_THROW(encode_frame(ok, Channels(17, std::vector<float>(1))), std::invalid_argument);
  EXPECT_THROW(encode_frame(ok, {{1.0f}, {1.0f, 2.0f}}), std::invalid_argument);
  EXPECT_THROW(encode_frame(ok, {{}}), std::invalid_argument);
  EXPECT_THROW(encode_frame(ok, Channels(1, std::vector<float>(40000))), std::invalid_argument);
  EXPECT_THROW(encode_frame({0, 0, SampleFormat::int16, 1.0f}, {{1.0f}}), std::invalid_argument);
  EXPECT_THROW(encode_frame({0, 2'000'000, SampleFormat::int16, 1.0f}, {{1.0f}}),
               std::invalid_argument);
  EXPECT_THROW(encode_frame({0, 1000, SampleFormat::int16, 0.0f}, {{1.0f}}), std::invalid_argument);
  EXPECT_THROW(encode_frame({0, 1000, SampleFormat::float32, NAN}, {{1.0f}}),
               std::invalid_argument);
  EXPECT_THROW(encode_frame(ok, {{NAN}}), std::invalid_argument);
  // The largest allowed payload: 16 channels × 2048 int16 samples = 65536 bytes.
  EXPECT_EQ(encode_frame(ok, Channels(16, std::vector<float>(2048))).size(), 20u + 65536u + 4u);
}

// ---------------------------------------------------------------------------------------------
TEST(FrameDecoder, ByteAtATimeEqualsWholeStream) {
  Bytes stream;
  for (std::uint32_t seq = 0; seq < 20; ++seq) append(stream, frame(seq, 8, 32));
  Collector whole, bytewise;
  whole.decoder.feed(stream);
  for (std::uint8_t b : stream) bytewise.decoder.feed(std::span(&b, 1));
  ASSERT_EQ(bytewise.frames.size(), 20u);
  for (std::size_t i = 0; i < 20; ++i) {
    EXPECT_EQ(bytewise.frames[i].sequence, i);
    EXPECT_EQ(bytewise.frames[i].channels, whole.frames[i].channels);
  }
  EXPECT_EQ(bytewise.decoder.stats().bytes_discarded, 0u);
}

TEST(FrameDecoder, RandomChunkingDeliversEveryFrame) {
  std::mt19937 rng(1234);
  Bytes stream;
  std::vector<Channels> sent;
  for (std::uint32_t seq = 0; seq < 200; ++seq) {
    const std::size_t nch = 1 + rng() % 16, spc = 1 + rng() % 300;
    sent.push_back(make_channels(nch, spc, seq));
    append(stream, encode_frame({seq, 1000 + seq, SampleFormat::int16, kScale}, sent.back()));
  }
  for (int round = 0; round < 5; ++round) {
    Collector col;
    std::size_t pos = 0;
    while (pos < stream.size()) {
      const std::size_t n = std::min<std::size_t>(1 + rng() % 5000, stream.size() - pos);
      col.decoder.feed(std::span(stream).subspan(pos, n));
      pos += n;
    }
    ASSERT_EQ(col.frames.size(), sent.size());
    for (std::size_t i = 0; i < sent.size(); ++i) {
      EXPECT_EQ(col.frames[i].sequence, i);
      EXPECT_EQ(col.frames[i].rate, 1000 + i);
      EXPECT_EQ(col.frames[i].channels, sent[i]);
    }
    EXPECT_EQ(col.decoder.stats().bytes_discarded, 0u);
    EXPECT_EQ(col.decoder.stats().sequence_gaps, 0u);
  }
}

TEST(FrameDecoder, GarbageBeforeAndBetweenFramesIsDiscarded) {
  std::mt19937 rng(99);
  Bytes stream;
  std::uint64_t garbage = 0, framed = 0;
  for (std::uint32_t seq = 0; seq < 50; ++seq) {
    // Unfiltered random garbage: it may contain sync bytes and plausible false headers.
    const std::size_t n = rng() % 3000;
    for (std::size_t i = 0; i < n; ++i) stream.push_back(static_cast<std::uint8_t>(rng()));
    garbage += n;
    const Bytes f = frame(seq, 4, 64);
    append(stream, f);
    framed += f.size();
  }
  Collector col;
  std::size_t pos = 0;
  while (pos < stream.size()) {
    const std::size_t n = std::min<std::size_t>(1 + rng() % 700, stream.size() - pos);
    col.decoder.feed(std::span(stream).subspan(pos, n));
    pos += n;
  }
  ASSERT_EQ(col.frames.size(), 50u);
  for (std::uint32_t seq = 0; seq < 50; ++seq) {
    EXPECT_EQ(col.frames[seq].sequence, seq);
    EXPECT_EQ(col.frames[seq].channels, make_channels(4, 64, seq));
  }
  EXPECT_EQ(col.decoder.stats().bytes_discarded, garbage);
  EXPECT_EQ(col.decoder.stats().sequence_gaps, 0u);
  EXPECT_EQ(col.decoder.buffered(), 0u);
  col.expect_invariant(framed);
}

TEST(FrameDecoder, CorruptedFramesAreCountedAndSkipped) {
  Bytes stream;
  std::uint64_t good_bytes = 0;
  for (std::uint32_t seq = 0; seq < 6; ++seq) {
    Bytes f = frame(seq, 2, 16);
    if (seq == 2)
      f[30] ^= 0x01;  // payload bit flip
    else if (seq == 4)
      f.back() ^= 0x80;  // CRC field bit flip
    else
      good_bytes += f.size();
    append(stream, f);
  }
  Collector col;
  col.decoder.feed(stream);
  ASSERT_EQ(col.frames.size(), 4u);
  EXPECT_EQ(col.frames[0].sequence, 0u);
  EXPECT_EQ(col.frames[1].sequence, 1u);
  EXPECT_EQ(col.frames[2].sequence, 3u);
  EXPECT_EQ(col.frames[3].sequence, 5u);
  EXPECT_FALSE(col.frames[1].gap_before);
  EXPECT_TRUE(col.frames[2].gap_before);  // frame 2 lost before it
  EXPECT_TRUE(col.frames[3].gap_before);
  const auto& s = col.decoder.stats();
  EXPECT_EQ(s.crc_errors, 2u);
  EXPECT_EQ(s.sequence_gaps, 2u);
  EXPECT_EQ(s.bytes_discarded, stream.size() - good_bytes);
  col.expect_invariant(good_bytes);
}

TEST(FrameDecoder, TruncatedFrameFollowedByAGoodOne) {
  // A frame cut short (bytes lost on the line) swallows the start of the next frame into its
  // announced length; the CRC fails and the decoder must find the next frame inside those bytes.
  Bytes stream = frame(0, 2, 100);
  const Bytes f1 = frame(1, 2, 100);
  stream.insert(stream.end(), f1.begin(), f1.begin() + 200);  // truncated
  append(stream, frame(2, 2, 100));
  append(stream, frame(3, 2, 100));
  Collector col;
  col.decoder.feed(stream);
  ASSERT_EQ(col.frames.size(), 3u);
  EXPECT_EQ(col.frames[1].sequence, 2u);
  EXPECT_EQ(col.frames[2].sequence, 3u);
  EXPECT_EQ(col.decoder.stats().crc_errors, 1u);
  EXPECT_EQ(col.decoder.stats().sequence_gaps, 1u);
  EXPECT_EQ(col.decoder.stats().bytes_discarded, 200u);
}

TEST(FrameDecoder, SequenceGapsIncludingWraparound) {
  using GapsResets = std::pair<std::uint64_t, std::uint64_t>;
  auto gaps_for = [](std::vector<std::uint32_t> seqs) {
    Collector col;
    for (auto s : seqs) col.decoder.feed(frame(s, 1, 4));
    EXPECT_EQ(col.frames.size(), seqs.size());
    return GapsResets(col.decoder.stats().sequence_gaps, col.decoder.stats().sequence_resets);
  };
  EXPECT_EQ(gaps_for({0, 1, 2, 3}), GapsResets(0, 0));
  EXPECT_EQ(gaps_for({0, 1, 4, 5, 9}), GapsResets(5, 0));
  EXPECT_EQ(gaps_for({0xFFFFFFFEu, 0xFFFFFFFFu, 0, 1}), GapsResets(0, 0));  // wraps cleanly
  EXPECT_EQ(gaps_for({0xFFFFFFFEu, 1}), GapsResets(2, 0));                  // lost 0xFFFFFFFF and 0
  EXPECT_EQ(gaps_for({500, 501, 0, 1}), GapsResets(0, 1));                  // sender restarted
  EXPECT_EQ(gaps_for({7, 7}), GapsResets(0, 1));                            // duplicate
}

TEST(FrameDecoder, ResetForgetsPartialFrameAndSequence) {
  Collector col;
  col.decoder.feed(frame(10, 1, 4));
  const Bytes f = frame(11, 1, 4);
  col.decoder.feed(std::span(f).first(10));
  EXPECT_EQ(col.decoder.buffered(), 10u);
  col.decoder.reset();
  EXPECT_EQ(col.decoder.buffered(), 0u);
  EXPECT_EQ(col.decoder.stats().bytes_discarded, 10u);
  col.decoder.feed(frame(500, 1, 4));  // a new sequence after a reconnect: no gap
  EXPECT_EQ(col.decoder.stats().sequence_gaps, 0u);
  EXPECT_EQ(col.decoder.stats().sequence_resets, 0u);
  ASSERT_EQ(col.frames.size(), 2u);
  EXPECT_FALSE(col.frames[1].gap_before);
}

TEST(FrameDecoder, FalseSyncWordsInsideGarbage) {
  // (a) A sync word followed by another sync word: the first "header" has version 0xA5.
  // (b) A sync word with a plausible header announcing 1000 bytes of payload, then a genuine frame
  //     that starts inside that announced length: the decoder waits, the CRC fails, and the bytes
  //     after the false sync are re-examined rather than skipped.
  // (c) A lone 0xA5 immediately before a frame.
  Bytes stream = {0x00, 0xA5, 0x5A};
  append(stream, frame(0));
  Bytes false_header = frame(99, 1, 500);  // 1000-byte payload announced
  false_header.resize(kFrameHeaderBytes);
  append(stream, false_header);
  append(stream, frame(1));
  append(stream, frame(2));
  stream.push_back(0xA5);
  append(stream, frame(3));
  Bytes filler(1200, 0x11);  // completes the false frame's announced length
  append(stream, filler);
  append(stream, frame(4));

  for (std::size_t chunk : {std::size_t{1}, std::size_t{7}, stream.size()}) {
    Collector col;
    for (std::size_t pos = 0; pos < stream.size(); pos += chunk)
      col.decoder.feed(std::span(stream).subspan(pos, std::min(chunk, stream.size() - pos)));
    ASSERT_EQ(col.frames.size(), 5u) << "chunk " << chunk;
    for (std::uint32_t seq = 0; seq < 5; ++seq) {
      EXPECT_EQ(col.frames[seq].sequence, seq);
      EXPECT_EQ(col.frames[seq].channels, make_channels(2, 16, seq));
    }
    EXPECT_EQ(col.decoder.stats().crc_errors, 1u);  // the false 1000-byte frame
    EXPECT_EQ(col.decoder.stats().sequence_gaps, 0u);
    EXPECT_EQ(col.decoder.stats().bytes_discarded, 3u + kFrameHeaderBytes + 1u + filler.size());
  }
}

TEST(FrameDecoder, AbsurdLengthsAreRejectedWithoutWaitingOrAllocating) {
  // 16 channels × 65535 float32 samples would be a 4 MiB payload: over the 64 KiB limit.
  Bytes huge(kFrameHeaderBytes);
  const Bytes real = frame(0, 1, 4);
  std::copy(real.begin(), real.begin() + kFrameHeaderBytes, huge.begin());
  huge[3] = 1;      // float32
  huge[4] = 16;     // channels
  huge[14] = 0xFF;  // 65535 samples per channel
  huge[15] = 0xFF;
  huge[16] = 0x00;  // scale 1.0f
  huge[17] = 0x00;
  huge[18] = 0x80;
  huge[19] = 0x3F;
  Collector col;
  col.decoder.feed(huge);
  EXPECT_EQ(col.decoder.stats().oversize_headers, 1u);
  EXPECT_EQ(col.decoder.buffered(), 0u);  // nothing kept waiting for 4 MiB
  col.decoder.feed(frame(1));
  ASSERT_EQ(col.frames.size(), 1u);  // delivered at once, not after 4 MiB
  EXPECT_EQ(col.decoder.stats().bytes_discarded, kFrameHeaderBytes);

  // Invalid fields: version, format, channel count 0 and 17, reserved, rate 0 and too high,
  // 0 samples, NaN and zero scale.
  const std::vector<std::pair<std::size_t, std::uint8_t>> bad = {
      {2, 2}, {3, 7}, {4, 0}, {4, 17}, {5, 1}, {14, 0}, {19, 0x7F}};
  for (const auto& [off, val] : bad) {
    Bytes f = frame(5, 1, 4);
    f[off] = val;
    if (off == 14) f[15] = 0;     // 0 samples per channel
    if (off == 19) f[18] = 0xC0;  // 00 00 C0 7F = 0x7FC00000: NaN scale
    fix_crc(f);
    Collector c;
    c.decoder.feed(f);
    EXPECT_EQ(c.frames.size(), 0u) << "offset " << off;
    EXPECT_EQ(c.decoder.stats().invalid_headers, 1u) << "offset " << off;
  }
  for (std::uint32_t rate : {0u, kFrameMaxSampleRateHz + 1}) {
    Bytes f = frame(5, 1, 4);
    for (int i = 0; i < 4; ++i) f[10 + i] = static_cast<std::uint8_t>(rate >> (8 * i));
    fix_crc(f);
    Collector c;
    c.decoder.feed(f);
    EXPECT_EQ(c.decoder.stats().invalid_headers, 1u) << "rate " << rate;
  }
  // A smaller configured limit.
  Collector small;
  FrameDecoder limited([&](const DecodedFrame&) { small.frames.push_back({}); }, 1024);
  limited.feed(frame(0, 1, 512));  // 1024-byte payload: allowed
  limited.feed(frame(1, 1, 513));  // 1026: oversize
  EXPECT_EQ(small.frames.size(), 1u);
  EXPECT_EQ(limited.stats().oversize_headers, 1u);
}

TEST(FrameDecoder, NonFiniteFloatSamplesDropTheFrame) {
  Collector col;
  col.decoder.feed(encode_frame({0, 100, SampleFormat::float32, 1.0f}, {{1.0f, NAN}}));
  col.decoder.feed(encode_frame({1, 100, SampleFormat::float32, 1.0f}, {{INFINITY, 1.0f}}));
  col.decoder.feed(encode_frame({2, 100, SampleFormat::float32, 1.0f}, {{-INFINITY}}));
  col.decoder.feed(encode_frame({3, 100, SampleFormat::float32, 1.0f}, {{1.0f, 2.0f}}));
  ASSERT_EQ(col.frames.size(), 1u);
  EXPECT_EQ(col.frames[0].sequence, 3u);
  EXPECT_TRUE(col.frames[0].gap_before);  // the dropped frames' samples are missing
  EXPECT_EQ(col.decoder.stats().bad_values, 3u);
  EXPECT_EQ(col.decoder.stats().sequence_gaps, 0u);  // the dropped frames were received
}

TEST(FrameDecoder, ExceptionFromCallbackLeavesDecoderUsable) {
  int calls = 0;
  FrameDecoder d([&](const DecodedFrame& f) {
    ++calls;
    if (f.sequence == 1) throw std::runtime_error("consumer failed");
  });
  Bytes s = frame(0);
  append(s, frame(1));
  append(s, frame(2));
  EXPECT_THROW(d.feed(s), std::runtime_error);
  EXPECT_EQ(calls, 2);
  d.feed(frame(3));  // frame 2, still buffered, comes first
  EXPECT_EQ(calls, 4);
  EXPECT_EQ(d.stats().frames_ok, 4u);
}

TEST(FrameDecoder, TenMegabytesOfRandomBytes) {
  std::mt19937 rng(20240517);
  Collector col;
  std::size_t max_buffered = 0;
  Bytes chunk;
  std::uint64_t total = 0;
  while (total < 10u * 1024 * 1024) {
    chunk.resize(1 + rng() % 9000);
    for (auto& b : chunk) b = static_cast<std::uint8_t>(rng());
    // Make false syncs frequent: plant sync words at random positions.
    for (int k = 0; k < 4 && chunk.size() > 2; ++k) {
      const std::size_t at = rng() % (chunk.size() - 1);
      chunk[at] = kFrameSync0;
      chunk[at + 1] = kFrameSync1;
    }
    col.decoder.feed(chunk);
    total += chunk.size();
    max_buffered = std::max(max_buffered, col.decoder.buffered());
  }
  EXPECT_EQ(col.frames.size(), 0u);
  EXPECT_LT(max_buffered, kFrameMaxBytes);
  col.expect_invariant(0);
  EXPECT_GT(col.decoder.stats().invalid_headers, 1000u);

  // Random bytes interleaved with genuine frames: exactly the genuine ones come out.
  Collector mixed;
  std::vector<std::uint32_t> expected;
  for (std::uint32_t seq = 0; seq < 300; ++seq) {
    chunk.resize(rng() % 20000);
    for (auto& b : chunk) b = static_cast<std::uint8_t>(rng());
    mixed.decoder.feed(chunk);
    mixed.decoder.feed(frame(seq, 8, 128));
    expected.push_back(seq);
  }
  ASSERT_EQ(mixed.frames.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(mixed.frames[i].sequence, expected[i]);
    EXPECT_EQ(mixed.frames[i].channels, make_channels(8, 128, expected[i]));
  }
}

TEST(FrameDecoder, CleanGarbageCountsExactly) {
  std::mt19937 rng(5);
  Collector col;
  const Bytes g = clean_garbage(rng, 12345);
  col.decoder.feed(g);
  EXPECT_EQ(col.decoder.stats().bytes_discarded, g.size());
  EXPECT_EQ(col.decoder.stats().invalid_headers, 0u);
  EXPECT_EQ(col.decoder.buffered(), 0u);
}

// ---------------------------------------------------------------------------------------------
struct TextCollector {
  std::vector<std::vector<float>> lines;
  TextLineDecoder decoder;
  explicit TextCollector(std::size_t channels)
      : decoder(channels,
                [this](std::span<const float> v) { lines.emplace_back(v.begin(), v.end()); }) {}
  void feed(std::string_view s) {
    decoder.feed(std::span(reinterpret_cast<const std::uint8_t*>(s.data()), s.size()));
  }
};

TEST(TextLineDecoder, GoodLinesOneChannel) {
  TextCollector t(1);
  t.feed("1.5\n-2\n3e-3\n  +0.25  \n.5\n");
  EXPECT_EQ(t.lines, (std::vector<std::vector<float>>{{1.5f}, {-2.0f}, {3e-3f}, {0.25f}, {0.5f}}));
  EXPECT_EQ(t.decoder.stats().lines_ok, 5u);
  EXPECT_EQ(t.decoder.stats().bad_lines, 0u);
}

TEST(TextLineDecoder, SeparatorsAndCrlf) {
  TextCollector t(3);
  t.feed("1,2,3\n1 2 3\r\n1, 2 ,3\r\n\t1\t2\t3\t\n1 ,2, 3\r\n");
  ASSERT_EQ(t.lines.size(), 5u);
  for (const auto& l : t.lines) EXPECT_EQ(l, (std::vector<float>{1, 2, 3}));
  EXPECT_EQ(t.decoder.stats().bad_lines, 0u);
}

TEST(TextLineDecoder, BlankLinesAreIgnored) {
  TextCollector t(2);
  t.feed("\n\r\n   \n1 2\n\n");
  EXPECT_EQ(t.lines.size(), 1u);
  EXPECT_EQ(t.decoder.stats().bad_lines, 0u);
}

TEST(TextLineDecoder, BadLinesAreCountedAndSkipped) {
  TextCollector t(3);
  const std::vector<std::string> bad = {"1,2",
                                        "1,2,3,4",
                                        "abc",
                                        "1.5x,2,3",
                                        "1,,2,3",
                                        "1,2,3,",
                                        ",1,2,3",
                                        "nan,1,2",
                                        "1,inf,2",
                                        "1,2,-INF",
                                        "1e99,1,2",
                                        "0x10,1,2",
                                        "+-1,2,3",
                                        "1;2;3",
                                        "1,2,3\r\r",
                                        "1\r2 3",
                                        std::string("1,2\0,3", 6),
                                        "\xff\xfe\x01"};
  std::string all;
  for (const auto& b : bad) all += b + "\n";
  all += "4,5,6\n";
  t.feed(all);
  EXPECT_EQ(t.decoder.stats().bad_lines, bad.size());
  ASSERT_EQ(t.lines.size(), 1u);
  EXPECT_EQ(t.lines[0], (std::vector<float>{4, 5, 6}));
}

TEST(TextLineDecoder, OverlongLines) {
  TextCollector t(1);
  const std::string exactly_max = "1" + std::string(kTextMaxLineBytes - 1, ' ');
  t.feed(exactly_max + "\n");
  t.feed(exactly_max + "\r\n");      // the \r is part of the terminator
  t.feed(exactly_max + " \n");       // 1025 bytes of content
  t.feed(std::string(100000, '7'));  // never buffered beyond the limit
  t.feed("\n2\n");
  EXPECT_EQ(t.decoder.stats().lines_ok, 3u);
  EXPECT_EQ(t.decoder.stats().bad_lines, 2u);
  ASSERT_EQ(t.lines.size(), 3u);
  EXPECT_EQ(t.lines[2], std::vector<float>{2.0f});
}

TEST(TextLineDecoder, ByteAtATimeAndRandomBytes) {
  const std::string text = "0.1 0.2\r\n0.3,0.4\nbad\n0.5\t0.6\n";
  TextCollector whole(2), bytewise(2);
  whole.feed(text);
  for (char c : text) bytewise.feed(std::string_view(&c, 1));
  EXPECT_EQ(bytewise.lines, whole.lines);
  EXPECT_EQ(bytewise.decoder.stats().bad_lines, 1u);

  std::mt19937 rng(42);
  TextCollector noise(4);
  std::vector<std::uint8_t> chunk;
  for (int i = 0; i < 200; ++i) {
    chunk.resize(rng() % 10000);
    for (auto& b : chunk) b = static_cast<std::uint8_t>(rng() % 8 == 0 ? '\n' : rng());
    noise.decoder.feed(chunk);
  }
  for (const auto& l : noise.lines) {
    ASSERT_EQ(l.size(), 4u);
    for (float v : l) EXPECT_TRUE(std::isfinite(v));
  }
  TextCollector after(4);  // a partial line then reset: the next line parses cleanly
  after.feed("1 2 3");
  after.decoder.reset();
  after.feed("5 6 7 8\n");
  ASSERT_EQ(after.lines.size(), 1u);
  EXPECT_EQ(after.lines[0], (std::vector<float>{5, 6, 7, 8}));
}

TEST(TextLineDecoder, RejectsBadChannelCount) {
  EXPECT_THROW(TextLineDecoder(0, nullptr), std::invalid_argument);
  EXPECT_THROW(TextLineDecoder(17, nullptr), std::invalid_argument);
}

}  // namespace
}  // namespace vibgate::ingest
