#!/usr/bin/env bash
# The main job in one command: a simulated plant (vibgate-sim) and the gateway daemon (vibgated)
# on this machine. Three machines: fan1 stays healthy, pump2 develops an outer-race bearing fault
# after the gateway has learned its healthy baseline, rig3 replays a real CWRU recording of a
# faulty bearing (scored by a model trained offline on the healthy CWRU recording) when
# ../shared/data/bearings is present. The daemon learns the baselines on site, scores every
# window, raises alarms, tells PLCs over its Modbus facade and queues everything for the MQTT
# uplink (to a broker on 127.0.0.1:1883 if one runs, otherwise it keeps queuing — store and
# forward). Installs what is missing and builds first.
#
# Environment: DEMO_LEARN_S (default 30) baseline learning time, DEMO_TIMEOUT_S (default 180)
# how long to wait for the pump2 alarm, DEMO_MQTT_PORT (default 1883), DEMO_KEEP=1 keep running
# after the alarm until Ctrl-C (the default when run from a terminal outside CI), VIBGATE_BUILD_DIR
# (default build/) the build tree to use.
# Exit status: 0 when pump2 (and rig3 with recordings) alarmed and fan1 and pump2's healthy
# non-drive end did not, else 1.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/deploy/install-deps.sh"
VIBGATE_TARGET="vibgate vibgated vibgate-sim" "$root/deploy/build.sh" >/dev/null
B="${VIBGATE_BUILD_DIR:-$root/build}/gateway"
data="${VIBGATE_DATA_DIR:-$root/../shared/data/bearings}"
learn_s="${DEMO_LEARN_S:-30}"
timeout_s="${DEMO_TIMEOUT_S:-180}"
mqtt_port="${DEMO_MQTT_PORT:-1883}"

