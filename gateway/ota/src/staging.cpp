// staging.cpp — chunked, resumable bundle reception and the accepted-sequence file (see
// staging.hpp).
#include "vibgate/ota/staging.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <sstream>

namespace vibgate::ota {

namespace fs = std::filesystem;

namespace {

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string errno_text(const std::string& what, const std::string& path) {
  return path + ": " + what + ": " + std::strerror(errno);
}

void fsync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void)::fsync(fd);
    ::close(fd);
  }
}

bool is_hex64(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

}  // namespace

std::string write_file_durably(const std::string& path, const std::string& data, unsigned mode) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return errno_text("cannot create", tmp);
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      const std::string err = errno_text("cannot write", tmp);
      ::close(fd);
      return err;
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    const std::string err = errno_text("cannot fsync", tmp);
    ::close(fd);
    return err;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return errno_text("cannot rename onto", path);
  fsync_dir(fs::path(path).parent_path().string());
  return "";
}

std::string read_file(const std::string& path, std::string* out, std::uint64_t max_bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno_text("cannot open", path);
  struct stat st {};
  if (::fstat(fd, &st) != 0 || static_cast<std::uint64_t>(st.st_size) > max_bytes) {
    ::close(fd);
    return path + ": larger than " + std::to_string(max_bytes) + " bytes";
  }
  out->assign(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t done = 0;
  while (done < out->size()) {
    const ssize_t n = ::read(fd, out->data() + done, out->size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      return errno_text("cannot read", path);
    }
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
  return "";
}

BundleStaging::BundleStaging(std::string dir, std::uint64_t max_bytes, std::size_t max_partials)
    : dir_(std::move(dir)),
      max_bytes_(max_bytes),
      max_partials_(std::max<std::size_t>(1, max_partials)) {}

std::string BundleStaging::part_path(const std::string& id) const {
  return dir_ + "/" + id + ".part";
}
std::string BundleStaging::progress_path(const std::string& id) const {
  return dir_ + "/" + id + ".progress";
}

std::string BundleStaging::open(std::chrono::hours stale_after) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) return dir_ + ": cannot create: " + ec.message();
  partials_.clear();
  const std::int64_t now = wall_ms();
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    const std::string name = e.path().filename().string();
    const std::string ext = e.path().extension().string();
    const std::string id = e.path().stem().string();
    if (ext == ".tmp" || ext == ".vgb") {  // an interrupted write, an unprocessed finished file
      fs::remove(e.path(), ec);
      continue;
    }
    if (ext != ".progress" || !valid_bundle_id(id)) continue;
    std::string text;
    PartialInfo p;
    p.bundle_id = id;
    if (read_file(e.path().string(), &text, 4096).empty()) {
      std::istringstream in(text);
      std::string k1, k2, k3, k4;
      in >> k1 >> p.next_offset >> k2 >> p.total >> k3 >> p.sha256_hex >> k4 >> p.updated_ms;
      if (!in || k1 != "offset" || k2 != "total" || k3 != "sha256" || k4 != "updated_ms" ||
          p.next_offset > p.total || !is_hex64(p.sha256_hex))
        p.total = 0;
    }
    struct stat st {};
    const bool have_part = ::stat(part_path(id).c_str(), &st) == 0;
    const bool stale = now - p.updated_ms >
                       std::chrono::duration_cast<std::chrono::milliseconds>(stale_after).count();
    if (p.total == 0 || !have_part || static_cast<std::uint64_t>(st.st_size) < p.next_offset ||
        stale) {
      discard(id);
      continue;
    }
    // Bytes past the recorded offset were written but not recorded: cut them off.
    if (static_cast<std::uint64_t>(st.st_size) > p.next_offset &&
        ::truncate(part_path(id).c_str(), static_cast<off_t>(p.next_offset)) != 0) {
      discard(id);
      continue;
    }
    partials_[id] = p;
  }
  if (ec) return dir_ + ": cannot list: " + ec.message();
  return "";
}

std::vector<PartialInfo> BundleStaging::partials() const {
  std::vector<PartialInfo> out;
  for (const auto& [id, p] : partials_) out.push_back(p);
  return out;
}

