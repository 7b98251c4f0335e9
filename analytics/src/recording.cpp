// recording.cpp — reads vibration recordings (libsndfile audio, CSV, raw float32) into memory.
//
// Every reader does the same three things: learn the sample rate and channel count, keep only the
// frames in [start, end) of the selected channels while reading, and report the total frame count
// so the shared code can check --start against the real length. Checks that need no I/O (rate
// range, start/end sanity) run first; NaN/Inf and emptiness are checked last, on what was kept.
//
// Errors never escape as exceptions: every failure becomes one line "<path>: <problem>".
// Encodings: libsndfile decodes everything to float; we accept only encodings that are exact or
// at least sample-by-sample (PCM 8/16/24/32, float, double, u-law, a-law; FLAC is PCM inside) and
// reject lossy/predictive codecs (ADPCM, GSM, Vorbis, Opus, MP3, ...), whose artefacts would show
// up as spurious spectral content.
#include "vibgate/analytics/recording.hpp"

#include <sndfile.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <limits>
#include <new>
#include <string_view>
#include <system_error>
#include <utility>

namespace vibgate::analytics {
namespace {

constexpr double kMinRateHz = 1.0;
constexpr double kMaxRateHz = 1e6;
constexpr std::size_t kNone = std::numeric_limits<std::size_t>::max();

// Formats a number for messages: up to 7 significant digits, no trailing zeros ("3.05", "48000").
std::string num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.7g", v);
  return buf;
}

// Owns a POSIX file descriptor; closes it on destruction (close_now() reports the
// close(2) result where it matters, i.e. after writing).
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  // Closes now and returns 0 or the errno of close(2).
  int close_now() {
    int fd = std::exchange(fd_, -1);
    if (fd < 0) return 0;
    return ::close(fd) == 0 ? 0 : errno;
  }

 private:
  int fd_;
};

// Owns a SNDFILE*.
class SndFile {
 public:
  explicit SndFile(SNDFILE* f) : file_(f) {}
  SndFile(const SndFile&) = delete;
  SndFile& operator=(const SndFile&) = delete;
  ~SndFile() {
    if (file_ != nullptr) sf_close(file_);
  }
  SNDFILE* get() const { return file_; }
  // Closes now and returns libsndfile's error code (0 on success).
  int close_now() {
    SNDFILE* f = std::exchange(file_, nullptr);
    return f == nullptr ? 0 : sf_close(f);
  }

 private:
  SNDFILE* file_;
};

// Opens `path` for reading as a regular file (or FIFO). On failure returns -1 and sets `error`
// to "cannot open: <strerror>" / "is a directory" (without the path prefix).
int open_for_reading(const std::string& path, std::string& error) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    error = std::string("cannot open: ") + std::strerror(errno);
    return -1;
  }
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    ::close(fd);
    error = "cannot open: is a directory";
    return -1;
  }
  return fd;
}

// Reads the whole file behind `fd` into `out`. Returns "" or "read failed: <strerror>".
std::string read_all(int fd, std::string& out) {
  out.clear();
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return std::string("read failed: ") + std::strerror(errno);
    }
    if (n == 0) return "";
    out.append(buf, static_cast<std::size_t>(n));
  }
}

// floor(seconds * rate) as an index, saturating at kNone for huge products.
std::size_t to_index(double seconds, double rate) {
  double x = std::floor(seconds * rate);
  if (x <= 0.0) return 0;
  if (x >= 1.8e19) return kNone;
  return static_cast<std::size_t>(x);
}

// What a reader needs to know about the selection, fixed once the rate is known.
struct Selection {
  std::size_t start = 0;        // first frame to keep
  std::size_t end = kNone;      // one past the last frame to keep (before clamping)
  std::size_t channel = kNone;  // kNone: all channels
};

// What a reader produces: everything kept plus the facts the shared checks need.
struct Decoded {
  double rate = 0.0;
  std::size_t total_frames = 0;  // frames in the whole file
  std::size_t num_channels = 0;  // channels in the file
  std::vector<std::size_t> channel_index;
  std::vector<std::vector<float>> channels;  // kept frames [start, min(end, total)) only
};

