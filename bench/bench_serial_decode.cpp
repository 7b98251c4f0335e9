// bench_serial_decode.cpp — cost of decoding a real-time serial sensor stream: 8 channels ×
// 25.6 kHz, 256 samples per channel per frame (100 frames = 1 s of signal; 412 000 B/s on the wire
// as int16, 821 600 B/s as float32). One iteration decodes exactly one second of stream, fed in
// read-sized chunks, so the `rt_cpu_fraction` counter (CPU time per iteration / 1 s) is the share
// of one core the decoder needs in real time (the console prints it with SI prefixes: 1.07m =
// 0.00107). Requirement: < 0.05 (docs/serial-protocol.md).
//
//   BM_Decode/<format>/<chunk bytes>         FrameDecoder only (callback reads the samples)
//   BM_DecodeToBlocks/<format>/<chunk bytes> plus building one SampleBlock per channel per frame,
//                                            as SerialSensor does (copies and allocations)
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <ctime>
#include <numbers>
#include <span>
#include <string>
#include <vector>

#include "vibgate/common/types.hpp"
#include "vibgate/ingest/serial_frame.hpp"

namespace vi = vibgate::ingest;

namespace {

constexpr std::size_t kChannels = 8;
constexpr std::uint32_t kRate = 25600;
constexpr std::size_t kSpc = 256;
constexpr std::size_t kFramesPerSecond = kRate / kSpc;  // 100

// One second of stream: sines with a little noise, so int16 values use their range.
std::vector<std::uint8_t> one_second(vi::SampleFormat format) {
  std::vector<std::uint8_t> out;
  std::uint32_t lcg = 12345;
  for (std::uint32_t f = 0; f < kFramesPerSecond; ++f) {
    std::vector<std::vector<float>> ch(kChannels, std::vector<float>(kSpc));
    for (std::size_t c = 0; c < kChannels; ++c)
      for (std::size_t i = 0; i < kSpc; ++i) {
        lcg = lcg * 1664525u + 1013904223u;
        const double t = static_cast<double>(f * kSpc + i) / kRate;
        ch[c][i] = static_cast<float>(
            8.0 * std::sin(2 * std::numbers::pi * (100.0 + 37.0 * static_cast<double>(c)) * t) +
            static_cast<double>(lcg >> 16) / 65536.0 - 0.5);
      }
    const float scale = format == vi::SampleFormat::int16 ? 16.0f / 32768.0f : 1.0f;  // ±16 g
    const auto frame = vi::encode_frame({f, kRate, format, scale}, ch);
    out.insert(out.end(), frame.begin(), frame.end());
  }
  return out;
}

void feed_chunked(vi::FrameDecoder& d, std::span<const std::uint8_t> s, std::size_t chunk) {
  for (std::size_t pos = 0; pos < s.size(); pos += chunk)
    d.feed(s.subspan(pos, std::min(chunk, s.size() - pos)));
}

// CPU time of the calling thread (the benchmark loop runs on it).
double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// `cpu_seconds`: thread CPU time of the whole timed loop; one iteration = 1 s of signal.
void report(benchmark::State& state, std::size_t stream_bytes, std::uint64_t frames,
            double cpu_seconds) {
  const auto iterations = static_cast<std::uint64_t>(state.iterations());
  state.SetBytesProcessed(static_cast<std::int64_t>(iterations * stream_bytes));
  state.counters["rt_cpu_fraction"] = cpu_seconds / static_cast<double>(iterations);
  if (frames != iterations * kFramesPerSecond) state.SkipWithError("frames lost");
}

void BM_Decode(benchmark::State& state) {
  const auto format = static_cast<vi::SampleFormat>(state.range(0));
  const auto chunk = static_cast<std::size_t>(state.range(1));
  const auto stream = one_second(format);
  float sink = 0;
  vi::FrameDecoder decoder([&](const vi::DecodedFrame& f) {
    for (const auto& ch : f.channels) sink += ch.front() + ch.back();
  });
  const double cpu0 = thread_cpu_seconds();
  for (auto _ : state) {
    feed_chunked(decoder, stream, chunk);
    benchmark::DoNotOptimize(sink);
  }
  report(state, stream.size(), decoder.stats().frames_ok, thread_cpu_seconds() - cpu0);
}

void BM_DecodeToBlocks(benchmark::State& state) {
  const auto format = static_cast<vi::SampleFormat>(state.range(0));
  const auto chunk = static_cast<std::size_t>(state.range(1));
  const auto stream = one_second(format);
  std::vector<std::string> names;
  for (std::size_t c = 0; c < kChannels; ++c) names.push_back("pump1-de/" + std::to_string(c));
  std::vector<vibgate::SampleBlock> blocks;
  vi::FrameDecoder decoder([&](const vi::DecodedFrame& f) {
    for (std::size_t c = 0; c < f.channels.size(); ++c) {
      vibgate::SampleBlock b;
      b.channel = names[c];
      b.sample_rate_hz = f.sample_rate_hz;
      b.samples = f.channels[c];
      blocks.push_back(std::move(b));
    }
  });
  const double cpu0 = thread_cpu_seconds();
  for (auto _ : state) {
    feed_chunked(decoder, stream, chunk);
    benchmark::DoNotOptimize(blocks.data());
    blocks.clear();
  }
  report(state, stream.size(), decoder.stats().frames_ok, thread_cpu_seconds() - cpu0);
}

constexpr int kInt16 = static_cast<int>(vi::SampleFormat::int16);
constexpr int kFloat32 = static_cast<int>(vi::SampleFormat::float32);

}  // namespace

BENCHMARK(BM_Decode)
    ->ArgNames({"format", "chunk"})
    ->Args({kInt16, 4096})
    ->Args({kInt16, 64})
    ->Args({kFloat32, 4096})
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DecodeToBlocks)
    ->ArgNames({"format", "chunk"})
    ->Args({kInt16, 4096})
    ->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
