#!/usr/bin/env bash
# Installs the Debian 12 packages vibgate needs to build, test and run its demo — only the missing
# ones, so it is cheap to call again. Uses sudo when not root.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config ccache
  libfftw3-dev libsndfile1-dev libprotobuf-dev protobuf-compiler libspdlog-dev
  libcli11-dev libtomlplusplus-dev nlohmann-json3-dev libboost-dev libmodbus-dev
  libsqlite3-dev sqlite3 zlib1g-dev libmosquitto-dev libssl-dev mosquitto mosquitto-clients openssl
  libsodium-dev python3-protobuf
  python3-pymodbus python3-serial python3-serial-asyncio python3-paho-mqtt mbpoll socat
  libgtest-dev libgmock-dev libbenchmark-dev clang-14 libfuzzer-14-dev
  debhelper lintian help2man man-db
  python3 python3-numpy python3-scipy collectd-core
  libonnx-dev python3-onnx
  python3-torch
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
