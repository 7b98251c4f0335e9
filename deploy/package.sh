#!/usr/bin/env bash
# Builds the Debian packages vibgate and vibgate-sim (docs/packaging.md) into build/deb/:
# stages the source with deploy/debian as debian/ in build/pkg/ (the checkout stays clean) and runs
# dpkg-buildpackage -us -uc -b there, then lintian.
#
# VIBGATE_PREBUILT_DIR=<build dir>: package that (Release, prefix /usr, built) instead of building
# again — tests/run.sh packages the build its tests ran on. VIBGATE_DEB_DIR: output folder.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/deploy/install-deps.sh"
out="${VIBGATE_DEB_DIR:-$root/build/deb}"
pkg="$root/build/pkg"
version="$(dpkg-parsechangelog -l "$root/deploy/debian/changelog" -S Version)"
src="$pkg/vibgate-$version"

rm -rf "$pkg"
mkdir -p "$src" "$out"
# The source without build trees: tracked files when this is a git checkout, else everything.
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  (cd "$root" && git ls-files -z --cached --others --exclude-standard |
     grep -zv '^build' | xargs -0 cp --parents -t "$src")
else
  tar -C "$root" --exclude='./build*' --exclude=./.git -cf - . | tar -C "$src" -xf -
fi
rm -rf "$src/debian"
cp -r "$root/deploy/debian" "$src/debian"

if [ -n "${VIBGATE_PREBUILT_DIR:-}" ]; then
  VIBGATE_PREBUILT_DIR="$(cd "$VIBGATE_PREBUILT_DIR" && pwd)"
  export VIBGATE_PREBUILT_DIR
fi
(cd "$src" && DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:-} parallel=${VIBGATE_JOBS:-2}" \
   dpkg-buildpackage -us -uc -b >"$pkg/build.log" 2>&1) || {
  tail -40 "$pkg/build.log" >&2
  echo "package: dpkg-buildpackage failed (log: $pkg/build.log)" >&2
  exit 1
}
rm -f "$out"/vibgate*_"$version"_*.deb
mv "$pkg"/*.deb "$out"/
ls -1 "$out"/*.deb
