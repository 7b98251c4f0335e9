// recording_wav_fuzz.cpp — libFuzzer target for the WAV reader: analytics::read_recording() on a
// .wav file (libsndfile behind it; it also opens the other formats libsndfile knows, e.g. AIFF,
// AU, FLAC, so those headers are fuzzed too). The input is the file; it is written to a
// per-process temporary file because the reader takes a path.
//
// Asserted beyond "no crash, no sanitizer report" (recording_checks.hpp):
//  - the result is a well-formed recording (equal-length finite channels, rate in range) or an
//    error naming the file;
//  - a read with channel/start/end selection drawn from the input's hash is exactly the slice of
//    the full read it names (the reader seeks in the file for start);
//  - round trip: the full read written with write_wav_f32() and read again gives the same rate
//    and the same samples bit for bit.
#include <cstdint>

#include "fuzz_util.hpp"
#include "recording_checks.hpp"
#include "vibgate/analytics/recording.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace vibgate;
  using namespace vibgate::fuzz;
  static const TempFile in(".wav"), out("-out.wav");
  in.write(data, size);

  analytics::ReadOptions opt;
  opt.format = analytics::RecordingFormat::wav;
  const analytics::ReadResult all = analytics::read_recording(in.path(), opt);
  check_result(all, in.path());

  const std::uint64_t h = fnv1a({data, size});
  const double rate = all ? all.recording->sample_rate_hz : 48000.0;
  const analytics::ReadResult part = analytics::read_recording(in.path(), selection(h, opt, rate));
  check_result(part, in.path());
  if (!all) return 0;
  if (part) check_slice(*all.recording, *part.recording);

  const analytics::Recording& rec = *all.recording;
  const std::string err = analytics::write_wav_f32(out.path(), rec.sample_rate_hz, rec.channels);
  FUZZ_CHECK(err.empty(), err);
  check_round_trip(analytics::read_recording(out.path(), opt), rec);
  return 0;
}
