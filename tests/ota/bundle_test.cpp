// bundle_test.cpp — the OTA bundle format, Ed25519 signatures and chunk staging (gateway/ota,
// docs/ota.md): a signed bundle verifies; a flipped manifest byte, a flipped signature byte, the
// wrong key and an unknown key id do not; truncated and foreign files are named as such; chunks
// stage durably, out-of-order offsets are answered with the expected one, a re-opened staging
// directory (a restarted daemon) resumes at the recorded offset; the sequence file persists.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "vibgate/ota/bundle.hpp"
#include "vibgate/ota/staging.hpp"

namespace fs = std::filesystem;
using namespace vibgate::ota;

namespace {

std::string test_dir(const std::string& name) {
  std::string d = std::string(VIBGATE_OTA_TEST_DIR) + "/ota_test_" + name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

BundleManifest sample_manifest() {
  BundleManifest m;
  m.bundle_id = "pump-7";
  m.sequence = 7;
  m.target_assets = {"pump1", "fan2:de"};
  m.min_gateway_version = "0.1.0";
  m.model = std::string(5000, 'x') + "model bytes";
  m.model_sha256 = sha256(m.model);
  m.note = "retrained";
  m.created_ms = 1700000000000;
  m.shadow_s = 60;
  return m;
}

std::string signed_file(const BundleManifest& m, const KeyPair& k, const std::string& key_id) {
  Bundle b;
  b.manifest = encode_manifest(m);
  b.signature = sign_manifest(b.manifest, k.secret_key);
  b.key_id = key_id;
  return encode_bundle_file(b);
}

TrustedKeys trust(const std::string& id, const KeyPair& k) {
  TrustedKeys t;
  t.keys[id] = k.public_key;
  return t;
}

}  // namespace

TEST(Bundle, RoundTripAndVerify) {
  const KeyPair k = generate_keypair();
  const BundleManifest m = sample_manifest();
  const std::string file = signed_file(m, k, "ops");
  ASSERT_EQ(file.substr(0, 8), "VIBGBNDL");
  EXPECT_EQ(file[8], 1);
  EXPECT_EQ(file[9], 0);
  const Verified v = verify_bundle(file, trust("ops", k));
  ASSERT_EQ(v.refusal, Refusal::none) << v.detail;
  EXPECT_EQ(v.key_id, "ops");
  EXPECT_EQ(v.manifest.bundle_id, "pump-7");
  EXPECT_EQ(v.manifest.sequence, 7u);
  EXPECT_EQ(v.manifest.target_assets, m.target_assets);
  EXPECT_EQ(v.manifest.model, m.model);
  EXPECT_EQ(v.manifest.shadow_s, 60u);
  EXPECT_EQ(v.manifest.note, "retrained");
}

TEST(Bundle, SignatureCoversTheDomainAndManifest) {
  const KeyPair k = generate_keypair();
  const std::string manifest = encode_manifest(sample_manifest());
  const std::string sig = sign_manifest(manifest, k.secret_key);
  EXPECT_TRUE(verify_manifest(manifest, sig, k.public_key));
  // A signature of the bare manifest (no domain string) must not verify.
  EXPECT_FALSE(verify_manifest(manifest.substr(1), sig, k.public_key));
}

TEST(Bundle, TamperedManifestByteIsABadSignature) {
  const KeyPair k = generate_keypair();
  std::string file = signed_file(sample_manifest(), k, "ops");
  file[file.size() / 2] ^= 0x01;  // inside the model bytes of the manifest
  const Verified v = verify_bundle(file, trust("ops", k));
  EXPECT_EQ(v.refusal, Refusal::bad_signature) << v.detail;
}

TEST(Bundle, TamperedSignatureIsABadSignature) {
  const KeyPair k = generate_keypair();
  const BundleManifest m = sample_manifest();
  Bundle b;
  b.manifest = encode_manifest(m);
  b.signature = sign_manifest(b.manifest, k.secret_key);
  b.signature[10] ^= 0x40;
  b.key_id = "ops";
  EXPECT_EQ(verify_bundle(encode_bundle_file(b), trust("ops", k)).refusal, Refusal::bad_signature);
  b.signature.resize(63);  // a short signature
  EXPECT_EQ(verify_bundle(encode_bundle_file(b), trust("ops", k)).refusal, Refusal::bad_signature);
}

TEST(Bundle, WrongKeyAndUnknownKey) {
  const KeyPair k = generate_keypair(), other = generate_keypair();
  const std::string file = signed_file(sample_manifest(), k, "ops");
  // The key id names a trusted key, but that key did not sign it.
  EXPECT_EQ(verify_bundle(file, trust("ops", other)).refusal, Refusal::bad_signature);
  const Verified v = verify_bundle(file, trust("someone-else", k));
  EXPECT_EQ(v.refusal, Refusal::unknown_key);
  EXPECT_NE(v.detail.find("'ops'"), std::string::npos) << v.detail;
}

TEST(Bundle, TruncatedAndForeignFiles) {
  const KeyPair k = generate_keypair();
  const std::string file = signed_file(sample_manifest(), k, "ops");
  EXPECT_EQ(verify_bundle(file.substr(0, file.size() - 100), trust("ops", k)).refusal,
            Refusal::truncated);
  EXPECT_EQ(verify_bundle(file.substr(0, 7), trust("ops", k)).refusal, Refusal::truncated);
  std::string foreign = file;
  foreign[0] = 'X';
  EXPECT_EQ(verify_bundle(foreign, trust("ops", k)).refusal, Refusal::malformed);
  std::string v2 = file;
  v2[8] = 2;
  const Verified v = verify_bundle(v2, trust("ops", k));
  EXPECT_EQ(v.refusal, Refusal::malformed);
  EXPECT_NE(v.detail.find("version 2"), std::string::npos) << v.detail;
}

TEST(Bundle, ManifestConsistency) {
  const KeyPair k = generate_keypair();
  BundleManifest m = sample_manifest();
  m.model_sha256 = sha256("something else");
  EXPECT_EQ(verify_bundle(signed_file(m, k, "ops"), trust("ops", k)).refusal, Refusal::malformed);
  m = sample_manifest();
  m.model_format = "onnx";
  EXPECT_EQ(verify_bundle(signed_file(m, k, "ops"), trust("ops", k)).refusal,
            Refusal::incompatible);
  m = sample_manifest();
  m.bundle_id = "../etc/passwd";
  EXPECT_EQ(verify_bundle(signed_file(m, k, "ops"), trust("ops", k)).refusal, Refusal::malformed);
}

TEST(Bundle, Versions) {
  EXPECT_LT(compare_versions("0.1.0", "0.2.0"), 0);
  EXPECT_LT(compare_versions("0.9.0", "0.10.0"), 0);
  EXPECT_EQ(compare_versions("0.1", "0.1.0"), 0);
  EXPECT_GT(compare_versions("99.0.0", "0.1.0"), 0);
  bool ok = true;
  compare_versions("1.x.0", "1.0.0", &ok);
  EXPECT_FALSE(ok);
}

TEST(Keys, FilesAndTrustedDirectory) {
  const std::string d = test_dir("keys");
  const KeyPair k = generate_keypair();
  ASSERT_EQ(write_key_files(k, d + "/ops"), "");
  struct stat st {};
  ASSERT_EQ(::stat((d + "/ops.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // An existing secret key is never overwritten.
  EXPECT_NE(write_key_files(generate_keypair(), d + "/ops"), "");
  std::string sec, pub;
  ASSERT_EQ(read_secret_key(d + "/ops.key", &sec), "");
  ASSERT_EQ(read_public_key(d + "/ops.pub", &pub), "");
  EXPECT_EQ(sec, k.secret_key);
  EXPECT_EQ(pub, k.public_key);

  const std::string trusted = d + "/trusted";
  fs::create_directories(trusted);
  fs::copy_file(d + "/ops.pub", trusted + "/ops.pub");
  std::ofstream(trusted + "/broken.pub") << "not hex\n";
  std::ofstream(trusted + "/readme.txt") << "ignored\n";
  fs::copy_file(d + "/ops.pub", trusted + "/loose.pub");
  ::chmod((trusted + "/loose.pub").c_str(), 0666);
  std::string err;
  const TrustedKeys t = load_trusted_keys(trusted, &err);
  EXPECT_EQ(err, "");
  EXPECT_EQ(t.keys.size(), 2u);
  EXPECT_EQ(t.keys.count("ops"), 1u);
  ASSERT_EQ(t.problems.size(), 1u);
  EXPECT_NE(t.problems[0].find("broken.pub"), std::string::npos);
  ASSERT_EQ(t.loose.size(), 1u);
  EXPECT_NE(t.loose[0].find("loose.pub"), std::string::npos);
  load_trusted_keys(d + "/missing", &err);
  EXPECT_NE(err.find("cannot read"), std::string::npos);
}

TEST(Staging, ChunksInOrderCompleteWithMatchingHash) {
  const std::string d = test_dir("inorder");
  const std::string file = signed_file(sample_manifest(), generate_keypair(), "ops");
  const std::string hex = to_hex(sha256(file));
  BundleStaging s(d, 1 << 20);
  ASSERT_EQ(s.open(), "");
  std::uint64_t off = 0;
  unsigned quarters = 0;
  ChunkResult r;
  bool first = true;
  while (off < file.size()) {
    const std::size_t n = std::min<std::size_t>(700, file.size() - off);
    r = s.accept({"b1", off, file.size(), hex, file.substr(off, n)});
    EXPECT_EQ(r.first, first);
    first = false;
    if (r.quarter) ++quarters;
    off += n;
    if (off < file.size()) {
      ASSERT_EQ(r.kind, ChunkResult::Kind::appended) << r.detail;
      EXPECT_EQ(r.next_offset, off);
    }
  }
  ASSERT_EQ(r.kind, ChunkResult::Kind::complete) << r.detail;
  EXPECT_EQ(quarters, 3u);
  std::string got;
  ASSERT_EQ(read_file(r.path, &got, 1 << 20), "");
  EXPECT_EQ(got, file);
  EXPECT_TRUE(s.partials().empty());
}

TEST(Staging, OutOfOrderAnswersTheExpectedOffset) {
  const std::string d = test_dir("order");
  const std::string file(10000, 'a');
  const std::string hex = to_hex(sha256(file));
  BundleStaging s(d, 1 << 20);
  ASSERT_EQ(s.open(), "");
  auto r = s.accept({"b2", 4000, file.size(), hex, file.substr(4000, 1000)});
  EXPECT_EQ(r.kind, ChunkResult::Kind::out_of_order);
  EXPECT_EQ(r.next_offset, 0u);
  r = s.accept({"b2", 0, file.size(), hex, file.substr(0, 1000)});
  ASSERT_EQ(r.kind, ChunkResult::Kind::appended);
  r = s.accept({"b2", 0, file.size(), hex, file.substr(0, 1000)});  // a duplicate
  EXPECT_EQ(r.kind, ChunkResult::Kind::out_of_order);
  EXPECT_EQ(r.next_offset, 1000u);
  r = s.accept({"b2", 3000, file.size(), hex, file.substr(3000, 1000)});  // a gap
  EXPECT_EQ(r.kind, ChunkResult::Kind::out_of_order);
  EXPECT_EQ(r.next_offset, 1000u);
}

TEST(Staging, ResumesAfterReopenAndCutsUnrecordedBytes) {
  const std::string d = test_dir("resume");
  std::string file;
  for (int i = 0; i < 9000; ++i) file += static_cast<char>(i * 7);
  const std::string hex = to_hex(sha256(file));
  {
    BundleStaging s(d, 1 << 20);
    ASSERT_EQ(s.open(), "");
    ASSERT_EQ(s.accept({"b3", 0, file.size(), hex, file.substr(0, 4000)}).kind,
              ChunkResult::Kind::appended);
  }
  // A crash after writing bytes but before recording them: the .part file is longer.
  { std::ofstream(d + "/b3.part", std::ios::app) << "garbage past the recorded offset"; }
  BundleStaging s(d, 1 << 20);
  ASSERT_EQ(s.open(), "");
  const auto p = s.partials();
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].bundle_id, "b3");
  EXPECT_EQ(p[0].next_offset, 4000u);
  EXPECT_EQ(p[0].total, file.size());
  EXPECT_EQ(fs::file_size(d + "/b3.part"), 4000u);
  auto r = s.accept({"b3", 4000, file.size(), hex, file.substr(4000)});
  ASSERT_EQ(r.kind, ChunkResult::Kind::complete) << r.detail;
  EXPECT_FALSE(r.first);
  std::string got;
  ASSERT_EQ(read_file(r.path, &got, 1 << 20), "");
  EXPECT_EQ(got, file);
}

TEST(Staging, Refusals) {
  const std::string d = test_dir("refuse");
  const std::string file(3000, 'z');
  const std::string hex = to_hex(sha256(file));
  BundleStaging s(d, 2500);
  ASSERT_EQ(s.open(), "");
  EXPECT_EQ(s.accept({"big", 0, file.size(), hex, file.substr(0, 100)}).refusal,
            Refusal::too_large);
  EXPECT_EQ(s.accept({"../x", 0, 10, hex, "0123456789"}).refusal, Refusal::malformed);
  EXPECT_EQ(s.accept({"h", 0, 10, "nothex", "0123456789"}).refusal, Refusal::malformed);
  EXPECT_EQ(s.accept({"past", 5, 10, hex, "0123456789"}).refusal, Refusal::truncated);
  // The whole announced size arrived, but it hashes differently: sha256 mismatch, dropped.
  auto r = s.accept({"sha", 0, 2000, hex, file.substr(0, 2000)});
  EXPECT_EQ(r.kind, ChunkResult::Kind::refused);
  EXPECT_EQ(r.refusal, Refusal::sha256_mismatch);
  EXPECT_FALSE(fs::exists(d + "/sha.part"));
  EXPECT_TRUE(s.partials().empty());
}

TEST(Sequences, PersistAndReload) {
  const std::string d = test_dir("seq");
  {
    SequenceStore s(d + "/accepted");
    ASSERT_EQ(s.load(), "");
    EXPECT_EQ(s.get("pump1"), 0u);
    ASSERT_EQ(s.set({"pump1", "fan2:de"}, 5), "");
    ASSERT_EQ(s.set({"pump1"}, 3), "");  // never lowers
  }
  SequenceStore s(d + "/accepted");
  ASSERT_EQ(s.load(), "");
  EXPECT_EQ(s.get("pump1"), 5u);
  EXPECT_EQ(s.get("fan2:de"), 5u);
  EXPECT_EQ(s.get("other"), 0u);
}