Selection make_selection(const ReadOptions& o, double rate) {
  Selection s;
  s.start = o.start_s ? to_index(*o.start_s, rate) : 0;
  s.end = o.end_s ? to_index(*o.end_s, rate) : kNone;
  s.channel = o.channel ? *o.channel : kNone;
  return s;
}

// Checks the channel option against the file's channel count and sets up the kept channels.
// Returns "" or the message (without path).
std::string setup_channels(const Selection& sel, std::size_t num_channels, Decoded& d) {
  d.num_channels = num_channels;
  if (sel.channel != kNone) {
    if (sel.channel >= num_channels) {
      return "channel " + std::to_string(sel.channel) + " requested but the file has " +
             std::to_string(num_channels) + " channel(s)";
    }
    d.channel_index = {sel.channel};
  } else {
    d.channel_index.resize(num_channels);
    for (std::size_t c = 0; c < num_channels; ++c) d.channel_index[c] = c;
  }
  d.channels.assign(d.channel_index.size(), {});
  return "";
}

// Validates a caller-given rate. Returns "" or the message.
std::string check_rate_option(double rate) {
  if (!(rate >= kMinRateHz && rate <= kMaxRateHz)) {  // also rejects NaN
    return "--rate " + num(rate) + " Hz is out of range (1 Hz to 1 MHz)";
  }
  return "";
}

// Validates start/end on their own (no file needed). Returns "" or the message.
std::string check_range_options(const ReadOptions& o) {
  if (o.start_s) {
    if (!std::isfinite(*o.start_s))
      return "--start " + num(*o.start_s) + " s is not a finite number";
    if (*o.start_s < 0.0) return "--start " + num(*o.start_s) + " s is negative";
  }
  if (o.end_s) {
    if (!std::isfinite(*o.end_s)) return "--end " + num(*o.end_s) + " s is not a finite number";
    if (*o.end_s < 0.0) return "--end " + num(*o.end_s) + " s is negative";
    double start = o.start_s.value_or(0.0);
    if (start >= *o.end_s) {
      return "--start " + num(start) + " s is not before --end " + num(*o.end_s) + " s";
    }
  }
  return "";
}

// Short name of a libsndfile major format for messages ("WAV", "FLAC", ...).
std::string major_name(int format) {
  switch (format & SF_FORMAT_TYPEMASK) {
    case SF_FORMAT_WAV:
    case SF_FORMAT_WAVEX:
      return "WAV";
    case SF_FORMAT_W64:
      return "W64";
    case SF_FORMAT_RF64:
      return "RF64";
    case SF_FORMAT_AIFF:
      return "AIFF";
    case SF_FORMAT_AU:
      return "AU";
    case SF_FORMAT_CAF:
      return "CAF";
    case SF_FORMAT_FLAC:
      return "FLAC";
    case SF_FORMAT_OGG:
      return "Ogg";
    default:
      break;
  }
  SF_FORMAT_INFO info{};
  info.format = format & SF_FORMAT_TYPEMASK;
  if (sf_command(nullptr, SFC_GET_FORMAT_MAJOR, &info, sizeof info) == 0 && info.name != nullptr)
    return info.name;
  return "audio";
}

// libsndfile's name of the subformat ("IMA ADPCM"), or a hex code if it has none.
std::string subformat_name(int format) {
  SF_FORMAT_INFO info{};
  info.format = format & SF_FORMAT_SUBMASK;
  if (sf_command(nullptr, SFC_GET_FORMAT_INFO, &info, sizeof info) == 0 && info.name != nullptr)
    return info.name;
  char buf[32];
  std::snprintf(buf, sizeof buf, "subformat 0x%04x", static_cast<unsigned>(info.format));
  return buf;
}

bool subformat_accepted(int format) {
  switch (format & SF_FORMAT_SUBMASK) {
    case SF_FORMAT_PCM_S8:
    case SF_FORMAT_PCM_U8:
    case SF_FORMAT_PCM_16:
    case SF_FORMAT_PCM_24:
    case SF_FORMAT_PCM_32:
    case SF_FORMAT_FLOAT:
    case SF_FORMAT_DOUBLE:
    case SF_FORMAT_ULAW:
    case SF_FORMAT_ALAW:
      return true;
    default:
      return false;
  }
}

