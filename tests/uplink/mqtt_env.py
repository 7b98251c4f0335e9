"""Real MQTT components for the uplink tests (issue 4): a mosquitto broker, a paho subscriber that
records everything, a fault-injecting TCP proxy, a throw-away PKI and two independent Sparkplug B
decoders (Eclipse Tahu's JavaScript `sparkplug-payload`, and `protoc --decode`).

Standard library + Debian's python3-paho-mqtt (1.6.1) only; run with /usr/bin/python3.

Rules kept everywhere: loopback (127.0.0.1) only, ports picked by binding to port 0, every wait and
loop bounded in count and time, processes stopped by PID, failures raised as RuntimeError with a
message that says what was being waited for and (for the broker) the tail of its log.

  free_port() -> int
  Broker(workdir, port=None, *, persistence=False, allow_anonymous=None, users=None, tls=None,
         tls_port=None, require_certificate=False, max_queued_messages=1_000_000,
         max_inflight_messages=1000, queue_qos0_messages=False, autosave_interval=None,
         tcp_nodelay=False, verbose_log=False, extra_conf=(), name="mosquitto")
      .start(timeout=10) .stop(timeout=10) -> rc  .kill() -> rc  .restart(kill=False, timeout=10)
      .pid .port .tls_port .host .running .conf_path .log_path .log_tail(lines=40) -> str
      context manager (start on enter, stop on exit)
  make_pki(directory) -> Pki   (ca_cert, ca_key, server_cert, server_key, client_cert, client_key,
                                wrong_ca_cert, wrong_ca_key, wrong_client_cert, wrong_client_key)
  Collector(port, topics=("#",), *, host="127.0.0.1", client_id=None, qos=1, clean_session=False,
            keepalive=10, username=None, password=None, tls=None, start=True)
      .start() .stop(timeout=5) .wait_connected(timeout=10) -> bool
      .wait_for(predicate, timeout) -> bool   (predicate gets a snapshot list of Message)
      .wait_count(n, timeout, topic_prefix=None) -> bool
      .messages(topic_prefix=None) -> [Message(t, topic, payload, qos, retain)]
      .count(topic_prefix=None) -> int  .clear()
      .connected (threading.Event)  .connects  .disconnects  .session_present  .client_id
      context manager
  TcpProxy(target_port, *, target_host="127.0.0.1", port=None)
      .port .mode .set_mode("forward"|"refuse"|"blackhole") .forward() .refuse() .blackhole()
      .active() -> dict  .stats -> dict  .close(timeout=5)  context manager
  node_sparkplug_decoder(build_dir, timeout=180) -> decode(list[bytes]) -> list[dict]
  protoc_decode(proto_path, message_type, payload_bytes) -> str
  protoc_encode(proto_path, message_type, text) -> bytes
  SPARKPLUG_PROTO   (path of uplink/proto/sparkplug_b.proto in this source tree)
"""

import collections
import fcntl
import filecmp
import json
import os
import pwd
import random
import selectors
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time

import paho.mqtt.client as paho

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
PROTOC = shutil.which("protoc") or "/usr/bin/protoc"

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("VIBGATE_SOURCE_DIR") or os.path.abspath(os.path.join(HERE, "..", ".."))
SPARKPLUG_PROTO = os.path.join(SOURCE_DIR, "uplink", "proto", "sparkplug_b.proto")
DECODER_DIR = os.path.join(HERE, "sparkplug-decoder")
TAHU_VERSION = "1.0.3"

LOOPBACK = "127.0.0.1"


def free_port():
    """A loopback TCP port that was free a moment ago (bound to port 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def _port_bindable(port):
    """True if 127.0.0.1:port can be bound the way mosquitto binds it (SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((LOOPBACK, port))
            return True
        except OSError:
            return False


def _tail(path, lines):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


# --------------------------------------------------------------------------------------------
# A minimal MQTT 3.1.1 CONNECT/CONNACK exchange: the readiness probe of Broker.start().
# --------------------------------------------------------------------------------------------

def _mqtt_str(s):
    b = s.encode()
    return struct.pack("!H", len(b)) + b


def _remaining_length(n):
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def mqtt_connack(host, port, *, timeout=1.0, ssl_context=None, username=None, password=None,
                 client_id="vibgate-probe"):
    """Connects, sends an MQTT 3.1.1 CONNECT (clean session) and returns the CONNACK return code
    (0 accepted, 4 bad user/password, 5 not authorised ...). Raises OSError/ssl.SSLError if the
    TCP/TLS connection fails and RuntimeError if no CONNACK arrives in time."""
    flags = 0x02
    payload = _mqtt_str(client_id)
    if username is not None:
        flags |= 0x80
        payload += _mqtt_str(username)
        if password is not None:
            flags |= 0x40
            payload += _mqtt_str(password)
    var = _mqtt_str("MQTT") + bytes([4, flags]) + struct.pack("!H", 10)
    body = var + payload
    packet = b"\x10" + _remaining_length(len(body)) + body
    deadline = time.monotonic() + timeout
    with socket.create_connection((host, port), timeout=timeout) as raw:
        sock = ssl_context.wrap_socket(raw, server_hostname=host) if ssl_context else raw
        try:
            sock.sendall(packet)
            buf = b""
            while len(buf) < 4:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"no CONNACK from {host}:{port} within {timeout} s")
                sock.settimeout(left)
                chunk = sock.recv(4 - len(buf))
                if not chunk:
                    raise RuntimeError(f"{host}:{port} closed the connection before CONNACK")
                buf += chunk
            if buf[0] != 0x20 or buf[1] != 2:
                raise RuntimeError(f"{host}:{port} answered CONNECT with {buf.hex()}, not CONNACK")
            if buf[3] == 0:
                sock.sendall(b"\xe0\x00")  # DISCONNECT
            return buf[3]
        finally:
            if sock is not raw:
                sock.close()