void BundleStaging::discard(const std::string& id) {
  partials_.erase(id);
  ::unlink(part_path(id).c_str());
  ::unlink(progress_path(id).c_str());
  ::unlink((dir_ + "/" + id + ".vgb").c_str());
}

std::string BundleStaging::save_progress(const PartialInfo& p) {
  std::ostringstream o;
  o << "offset " << p.next_offset << "\ntotal " << p.total << "\nsha256 " << p.sha256_hex
    << "\nupdated_ms " << p.updated_ms << "\n";
  return write_file_durably(progress_path(p.bundle_id), o.str(), 0600);
}

ChunkResult BundleStaging::refuse(const std::string& id, Refusal r, std::string detail) {
  if (valid_bundle_id(id)) discard(id);
  ChunkResult res;
  res.kind = ChunkResult::Kind::refused;
  res.refusal = r;
  res.detail = std::move(detail);
  return res;
}

ChunkResult BundleStaging::accept(const ChunkCommand& c) {
  ChunkResult res;
  if (!valid_bundle_id(c.bundle_id)) {
    res.refusal = Refusal::malformed;
    res.detail = "bundle id '" + c.bundle_id.substr(0, 80) +
                 "' is not valid (1..64 of A-Z a-z 0-9 . _ -, not starting with '.')";
    return res;  // nothing on disk to drop
  }
  if (c.total == 0) return refuse(c.bundle_id, Refusal::truncated, "announced total is 0 bytes");
  if (c.total > max_bytes_)
    return refuse(c.bundle_id, Refusal::too_large,
                  "announced total " + std::to_string(c.total) + " bytes exceeds the maximum " +
                      std::to_string(max_bytes_));
  if (!is_hex64(c.sha256_hex))
    return refuse(c.bundle_id, Refusal::malformed, "sha256 is not 64 lowercase hex digits");
  if (c.data.size() > kMaxChunkBytes)
    return refuse(c.bundle_id, Refusal::malformed,
                  "chunk of " + std::to_string(c.data.size()) + " bytes exceeds " +
                      std::to_string(kMaxChunkBytes));
  if (c.offset > c.total || c.data.size() > c.total - c.offset)
    return refuse(c.bundle_id, Refusal::truncated,
                  "chunk at offset " + std::to_string(c.offset) + " (" +
                      std::to_string(c.data.size()) + " bytes) runs past the announced total " +
                      std::to_string(c.total));

  auto it = partials_.find(c.bundle_id);
  // The same id announced with another file: a fresh start at offset 0 replaces the old partial.
  if (it != partials_.end() &&
      (it->second.total != c.total || it->second.sha256_hex != c.sha256_hex)) {
    if (c.offset == 0) {
      discard(c.bundle_id);
      it = partials_.end();
    } else {
      res.kind = ChunkResult::Kind::out_of_order;
      res.next_offset = 0;
      res.total = c.total;
      res.detail = "a different file was being received under this id; start again at 0";
      return res;
    }
  }
  if (it == partials_.end()) {
    if (c.offset != 0) {
      res.kind = ChunkResult::Kind::out_of_order;
      res.next_offset = 0;
      res.total = c.total;
      res.detail = "no transfer of this bundle in progress";
      return res;
    }
    // Room for a new transfer: drop the least recently updated beyond max_partials.
    while (partials_.size() >= max_partials_) {
      auto oldest = partials_.begin();
      for (auto i = partials_.begin(); i != partials_.end(); ++i)
        if (i->second.updated_ms < oldest->second.updated_ms) oldest = i;
      discard(oldest->first);
    }
    PartialInfo p;
    p.bundle_id = c.bundle_id;
    p.total = c.total;
    p.sha256_hex = c.sha256_hex;
    const int fd =
        ::open(part_path(c.bundle_id).c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
      return refuse(c.bundle_id, Refusal::busy,
                    errno_text("cannot create", part_path(c.bundle_id)));
    ::close(fd);
    it = partials_.emplace(c.bundle_id, p).first;
    res.first = true;
  }
  PartialInfo& p = it->second;
  if (c.offset != p.next_offset) {
    res.kind = ChunkResult::Kind::out_of_order;
    res.next_offset = p.next_offset;
    res.total = p.total;
    res.detail = "expected offset " + std::to_string(p.next_offset);
    return res;
  }
  // Append and make it durable before recording the new offset.
  const std::string part = part_path(c.bundle_id);
  const int fd = ::open(part.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return refuse(c.bundle_id, Refusal::busy, errno_text("cannot open", part));
  std::size_t done = 0;
  while (done < c.data.size()) {
    const ssize_t n = ::pwrite(fd, c.data.data() + done, c.data.size() - done,
                               static_cast<off_t>(c.offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string err = errno_text("cannot write", part);
      ::close(fd);
      return refuse(c.bundle_id, Refusal::busy, err);
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fdatasync(fd) != 0) {
    const std::string err = errno_text("cannot fsync", part);
    ::close(fd);
    return refuse(c.bundle_id, Refusal::busy, err);
  }
  ::close(fd);
  const std::uint64_t before = p.next_offset;
  p.next_offset += c.data.size();
  p.updated_ms = wall_ms();
  for (unsigned q = 1; q <= 3; ++q) {
    const std::uint64_t mark = p.total * q / 4;
    if (before < mark && p.next_offset >= mark && p.next_offset < p.total) res.quarter = q;
  }
  res.next_offset = p.next_offset;
  res.total = p.total;
  if (p.next_offset < p.total) {
    if (std::string err = save_progress(p); !err.empty())
      return refuse(c.bundle_id, Refusal::busy, err);
    res.kind = ChunkResult::Kind::appended;
    return res;
  }
  // Complete: check the whole file's hash, then hand it over as <id>.vgb.
  std::string file;
  if (std::string err = read_file(part, &file, max_bytes_); !err.empty())
    return refuse(c.bundle_id, Refusal::busy, err);
  const std::string got = to_hex(sha256(file));
  if (got != p.sha256_hex)
    return refuse(c.bundle_id, Refusal::sha256_mismatch,
                  "received " + std::to_string(file.size()) + " bytes hash to " +
                      got.substr(0, 16) + "…, announced " + p.sha256_hex.substr(0, 16) + "…");
  const std::string done_path = dir_ + "/" + c.bundle_id + ".vgb";
  if (::rename(part.c_str(), done_path.c_str()) != 0)
    return refuse(c.bundle_id, Refusal::busy, errno_text("cannot rename", part));
  ::unlink(progress_path(c.bundle_id).c_str());
  partials_.erase(c.bundle_id);
  res.kind = ChunkResult::Kind::complete;
  res.path = done_path;
  return res;
}

std::string SequenceStore::load() {
  seq_.clear();
  std::string text;
  struct stat st {};
  if (::stat(path_.c_str(), &st) != 0) return "";  // nothing accepted yet
  if (std::string err = read_file(path_, &text, 1 << 20); !err.empty()) return err;
  std::istringstream in(text);
  std::string target;
  std::uint64_t s = 0;
  while (in >> target >> s) seq_[target] = s;
  if (!in.eof()) return path_ + ": not \"<target> <sequence>\" lines";
  return "";
}

std::uint64_t SequenceStore::get(const std::string& target) const {
  const auto it = seq_.find(target);
  return it == seq_.end() ? 0 : it->second;
}

void SequenceStore::remember(const std::vector<std::string>& targets, std::uint64_t sequence) {
  for (const auto& t : targets) seq_[t] = std::max(seq_[t], sequence);
}

std::string SequenceStore::set(const std::vector<std::string>& targets, std::uint64_t sequence) {
  auto next = seq_;
  for (const auto& t : targets) next[t] = std::max(next[t], sequence);
  std::ostringstream o;
  for (const auto& [t, s] : next) o << t << ' ' << s << '\n';
  if (std::string err = write_file_durably(path_, o.str(), 0600); !err.empty()) return err;
  seq_ = std::move(next);
  return "";
}

}  // namespace vibgate::ota