// Reads anything libsndfile opens. Returns "" or the message (without path).
std::string read_sndfile(const std::string& path, const ReadOptions& o, Decoded& d) {
  std::string err;
  Fd fd(open_for_reading(path, err));
  if (fd.get() < 0) return err;

  SF_INFO info{};
  // The fd stays ours (close_desc = false); sf_strerror(nullptr) is libsndfile's global last
  // error, so under concurrent failures the text could belong to another thread's failure.
  SndFile sf(sf_open_fd(fd.get(), SFM_READ, &info, SF_FALSE));
  if (sf.get() == nullptr) return std::string("cannot read as audio: ") + sf_strerror(nullptr);
  if (!subformat_accepted(info.format)) {
    return "unsupported " + major_name(info.format) + " encoding (" + subformat_name(info.format) +
           ")";
  }
  if (info.channels <= 0 || info.samplerate <= 0 || info.frames < 0) {
    return "invalid header (" + std::to_string(info.channels) + " channel(s), " +
           std::to_string(info.samplerate) + " Hz)";
  }
  d.rate = static_cast<double>(info.samplerate);
  if (o.sample_rate_hz && *o.sample_rate_hz != d.rate) {
    return "file rate is " + num(d.rate) + " Hz but " + num(*o.sample_rate_hz) +
           " Hz was requested";
  }
  const Selection sel = make_selection(o, d.rate);
  const auto nch = static_cast<std::size_t>(info.channels);
  if (std::string e = setup_channels(sel, nch, d); !e.empty()) return e;
  d.total_frames = static_cast<std::size_t>(info.frames);
  if (sel.start >= d.total_frames) return "";  // shared code reports empty / beyond the end
  const std::size_t stop = std::min(sel.end, d.total_frames);
  if (stop <= sel.start) return "";
  // The header's frame count is not trusted for allocation: a frame takes at least one byte per
  // channel, so a short file claiming billions of frames reserves no more than its size allows.
  struct stat st {};
  const std::size_t max_frames =
      fstat(fd.get(), &st) == 0 && st.st_size > 0 ? static_cast<std::size_t>(st.st_size) / nch : 0;
  for (auto& ch : d.channels) ch.reserve(std::min(stop - sel.start, max_frames));

  std::size_t pos = 0;
  if (sel.start > 0 && info.seekable &&
      sf_seek(sf.get(), static_cast<sf_count_t>(sel.start), SEEK_SET) >= 0) {
    pos = sel.start;
  }
  // At most 64 Ki samples per read whatever the channel count (libsndfile allows 1024 channels).
  const std::size_t kChunkFrames = std::max<std::size_t>(1, std::min<std::size_t>(4096, 65536 / nch));
  std::vector<float> buf(kChunkFrames * nch);
  while (pos < stop) {
    const std::size_t want = std::min(kChunkFrames, stop - pos);
    const sf_count_t got = sf_readf_float(sf.get(), buf.data(), static_cast<sf_count_t>(want));
    if (got <= 0) break;
    const auto n = static_cast<std::size_t>(got);
    const std::size_t from = sel.start > pos ? std::min(sel.start - pos, n) : 0;
    for (std::size_t k = 0; k < d.channels.size(); ++k) {
      const std::size_t c = d.channel_index[k];
      auto& out = d.channels[k];
      for (std::size_t i = from; i < n; ++i) out.push_back(buf[i * nch + c]);
    }
    pos += n;
  }
  if (pos < stop) {
    const char* why = sf_error(sf.get()) != 0 ? sf_strerror(sf.get()) : "file is truncated";
    return "read failed after " + std::to_string(pos) + " of " + std::to_string(d.total_frames) +
           " frames: " + why;
  }
  return "";
}

// Removes spaces, tabs and CR around a CSV field.
std::string_view trim(std::string_view s) {
  auto ws = [](char c) { return c == ' ' || c == '\t' || c == '\r'; };
  while (!s.empty() && ws(s.front())) s.remove_prefix(1);
  while (!s.empty() && ws(s.back())) s.remove_suffix(1);
  return s;
}

