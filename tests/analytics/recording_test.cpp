// recording_test.cpp — read_recording/write_wav_f32 against files written here, both through
// write_wav_f32 and through libsndfile directly, plus every documented error message.
#include "vibgate/analytics/recording.hpp"

#include <gtest/gtest.h>
#include <sndfile.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace vibgate::analytics {
namespace {

namespace fs = std::filesystem;

// Deterministic test signal: channel c, sample i, in (-1, 1).
float signal(std::size_t c, std::size_t i) {
  return 0.8f * static_cast<float>(
                    std::sin(0.01 * static_cast<double>(i) * static_cast<double>(c + 1))) +
         0.001f * static_cast<float>(c);
}

std::vector<std::vector<float>> make_channels(std::size_t nch, std::size_t n) {
  std::vector<std::vector<float>> ch(nch, std::vector<float>(n));
  for (std::size_t c = 0; c < nch; ++c)
    for (std::size_t i = 0; i < n; ++i) ch[c][i] = signal(c, i);
  return ch;
}

class RecordingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::random_device rd;
    dir_ = fs::temp_directory_path() / ("vibgate_recording_test_" + std::string(info->name()) +
                                        "_" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  std::string write_text(const std::string& name, const std::string& text) const {
    const std::string p = path(name);
    std::ofstream out(p, std::ios::binary);
    out << text;
    return p;
  }

  // Writes interleaved samples with libsndfile in the given format; `write` does the writing.
  template <typename Write>
  std::string write_sndfile(const std::string& name, int format, int rate, int nch,
                            Write write) const {
    const std::string p = path(name);
    SF_INFO info{};
    info.samplerate = rate;
    info.channels = nch;
    info.format = format;
    SNDFILE* f = sf_open(p.c_str(), SFM_WRITE, &info);
    EXPECT_NE(f, nullptr) << sf_strerror(nullptr);
    if (f == nullptr) return p;
    write(f);
    sf_close(f);
    return p;
  }

  static ReadOptions with_rate(double rate) {
    ReadOptions o;
    o.sample_rate_hz = rate;
    return o;
  }

  // Reads and expects failure; returns the error.
  static std::string read_error(const std::string& p, const ReadOptions& o = {}) {
    ReadResult r = read_recording(p, o);
    EXPECT_FALSE(r) << "expected an error reading " << p;
    EXPECT_FALSE(r.error.empty());
    EXPECT_EQ(r.error.find('\n'), std::string::npos) << r.error;
    EXPECT_EQ(r.error.rfind(p + ": ", 0), 0u) << "error must start with the path: " << r.error;
    return r.error;
  }

  // Reads and expects success.
  static Recording read_ok(const std::string& p, const ReadOptions& o = {}) {
    ReadResult r = read_recording(p, o);
    EXPECT_TRUE(r) << r.error;
    EXPECT_TRUE(r.error.empty());
    return r ? *r.recording : Recording{};
  }

  fs::path dir_;
};

// ---- WAV via write_wav_f32 -------------------------------------------------------------------

TEST_F(RecordingTest, WriteWavF32RoundTripIsExact) {
  const auto ch = make_channels(2, 1000);
  const std::string p = path("two.wav");
  ASSERT_EQ(write_wav_f32(p, 12000.0, ch), "");
  const Recording r = read_ok(p);
  EXPECT_EQ(r.path, p);
  EXPECT_EQ(r.sample_rate_hz, 12000.0);
  EXPECT_EQ(r.first_sample, 0u);
  EXPECT_EQ(r.channel_index, (std::vector<std::size_t>{0, 1}));
  ASSERT_EQ(r.channels.size(), 2u);
  EXPECT_EQ(r.channels[1][10], signal(1, 10));
  EXPECT_EQ(r.channels, ch);
}

TEST_F(RecordingTest, WriteWavF32ProducesFloatWavHeader) {
  const std::string p = path("hdr.wav");
  ASSERT_EQ(write_wav_f32(p, 48000.0, make_channels(3, 50)), "");
  SF_INFO info{};
  SNDFILE* f = sf_open(p.c_str(), SFM_READ, &info);
  ASSERT_NE(f, nullptr);
  sf_close(f);
  EXPECT_EQ(info.format, SF_FORMAT_WAV | SF_FORMAT_FLOAT);
  EXPECT_EQ(info.channels, 3);
  EXPECT_EQ(info.samplerate, 48000);
  EXPECT_EQ(info.frames, 50);
}

TEST_F(RecordingTest, WriteWavF32LargerThanOneChunk) {
  const auto ch = make_channels(1, 10000);  // crosses the 4096-frame chunking in both directions
  const std::string p = path("long.wav");
  ASSERT_EQ(write_wav_f32(p, 1000.0, ch), "");
  const Recording r = read_ok(p);
  EXPECT_EQ(r.channels, ch);
}

// ---- WAV/FLAC written with libsndfile directly -----------------------------------------------

TEST_F(RecordingTest, ReadsPcm16Exactly) {
  std::vector<short> v(2 * 300);
  for (std::size_t i = 0; i < v.size(); ++i)
    v[i] = static_cast<short>(static_cast<int>(i * 211 % 65536) - 32768);
  const std::string p = write_sndfile("pcm16.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 8000, 2,
                                      [&](SNDFILE* f) { sf_writef_short(f, v.data(), 300); });
  const Recording r = read_ok(p);
  EXPECT_EQ(r.sample_rate_hz, 8000.0);
  ASSERT_EQ(r.channels.size(), 2u);
  ASSERT_EQ(r.channels[1].size(), 300u);
  for (std::size_t i = 0; i < 300; ++i) {
    for (std::size_t c = 0; c < 2; ++c) {
      ASSERT_EQ(r.channels[c][i], static_cast<float>(v[2 * i + c]) / 32768.0f) << i << "," << c;
    }
  }
  EXPECT_EQ(r.channels[1][10], static_cast<float>(v[21]) / 32768.0f);
}

TEST_F(RecordingTest, ReadsPcm24Exactly) {
  std::vector<int> v24(400);
  for (std::size_t i = 0; i < v24.size(); ++i)
    v24[i] = static_cast<int>((i * 40961u) % (1u << 24)) - (1 << 23);
  std::vector<int> v32(v24.size());
  for (std::size_t i = 0; i < v24.size(); ++i)
    v32[i] = v24[i] * 256;  // libsndfile wants MSB-aligned
  const std::string p = write_sndfile("pcm24.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_24, 25600, 1,
                                      [&](SNDFILE* f) { sf_writef_int(f, v32.data(), 400); });
  const Recording r = read_ok(p);
  ASSERT_EQ(r.channels.size(), 1u);
  ASSERT_EQ(r.channels[0].size(), 400u);
  for (std::size_t i = 0; i < v24.size(); ++i)
    ASSERT_EQ(r.channels[0][i], static_cast<float>(v24[i]) / 8388608.0f) << i;
}

TEST_F(RecordingTest, ReadsPcm32WithinFloatPrecision) {
  std::vector<int> v(500);
  for (std::size_t i = 0; i < v.size(); ++i)
    v[i] = static_cast<int>(static_cast<std::int64_t>(i) * 8589869ll % 4294967296ll - 2147483648ll);
  const std::string p = write_sndfile("pcm32.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_32, 1000, 1,
                                      [&](SNDFILE* f) { sf_writef_int(f, v.data(), 500); });
  const Recording r = read_ok(p);
  ASSERT_EQ(r.channels[0].size(), 500u);
  for (std::size_t i = 0; i < v.size(); ++i) {
    const double want = static_cast<double>(v[i]) / 2147483648.0;
    ASSERT_NEAR(r.channels[0][i], want, 1.2e-7) << i;  // float keeps 24 of the 32 bits
  }
}

TEST_F(RecordingTest, ReadsDoubleWavAsNearestFloat) {
  std::vector<double> v(3 * 200);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = std::cos(0.37 * static_cast<double>(i)) * 0.9;
  const std::string p = write_sndfile("dbl.wav", SF_FORMAT_WAV | SF_FORMAT_DOUBLE, 51200, 3,
                                      [&](SNDFILE* f) { sf_writef_double(f, v.data(), 200); });
  const Recording r = read_ok(p);
  EXPECT_EQ(r.sample_rate_hz, 51200.0);
  ASSERT_EQ(r.channels.size(), 3u);
  for (std::size_t i = 0; i < 200; ++i)
    for (std::size_t c = 0; c < 3; ++c)
      ASSERT_FLOAT_EQ(r.channels[c][i], static_cast<float>(v[3 * i + c])) << i << "," << c;
  EXPECT_FLOAT_EQ(r.channels[1][10], static_cast<float>(v[31]));
}

TEST_F(RecordingTest, ReadsFlac16Exactly) {
  std::vector<short> v(1000);
  for (std::size_t i = 0; i < v.size(); ++i)
    v[i] = static_cast<short>(std::lround(20000.0 * std::sin(0.05 * static_cast<double>(i))));
  const std::string p = write_sndfile("x.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 44100, 1,
                                      [&](SNDFILE* f) { sf_writef_short(f, v.data(), 1000); });
  const Recording r = read_ok(p);
  EXPECT_EQ(r.sample_rate_hz, 44100.0);
  ASSERT_EQ(r.channels[0].size(), 1000u);
  for (std::size_t i = 0; i < v.size(); ++i)
    ASSERT_EQ(r.channels[0][i], static_cast<float>(v[i]) / 32768.0f) << i;
}

TEST_F(RecordingTest, AcceptsULawWithinQuantization) {
  std::vector<float> v(400);
  for (std::size_t i = 0; i < v.size(); ++i)
    v[i] = 0.5f * static_cast<float>(std::sin(0.1 * static_cast<double>(i)));
  const std::string p = write_sndfile("ulaw.wav", SF_FORMAT_WAV | SF_FORMAT_ULAW, 8000, 1,
                                      [&](SNDFILE* f) { sf_writef_float(f, v.data(), 400); });
  const Recording r = read_ok(p);
  ASSERT_EQ(r.channels[0].size(), 400u);
  for (std::size_t i = 0; i < v.size(); ++i)
    ASSERT_NEAR(r.channels[0][i], v[i], 0.02) << i;  // 8-bit companding: ~1/64 step near 0.5
}

TEST_F(RecordingTest, RejectsImaAdpcm) {
  std::vector<short> v(2000, 1000);
  const std::string p = write_sndfile("adpcm.wav", SF_FORMAT_WAV | SF_FORMAT_IMA_ADPCM, 8000, 1,
                                      [&](SNDFILE* f) { sf_writef_short(f, v.data(), 2000); });
  const std::string e = read_error(p);
  EXPECT_EQ(e, p + ": unsupported WAV encoding (IMA ADPCM)");
}

TEST_F(RecordingTest, MultiChannelSelection) {
  const auto ch = make_channels(4, 256);
  const std::string p = path("four.wav");
  ASSERT_EQ(write_wav_f32(p, 10000.0, ch), "");
  ReadOptions o;
  o.channel = 2;
  const Recording r = read_ok(p, o);
  EXPECT_EQ(r.channel_index, std::vector<std::size_t>{2});
  ASSERT_EQ(r.channels.size(), 1u);
  EXPECT_EQ(r.channels[0], ch[2]);
  EXPECT_EQ(r.channels[0][10], signal(2, 10));
}

TEST_F(RecordingTest, ChannelOutOfRange) {
  const std::string p = path("mono.wav");
  ASSERT_EQ(write_wav_f32(p, 1000.0, make_channels(1, 10)), "");
  ReadOptions o;
  o.channel = 3;
  EXPECT_EQ(read_error(p, o), p + ": channel 3 requested but the file has 1 channel(s)");
}

// ---- start / end -----------------------------------------------------------------------------

TEST_F(RecordingTest, StartEndSelectsFlooredIndices) {
  const auto ch = make_channels(2, 3050);
  const std::string p = path("sel.wav");
  ASSERT_EQ(write_wav_f32(p, 1000.0, ch), "");
  ReadOptions o;
  o.start_s = 1.5;
  o.end_s = 2.0;
  Recording r = read_ok(p, o);
  EXPECT_EQ(r.first_sample, 1500u);
  ASSERT_EQ(r.channels[1].size(), 500u);
  EXPECT_EQ(r.channels[1][10], signal(1, 1510));
  EXPECT_EQ(r.channels[0].back(), signal(0, 1999));

  o.start_s = 0.0017;  // 1.7 samples -> 1
  o.end_s = 0.0109;    // 10.9 samples -> 10
  r = read_ok(p, o);
  EXPECT_EQ(r.first_sample, 1u);
  ASSERT_EQ(r.channels[0].size(), 9u);
  EXPECT_EQ(r.channels[0][0], signal(0, 1));
}

TEST_F(RecordingTest, EndBeyondRecordingIsClamped) {
  const auto ch = make_channels(1, 3050);
  const std::string p = path("clamp.wav");
  ASSERT_EQ(write_wav_f32(p, 1000.0, ch), "");
  ReadOptions o;
  o.start_s = 3.0;
  o.end_s = 100.0;
  const Recording r = read_ok(p, o);
  EXPECT_EQ(r.first_sample, 3000u);
  ASSERT_EQ(r.channels[0].size(), 50u);
  EXPECT_EQ(r.channels[0][49], signal(0, 3049));
}

TEST_F(RecordingTest, StartBeyondEnd) {
  const std::string p = path("short.wav");
  ASSERT_EQ(write_wav_f32(p, 1000.0, make_channels(1, 3050)), "");
  ReadOptions o;
  o.start_s = 5.0;
  EXPECT_EQ(read_error(p, o), p + ": --start 5 s is beyond the end of the recording (3.05 s)");
  o.start_s = 3.05;  // exactly the end: no sample left
  EXPECT_NE(read_error(p, o).find("is beyond the end of the recording"), std::string::npos);
}

TEST_F(RecordingTest, BadStartEndOptions) {
  const std::string p = path("opts.wav");
  ASSERT_EQ(write_wav_f32(p, 1000.0, make_channels(1, 3050)), "");
  ReadOptions o;
  o.start_s = -1.0;
  EXPECT_NE(read_error(p, o).find("--start -1 s is negative"), std::string::npos);
  o = {};
  o.end_s = -0.5;
  EXPECT_NE(read_error(p, o).find("--end -0.5 s is negative"), std::string::npos);
  o = {};
  o.start_s = 2.0;
  o.end_s = 1.0;
  EXPECT_NE(read_error(p, o).find("--start 2 s is not before --end 1 s"), std::string::npos);
  o.end_s = 2.0;
  EXPECT_NE(read_error(p, o).find("is not before --end"), std::string::npos);
  o = {};
  o.start_s = std::numeric_limits<double>::quiet_NaN();
  EXPECT_NE(read_error(p, o).find("not a finite number"), std::string::npos);
}

TEST_F(RecordingTest, SelectionWithNoSamplesIsEmpty) {
  const std::string p = path("tiny.wav");
  ASSERT_EQ(write_wav_f32(p, 100.0, make_channels(1, 100)), "");
  ReadOptions o;
  o.start_s = 0.101;  // 10.1 -> 10
  o.end_s = 0.105;    // 10.5 -> 10
  EXPECT_NE(read_error(p, o).find("recording is empty"), std::string::npos);
}

// ---- sample rate -----------------------------------------------------------------------------

TEST_F(RecordingTest, WavRateMustMatchWhenGiven) {
  const std::string p = path("rate.wav");
  ASSERT_EQ(write_wav_f32(p, 48000.0, make_channels(1, 10)), "");
  EXPECT_EQ(read_error(p, with_rate(12000.0)),
            p + ": file rate is 48000 Hz but 12000 Hz was requested");
  EXPECT_EQ(read_ok(p, with_rate(48000.0)).sample_rate_hz, 48000.0);
}

TEST_F(RecordingTest, RateOutOfRange) {
  const std::string p = write_text("r.csv", "1\n2\n");
  for (double bad : {0.0, 0.5, -10.0, 1.5e6, std::numeric_limits<double>::quiet_NaN()}) {
    EXPECT_NE(read_error(p, with_rate(bad)).find("out of range (1 Hz to 1 MHz)"), std::string::npos)
        << bad;
  }
  EXPECT_EQ(read_ok(p, with_rate(1.0)).channels[0].size(), 2u);
  EXPECT_EQ(read_ok(p, with_rate(1e6)).sample_rate_hz, 1e6);
}

// ---- CSV -------------------------------------------------------------------------------------

TEST_F(RecordingTest, CsvWithoutHeader) {
  const std::string p = write_text("a.csv", "0.5,-1\n1.25,2e-3\n-3,4\n");
  const Recording r = read_ok(p, with_rate(2000.0));
  EXPECT_EQ(r.sample_rate_hz, 2000.0);
  EXPECT_EQ(r.channel_index, (std::vector<std::size_t>{0, 1}));
  EXPECT_EQ(r.channels[0], (std::vector<float>{0.5f, 1.25f, -3.0f}));
  EXPECT_EQ(r.channels[1], (std::vector<float>{-1.0f, 2e-3f, 4.0f}));
}

TEST_F(RecordingTest, CsvWithHeader) {
  std::string text = "ax,ay,az\n";
  for (int i = 0; i < 20; ++i)
    text += std::to_string(i) + "," + std::to_string(i * 10) + ".5," + std::to_string(-i) + "\n";
  const std::string p = write_text("h.csv", text);
  const Recording r = read_ok(p, with_rate(100.0));
  ASSERT_EQ(r.channels.size(), 3u);
  ASSERT_EQ(r.channels[1].size(), 20u);
  EXPECT_EQ(r.channels[1][10], 100.5f);
  EXPECT_EQ(r.channels[2][19], -19.0f);
}

TEST_F(RecordingTest, CsvCrlfWhitespaceBlankLinesAndBom) {
  const std::string p =
      write_text("crlf.csv", "\xEF\xBB\xBF time , accel \r\n\r\n 1 ,\t2.5 \r\n   \r\n+3,-4\r\n5,6");
  const Recording r = read_ok(p, with_rate(10.0));
  EXPECT_EQ(r.channels[0], (std::vector<float>{1.0f, 3.0f, 5.0f}));
  EXPECT_EQ(r.channels[1], (std::vector<float>{2.5f, -4.0f, 6.0f}));
}

TEST_F(RecordingTest, CsvFromCharsIsExactAndTinyValuesUnderflow) {
  const std::string p = write_text("exact.csv", "0.1\n3.4028234e38\n1e-50\n");
  const Recording r = read_ok(p, with_rate(10.0));
  EXPECT_EQ(r.channels[0][0], 0.1f);
  EXPECT_EQ(r.channels[0][1], 3.4028234e38f);
  EXPECT_EQ(r.channels[0][2], 0.0f);
}

TEST_F(RecordingTest, CsvChannelSelectionAndStart) {
  const std::string p = write_text("sel.csv", "a,b\n1,10\n2,20\n3,30\n4,40\n");
  ReadOptions o = with_rate(10.0);
  o.channel = 1;
  o.start_s = 0.2;
  const Recording r = read_ok(p, o);
  EXPECT_EQ(r.first_sample, 2u);
  EXPECT_EQ(r.channel_index, std::vector<std::size_t>{1});
  EXPECT_EQ(r.channels[0], (std::vector<float>{30.0f, 40.0f}));
  o.channel = 2;
  EXPECT_EQ(read_error(p, o), p + ": channel 2 requested but the file has 2 channel(s)");
}

TEST_F(RecordingTest, CsvNotANumberNamesLineAndColumn) {
  const std::string p = write_text("bad.csv", "x,y\n1,2\n3,4\n\n5,6\n7,8\n9,abc\n");
  EXPECT_EQ(read_error(p, with_rate(100.0)), p + ": line 7, column 2: 'abc' is not a number");
}

TEST_F(RecordingTest, CsvOtherMalformedRows) {
  const std::string p1 = write_text("cols.csv", "1,2\n3,4\n5\n");
  EXPECT_EQ(read_error(p1, with_rate(100.0)),
            p1 + ": line 3: expected 2 column(s) as on line 1, found 1");
  const std::string p2 = write_text("hdr.csv", "a,b,c\n1,2\n");
  EXPECT_NE(read_error(p2, with_rate(100.0)).find("line 2: expected 3 column(s)"),
            std::string::npos);
  const std::string p3 = write_text("empty_field.csv", "1,2\n3,\n");
  EXPECT_NE(read_error(p3, with_rate(100.0)).find("line 2, column 2: empty value"),
            std::string::npos);
  const std::string p4 = write_text("huge.csv", "1\n1e39\n");
  EXPECT_NE(read_error(p4, with_rate(100.0)).find("line 2, column 1: '1e39' is out of range"),
            std::string::npos);
  const std::string p5 = write_text("comma.csv", "1\n2,5\n");  // decimal comma
  EXPECT_NE(read_error(p5, with_rate(100.0)).find("line 2: expected 1 column(s)"),
            std::string::npos);
}

TEST_F(RecordingTest, CsvRequiresRate) {
  const std::string p = write_text("norate.csv", "1\n");
  EXPECT_EQ(read_error(p), p + ": --rate is required for CSV input");
}

TEST_F(RecordingTest, CsvHeaderOnlyOrEmptyIsEmpty) {
  const std::string p1 = write_text("hdronly.csv", "a,b\n\n");
  EXPECT_EQ(read_error(p1, with_rate(10.0)), p1 + ": recording is empty");
  const std::string p2 = write_text("nothing.csv", "");
  EXPECT_EQ(read_error(p2, with_rate(10.0)), p2 + ": recording is empty");
}

TEST_F(RecordingTest, CsvNanNamesDataRowIndex) {
  const std::string p = write_text("nan.csv", "a,b\n1,2\n3,4\n5,nan\n");
  EXPECT_EQ(read_error(p, with_rate(10.0)), p + ": sample 2 of channel 1 is NaN");
  ReadOptions o = with_rate(10.0);
  o.channel = 0;  // the NaN is in the other channel
  EXPECT_EQ(read_ok(p, o).channels[0].size(), 3u);
}

// ---- raw float32 -----------------------------------------------------------------------------

std::string le_bytes(const std::vector<float>& v) {
  std::string out;
  for (float f : v) {
    std::uint32_t u = 0;
    std::memcpy(&u, &f, 4);
    for (int b = 0; b < 4; ++b) out.push_back(static_cast<char>((u >> (8 * b)) & 0xFFu));
  }
  return out;
}

TEST_F(RecordingTest, RawF32) {
  const std::vector<float> v = make_channels(1, 100)[0];
  const std::string p = write_text("x.f32", le_bytes(v));
  Recording r = read_ok(p, with_rate(5000.0));
  EXPECT_EQ(r.sample_rate_hz, 5000.0);
  EXPECT_EQ(r.channel_index, std::vector<std::size_t>{0});
  EXPECT_EQ(r.channels[0], v);
  ReadOptions o = with_rate(5000.0);
  o.start_s = 0.002;  // sample 10
  r = read_ok(p, o);
  EXPECT_EQ(r.first_sample, 10u);
  EXPECT_EQ(r.channels[0][0], v[10]);
  // .raw is raw float32 as well.
  const std::string p2 = write_text("y.RAW", le_bytes({1.5f, -2.0f}));
  EXPECT_EQ(read_ok(p2, with_rate(10.0)).channels[0], (std::vector<float>{1.5f, -2.0f}));
}

TEST_F(RecordingTest, RawF32Errors) {
  const std::string p = write_text("odd.f32", std::string(10, '\0'));
  EXPECT_NE(read_error(p, with_rate(100.0)).find("not a multiple of 4"), std::string::npos);
  const std::string p2 = write_text("ok.f32", le_bytes({1.0f, 2.0f}));
  EXPECT_EQ(read_error(p2), p2 + ": --rate is required for raw float32 input");
  ReadOptions o = with_rate(100.0);
  o.channel = 1;
  EXPECT_EQ(read_error(p2, o), p2 + ": channel 1 requested but the file has 1 channel(s)");
  const std::string p3 = write_text("empty.f32", "");
  EXPECT_EQ(read_error(p3, with_rate(100.0)), p3 + ": recording is empty");
  const std::string p4 =
      write_text("inf.f32", le_bytes({1.0f, 2.0f, -std::numeric_limits<float>::infinity()}));
  EXPECT_EQ(read_error(p4, with_rate(100.0)), p4 + ": sample 2 of channel 0 is -Inf");
}

TEST_F(RecordingTest, ExplicitFormatOverridesExtension) {
  const std::string p = write_text("data.txt", "1,2\n3,4\n");
  ReadOptions o = with_rate(10.0);
  o.format = RecordingFormat::csv;
  EXPECT_EQ(read_ok(p, o).channels[1], (std::vector<float>{2.0f, 4.0f}));
  const std::string p2 = write_text("data.bin", le_bytes({0.25f}));
  o.format = RecordingFormat::raw_f32;
  EXPECT_EQ(read_ok(p2, o).channels[0], std::vector<float>{0.25f});
  // Without the override, unknown extensions go to libsndfile, which rejects text.
  EXPECT_NE(read_error(p, with_rate(10.0)).find("cannot read as audio"), std::string::npos);
}

// ---- NaN / Inf, empty, unreadable --------------------------------------------------------------

TEST_F(RecordingTest, NanInWavNamesAbsoluteSampleAndChannel) {
  auto ch = make_channels(2, 3000);
  ch[0][1234] = std::numeric_limits<float>::quiet_NaN();
  ch[1][2000] = std::numeric_limits<float>::infinity();
  const std::string p = path("nan.wav");
  ASSERT_EQ(write_wav_f32(p, 1000.0, ch), "");
  EXPECT_EQ(read_error(p), p + ": sample 1234 of channel 0 is NaN");
  ReadOptions o;
  o.channel = 1;
  EXPECT_EQ(read_error(p, o), p + ": sample 2000 of channel 1 is +Inf");
  o.channel.reset();
  o.start_s = 1.5;  // after the NaN: only the Inf remains, index still absolute
  EXPECT_EQ(read_error(p, o), p + ": sample 2000 of channel 1 is +Inf");
  o.end_s = 1.9;  // neither inside the kept range
  const Recording r = read_ok(p, o);
  EXPECT_EQ(r.first_sample, 1500u);
  EXPECT_EQ(r.channels[1].size(), 400u);
}

TEST_F(RecordingTest, EmptyWav) {
  const std::string p = path("empty.wav");
  ASSERT_EQ(write_wav_f32(p, 1000.0, {{}, {}}), "");
  EXPECT_EQ(read_error(p), p + ": recording is empty");
}

TEST_F(RecordingTest, MissingFile) {
  const std::string p = path("missing.wav");
  EXPECT_EQ(read_error(p), p + ": cannot open: No such file or directory");
  const std::string p2 = path("missing.csv");
  EXPECT_EQ(read_error(p2, with_rate(10.0)), p2 + ": cannot open: No such file or directory");
  const std::string p3 = path("missing.f32");
  EXPECT_EQ(read_error(p3, with_rate(10.0)), p3 + ": cannot open: No such file or directory");
}

TEST_F(RecordingTest, GarbageAndDirectory) {
  const std::string p = write_text("garbage.wav", "this is not a wav file at all");
  EXPECT_NE(read_error(p).find("cannot read as audio"), std::string::npos);
  fs::create_directories(path("dir.wav"));
  EXPECT_NE(read_error(path("dir.wav")).find("is a directory"), std::string::npos);
}

TEST_F(RecordingTest, WriteWavF32Errors) {
  const std::string p = path("w.wav");
  std::string e = write_wav_f32(p, 1000.0, {{1.0f, 2.0f}, {1.0f}});
  EXPECT_EQ(e, p + ": channel 1 has 1 samples but channel 0 has 2");
  EXPECT_FALSE(fs::exists(p));  // nothing written on a validation error
  e = write_wav_f32(p, 1000.0, {});
  EXPECT_EQ(e, p + ": no channels to write");
  e = write_wav_f32(p, 1000.5, {{1.0f}});
  EXPECT_NE(e.find("not a positive whole number"), std::string::npos) << e;
  const std::string bad = path("no/such/dir/w.wav");
  e = write_wav_f32(bad, 1000.0, {{1.0f}});
  EXPECT_EQ(e, bad + ": cannot create: No such file or directory");
}

}  // namespace
}  // namespace vibgate::analytics
