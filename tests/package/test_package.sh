#!/usr/bin/env bash
# The Debian packages end to end (issue 6, docs/packaging.md), as root on a Debian 12 machine
# without a running systemd (CI): lintian clean; the unit passes systemd-analyze verify and scores
# an exposure of at most 2.0; `apt-get install ./vibgate_*.deb ./vibgate-sim_*.deb` resolves the
# dependencies from Debian; files, man pages, conffile, user and state directory are in place; the
# installed vibgated runs as user vibgate (setpriv) against the installed vibgate-sim and the
# installed `vibgate` CLI sees its asset learn a baseline and score; reinstalling over itself keeps
# a modified conffile and the database; remove keeps state and user, purge removes everything.
#
# Usage: tests/package/test_package.sh DEB_DIR   (deploy/package.sh builds them into build/deb)
# Prints one line per check and "N passed, M failed"; exit 1 if any check failed. Every wait is
# bounded; the processes it starts are stopped by PID on exit. It changes the system (installs and
# purges the packages): run it on a CI machine or a throwaway one.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
debs="$(cd "${1:-$root/build/deb}" && pwd)"
pass=0
fail=0
check() {  # check NAME COMMAND...: runs the command, PASS/FAIL with its output on failure
  local name="$1"
  shift
  local output
  if output="$("$@" 2>&1)"; then
    echo "PASS $name"
    pass=$((pass + 1))
  else
    echo "FAIL $name: $(echo "$output" | tail -5 | tr '\n' '|')"
    fail=$((fail + 1))
  fi
}
wait_for() {  # wait_for SECONDS COMMAND...: true once the command succeeds (every 0.5 s)
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -ge $deadline ] && return 1
    sleep 0.5
  done
}
if [ "$(id -u)" -ne 0 ]; then
  echo "test_package: must run as root (it installs and purges the packages)" >&2
  exit 1
fi
work="$(mktemp -d "${TMPDIR:-/tmp}/vibgate-pkg.XXXXXX")"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT

deb="$(ls "$debs"/vibgate_*.deb | head -1)"
simdeb="$(ls "$debs"/vibgate-sim_*.deb | head -1)"
echo "packages: $deb $simdeb"

# ---- static checks
check "lintian: no errors, no warnings" lintian --fail-on error,warning "$deb" "$simdeb"
exposure="$(systemd-analyze security --offline=yes "$root/deploy/debian/vibgate.service" 2>&1 |
            sed -n 's/.*Overall exposure level for vibgate.service: \([0-9.]*\).*/\1/p')"
check "systemd-analyze security --offline: exposure $exposure <= 2.0" \
  awk -v e="$exposure" 'BEGIN { exit !(e != "" && e + 0 <= 2.0) }'

# ---- install
apt-get purge -y -qq vibgate vibgate-sim >/dev/null 2>&1
check "apt-get install ./vibgate_*.deb ./vibgate-sim_*.deb (dependencies from Debian)" \
  env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$deb" "$simdeb"
for f in /usr/bin/vibgated /usr/bin/vibgate /usr/bin/vibgate-sim /etc/vibgate/vibgate.toml \
         /lib/systemd/system/vibgate.service /usr/share/doc/vibgate/copyright; do
  check "installed: $f" test -e "$f"
done
for f in README.md docs/daemon.md docs/packaging.md; do  # dh_compress gzips the larger ones
  check "installed: /usr/share/doc/vibgate/$f" sh -c "ls /usr/share/doc/vibgate/$f /usr/share/doc/vibgate/$f.gz 2>/dev/null | grep -q ."
done
for m in vibgated.8 vibgate.1 vibgate-sim.1; do
  check "man page $m (from --help, help2man)" sh -c "man -w ${m%.*} | grep -q '$m'"
done
check "man vibgated renders its FILES section" sh -c \
  "MANWIDTH=100 man vibgated 2>/dev/null | grep -q '/etc/vibgate/vibgate.toml'"
check "/etc/vibgate/vibgate.toml is a conffile" sh -c \
  "dpkg-query -W -f='\${Conffiles}' vibgate | grep -q '/etc/vibgate/vibgate.toml'"
check "the installed configuration is valid (vibgated --check-config)" \
  /usr/bin/vibgated --check-config -c /etc/vibgate/vibgate.toml
check "user vibgate: system user, group vibgate, member of dialout" sh -c \
  "id vibgate && [ \$(id -u vibgate) -lt 1000 ] && id -nG vibgate | grep -qw vibgate && id -nG vibgate | grep -qw dialout"
check "state directory /var/lib/vibgate: vibgate:vibgate 0750" sh -c \
  "[ \"\$(stat -c '%U:%G %a' /var/lib/vibgate)\" = 'vibgate:vibgate 750' ]"
check "OTA trusted keys /etc/vibgate/trusted-keys: root:vibgate 0750 (docs/ota.md)" sh -c \
  "[ \"\$(stat -c '%U:%G %a' /etc/vibgate/trusted-keys)\" = 'root:vibgate 750' ]"