# --------------------------------------------------------------------------------------------
# Broker
# --------------------------------------------------------------------------------------------

class Broker:
    """A mosquitto process on 127.0.0.1 with its configuration, log and (optional) persistence
    database in `workdir`. `port` is the plain listener (picked free if None); with `tls` a second
    TLS listener runs on `tls_port` (picked free if None).

    tls: a Pki from make_pki() or a mapping with cafile/certfile/keyfile.
    users: {name: password} -> a password_file made with mosquitto_passwd; anonymous clients are
      then refused unless allow_anonymous=True is given explicitly.
    max_queued_messages / max_inflight_messages: per-client queue and in-flight window. The large
      queue matters for QoS 0 too: mosquitto 2.0 drops QoS 0 messages to an online client once
      its outgoing packet count reaches max_queued_messages, so a burst to a slower subscriber is
      buffered instead of dropped. queue_qos0_messages: keep QoS 0 for *offline* persistent
      sessions as well (mosquitto default: no).
    autosave_interval: seconds between persistence saves (mosquitto default 1800; the database is
      always written on SIGTERM, never on SIGKILL).
    """

    def __init__(self, workdir, port=None, *, persistence=False, allow_anonymous=None, users=None,
                 tls=None, tls_port=None, require_certificate=False,
                 max_queued_messages=1_000_000, max_inflight_messages=1000,
                 queue_qos0_messages=False, autosave_interval=None, tcp_nodelay=False,
                 verbose_log=False, extra_conf=(), name="mosquitto"):
        self.workdir = os.path.abspath(workdir)
        os.makedirs(self.workdir, exist_ok=True)
        self.host = LOOPBACK
        self.port = port or free_port()
        self.name = name
        self.users = dict(users or {})
        self.allow_anonymous = (not self.users) if allow_anonymous is None else allow_anonymous
        self.persistence = persistence
        self.require_certificate = require_certificate
        self.tls = None
        if tls is not None:
            if isinstance(tls, Pki):
                self.tls = {"cafile": tls.ca_cert, "certfile": tls.server_cert,
                            "keyfile": tls.server_key}
            else:
                self.tls = {k: tls[k] for k in ("cafile", "certfile", "keyfile")}
            self.tls_port = tls_port or free_port()
        else:
            self.tls_port = None
        self.conf_path = os.path.join(self.workdir, f"{name}.conf")
        self.log_path = os.path.join(self.workdir, f"{name}.log")
        self.stderr_path = os.path.join(self.workdir, f"{name}.stderr")
        self.persistence_dir = os.path.join(self.workdir, f"{name}-db")
        self.password_file = os.path.join(self.workdir, f"{name}.passwd") if self.users else None
        self._proc = None
        self._stderr = None

        lines = [
            f"# generated by tests/uplink/mqtt_env.py for {name}",
            f"user {pwd.getpwuid(os.getuid()).pw_name}",  # as root: do not drop to 'mosquitto'
            "per_listener_settings false",
            f"allow_anonymous {'true' if self.allow_anonymous else 'false'}",
            f"max_queued_messages {int(max_queued_messages)}",
            "max_queued_bytes 0",
            f"max_inflight_messages {int(max_inflight_messages)}",
            f"queue_qos0_messages {'true' if queue_qos0_messages else 'false'}",
            f"set_tcp_nodelay {'true' if tcp_nodelay else 'false'}",
            f"log_dest file {self.log_path}",
            "log_timestamp true",
            "log_timestamp_format %H:%M:%S",
            "connection_messages true",
        ]
        lines += (["log_type all"] if verbose_log else
                  ["log_type error", "log_type warning", "log_type notice", "log_type information"])
        if persistence:
            os.makedirs(self.persistence_dir, exist_ok=True)
            lines += ["persistence true", f"persistence_location {self.persistence_dir}/",
                      "persistence_file mosquitto.db"]
            if autosave_interval is not None:
                lines.append(f"autosave_interval {int(autosave_interval)}")
        else:
            lines.append("persistence false")
        if self.users:
            self._write_password_file()
            lines.append(f"password_file {self.password_file}")
        lines += ["", f"listener {self.port} {LOOPBACK}"]
        if self.tls:
            lines += ["", f"listener {self.tls_port} {LOOPBACK}",
                      f"cafile {self.tls['cafile']}", f"certfile {self.tls['certfile']}",
                      f"keyfile {self.tls['keyfile']}",
                      f"require_certificate {'true' if require_certificate else 'false'}"]
        lines += list(extra_conf)
        with open(self.conf_path, "w") as f:
            f.write("\n".join(lines) + "\n")

    def _write_password_file(self):
        first = True
        for user, password in self.users.items():
            args = [MOSQUITTO_PASSWD, "-b"] + (["-c"] if first else []) + [
                self.password_file, user, password]
            r = subprocess.run(args, capture_output=True, text=True, timeout=30)
            if r.returncode != 0:
                raise RuntimeError(f"mosquitto_passwd failed ({r.returncode}): {r.stderr.strip()}")
            first = False
        os.chmod(self.password_file, 0o600)

    # -- process control ------------------------------------------------------------------

    @property
    def pid(self):
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    @property
    def running(self):
        return self.pid is not None

    def log_tail(self, lines=40):
        """Last lines of the broker log, plus anything mosquitto printed on stderr."""
        out = _tail(self.log_path, lines)
        err = _tail(self.stderr_path, lines)
        return out + (("\n[stderr]\n" + err) if err.strip() else "")

    def _probe_ssl_context(self):
        ctx = ssl.create_default_context(cafile=self.tls["cafile"])
        return ctx

    def _probe(self, port, tls):
        user, password = next(iter(self.users.items())) if self.users else (None, None)
        ctx = self._probe_ssl_context() if tls else None
        return mqtt_connack(self.host, port, timeout=1.0, ssl_context=ctx, username=user,
                            password=password)

    def start(self, timeout=10.0):
        """Starts mosquitto and returns once an MQTT CONNECT on the plain listener got a CONNACK
        (and a TCP connect to the TLS listener succeeded). Raises RuntimeError with the log tail
        if the process exits or the broker is not ready within `timeout` s."""
        if self.running:
            raise RuntimeError(f"{self.name} already running (pid {self.pid})")
        busy = [p for p in (self.port, self.tls_port) if p and not _port_bindable(p)]
        if busy:
            raise RuntimeError(f"{self.name}: port(s) {busy} on {LOOPBACK} already in use")
        try:
            log_offset = os.path.getsize(self.log_path)
        except OSError:
            log_offset = 0
        self._stderr = open(self.stderr_path, "ab")
        self._proc = subprocess.Popen([MOSQUITTO, "-c", self.conf_path], stdin=subprocess.DEVNULL,
                                      stdout=self._stderr, stderr=self._stderr)
        deadline = time.monotonic() + timeout
        last_error = "not tried"
        plain_ok = False
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                rc = self._proc.returncode
                self._close_stderr()
                raise RuntimeError(f"{self.name} exited with {rc} during start-up "
                                   f"(port {self.port}):\n{self.log_tail()}")
            try:
                # the probe only counts once *this* process logged that it runs (another
                # process on the port must not pass for it)
                if not self._logged_running(log_offset):
                    raise RuntimeError("no 'running' line in the log yet")
                if not plain_ok:
                    self._probe(self.port, tls=False)
                    plain_ok = True
                if self.tls:
                    with socket.create_connection((self.host, self.tls_port), timeout=1.0):
                        pass
                return self
            except (OSError, RuntimeError) as e:
                last_error = f"{type(e).__name__}: {e}"
            time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"{self.name} not ready on port {self.port} within {timeout} s "
                           f"(last probe: {last_error}):\n{self.log_tail()}")

    def _logged_running(self, offset):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                return b" running" in f.read(1 << 20)
        except OSError:
            return False

    def _close_stderr(self):
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def _signal_and_wait(self, sig, timeout):
        if self._proc is None:
            return None
        if self._proc.poll() is None:
            os.kill(self._proc.pid, sig)
            try:
                self._proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self._proc.pid, signal.SIGKILL)
                self._proc.wait(timeout=5)
                self._close_stderr()
                raise RuntimeError(f"{self.name} (pid {self._proc.pid}) ignored signal {sig} for "
                                   f"{timeout} s; killed:\n{self.log_tail()}")
        self._close_stderr()
        return self._proc.returncode

    def stop(self, timeout=10.0):
        """SIGTERM by PID and wait (mosquitto writes its persistence database). Returns the exit
        code (None if never started)."""
        return self._signal_and_wait(signal.SIGTERM, timeout)

    def kill(self):
        """SIGKILL by PID and wait: a crash, nothing is saved."""
        return self._signal_and_wait(signal.SIGKILL, 5.0)

    def restart(self, kill=False, timeout=10.0):
        """Stops (SIGTERM, or SIGKILL with kill=True) and starts again on the same port(s),
        after waiting (bounded) until the port(s) can be bound again."""
        if kill:
            self.kill()
        else:
            self.stop(timeout)
        deadline = time.monotonic() + timeout
        ports = [p for p in (self.port, self.tls_port) if p]
        while not all(_port_bindable(p) for p in ports):
            if time.monotonic() > deadline:
                raise RuntimeError(f"port(s) {ports} of {self.name} not re-bindable within "
                                   f"{timeout} s")
            time.sleep(0.05)
        return self.start(timeout)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        try:
            self.stop()
        except RuntimeError:
            pass


