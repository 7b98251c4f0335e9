// vibgate/analytics/recording.hpp — reading vibration recordings from files.
//
// The offline CLI, the tests and the simulator's replay mode read recordings through this one
// interface: WAV/FLAC and anything else libsndfile reads (sample rate from the file), CSV (one
// column per channel, optional header, rate given by the caller) and raw little-endian float32
// (one channel, rate given by the caller). libsndfile stays inside the implementation.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace vibgate::analytics {

enum class RecordingFormat { automatic, wav, csv, raw_f32 };

struct ReadOptions {
  RecordingFormat format = RecordingFormat::automatic;  // automatic: by extension (.csv, .f32/.raw)
  std::optional<double> sample_rate_hz;  // required for csv/raw; for WAV must match if given
  std::optional<double> start_s;         // keep samples from here (seconds from file start)
  std::optional<double> end_s;           // ... up to here (exclusive)
  std::optional<std::size_t> channel;    // keep only this channel (0-based); default all
};

struct Recording {
  std::string path;
  double sample_rate_hz = 0.0;
  std::size_t first_sample = 0;            // index in the file of samples[*][0] (after --start)
  std::vector<std::size_t> channel_index;  // file channel number of each entry in `channels`
  std::vector<std::vector<float>> channels;
};

// Outcome of a read: either a recording or a one-line error naming the file and the problem,
// e.g. "data/x.wav: sample 1234 of channel 0 is NaN".
struct ReadResult {
  std::optional<Recording> recording;
  std::string error;
  explicit operator bool() const { return recording.has_value(); }
};

// Reads a whole recording (after start/end/channel selection) into memory.
// Errors: missing/unreadable file, unsupported encoding, empty recording, NaN/Inf samples,
// missing or out-of-range (1 Hz … 1 MHz) rate for csv/raw, mismatching rate for WAV, malformed CSV
// (line and column named), start/end outside the recording or start >= end, channel out of range.
// Thread: any; no shared state.
ReadResult read_recording(const std::string& path, const ReadOptions& options);

// Writes float samples (one vector per channel, equal lengths) as a 32-bit float WAV.
// Returns an empty string on success, else a one-line error naming the file.
std::string write_wav_f32(const std::string& path, double sample_rate_hz,
                          const std::vector<std::vector<float>>& channels);

}  // namespace vibgate::analytics
