// vibgate/ota/staging.hpp — receiving a bundle in chunks, durably and resumably (docs/ota.md
// "Transfer and resume"), and the persisted last accepted sequence per target.
//
// Chunks of bundle <id> are appended to <dir>/<id>.part; <dir>/<id>.progress (written to a
// temporary file, fsync'ed, renamed) records the offset whose bytes are fsync'ed in the .part
// file, the announced total and SHA-256. A daemon killed at any moment restarts from the recorded
// offset (the .part file is cut back to it). A chunk whose offset is not the next expected one is
// not written: the caller answers with the expected offset and the sender resumes from there.
// When the last byte is in, the whole file's SHA-256 is compared with the announced one and the
// file becomes <dir>/<id>.vgb.
//
// Threads: not thread-safe; every call does file I/O (writes, fsync): call from one worker thread,
// never from the Asio loop.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "vibgate/ota/bundle.hpp"

namespace vibgate::ota {

inline constexpr std::size_t kMaxChunkBytes = 256 * 1024;

// One chunk command as the uplink delivers it.
struct ChunkCommand {
  std::string bundle_id;
  std::uint64_t offset = 0;
  std::uint64_t total = 0;  // size of the whole bundle file
  std::string sha256_hex;   // SHA-256 of the whole bundle file, 64 hex digits
  std::string data;
};

struct ChunkResult {
  enum class Kind : std::uint8_t {
    appended,      // written; next_offset is where the next chunk goes
    out_of_order,  // not written: the sender must resume at next_offset
    complete,      // the whole file is in and its hash matches: `path`
    refused,       // refusal + detail; the partial transfer (if any) was dropped
  };
  Kind kind = Kind::refused;
  std::uint64_t next_offset = 0;
  std::uint64_t total = 0;
  bool first = false;    // this chunk started the transfer (offset 0, new partial)
  unsigned quarter = 0;  // 1..3 when this chunk crossed 25/50/75 % (0: none)
  Refusal refusal = Refusal::none;
  std::string detail;
  std::string path;  // complete: the bundle file
};

struct PartialInfo {
  std::string bundle_id;
  std::uint64_t next_offset = 0;
  std::uint64_t total = 0;
  std::string sha256_hex;
  std::int64_t updated_ms = 0;
};

class BundleStaging {
 public:
  // `dir` is created by open(). `max_bytes`: largest total accepted. `max_partials`: transfers
  // kept at once; a new one beyond it drops the least recently updated.
  BundleStaging(std::string dir, std::uint64_t max_bytes, std::size_t max_partials = 4);

  // Creates the directory, loads the partial transfers (each cut back to its recorded offset),
  // drops the ones not updated for `stale_after`. Returns "" or one line.
  std::string open(std::chrono::hours stale_after = std::chrono::hours(24 * 7));

  ChunkResult accept(const ChunkCommand& chunk);

  std::vector<PartialInfo> partials() const;
  // Removes the partial transfer and the finished file of `id` (both optional).
  void discard(const std::string& id);
  const std::string& dir() const { return dir_; }

 private:
  std::string part_path(const std::string& id) const;
  std::string progress_path(const std::string& id) const;
  std::string save_progress(const PartialInfo& p);
  ChunkResult refuse(const std::string& id, Refusal r, std::string detail);

  std::string dir_;
  std::uint64_t max_bytes_;
  std::size_t max_partials_;
  std::map<std::string, PartialInfo> partials_;
};

// The last accepted sequence per target ("asset" or "asset:channel"), in <file> as lines
// "<target> <sequence>", replaced atomically (temporary file, fsync, rename). Not thread-safe.
class SequenceStore {
 public:
  explicit SequenceStore(std::string path) : path_(std::move(path)) {}
  std::string load();  // "" (also when the file does not exist yet) or one line
  std::uint64_t get(const std::string& target) const;  // 0 when none
  // Records `sequence` for every target in memory only (a copy kept on another thread).
  void remember(const std::vector<std::string>& targets, std::uint64_t sequence);
  // Records `sequence` for every target and writes the file. "" or one line.
  std::string set(const std::vector<std::string>& targets, std::uint64_t sequence);

 private:
  std::string path_;
  std::map<std::string, std::uint64_t> seq_;
};

// Writes `data` to `path` durably: temporary file, fsync, rename, fsync of the directory.
std::string write_file_durably(const std::string& path, const std::string& data, unsigned mode);
// Reads a whole file (at most `max_bytes`); "" or one line.
std::string read_file(const std::string& path, std::string* out, std::uint64_t max_bytes);

}  // namespace vibgate::ota