check "systemd-analyze verify vibgate.service" systemd-analyze verify vibgate.service
check "the unit is not enabled by the installation (configure first)" sh -c \
  "[ ! -e /etc/systemd/system/multi-user.target.wants/vibgate.service ]"

# ---- run the installed daemon as vibgate against the installed simulator
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
facade="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
vibgate-sim --devices 1 --base-port "$port" --rate 25600 --samples 4096 >"$work/sim.log" 2>&1 &
pids+=($!)
wait_for 10 python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)"
cfg="$work/vibgated.toml"
{
  printf '[daemon]\nlog_level = "info"\n[uplink]\nenabled = false\n'
  printf '[modbus_facade]\nport = %s\n' "$facade"
  vibgate-sim --devices 1 --base-port "$port" --rate 25600 --samples 4096 --print-gateway-config
  name="$(vibgate-sim --devices 1 --base-port "$port" --print-gateway-config | sed -n 's/^name = "\(.*\)"/\1/p' | head -1)"
  printf '[[asset]]\nname = "%s"\nchannel = "%s/accel"\nlearn_s = 5\nlearn_min_windows = 16\n' "$name" "$name"
} >"$cfg"
chmod 0644 "$cfg"
chmod 0755 "$work"
# What systemd's RuntimeDirectory= does for the service.
install -d -o vibgate -g vibgate -m 0750 /run/vibgate
start_daemon() {
  setpriv --reuid=vibgate --regid=vibgate --init-groups --inh-caps=-all \
    /usr/bin/vibgated -c "$cfg" >>"$work/vibgated.log" 2>&1 &
  daemon=$!
  pids+=($daemon)
}
start_daemon
check "the installed vibgated answers the installed CLI on /run/vibgate/vibgate.sock" \
  wait_for 20 vibgate status
check "vibgated runs as user vibgate" sh -c "[ \"\$(ps -o user= -p $daemon)\" = vibgate ]"
scoring() {
  vibgate assets --json | python3 -c "import json,sys
a = json.load(sys.stdin)
sys.exit(0 if a and a[0]['model_state'] == 'scoring' and a[0]['last_window_ms'] > 0 else 1)"
}
check "the asset learned its baseline and is scored (vibgate assets)" wait_for 60 scoring
check "status counts scored windows" sh -c "vibgate status --json | python3 -c \"import json,sys
sys.exit(0 if json.load(sys.stdin)['counters'].get('vibgate_windows_scored_total', 0) > 0 else 1)\""
check "the database belongs to vibgate" sh -c \
  "[ \"\$(stat -c %U /var/lib/vibgate/vibgate.db)\" = vibgate ]"
check "socket /run/vibgate/vibgate.sock not world-accessible" sh -c \
  "[ \"\$(stat -c %a /run/vibgate/vibgate.sock)\" = 660 ]"
kill -TERM "$daemon"
wait "$daemon"
rc=$?
check "SIGTERM: vibgated exits 0" test "$rc" -eq 0

# ---- upgrade over itself: the modified conffile and the database stay
echo "# local change by the test" >>/etc/vibgate/vibgate.toml
check "reinstall over itself (dpkg -i)" env DEBIAN_FRONTEND=noninteractive dpkg -i "$deb"
check "the modified conffile is kept" grep -q "local change by the test" /etc/vibgate/vibgate.toml
check "the database is kept" test -s /var/lib/vibgate/vibgate.db
start_daemon
wait_for 20 vibgate status
check "after the upgrade the daemon starts with the stored model active" sh -c \
  "vibgate model list --json | python3 -c \"import json,sys
m = json.load(sys.stdin)
sys.exit(0 if any(x['state'] == 'active' for x in m) else 1)\""
kill -TERM "$daemon"
wait "$daemon" 2>/dev/null

# ---- remove keeps state and user; purge removes everything
check "apt-get remove vibgate" env DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq vibgate
check "after remove: state, conffile and user are kept" sh -c \
  "test -s /var/lib/vibgate/vibgate.db && test -e /etc/vibgate/vibgate.toml && id vibgate"
check "after remove: the binaries are gone" sh -c "! test -e /usr/bin/vibgated"
check "apt-get purge vibgate vibgate-sim" env DEBIAN_FRONTEND=noninteractive \
  apt-get purge -y -qq vibgate vibgate-sim
check "after purge: nothing left (state, configuration, user, group, simulator)" sh -c \
  "! test -e /var/lib/vibgate && ! test -e /etc/vibgate && ! getent passwd vibgate && ! getent group vibgate && ! test -e /usr/bin/vibgate-sim"

echo "$pass passed, $fail failed"
if [ $fail -ne 0 ]; then
  echo "--- vibgated log"; tail -20 "$work/vibgated.log"
  exit 1
fi