enum class Parse { ok, empty, not_number, out_of_range };

// Parses one trimmed CSV field as float32 with std::from_chars (locale independent). A leading
// '+' is tolerated; "nan"/"inf" parse (and are rejected later as NaN/Inf samples). Values too
// small for float become 0 or subnormal rather than an error.
Parse parse_float(std::string_view s, float& out) {
  if (s.empty()) return Parse::empty;
  if (s.size() > 1 && s.front() == '+' && s[1] != '-' && s[1] != '+') s.remove_prefix(1);
  const char* first = s.data();
  const char* last = s.data() + s.size();
  auto [ptr, ec] = std::from_chars(first, last, out);
  if (ec == std::errc::result_out_of_range && ptr == last) {
    double d = 0.0;
    auto r = std::from_chars(first, last, d);
    if (r.ec == std::errc() && r.ptr == last &&
        std::fabs(d) <= static_cast<double>(std::numeric_limits<float>::max())) {
      out = static_cast<float>(d);
      return Parse::ok;
    }
    return Parse::out_of_range;
  }
  if (ec != std::errc() || ptr != last) return Parse::not_number;
  return Parse::ok;
}

// Splits a line on commas into trimmed fields.
void split_fields(std::string_view line, std::vector<std::string_view>& fields) {
  fields.clear();
  for (;;) {
    const std::size_t comma = line.find(',');
    fields.push_back(trim(line.substr(0, comma)));
    if (comma == std::string_view::npos) return;
    line.remove_prefix(comma + 1);
  }
}

// Reads CSV: one column per channel, optional header, blank lines skipped. Line numbers in
// messages count physical lines from 1; columns count from 1.
std::string read_csv(const std::string& path, const ReadOptions& o, Decoded& d) {
  if (!o.sample_rate_hz) return "--rate is required for CSV input";
  std::string err;
  Fd fd(open_for_reading(path, err));
  if (fd.get() < 0) return err;
  std::string text;
  if (std::string e = read_all(fd.get(), text); !e.empty()) return e;

  d.rate = *o.sample_rate_hz;
  const Selection sel = make_selection(o, d.rate);
  std::string_view rest(text);
  if (rest.substr(0, 3) == "\xEF\xBB\xBF") rest.remove_prefix(3);  // UTF-8 byte order mark

  std::vector<std::string_view> fields;
  std::vector<float> row;
  std::size_t line_no = 0;
  std::size_t columns = 0;       // 0 until the first non-blank line
  std::size_t columns_line = 0;  // line that fixed the column count
  std::size_t frame = 0;         // data rows seen so far
  while (!rest.empty()) {
    const std::size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
    ++line_no;
    if (trim(line).empty()) continue;
    split_fields(line, fields);
    const std::string where = "line " + std::to_string(line_no);

    if (columns == 0) {
      columns = fields.size();
      columns_line = line_no;
      if (std::string e = setup_channels(sel, columns, d); !e.empty()) return e;
      bool all_numbers = true;
      float ignored = 0.0f;
      for (auto f : fields) {
        const Parse p = parse_float(f, ignored);
        if (p != Parse::ok && p != Parse::out_of_range) all_numbers = false;
      }
      if (!all_numbers) continue;  // header row
    } else if (fields.size() != columns) {
      return where + ": expected " + std::to_string(columns) + " column(s) as on line " +
             std::to_string(columns_line) + ", found " + std::to_string(fields.size());
    }

    row.resize(columns);
    for (std::size_t c = 0; c < columns; ++c) {
      const std::string col = where + ", column " + std::to_string(c + 1) + ": ";
      switch (parse_float(fields[c], row[c])) {
        case Parse::ok:
          break;
        case Parse::empty:
          return col + "empty value";
        case Parse::not_number:
          return col + "'" + std::string(fields[c]) + "' is not a number";
        case Parse::out_of_range:
          return col + "'" + std::string(fields[c]) + "' is out of range for 32-bit float";
      }
    }
    if (frame >= sel.start && frame < sel.end) {
      for (std::size_t k = 0; k < d.channels.size(); ++k) {
        d.channels[k].push_back(row[d.channel_index[k]]);
      }
    }
    ++frame;
  }
  d.total_frames = frame;
  return "";
}

