# Sourced by the build scripts (deploy/build.sh, tests/run.sh, tests/fuzz/run_fuzzers.sh): when
# ccache is installed (deploy/install-deps.sh installs it), compilations go through it, with paths
# taken relative to the source root so a second clone (CI's, a developer's worktree) reuses the
# cache. CMake reads these variables when a build folder is first configured. A cold cache costs
# nothing but the cache writes; VIBGATE_NO_CCACHE=1 turns it off.
if [ -z "${VIBGATE_NO_CCACHE:-}" ] && command -v ccache >/dev/null 2>&1; then
  export CMAKE_C_COMPILER_LAUNCHER=ccache CMAKE_CXX_COMPILER_LAUNCHER=ccache
  export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
fi
