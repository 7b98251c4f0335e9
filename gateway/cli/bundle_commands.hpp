// gateway/cli/bundle_commands.hpp — `vibgate bundle keygen|sign|verify`: signing keys and signed
// model bundles for over-the-air updates (docs/ota.md, docs/cli.md). Offline: no daemon needed.
#pragma once

#include <CLI/CLI.hpp>
#include <iosfwd>
#include <memory>

namespace vibgate::cli {

// Adds `bundle` and its subcommands to `app`. After app.parse(): selected() tells whether one of
// them was chosen; run_selected() runs it and returns the exit code (0 ok, 1 failure or a bundle
// that does not verify).
class BundleCommands {
 public:
  BundleCommands(CLI::App& app, std::ostream& out, std::ostream& err);
  ~BundleCommands();
  bool selected() const;
  int run_selected();

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace vibgate::cli