// Reads headerless little-endian float32, one channel.
std::string read_raw_f32(const std::string& path, const ReadOptions& o, Decoded& d) {
  if (!o.sample_rate_hz) return "--rate is required for raw float32 input";
  std::string err;
  Fd fd(open_for_reading(path, err));
  if (fd.get() < 0) return err;
  std::string bytes;
  if (std::string e = read_all(fd.get(), bytes); !e.empty()) return e;
  if (bytes.size() % 4 != 0) {
    return "size " + std::to_string(bytes.size()) +
           " bytes is not a multiple of 4 (raw float32 input)";
  }
  d.rate = *o.sample_rate_hz;
  const Selection sel = make_selection(o, d.rate);
  if (std::string e = setup_channels(sel, 1, d); !e.empty()) return e;
  d.total_frames = bytes.size() / 4;
  const std::size_t stop = std::min(sel.end, d.total_frames);
  if (sel.start >= stop) return "";
  auto& out = d.channels[0];
  out.resize(stop - sel.start);
  for (std::size_t i = sel.start; i < stop; ++i) {
    std::uint32_t u = 0;
    std::memcpy(&u, bytes.data() + 4 * i, 4);
    if constexpr (std::endian::native == std::endian::big) u = __builtin_bswap32(u);
    out[i - sel.start] = std::bit_cast<float>(u);
  }
  return "";
}

