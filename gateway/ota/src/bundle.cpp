// bundle.cpp — the bundle file codec and the verification of a whole bundle (see bundle.hpp).
#include "vibgate/ota/bundle.hpp"

#include <cstring>

#include "bundle.pb.h"

namespace vibgate::ota {

namespace {
constexpr std::size_t kHeaderBytes = sizeof kBundleMagic + 4;
}

std::string encode_manifest(const BundleManifest& m) {
  pb::BundleManifest p;
  p.set_bundle_id(m.bundle_id);
  p.set_sequence(m.sequence);
  for (const auto& t : m.target_assets) p.add_target_assets(t);
  p.set_min_gateway_version(m.min_gateway_version);
  p.set_model_format(m.model_format);
  p.set_model(m.model);
  p.set_model_sha256(m.model_sha256);
  p.set_note(m.note);
  p.set_created_ms(m.created_ms);
  p.set_shadow_s(m.shadow_s);
  std::string out;
  p.SerializeToString(&out);
  return out;
}

std::string decode_manifest(std::string_view bytes, BundleManifest* out) {
  pb::BundleManifest p;
  if (!p.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
    return "manifest: not a BundleManifest message";
  out->bundle_id = p.bundle_id();
  out->sequence = p.sequence();
  out->target_assets.assign(p.target_assets().begin(), p.target_assets().end());
  out->min_gateway_version = p.min_gateway_version();
  out->model_format = p.model_format();
  out->model = p.model();
  out->model_sha256 = p.model_sha256();
  out->note = p.note();
  out->created_ms = p.created_ms();
  out->shadow_s = p.shadow_s();
  return "";
}

std::string encode_bundle_file(const Bundle& b) {
  pb::Bundle p;
  p.set_manifest(b.manifest);
  p.set_signature(b.signature);
  p.set_key_id(b.key_id);
  std::string out(kBundleMagic, sizeof kBundleMagic);
  for (int i = 0; i < 4; ++i) out += static_cast<char>((kBundleFormatVersion >> (8 * i)) & 0xff);
  std::string body;
  p.SerializeToString(&body);
  out += body;
  return out;
}

std::string decode_bundle_file(std::string_view file, Bundle* out) {
  if (file.size() < kHeaderBytes) return "shorter than the 12-byte header";
  if (std::memcmp(file.data(), kBundleMagic, sizeof kBundleMagic) != 0)
    return "not a vibgate bundle (magic is not VIBGBNDL)";
  std::uint32_t version = 0;
  for (int i = 0; i < 4; ++i)
    version |= static_cast<std::uint32_t>(static_cast<unsigned char>(file[8 + i])) << (8 * i);
  if (version != kBundleFormatVersion)
    return "bundle format version " + std::to_string(version) + " not supported (this gateway: 1)";
  pb::Bundle p;
  const std::string_view body = file.substr(kHeaderBytes);
  if (!p.ParseFromArray(body.data(), static_cast<int>(body.size())))
    return "truncated or corrupt: not a complete Bundle message";
  out->manifest = p.manifest();
  out->signature = p.signature();
  out->key_id = p.key_id();
  return "";
}

bool valid_bundle_id(std::string_view id) {
  if (id.empty() || id.size() > 64 || id.front() == '.') return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

const char* to_string(Refusal r) {
  switch (r) {
    case Refusal::none:
      return "none";
    case Refusal::truncated:
      return "truncated";
    case Refusal::sha256_mismatch:
      return "sha256 mismatch";
    case Refusal::malformed:
      return "malformed";
    case Refusal::unknown_key:
      return "unknown key";
    case Refusal::bad_signature:
      return "bad signature";
    case Refusal::wrong_asset:
      return "wrong asset";
    case Refusal::too_new:
      return "too new for gateway";
    case Refusal::replayed:
      return "replayed";
    case Refusal::incompatible:
      return "incompatible model";
    case Refusal::too_large:
      return "too large";
    case Refusal::busy:
      return "busy";
  }
  return "?";
}

Verified verify_bundle(std::string_view file, const TrustedKeys& trusted) {
  Verified v;
  auto refuse = [&v](Refusal r, std::string detail) {
    v.refusal = r;
    v.detail = std::move(detail);
    return v;
  };
  Bundle b;
  if (std::string err = decode_bundle_file(file, &b); !err.empty()) {
    const bool cut = file.size() >= kHeaderBytes &&
                     std::memcmp(file.data(), kBundleMagic, sizeof kBundleMagic) == 0 &&
                     err.rfind("truncated", 0) == 0;
    return refuse(cut || file.size() < kHeaderBytes ? Refusal::truncated : Refusal::malformed,
                  "bundle file: " + err);
  }
  v.key_id = b.key_id;
  const auto key = trusted.keys.find(b.key_id);
  if (key == trusted.keys.end())
    return refuse(Refusal::unknown_key, "key id '" + b.key_id + "' is not a trusted key");
  if (b.signature.size() != kSignatureBytes ||
      !verify_manifest(b.manifest, b.signature, key->second))
    return refuse(Refusal::bad_signature,
                  "the signature does not verify with trusted key '" + b.key_id + "'");
  if (std::string err = decode_manifest(b.manifest, &v.manifest); !err.empty())
    return refuse(Refusal::malformed, err);
  const BundleManifest& m = v.manifest;
  if (!valid_bundle_id(m.bundle_id))
    return refuse(Refusal::malformed, "manifest: bundle_id '" + m.bundle_id + "' is not valid");
  if (m.model_format != "vgm")
    return refuse(Refusal::incompatible,
                  "manifest: model_format '" + m.model_format + "' (this gateway reads \"vgm\")");
  if (m.target_assets.empty()) return refuse(Refusal::malformed, "manifest: no target_assets");
  if (m.model.empty()) return refuse(Refusal::malformed, "manifest: the model is empty");
  if (m.model_sha256 != sha256(m.model))
    return refuse(Refusal::malformed, "manifest: model_sha256 does not match the model bytes");
  if (!m.min_gateway_version.empty()) {
    bool ok = true;
    compare_versions(m.min_gateway_version, "0", &ok);
    if (!ok)
      return refuse(Refusal::malformed, "manifest: min_gateway_version '" + m.min_gateway_version +
                                            "' is not a version");
  }
  return v;
}

int compare_versions(std::string_view a, std::string_view b, bool* ok) {
  auto next = [ok](std::string_view& s) -> std::uint64_t {
    std::uint64_t v = 0;
    std::size_t i = 0;
    std::size_t digits = 0;
    for (; i < s.size() && s[i] != '.'; ++i) {
      if (s[i] < '0' || s[i] > '9' || digits > 9) {
        if (ok) *ok = false;
        continue;
      }
      v = v * 10 + static_cast<std::uint64_t>(s[i] - '0');
      ++digits;
    }
    if (digits == 0 && ok) *ok = false;
    s = i < s.size() ? s.substr(i + 1) : std::string_view{};
    return v;
  };
  if (ok) *ok = true;
  if (a.empty() || b.empty()) {
    if (ok) *ok = false;
  }
  for (int k = 0; k < 8 && (!a.empty() || !b.empty()); ++k) {
    const std::uint64_t x = a.empty() ? 0 : next(a);
    const std::uint64_t y = b.empty() ? 0 : next(b);
    if (x != y) return x < y ? -1 : 1;
  }
  return 0;
}

}  // namespace vibgate::ota
