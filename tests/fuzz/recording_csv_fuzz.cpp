// recording_csv_fuzz.cpp — libFuzzer target for the CSV reader: analytics::read_recording() on a
// .csv file (one column per channel, optional header row, BOM, blank lines). The input is the
// file; it is written to a per-process temporary file because the reader takes a path.
//
// Asserted beyond "no crash, no sanitizer report" (recording_checks.hpp):
//  - the result is a well-formed recording (equal-length finite channels, the given rate) or an
//    error naming the file;
//  - a read with channel/start/end selection drawn from the input's hash is exactly the slice of
//    the full read it names;
//  - round trip: the full read printed as CSV (%.9g, which prints every float exactly) and read
//    again gives the same samples bit for bit.
#include <cstdint>
#include <cstdio>
#include <string>

#include "fuzz_util.hpp"
#include "recording_checks.hpp"
#include "vibgate/analytics/recording.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace vibgate;
  using namespace vibgate::fuzz;
  static const TempFile in(".csv"), out("-out.csv");
  in.write(data, size);

  analytics::ReadOptions opt;
  opt.sample_rate_hz = 1000.0;
  const analytics::ReadResult all = analytics::read_recording(in.path(), opt);
  check_result(all, in.path());
  if (all) FUZZ_CHECK(all.recording->sample_rate_hz == 1000.0, "rate");

  const analytics::ReadResult part =
      analytics::read_recording(in.path(), selection(fnv1a({data, size}), opt, 1000.0));
  check_result(part, in.path());
  if (!all) return 0;
  if (part) check_slice(*all.recording, *part.recording);

  const analytics::Recording& rec = *all.recording;
  std::string text = "header\n";  // a non-numeric first row is a header
  char buf[32];
  for (std::size_t i = 0; i < rec.channels[0].size(); ++i) {
    for (std::size_t k = 0; k < rec.channels.size(); ++k) {
      std::snprintf(buf, sizeof buf, "%s%.9g", k == 0 ? "" : ", ",
                    static_cast<double>(rec.channels[k][i]));
      text += buf;
    }
    text += i % 2 == 0 ? "\n" : "\r\n";
  }
  if (rec.channels.size() > 1) text.replace(0, 6, "h" + std::string(rec.channels.size() - 1, ','));
  out.write(text.data(), text.size());
  check_round_trip(analytics::read_recording(out.path(), opt), rec);
  return 0;
}