// Lower-cased extension of `path` including the dot, or "".
std::string extension(const std::string& path) {
  const std::size_t slash = path.find_last_of('/');
  const std::size_t dot = path.find_last_of('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
  std::string ext = path.substr(dot);
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

// Shared checks on a decoded recording; moves the kept data into `rec`. Returns "" or message.
std::string finish(const ReadOptions& o, Decoded& d, Recording& rec) {
  const Selection sel = make_selection(o, d.rate);
  if (d.total_frames == 0) return "recording is empty";
  if (sel.start >= d.total_frames) {
    return "--start " + num(*o.start_s) + " s is beyond the end of the recording (" +
           num(static_cast<double>(d.total_frames) / d.rate) + " s)";
  }
  if (d.channels.empty() || d.channels[0].empty()) {
    return "recording is empty (no samples between --start " + num(o.start_s.value_or(0.0)) +
           " s and --end " + num(o.end_s.value_or(0.0)) + " s)";
  }
  // Earliest non-finite sample over the kept channels (ties: lowest channel).
  std::size_t bad_i = kNone, bad_k = 0;
  for (std::size_t k = 0; k < d.channels.size(); ++k) {
    const auto& ch = d.channels[k];
    const std::size_t limit = std::min(ch.size(), bad_i);
    for (std::size_t i = 0; i < limit; ++i) {
      if (!std::isfinite(ch[i])) {
        bad_i = i;
        bad_k = k;
        break;
      }
    }
  }
  if (bad_i != kNone) {
    const float v = d.channels[bad_k][bad_i];
    const char* what = std::isnan(v) ? "NaN" : (v > 0 ? "+Inf" : "-Inf");
    return "sample " + std::to_string(sel.start + bad_i) + " of channel " +
           std::to_string(d.channel_index[bad_k]) + " is " + what;
  }
  rec.sample_rate_hz = d.rate;
  rec.first_sample = sel.start;
  rec.channel_index = std::move(d.channel_index);
  rec.channels = std::move(d.channels);
  return "";
}

ReadResult read_impl(const std::string& path, const ReadOptions& options) {
  ReadResult result;
  auto fail = [&](const std::string& msg) {
    result.error = path + ": " + msg;
    return result;
  };
  if (options.sample_rate_hz) {
    if (std::string e = check_rate_option(*options.sample_rate_hz); !e.empty()) return fail(e);
  }
  if (std::string e = check_range_options(options); !e.empty()) return fail(e);

  RecordingFormat format = options.format;
  if (format == RecordingFormat::automatic) {
    const std::string ext = extension(path);
    if (ext == ".csv") {
      format = RecordingFormat::csv;
    } else if (ext == ".f32" || ext == ".raw") {
      format = RecordingFormat::raw_f32;
    } else {
      format = RecordingFormat::wav;
    }
  }
  Decoded d;
  std::string e;
  switch (format) {
    case RecordingFormat::csv:
      e = read_csv(path, options, d);
      break;
    case RecordingFormat::raw_f32:
      e = read_raw_f32(path, options, d);
      break;
    case RecordingFormat::wav:
    case RecordingFormat::automatic:
      e = read_sndfile(path, options, d);
      break;
  }
  if (!e.empty()) return fail(e);
  Recording rec;
  rec.path = path;
  if (e = finish(options, d, rec); !e.empty()) return fail(e);
  result.recording = std::move(rec);
  return result;
}

}  // namespace

// Reads a recording; never throws (allocation failure becomes an "out of memory" error).
ReadResult read_recording(const std::string& path, const ReadOptions& options) {
  try {
    return read_impl(path, options);
  } catch (const std::bad_alloc&) {
    ReadResult r;
    r.error = path + ": out of memory";
    return r;
  } catch (const std::exception& ex) {
    ReadResult r;
    r.error = path + ": " + ex.what();
    return r;
  }
}

// Writes a 32-bit float WAV; "" on success. The rate must be a whole number of Hz (WAV stores
// an integer); NaN/Inf samples are written as they are.
std::string write_wav_f32(const std::string& path, double sample_rate_hz,
                          const std::vector<std::vector<float>>& channels) {
  try {
    auto fail = [&](const std::string& msg) { return path + ": " + msg; };
    if (channels.empty()) return fail("no channels to write");
    if (channels.size() > 1024)
      return fail("too many channels (" + std::to_string(channels.size()) + ")");
    const std::size_t frames = channels[0].size();
    for (std::size_t c = 1; c < channels.size(); ++c) {
      if (channels[c].size() != frames) {
        return fail("channel " + std::to_string(c) + " has " + std::to_string(channels[c].size()) +
                    " samples but channel 0 has " + std::to_string(frames));
      }
    }
    if (!(sample_rate_hz >= 1.0 && sample_rate_hz <= 2147483647.0) ||
        sample_rate_hz != std::floor(sample_rate_hz)) {
      return fail("sample rate " + num(sample_rate_hz) + " Hz is not a positive whole number");
    }

    Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666));
    if (fd.get() < 0) return fail(std::string("cannot create: ") + std::strerror(errno));
    SF_INFO info{};
    info.samplerate = static_cast<int>(sample_rate_hz);
    info.channels = static_cast<int>(channels.size());
    info.format = SF_FORMAT_WAV | SF_FORMAT_FLOAT;
    SndFile sf(sf_open_fd(fd.get(), SFM_WRITE, &info, SF_FALSE));
    if (sf.get() == nullptr) return fail(std::string("cannot write WAV: ") + sf_strerror(nullptr));

    const std::size_t nch = channels.size();
    constexpr std::size_t kChunkFrames = 4096;
    std::vector<float> buf(kChunkFrames * nch);
    for (std::size_t pos = 0; pos < frames; pos += kChunkFrames) {
      const std::size_t n = std::min(kChunkFrames, frames - pos);
      for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t c = 0; c < nch; ++c) buf[i * nch + c] = channels[c][pos + i];
      }
      if (sf_writef_float(sf.get(), buf.data(), static_cast<sf_count_t>(n)) !=
          static_cast<sf_count_t>(n)) {
        return fail(std::string("write failed: ") + sf_strerror(sf.get()));
      }
    }
    if (int rc = sf.close_now(); rc != 0)
      return fail(std::string("write failed: ") + sf_error_number(rc));
    if (int rc = fd.close_now(); rc != 0)
      return fail(std::string("write failed: ") + std::strerror(rc));
    return "";
  } catch (const std::bad_alloc&) {
    return path + ": out of memory";
  } catch (const std::exception& ex) {
    return path + ": " + ex.what();
  }
}

}  // namespace vibgate::analytics
