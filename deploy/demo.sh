#!/usr/bin/env bash
# The main job, for now the offline analysis demo: learn a healthy baseline, then catch the faulty
# recordings. Uses the real bearing recordings in ../shared/data/bearings when present, otherwise
# signals vibgate synthesizes itself. Installs what is missing and builds first.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/deploy/install-deps.sh"
VIBGATE_TARGET=vibgate "$root/deploy/build.sh" >/dev/null
V="$root/build/gateway/vibgate"
data="${VIBGATE_DATA_DIR:-$root/../shared/data/bearings}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if [ -f "$data/cwru48k_normal_0hp_train.wav" ]; then
  echo "== vibgate demo on real bearing recordings ($data)"
  echo "-- learning the healthy baseline from the first 75 % of cwru48k_normal_0hp_train.wav"
  echo "   (SKF 6205 drive-end bearing, 1796 rpm, 48 kHz)"
  "$V" train "$data/cwru48k_normal_0hp_train.wav@:2.2871" --shaft-hz 29.933 \
      --bearing-multiples 3.5848,5.4152,2.3567,0.39828 --out "$work/cwru48.vgm"
  echo "-- scoring the held-out 25 % (healthy) and three faulty bearings"
  "$V" eval --model "$work/cwru48.vgm" --normal "$data/cwru48k_normal_0hp_train.wav@2.2871:" \
      --fault "$data/cwru48k_B007_0hp_122.wav" "$data/cwru48k_IR007_0hp_109.wav" \
              "$data/cwru48k_OR007at6_0hp_135.wav"
else
  echo "== vibgate demo on synthesized vibration (no recordings at $data)"
  "$V" synth --out "$work/healthy_train.wav" --duration 60 --seed 1
  "$V" synth --out "$work/healthy_test.wav" --duration 20 --seed 2
  "$V" synth --out "$work/outer_race_fault.wav" --duration 20 --seed 3 --defect outer --fault-peak 0.3
  "$V" synth --out "$work/inner_race_fault.wav" --duration 20 --seed 4 --defect inner \
      --defect-multiple 5.4152 --fault-peak 0.5
  echo "-- learning the healthy baseline from 60 s of a healthy machine"
  "$V" train "$work/healthy_train.wav" --shaft-hz 29.95 \
      --bearing-multiples 3.5848,5.4152,2.3567,0.39828 --out "$work/machine.vgm"
  echo "-- scoring 20 s of the healthy machine and two developing bearing faults"
  "$V" eval --model "$work/machine.vgm" --normal "$work/healthy_test.wav" \
      --fault "$work/outer_race_fault.wav" "$work/inner_race_fault.wav"
fi
echo
echo "A score of 1.0 is the learned alarm threshold. Try: $V score --model MODEL FILE --format csv"