# State (database, models, control socket) in the build tree: the daemon refuses sockets under /tmp.
run="${VIBGATE_BUILD_DIR:-$root/build}/demo"
if [ ${#run} -gt 80 ]; then run="${XDG_RUNTIME_DIR:-$HOME/.cache}/vibgate-demo"; fi
rm -rf "$run"
mkdir -p "$run/state"
sock="$run/state/vibgate.sock"

read -r p_fan p_pump p_rig p_facade < <(/usr/bin/python3 - <<'EOF'
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
EOF
)

if [ -f "$data/cwru48k_normal_0hp_train.wav" ] && [ -f "$data/cwru48k_IR007_0hp_109.wav" ]; then
  real=1
  echo "== training rig3's model offline on the healthy CWRU recording (48 kHz, SKF 6205, 1797 rpm)"
  "$B/vibgate" train "$data/cwru48k_normal_0hp_train.wav@:2.2871" --shaft-hz 29.933 \
      --bearing-multiples 3.5848,5.4152,2.3567,0.39828 --out "$run/rig3.vgm" >/dev/null
  rig_machine="[[machine]]
name = \"rig3\"
source = \"replay\"
file = \"$data/cwru48k_IR007_0hp_109.wav\"
shaft_hz = 29.933"
  rig_rate=48000
  rig_model="model = \"$run/rig3.vgm\""
else
  real=0
  echo "== no recordings at $data: rig3 is a healthy synthesized machine"
  rig_machine="[[machine]]
name = \"rig3\"
source = \"synth\"
shaft_hz = 29.933
defect = \"none\""
  rig_rate=25600
  rig_model=""
fi

fault_start=$((learn_s + 12))
P_FAN=$p_fan P_PUMP=$p_pump P_RIG=$p_rig P_FACADE=$p_facade MQTT_PORT=$mqtt_port LEARN_S=$learn_s \
FAULT_START=$fault_start RIG_RATE=$rig_rate RIG_MACHINE="$rig_machine" RIG_MODEL="$rig_model" \
/usr/bin/python3 - "$root/deploy/demo" "$run" <<'EOF'
import os, sys
src, run = sys.argv[1], sys.argv[2]
e = os.environ
subst = {"@PORT_FAN@": e["P_FAN"], "@PORT_PUMP@": e["P_PUMP"], "@PORT_RIG@": e["P_RIG"],
         "@FACADE_PORT@": e["P_FACADE"], "@MQTT_PORT@": e["MQTT_PORT"], "@LEARN_S@": e["LEARN_S"],
         "@FAULT_START@": e["FAULT_START"], "@RIG_RATE@": e["RIG_RATE"], "@STATE@": run + "/state",
         "@RIG_MACHINE@": e["RIG_MACHINE"], "@RIG_MODEL@": e["RIG_MODEL"]}
for name in ("plant.toml", "vibgated.toml"):
    text = open(f"{src}/{name}").read()
    for k, v in subst.items():
        text = text.replace(k, v)
    open(f"{run}/{name}", "w").write(text)
EOF

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$B/vibgate-sim" -c "$run/plant.toml" >"$run/sim.log" 2>&1 &
pids+=($!)
"$B/vibgated" -c "$run/vibgated.toml" >"$run/vibgated.log" 2>&1 &
pids+=($!)
export VIBGATE_SOCKET="$sock"
V=("$B/vibgate")
for _ in $(seq 100); do
  "${V[@]}" status >/dev/null 2>&1 && break
  if ! kill -0 "${pids[1]}" 2>/dev/null; then cat "$run/vibgated.log"; exit 1; fi
  sleep 0.1
done

cat <<EOF
== the plant runs (vibgate-sim, Modbus TCP on 127.0.0.1:$p_fan,$p_pump,$p_rig) and vibgated watches it
   fan1 healthy · pump2 (two sensors) healthy, drive-end bearing fault from t=${fault_start}s · rig3 $([ $real = 1 ] && echo "replays a CWRU inner-race fault" || echo "healthy")
   baselines are learned on site for ${learn_s}s; logs: $run/vibgated.log
   ask the daemon yourself:  export VIBGATE_SOCKET=$sock
                             $B/vibgate assets   (also: status, alerts, trend pump2, spectrum pump2:pump2/accel, devices, tags, queue, model list)
   a PLC reads the alarm coils on 127.0.0.1:$p_facade (docs/modbus-facade.md), e.g.  mbpoll -m tcp -p $p_facade -t 0 -r 1 -c 6 -1 127.0.0.1
EOF

level() {  # level of an asset (its worst channel), or of one channel: level ASSET [CHANNEL]
  "${V[@]}" assets --json | /usr/bin/python3 -c "import json,sys
rows = [a for a in json.load(sys.stdin) if a['name'] == '$1' and '${2:-}' in ('', a['channel'])]
print(max(a['alarm_level'] for a in rows) if rows else '')"
}
start=$SECONDS
caught=0
while [ $((SECONDS - start)) -lt "$timeout_s" ]; do
  sleep 5
  echo "-- t=$((SECONDS - start))s"
  "${V[@]}" assets
  if [ "$(level pump2)" = "2" ]; then caught=1; break; fi
done

echo
if [ $caught = 1 ]; then
  echo "== pump2's bearing fault caught after $((SECONDS - start)) s; the alerts:"
else
  echo "== pump2 was not in alarm within ${timeout_s}s; the alerts so far:"
fi
"${V[@]}" alerts
echo
"${V[@]}" trend pump2 --since 5m
echo
"${V[@]}" queue

ok=$caught
if [ "$(level fan1)" != "0" ]; then echo "!! the healthy fan1 is not normal"; ok=0; fi
if [ "$(level pump2 pump2/accel_nde)" != "0" ]; then echo "!! pump2's healthy non-drive end is not normal"; ok=0; fi
if [ $real = 1 ] && [ "$(level rig3)" != "2" ]; then echo "!! rig3 (real faulty recording) not in alarm"; ok=0; fi

if [ "${DEMO_KEEP:-}" = 1 ] || { [ -t 0 ] && [ -z "${CI:-}" ] && [ -z "${DEMO_KEEP:-}" ]; }; then
  echo
  echo "The demo keeps running; try the commands above. Ctrl-C stops it."
  wait "${pids[1]}" || true
fi
[ $ok = 1 ]
