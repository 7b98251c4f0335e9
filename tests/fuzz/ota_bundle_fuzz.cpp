// ota_bundle_fuzz.cpp — libFuzzer target for what an over-the-air update lets the network reach
// (docs/ota.md): the bundle file verifier (ota::verify_bundle: header, Bundle protobuf, key lookup,
// Ed25519 check, BundleManifest, manifest consistency) and the uplink's two chunk-command
// decoders (Sparkplug NCMD Model/Bundle/* metrics, the JSON profile's model_bundle payload). The
// whole input goes to all three.
//
// The trusted key is the public half of a test key whose signed bundle is the seed
// corpus/ota_bundle/signed_bundle.vgb, so mutations of a validly signed file are explored.
// Asserted beyond "no crash, no sanitizer report":
//  - an accepted bundle really is signed by the trusted key (decode + verify_manifest again), its
//    id is valid, it names targets, and model_sha256 is the SHA-256 of its model;
//  - a refusal always says why (detail not empty);
//  - a decoded chunk command either has an error or every field (id, 64-character hash given);
//    a Sparkplug command without bundle metrics carries no chunk error.
#include <google/protobuf/stubs/logging.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_util.hpp"
#include "json_payload.hpp"
#include "sparkplug.hpp"
#include "vibgate/ota/bundle.hpp"

namespace vibgate::fuzz {
namespace {

const ota::TrustedKeys& trusted() {
  static const ota::TrustedKeys keys = [] {
    ota::TrustedKeys k;
    k.keys["fuzz"] = *ota::from_hex("7ebf3cbff0c88ae5eca0d86c472d0b3b021116153f2e2fc14ef3fde562a5a206");
    return k;
  }();
  return keys;
}

void check_bundle(std::string_view in) {
  const ota::Verified v = ota::verify_bundle(in, trusted());
  if (v.refusal != ota::Refusal::none) {
    FUZZ_CHECK(!v.detail.empty(), ota::to_string(v.refusal));
    return;
  }
  ota::Bundle b;
  FUZZ_CHECK(ota::decode_bundle_file(in, &b).empty(), "accepted but does not decode");
  FUZZ_CHECK(b.key_id == "fuzz", b.key_id);
  FUZZ_CHECK(ota::verify_manifest(b.manifest, b.signature, trusted().keys.at("fuzz")),
             "accepted without a valid signature");
  FUZZ_CHECK(ota::valid_bundle_id(v.manifest.bundle_id), v.manifest.bundle_id);
  FUZZ_CHECK(!v.manifest.target_assets.empty(), "accepted without targets");
  FUZZ_CHECK(v.manifest.model_sha256 == ota::sha256(v.manifest.model), "model hash");
}

void check_json(const std::string& in) {
  const uplink::BundleChunk c = uplink::json::decode_bundle_command(in);
  if (c.error.empty()) FUZZ_CHECK(c.sha256_hex.size() <= in.size(), "sha256 longer than input");
  if (!c.error.empty()) FUZZ_CHECK(c.error.find('\n') == std::string::npos, c.error);
}

void check_sparkplug(const std::string& in) {
  const uplink::spb::NodeCommand c = uplink::spb::decode_node_command(in);
  if (!c.has_bundle) FUZZ_CHECK(c.chunk.error.empty(), c.chunk.error);
  if (c.has_bundle && c.error.empty())
    FUZZ_CHECK(c.chunk.data.size() <= in.size(), "chunk larger than the payload");
  FUZZ_CHECK(c.error.find('\n') == std::string::npos, c.error);
}

}  // namespace
}  // namespace vibgate::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);  // a malformed message is not worth a log line
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string in(reinterpret_cast<const char*>(data), size);
  vibgate::fuzz::check_bundle(in);
  vibgate::fuzz::check_json(in);
  vibgate::fuzz::check_sparkplug(in);
  return 0;
}