# --------------------------------------------------------------------------------------------
# PKI
# --------------------------------------------------------------------------------------------

class Pki:
    """Paths of the files make_pki() wrote (PEM)."""

    FIELDS = ("ca_cert", "ca_key", "server_cert", "server_key", "client_cert", "client_key",
              "wrong_ca_cert", "wrong_ca_key", "wrong_client_cert", "wrong_client_key")

    def __init__(self, **paths):
        for k in self.FIELDS:
            setattr(self, k, paths[k])

    def __repr__(self):
        return "Pki(" + ", ".join(f"{k}={getattr(self, k)!r}" for k in self.FIELDS) + ")"


_OPENSSL_CNF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyAgreement
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyAgreement
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
"""


def _openssl(*args, cwd):
    r = subprocess.run([OPENSSL, *args], cwd=cwd, capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed ({r.returncode}): {r.stderr.strip()}")


def make_pki(directory):
    """A test CA, a server certificate for 127.0.0.1/localhost, a client certificate (both signed
    by the CA) and an unrelated 'wrong' CA with its own client certificate. EC prime256v1 keys;
    takes well under a second. Returns a Pki of absolute paths."""
    d = os.path.abspath(directory)
    os.makedirs(d, exist_ok=True)
    cnf = os.path.join(d, "openssl.cnf")
    with open(cnf, "w") as f:
        f.write(_OPENSSL_CNF)

    def key(name):
        _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-out", f"{name}.key", cwd=d)
        os.chmod(os.path.join(d, f"{name}.key"), 0o600)

    def ca(name, cn):
        key(name)
        _openssl("req", "-new", "-x509", "-config", cnf, "-extensions", "v3_ca", "-key",
                 f"{name}.key", "-subj", f"/CN={cn}", "-days", "3650", "-sha256", "-out",
                 f"{name}.crt", cwd=d)

    def leaf(name, cn, ca_name, ext):
        key(name)
        _openssl("req", "-new", "-config", cnf, "-key", f"{name}.key", "-subj", f"/CN={cn}",
                 "-out", f"{name}.csr", cwd=d)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca_name}.crt", "-CAkey",
                 f"{ca_name}.key", "-set_serial", str(random.getrandbits(63)), "-days", "825",
                 "-sha256", "-extfile", cnf, "-extensions", ext, "-out", f"{name}.crt", cwd=d)

    ca("ca", "vibgate test CA")
    leaf("server", "127.0.0.1", "ca", "server")
    leaf("client", "vibgate-test-client", "ca", "client")
    ca("wrong-ca", "vibgate wrong CA")
    leaf("wrong-client", "vibgate-test-client", "wrong-ca", "client")
    p = lambda n: os.path.join(d, n)  # noqa: E731
    return Pki(ca_cert=p("ca.crt"), ca_key=p("ca.key"), server_cert=p("server.crt"),
               server_key=p("server.key"), client_cert=p("client.crt"),
               client_key=p("client.key"), wrong_ca_cert=p("wrong-ca.crt"),
               wrong_ca_key=p("wrong-ca.key"), wrong_client_cert=p("wrong-client.crt"),
               wrong_client_key=p("wrong-client.key"))


# --------------------------------------------------------------------------------------------
# Collector
# --------------------------------------------------------------------------------------------

Message = collections.namedtuple("Message", "t topic payload qos retain")
Message.__doc__ = "One received message: t = time.monotonic() at arrival."


class _BufferedClient(paho.Client):
    """paho 1.6.1 reads every packet with 2-4 recv() calls (command byte, length bytes, body) and
    one select() per packet. Serving those reads from a 256 KiB buffer and draining the buffer
    in loop_read() makes the subscriber several times faster (bursts of ~50 000 msg/s)."""

    _BUF = 256 * 1024

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self._rbuf = b""
        self._rpos = 0

    def _sock_recv(self, bufsize):
        if self._rpos >= len(self._rbuf):
            data = super()._sock_recv(self._BUF)  # raises BlockingIOError when nothing is there
            if not data:
                return b""
            self._rbuf, self._rpos = data, 0
        end = self._rpos + bufsize
        out = self._rbuf[self._rpos:end]
        self._rpos = min(end, len(self._rbuf))
        return out

    def _sock_close(self):
        self._rbuf, self._rpos = b"", 0
        super()._sock_close()

    def loop_read(self, max_packets=1):
        rc = super().loop_read(max_packets)
        for _ in range(1_000_000):  # bounded: a 256 KiB buffer holds far fewer packets
            if rc != 0 or self._sock is None or self._rpos >= len(self._rbuf):
                break
            rc = super().loop_read(1)
        return rc


class Collector:
    """A paho-mqtt (MQTT 3.1.1) subscriber on its own network thread (loop_start) that records
    every message as Message(t, topic, payload, qos, retain).

    clean_session=False with a fixed client id (given, or made unique per Collector), so a broker
    restart with persistence keeps its session and queued messages. Reconnects automatically
    (reconnect_delay_set(0.1, 1)), also if the first connection attempt fails, and re-subscribes
    after every connect. tls: a Pki (CA + client certificate) or a mapping with ca_certs and
    optionally certfile/keyfile."""

    _ids = 0
    _ids_lock = threading.Lock()

    def __init__(self, port, topics=("#",), *, host=LOOPBACK, client_id=None, qos=1,
                 clean_session=False, keepalive=10, username=None, password=None, tls=None,
                 start=True):
        if client_id is None:
            with Collector._ids_lock:
                Collector._ids += 1
                client_id = f"vibgate-collector-{os.getpid()}-{Collector._ids}"
        self.client_id = client_id
        self.host, self.port = host, port
        self.topics = [topics] if isinstance(topics, str) else list(topics)
        self.qos = qos
        self.keepalive = keepalive
        self.connected = threading.Event()     # CONNACK received on the current connection
        self._subscribed = threading.Event()   # SUBACK received on the current connection
        self.connects = 0
        self.disconnects = []                  # (monotonic time, rc) per lost connection
        self.session_present = None            # flag of the latest CONNACK
        self._lock = threading.Lock()
        self._msgs = []
        self._sub_mid = None
        self._started = False

        c = _BufferedClient(client_id=client_id, clean_session=clean_session,
                            protocol=paho.MQTTv311)
        c.reconnect_delay_set(0.1, 1)
        c.max_inflight_messages_set(100)
        if username is not None:
            c.username_pw_set(username, password)
        if tls is not None:
            if isinstance(tls, Pki):
                c.tls_set(ca_certs=tls.ca_cert, certfile=tls.client_cert, keyfile=tls.client_key)
            else:
                c.tls_set(ca_certs=tls["ca_certs"], certfile=tls.get("certfile"),
                          keyfile=tls.get("keyfile"))
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_subscribe = self._on_subscribe
        c.on_message = self._on_message
        self._client = c
        if start:
            self.start()

    # paho callbacks (network thread) -----------------------------------------------------

    def _on_connect(self, client, userdata, flags, rc):
        if rc != 0:
            return
        self.connects += 1
        self.session_present = bool(flags.get("session present"))
        self.connected.set()
        self._subscribed.clear()
        _, self._sub_mid = client.subscribe([(t, self.qos) for t in self.topics])

    def _on_subscribe(self, client, userdata, mid, granted_qos):
        if mid == self._sub_mid:
            self._subscribed.set()

    def _on_disconnect(self, client, userdata, rc):
        self.connected.clear()
        self._subscribed.clear()
        self.disconnects.append((time.monotonic(), rc))

    def _on_message(self, client, userdata, msg):
        m = Message(time.monotonic(), msg.topic, msg.payload, msg.qos, msg.retain)
        with self._lock:
            self._msgs.append(m)

    # API ---------------------------------------------------------------------------------

    def start(self):
        if not self._started:
            self._client.connect_async(self.host, self.port, keepalive=self.keepalive)
            self._client.loop_start()
            self._started = True
        return self

    def wait_connected(self, timeout=10.0):
        """True once connected *and* subscribed (SUBACK) on the current connection; after a
        broker restart this waits for the reconnect and re-subscription."""
        return self._subscribed.wait(timeout)

    def messages(self, topic_prefix=None):
        with self._lock:
            snap = list(self._msgs)
        if topic_prefix is None:
            return snap
        return [m for m in snap if m.topic.startswith(topic_prefix)]

    def count(self, topic_prefix=None):
        if topic_prefix is None:
            with self._lock:
                return len(self._msgs)
        return len(self.messages(topic_prefix))

    def clear(self):
        with self._lock:
            self._msgs = []

    def wait_for(self, predicate, timeout):
        """Polls predicate(snapshot list of Message) every 20 ms (50 ms for large lists) until it
        is true (returns True) or `timeout` s passed (returns False)."""
        deadline = time.monotonic() + timeout
        while True:
            snap = self.messages()
            if predicate(snap):
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(left, 0.02 if len(snap) < 100_000 else 0.05))

    def wait_count(self, n, timeout, topic_prefix=None):
        """True once at least n messages (under topic_prefix) arrived within timeout s."""
        deadline = time.monotonic() + timeout
        while True:
            if self.count(topic_prefix) >= n:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(left, 0.01))

    def stop(self, timeout=5.0):
        """Disconnects and joins the network thread (bounded)."""
        if not self._started:
            return
        self._started = False
        c = self._client
        c.disconnect()
        thread = c._thread  # paho 1.6.1's loop_stop() joins without a timeout; do it bounded
        c._thread_terminate = True
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                raise RuntimeError(f"collector {self.client_id}: network thread did not stop "
                                   f"within {timeout} s")
        c._thread = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


# --------------------------------------------------------------------------------------------
# TcpProxy
# --------------------------------------------------------------------------------------------

class _Pipe:
    __slots__ = ("client", "upstream", "dead", "to_client", "to_upstream")

    def __init__(self, client, upstream):
        self.client = client
        self.upstream = upstream
        self.dead = upstream is None      # blackholed: swallow everything, never forward
        self.to_client = bytearray()
        self.to_upstream = bytearray()


def _rst_close(sock):
    """Close with RST instead of FIN (SO_LINGER on, timeout 0)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


