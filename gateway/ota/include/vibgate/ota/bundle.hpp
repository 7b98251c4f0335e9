// vibgate/ota/bundle.hpp — signed model bundles (docs/ota.md): the file format, Ed25519 keys and
// signatures, the trusted-key directory and the verification of a whole bundle file.
//
// File: "VIBGBNDL" + u32 LE version 1 + protobuf Bundle{manifest, signature, key_id}; the
// manifest is a serialized BundleManifest; the signature is Ed25519 (libsodium
// crypto_sign_detached) over "vibgate-bundle-v1\n" + manifest bytes. libsodium and protobuf stay in
// src/. Threads: every function here is pure or touches only the files it names; call from any
// thread (sodium_init() is called once, internally).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vibgate::ota {

inline constexpr char kBundleMagic[8] = {'V', 'I', 'B', 'G', 'B', 'N', 'D', 'L'};
inline constexpr std::uint32_t kBundleFormatVersion = 1;
inline constexpr std::string_view kSignatureDomain = "vibgate-bundle-v1\n";
inline constexpr std::size_t kPublicKeyBytes = 32;
inline constexpr std::size_t kSecretKeyBytes = 64;
inline constexpr std::size_t kSignatureBytes = 64;
inline constexpr std::uint64_t kMaxBundleBytes = 256ull << 20;  // hard ceiling of the format

struct BundleManifest {
  std::string bundle_id;
  std::uint64_t sequence = 0;
  std::vector<std::string> target_assets;  // "asset" or "asset:channel"
  std::string min_gateway_version;         // "" or "MAJOR.MINOR.PATCH"
  std::string model_format = "vgm";
  std::string model;         // the model file's bytes
  std::string model_sha256;  // 32 raw bytes
  std::string note;
  std::int64_t created_ms = 0;
  std::uint32_t shadow_s = 0;  // 0 = the gateway's default
};

struct Bundle {
  std::string manifest;   // serialized BundleManifest (what the signature covers)
  std::string signature;  // 64 bytes
  std::string key_id;
};

// ---- codec ----
std::string encode_manifest(const BundleManifest& m);
// "" on success, else one line ("manifest: not a BundleManifest message").
std::string decode_manifest(std::string_view bytes, BundleManifest* out);
std::string encode_bundle_file(const Bundle& b);
// "" on success, else one line naming the problem (bad magic, unsupported version, ...).
std::string decode_bundle_file(std::string_view file, Bundle* out);

// A bundle id usable as a file name: 1..64 of [A-Za-z0-9._-], not starting with '.'.
bool valid_bundle_id(std::string_view id);

// ---- hashing, keys, signatures ----
std::string sha256(std::string_view data);  // 32 raw bytes
std::string to_hex(std::string_view bytes);
std::optional<std::string> from_hex(std::string_view hex);  // nullopt: not even-length hex

struct KeyPair {
  std::string public_key;  // 32 bytes
  std::string secret_key;  // 64 bytes (libsodium's seed + public key form)
};
KeyPair generate_keypair();
// Signs kSignatureDomain + manifest. secret_key must be 64 bytes (else "").
std::string sign_manifest(std::string_view manifest, std::string_view secret_key);
bool verify_manifest(std::string_view manifest, std::string_view signature,
                     std::string_view public_key);

// Key files: NAME.pub holds the public key as 64 hex digits on one line; NAME.key the secret key
// as 128 hex digits on one line (mode 0600). Both return "" or one line naming the file.
std::string write_key_files(const KeyPair& keys, const std::string& base);
std::string read_public_key(const std::string& path, std::string* key);
std::string read_secret_key(const std::string& path, std::string* key);

// The public keys the gateway trusts: every *.pub in a directory, key_id = file stem.
struct TrustedKeys {
  std::map<std::string, std::string> keys;  // key_id -> 32-byte public key
  std::vector<std::string> problems;        // files skipped, one line each
  std::vector<std::string> loose;           // key files writable by group or others
};
// `error` is set when the directory cannot be read.
TrustedKeys load_trusted_keys(const std::string& dir, std::string* error);

// ---- verification of a complete bundle file ----
enum class Refusal : std::uint8_t {
  none = 0,
  truncated,        // not a complete bundle file (or shorter than announced)
  sha256_mismatch,  // the transferred file's hash differs from the announced one
  malformed,        // not a bundle (bad magic, version, protobuf, missing fields)
  unknown_key,      // key_id is not among the trusted keys
  bad_signature,    // the signature does not verify with that key
  wrong_asset,      // a target is not on this gateway
  too_new,          // min_gateway_version above this gateway's version
  replayed,         // sequence <= the last accepted sequence of a target
  incompatible,     // the model file is invalid or does not fit a target's features
  too_large,        // announced total above the configured maximum
  busy,             // another bundle with this id is being processed
};
// The reason's short name used in events ("bad signature", "unknown key", ...).
const char* to_string(Refusal r);

struct Verified {
  Refusal refusal = Refusal::none;
  std::string detail;  // one line when refused
  BundleManifest manifest;
  std::string key_id;
};
// Decodes, checks the signature against `trusted`, decodes the manifest and checks its own
// consistency (bundle id, format "vgm", model hash). Does not check assets or versions.
Verified verify_bundle(std::string_view file, const TrustedKeys& trusted);

// Dotted version comparison ("0.1.0" < "0.10.0"); non-numeric parts compare as 0.
// Returns <0, 0, >0. `ok` (optional) is false when a string is not dotted numbers.
int compare_versions(std::string_view a, std::string_view b, bool* ok = nullptr);

}  // namespace vibgate::ota
