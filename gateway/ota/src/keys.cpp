// keys.cpp — SHA-256, Ed25519 keys and signatures with libsodium, key files and the trusted-key
// directory (see bundle.hpp).
#include <dirent.h>
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>

#include "vibgate/ota/bundle.hpp"
#include "vibgate/ota/staging.hpp"

namespace vibgate::ota {

namespace {

void init_sodium() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (sodium_init() < 0) std::abort();  // libsodium cannot work at all (no entropy source)
  });
}

const unsigned char* u8(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

// The first line of a small file, trimmed.
std::string read_line(const std::string& path, std::string* line) {
  std::string text;
  if (std::string err = read_file(path, &text, 4096); !err.empty()) return err;
  const auto nl = text.find('\n');
  *line = text.substr(0, nl);
  while (!line->empty() && (line->back() == '\r' || line->back() == ' ')) line->pop_back();
  return "";
}

std::string read_hex_key(const std::string& path, std::size_t bytes, std::string* key) {
  std::string line;
  if (std::string err = read_line(path, &line); !err.empty()) return err;
  auto raw = from_hex(line);
  if (!raw || raw->size() != bytes)
    return path + ": not a key (expected " + std::to_string(2 * bytes) + " hex digits on one line)";
  *key = std::move(*raw);
  return "";
}

}  // namespace

std::string sha256(std::string_view data) {
  init_sodium();
  std::string out(crypto_hash_sha256_BYTES, '\0');
  crypto_hash_sha256(reinterpret_cast<unsigned char*>(out.data()), u8(data), data.size());
  return out;
}

std::string to_hex(std::string_view bytes) {
  static const char* d = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

std::optional<std::string> from_hex(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  auto val = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out(hex.size() / 2, '\0');
  for (std::size_t i = 0; i < out.size(); ++i) {
    const int hi = val(hex[2 * i]), lo = val(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out[i] = static_cast<char>((hi << 4) | lo);
  }
  return out;
}

KeyPair generate_keypair() {
  init_sodium();
  KeyPair k;
  k.public_key.assign(crypto_sign_PUBLICKEYBYTES, '\0');
  k.secret_key.assign(crypto_sign_SECRETKEYBYTES, '\0');
  crypto_sign_keypair(reinterpret_cast<unsigned char*>(k.public_key.data()),
                      reinterpret_cast<unsigned char*>(k.secret_key.data()));
  return k;
}

std::string sign_manifest(std::string_view manifest, std::string_view secret_key) {
  init_sodium();
  if (secret_key.size() != crypto_sign_SECRETKEYBYTES) return "";
  std::string msg(kSignatureDomain);
  msg.append(manifest);
  std::string sig(crypto_sign_BYTES, '\0');
  crypto_sign_detached(reinterpret_cast<unsigned char*>(sig.data()), nullptr, u8(msg), msg.size(),
                       u8(secret_key));
  return sig;
}

bool verify_manifest(std::string_view manifest, std::string_view signature,
                     std::string_view public_key) {
  init_sodium();
  if (signature.size() != crypto_sign_BYTES || public_key.size() != crypto_sign_PUBLICKEYBYTES)
    return false;
  std::string msg(kSignatureDomain);
  msg.append(manifest);
  return crypto_sign_verify_detached(u8(signature), u8(msg), msg.size(), u8(public_key)) == 0;
}

std::string write_key_files(const KeyPair& keys, const std::string& base) {
  const std::string sec = base + ".key", pub = base + ".pub";
  // The secret key: created 0600 and never replaced (an existing key is not overwritten).
  const int fd = ::open(sec.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return sec + ": cannot create: " + std::strerror(errno);
  const std::string line = to_hex(keys.secret_key) + "\n";
  const bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
                  ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) return sec + ": cannot write: " + std::strerror(errno);
  return write_file_durably(pub, to_hex(keys.public_key) + "\n", 0644);
}

std::string read_public_key(const std::string& path, std::string* key) {
  return read_hex_key(path, crypto_sign_PUBLICKEYBYTES, key);
}

std::string read_secret_key(const std::string& path, std::string* key) {
  return read_hex_key(path, crypto_sign_SECRETKEYBYTES, key);
}

TrustedKeys load_trusted_keys(const std::string& dir, std::string* error) {
  TrustedKeys t;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    *error = "trusted_keys_dir " + dir + ": cannot read: " + std::strerror(errno);
    return t;
  }
  while (dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name.size() <= 4 || name.compare(name.size() - 4, 4, ".pub") != 0) continue;
    const std::string path = dir + "/" + name;
    const std::string id = name.substr(0, name.size() - 4);
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    std::string key;
    if (std::string err = read_public_key(path, &key); !err.empty()) {
      t.problems.push_back(err);
      continue;
    }
    if ((st.st_mode & 022) != 0) {
      std::ostringstream m;
      m << path << " (mode " << std::oct << (st.st_mode & 0777) << ")";
      t.loose.push_back(m.str());
    }
    t.keys[id] = std::move(key);
  }
  ::closedir(d);
  return t;
}

}  // namespace vibgate::ota