class TcpProxy:
    """A TCP proxy on a free loopback port forwarding to target_host:target_port, one selector
    thread. Modes, switched at run time with set_mode() (returns once applied):

      forward    relay bytes both ways (new connections connect upstream; if that fails the
                 client gets an RST, as from a stopped broker);
      refuse     RST every existing connection (both sides) and RST every new one right after
                 accept: the broker port is closed / host rejects;
      blackhole  keep every socket open and silently swallow all data both ways, never close
                 (the client side), for existing and new connections: a pulled cable / dropped
                 packets that only keepalive notices. If the broker closes its side (its own
                 keepalive timeout), the client side still stays open.

    Back to forward: blackholed connections stay dead (swallowing) until the client closes
    them; new connections are forwarded."""

    MODES = ("forward", "refuse", "blackhole")
    _HIGH_WATER = 1 << 20  # stop reading a side while 1 MiB waits for its peer

    def __init__(self, target_port, *, target_host=LOOPBACK, port=None):
        self.target = (target_host, target_port)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((LOOPBACK, port or 0))
        self._listener.listen(128)
        self._listener.setblocking(False)
        self.port = self._listener.getsockname()[1]
        self.mode = "forward"
        self.stats = {"accepted": 0, "forwarded": 0, "refused": 0, "blackholed": 0,
                      "upstream_failed": 0, "reset": 0, "bytes_up": 0, "bytes_down": 0,
                      "swallowed": 0}
        self._pipes = set()
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._cmds = collections.deque()
        self._cmd_lock = threading.Lock()
        self._closing = False
        self._sel.register(self._listener, selectors.EVENT_READ, ("listen", None))
        self._sel.register(self._wake_r, selectors.EVENT_READ, ("wake", None))
        self._thread = threading.Thread(target=self._run, name=f"TcpProxy:{self.port}",
                                        daemon=True)
        self._thread.start()

    # public ------------------------------------------------------------------------------

    def set_mode(self, mode, timeout=5.0):
        if mode not in self.MODES:
            raise ValueError(f"unknown proxy mode {mode!r}; one of {self.MODES}")
        if not self._thread.is_alive():
            raise RuntimeError("proxy thread is not running")
        done = threading.Event()
        with self._cmd_lock:
            self._cmds.append((mode, done))
        self._wake_w.send(b"m")
        if not done.wait(timeout):
            raise RuntimeError(f"proxy did not switch to {mode} within {timeout} s")

    def forward(self):
        self.set_mode("forward")

    def refuse(self):
        self.set_mode("refuse")

    def blackhole(self):
        self.set_mode("blackhole")

    def active(self):
        """{'forwarding': n, 'dead': n} connections currently open (approximate, lock-free)."""
        pipes = list(self._pipes)
        dead = sum(1 for p in pipes if p.dead)
        return {"forwarding": len(pipes) - dead, "dead": dead}

    def close(self, timeout=5.0):
        if self._closing:
            return
        self._closing = True
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise RuntimeError(f"proxy thread did not stop within {timeout} s")
        self._wake_w.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # selector thread ---------------------------------------------------------------------

    def _run(self):
        try:
            while not self._closing:
                for key, mask in self._sel.select(timeout=0.5):
                    kind, pipe = key.data
                    if kind == "listen":
                        self._accept()
                    elif kind == "wake":
                        self._drain_wake()
                    elif pipe in self._pipes:
                        self._io(pipe, key.fileobj, kind, mask)
                    if self._closing:
                        break
        finally:
            for pipe in list(self._pipes):
                self._close_pipe(pipe, rst=False)
            self._sel.close()
            self._listener.close()
            self._wake_r.close()

    def _drain_wake(self):
        try:
            for _ in range(1000):
                if not self._wake_r.recv(4096):
                    break
        except BlockingIOError:
            pass
        for _ in range(1000):
            with self._cmd_lock:
                if not self._cmds:
                    break
                mode, done = self._cmds.popleft()
            self._apply_mode(mode)
            done.set()

    def _apply_mode(self, mode):
        self.mode = mode
        if mode == "refuse":
            for pipe in list(self._pipes):
                self.stats["reset"] += 1
                self._close_pipe(pipe, rst=True)
        elif mode == "blackhole":
            for pipe in list(self._pipes):
                if not pipe.dead:
                    pipe.dead = True
                    pipe.to_client.clear()
                    pipe.to_upstream.clear()
                    self._update(pipe)

    def _accept(self):
        for _ in range(64):
            try:
                client, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            self.stats["accepted"] += 1
            if self.mode == "refuse":
                self.stats["refused"] += 1
                _rst_close(client)
                continue
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            upstream = None
            if self.mode == "forward":
                try:
                    upstream = socket.create_connection(self.target, timeout=1.0)
                except OSError:
                    self.stats["upstream_failed"] += 1
                    _rst_close(client)
                    continue
                upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                upstream.setblocking(False)
                self.stats["forwarded"] += 1
            else:
                self.stats["blackholed"] += 1
            client.setblocking(False)
            pipe = _Pipe(client, upstream)
            self._pipes.add(pipe)
            self._sel.register(client, selectors.EVENT_READ, ("c", pipe))
            if upstream is not None:
                self._sel.register(upstream, selectors.EVENT_READ, ("u", pipe))

    def _events(self, pipe, side):
        if pipe.dead:
            return selectors.EVENT_READ
        outbuf, peerbuf = ((pipe.to_client, pipe.to_upstream) if side == "c"
                           else (pipe.to_upstream, pipe.to_client))
        ev = selectors.EVENT_WRITE if outbuf else 0
        if len(peerbuf) < self._HIGH_WATER:
            ev |= selectors.EVENT_READ
        return ev

    def _update(self, pipe):
        for side, sock in (("c", pipe.client), ("u", pipe.upstream)):
            if sock is None:
                continue
            ev = self._events(pipe, side)
            try:
                key = self._sel.get_key(sock)
            except KeyError:
                key = None
            if ev == 0:
                if key is not None:
                    self._sel.unregister(sock)
            elif key is None:
                self._sel.register(sock, ev, (side, pipe))
            elif key.events != ev:
                self._sel.modify(sock, ev, (side, pipe))

    def _close_pipe(self, pipe, rst):
        self._pipes.discard(pipe)
        for sock in (pipe.client, pipe.upstream):
            if sock is None:
                continue
            try:
                self._sel.unregister(sock)
            except (KeyError, ValueError):
                pass
            if rst:
                _rst_close(sock)
            else:
                sock.close()

    def _io(self, pipe, sock, side, mask):
        if mask & selectors.EVENT_READ:
            try:
                data = sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                data = None
            except OSError:
                data = b""
            if data == b"":  # EOF or error on this side
                if pipe.dead and side == "u":
                    # the broker gave up on a blackholed client: the client side stays open
                    self._sel.unregister(sock)
                    sock.close()
                    pipe.upstream = None
                    return
                if not pipe.dead:  # flush what the closing side sent, best effort
                    rest = pipe.to_upstream if side == "c" else pipe.to_client
                    peer = pipe.upstream if side == "c" else pipe.client
                    try:
                        if rest and peer is not None:
                            peer.send(rest)
                    except OSError:
                        pass
                self._close_pipe(pipe, rst=False)
                return
            if data:
                if pipe.dead:
                    self.stats["swallowed"] += len(data)
                elif side == "c":
                    pipe.to_upstream += data
                    self.stats["bytes_up"] += len(data)
                    self._flush(pipe, "u")
                else:
                    pipe.to_client += data
                    self.stats["bytes_down"] += len(data)
                    self._flush(pipe, "c")
        if pipe in self._pipes and not pipe.dead and mask & selectors.EVENT_WRITE:
            self._flush(pipe, side)
        if pipe in self._pipes:
            self._update(pipe)

    def _flush(self, pipe, side):
        """Sends what waits for `side` ("c": to the client, "u": to the upstream)."""
        sock, buf = (pipe.client, pipe.to_client) if side == "c" else (pipe.upstream,
                                                                       pipe.to_upstream)
        if not buf or sock is None:
            return
        try:
            n = sock.send(buf)
            del buf[:n]
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            self._close_pipe(pipe, rst=False)


