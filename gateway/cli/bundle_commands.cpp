// bundle_commands.cpp — `vibgate bundle keygen|sign|verify` (see bundle_commands.hpp).
#include "cli/bundle_commands.hpp"

#include <chrono>
#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

#include "vibgate/analytics/model.hpp"
#include "vibgate/ota/bundle.hpp"
#include "vibgate/ota/staging.hpp"

namespace vibgate::cli {

struct BundleCommands::State {
  State(std::ostream& o, std::ostream& e) : out(o), err(e) {}
  std::ostream& out;
  std::ostream& err;
  CLI::App* keygen = nullptr;
  CLI::App* sign = nullptr;
  CLI::App* verify = nullptr;
  std::string keygen_out;
  std::string key, model, out_file, min_version, note, id;
  std::vector<std::string> assets;
  std::uint64_t sequence = 0;
  std::uint32_t shadow_s = 0;
  std::string bundle_file, keys_dir;

  int run_keygen() {
    const auto k = ota::generate_keypair();
    if (std::string e = ota::write_key_files(k, keygen_out); !e.empty()) {
      err << "vibgate bundle keygen: " << e << "\n";
      return 1;
    }
    out << keygen_out << ".key: secret key (mode 0600; keep it off the gateways)\n"
        << keygen_out << ".pub: public key " << ota::to_hex(k.public_key)
        << " (copy to each gateway's [ota] trusted_keys_dir; key id = file name stem)\n";
    return 0;
  }

  int run_sign() {
    std::string secret;
    if (std::string e = ota::read_secret_key(key, &secret); !e.empty()) {
      err << "vibgate bundle sign: " << e << "\n";
      return 1;
    }
    auto loaded = analytics::load_model(model);
    if (!loaded.model) {
      err << "vibgate bundle sign: " << loaded.error << "\n";
      return 1;
    }
    ota::BundleManifest m;
    if (!ota::read_file(model, &m.model, ota::kMaxBundleBytes).empty()) {
      err << "vibgate bundle sign: " << model << ": cannot read\n";
      return 1;
    }
    std::string key_id = std::filesystem::path(key).stem().string();
    m.bundle_id = id.empty() ? key_id + "-" + std::to_string(sequence) : id;
    if (!ota::valid_bundle_id(m.bundle_id)) {
      err << "vibgate bundle sign: --id '" << m.bundle_id
          << "': 1..64 of A-Z a-z 0-9 . _ -, not starting with '.'\n";
      return 1;
    }
    m.sequence = sequence;
    m.target_assets = assets;
    m.min_gateway_version = min_version;
    m.model_format = "vgm";
    m.model_sha256 = ota::sha256(m.model);
    m.note = note;
    m.created_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
    m.shadow_s = shadow_s;
    ota::Bundle b;
    b.manifest = ota::encode_manifest(m);
    b.signature = ota::sign_manifest(b.manifest, secret);
    b.key_id = key_id;
    const std::string file = ota::encode_bundle_file(b);
    if (std::string e = ota::write_file_durably(out_file, file, 0644); !e.empty()) {
      err << "vibgate bundle sign: " << e << "\n";
      return 1;
    }
    out << out_file << ": bundle " << m.bundle_id << ", sequence " << m.sequence << ", key "
        << key_id << ", " << file.size() << " bytes, sha256 " << ota::to_hex(ota::sha256(file))
        << "\n";
    return 0;
  }

  int run_verify() {
    std::string file;
    if (std::string e = ota::read_file(bundle_file, &file, ota::kMaxBundleBytes); !e.empty()) {
      err << "vibgate bundle verify: " << e << "\n";
      return 1;
    }
    std::string e;
    const auto keys = ota::load_trusted_keys(keys_dir, &e);
    if (!e.empty()) {
      err << "vibgate bundle verify: " << e << "\n";
      return 1;
    }
    for (const auto& p : keys.problems) err << "vibgate bundle verify: skipped " << p << "\n";
    const auto v = ota::verify_bundle(file, keys);
    if (v.refusal != ota::Refusal::none) {
      err << "vibgate bundle verify: " << bundle_file << ": refused (" << ota::to_string(v.refusal)
          << "): " << v.detail << "\n";
      return 1;
    }
    const auto& m = v.manifest;
    out << bundle_file << ": signature ok (key " << v.key_id << ")\n"
        << "  bundle_id            " << m.bundle_id << "\n"
        << "  sequence             " << m.sequence << "\n"
        << "  target_assets        ";
    for (std::size_t i = 0; i < m.target_assets.size(); ++i)
      out << (i ? ", " : "") << m.target_assets[i];
    out << "\n  min_gateway_version  "
        << (m.min_gateway_version.empty() ? "-" : m.min_gateway_version)
        << "\n  model                " << m.model_format << ", " << m.model.size()
        << " bytes, sha256 " << ota::to_hex(m.model_sha256) << "\n"
        << "  shadow_s             " << m.shadow_s << (m.shadow_s == 0 ? " (gateway default)" : "")
        << "\n  created_ms           " << m.created_ms << "\n"
        << "  note                 " << m.note << "\n"
        << "  file sha256          " << ota::to_hex(ota::sha256(file)) << "\n";
    return 0;
  }
};

BundleCommands::BundleCommands(CLI::App& app, std::ostream& out, std::ostream& err)
    : s_(std::make_unique<State>(out, err)) {
  auto* b = app.add_subcommand("bundle", "Signed model bundles for over-the-air updates");
  b->group("Model bundles (over the air)");
  b->require_subcommand(1);
  s_->keygen = b->add_subcommand("keygen", "Create an Ed25519 signing key pair NAME.key, NAME.pub");
  s_->keygen->add_option("--out", s_->keygen_out, "Base name of the key files")->required();
  s_->sign = b->add_subcommand("sign", "Sign a model file (.vgm) into a bundle (.vgb)");
  s_->sign->add_option("--key", s_->key, "Secret key file (NAME.key; key id = NAME)")->required();
  s_->sign->add_option("--model", s_->model, "Model file (.vgm)")->required();
  s_->sign->add_option("--asset", s_->assets, "Target asset or asset:channel (repeatable)")
      ->required();
  s_->sign->add_option("--sequence", s_->sequence, "Sequence number (> the last one accepted)")
      ->required()
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 62));
  s_->sign->add_option("--min-version", s_->min_version, "Oldest gateway version that may load it");
  s_->sign->add_option("--shadow-s", s_->shadow_s, "Shadow period in s (0: the gateway's default)");
  s_->sign->add_option("--note", s_->note, "Free text shown by `vibgate model list`");
  s_->sign->add_option("--id", s_->id, "Bundle id (default <key id>-<sequence>)");
  s_->sign->add_option("--out", s_->out_file, "Bundle file to write")->required();
  s_->verify = b->add_subcommand("verify", "Check a bundle's signature offline and print it");
  s_->verify->add_option("BUNDLE", s_->bundle_file, "Bundle file (.vgb)")->required();
  s_->verify->add_option("--keys", s_->keys_dir, "Directory of trusted *.pub keys")->required();
}

BundleCommands::~BundleCommands() = default;

bool BundleCommands::selected() const {
  return s_->keygen->parsed() || s_->sign->parsed() || s_->verify->parsed();
}

int BundleCommands::run_selected() {
  if (s_->keygen->parsed()) return s_->run_keygen();
  if (s_->sign->parsed()) return s_->run_sign();
  return s_->run_verify();
}

}  // namespace vibgate::cli