# --------------------------------------------------------------------------------------------
# Sparkplug B decoders
# --------------------------------------------------------------------------------------------

def _json_hook(obj):
    if len(obj) == 1:
        if "$int" in obj:
            return int(obj["$int"])
        if "$hex" in obj:
            return bytes.fromhex(obj["$hex"])
        if "$float" in obj:
            return float(obj["$float"])
    return obj


def node_sparkplug_decoder(build_dir, timeout=180.0):
    """Installs Eclipse Tahu's JavaScript `sparkplug-payload` (version pinned in
    tests/uplink/sparkplug-decoder/package.json + package-lock.json) into
    <build_dir>/npm-sparkplug once (npm needs the network only then) and returns
    decode(list_of_payload_bytes) -> list_of_dicts, one `node decode.js` run per batch.

    Each dict is what sparkplug-payload's decodePayload() returns (see decode.js for the field
    names and types), with 64-bit integers as int, bytes values as bytes, non-finite/-0 floats as
    float; a payload protobuf cannot parse gives {"error": "..."}; every dict also carries
    "_value_fields": the protobuf oneof field each metric's value came in ("intValue",
    "longValue", ... or None). Raises RuntimeError with npm's/node's output on failure."""
    node = shutil.which("node")
    npm = shutil.which("npm")
    if not node or not npm:
        raise RuntimeError("node/npm not found on PATH: the Tahu Sparkplug decoder needs Node.js "
                           "(deploy/install-deps.sh installs it)")
    install = os.path.join(os.path.abspath(build_dir), "npm-sparkplug")
    os.makedirs(install, exist_ok=True)
    marker = os.path.join(install, "node_modules", "sparkplug-payload", "package.json")
    with open(os.path.join(install, ".install.lock"), "w") as lockf:
        fcntl.flock(lockf, fcntl.LOCK_EX)  # concurrent test processes install once
        fresh = os.path.exists(marker) and all(
            os.path.exists(os.path.join(install, n)) and
            filecmp.cmp(os.path.join(DECODER_DIR, n), os.path.join(install, n), shallow=False)
            for n in ("package.json", "package-lock.json"))
        if fresh:
            with open(marker) as f:
                fresh = json.load(f).get("version") == TAHU_VERSION
        if not fresh:
            for n in ("package.json", "package-lock.json"):
                shutil.copyfile(os.path.join(DECODER_DIR, n), os.path.join(install, n))
            cmd = [npm, "install", "--no-audit", "--no-fund", "--fetch-retries", "2",
                   "--fetch-retry-maxtimeout", "10000", "--prefix", install]
            try:
                r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
            except subprocess.TimeoutExpired:
                raise RuntimeError(f"`{' '.join(cmd)}` did not finish within {timeout} s "
                                   "(the npm registry must be reachable for the first run)")
            if r.returncode != 0 or not os.path.exists(marker):
                raise RuntimeError(
                    f"installing sparkplug-payload@{TAHU_VERSION} failed: `{' '.join(cmd)}` "
                    f"exited {r.returncode} (the npm registry must be reachable for the first "
                    f"run):\n{(r.stdout + r.stderr)[-3000:]}")
    script = os.path.join(DECODER_DIR, "decode.js")

    def decode(payloads):
        payloads = list(payloads)
        if not payloads:
            return []
        data = "".join(bytes(p).hex() + "\n" for p in payloads)
        budget = 60.0 + len(payloads) / 2000.0
        try:
            r = subprocess.run([node, script, install], input=data, capture_output=True,
                               text=True, timeout=budget)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"node decode.js: {len(payloads)} payloads not decoded within "
                               f"{budget:.0f} s")
        lines = r.stdout.splitlines()
        if r.returncode != 0 or len(lines) != len(payloads):
            raise RuntimeError(f"node decode.js exited {r.returncode} with {len(lines)} lines "
                               f"for {len(payloads)} payloads:\n{r.stderr[-3000:]}")
        return [json.loads(line, object_hook=_json_hook) for line in lines]

    return decode


def protoc_decode(proto_path, message_type, payload_bytes):
    """`protoc --decode=<message_type>` of one payload: the protobuf text format (str)."""
    d, f = os.path.split(os.path.abspath(proto_path))
    r = subprocess.run([PROTOC, f"--decode={message_type}", "-I", d, f], input=bytes(payload_bytes),
                       capture_output=True, timeout=30)
    if r.returncode != 0:
        raise RuntimeError(f"protoc --decode={message_type} failed ({r.returncode}): "
                           f"{r.stderr.decode(errors='replace').strip()}")
    return r.stdout.decode()


def protoc_encode(proto_path, message_type, text):
    """`protoc --encode=<message_type>` of a text-format message: the binary payload."""
    d, f = os.path.split(os.path.abspath(proto_path))
    r = subprocess.run([PROTOC, f"--encode={message_type}", "-I", d, f], input=text.encode(),
                       capture_output=True, timeout=30)
    if r.returncode != 0:
        raise RuntimeError(f"protoc --encode={message_type} failed ({r.returncode}): "
                           f"{r.stderr.decode(errors='replace').strip()}")
    return r.stdout
