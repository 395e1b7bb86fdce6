#!/usr/bin/env python3
"""soak.py: sipd under a steady mix of honest and hostile traffic for a long time, watched for what short
tests cannot see: memory that creeps up, descriptors that leak, bindings that never expire, a crash after
the millionth message, a slow drift into failures.

  soak.py SIPD [--seconds N] [--scale F] [--work DIR] [--keep]

What runs at once, all against one sipd (workers = 2, udp and tcp on 127.0.0.1):
  - registrations with MD5 digest (SIPp, tests/soak/register-churn.xml), bound for 60 s, users coming
    round only after their binding expired: each binding is added, stored, expired and deleted;
  - proxied calls to bob (registered with digest), INVITE/100/180/200/ACK/BYE/200, from a UDP caller
    and a TCP caller (SIPp bench/calls-uac.xml and calls-uas.xml, retransmissions on);
  - OPTIONS over UDP and over one TCP connection (SIPp bench/options.xml);
  - brute force: wrong passwords for real and made-up users from 127.0.0.2-254 (401, then 403 once the
    pair is blocked; never a 200), which fills the failure counter table;
  - garbage: every tests/torture/invalid message over UDP in turn, TCP connections that send random
    bytes or a message over max_message_size and close, 40 TCP connections left with half a request
    line until sipd closes them (32 s after their first byte, a message's deadline; before the idle
    timeout, 90 s here).

Every 5 s: sipd's resident memory, descriptors, threads and the bindings stored. Passes when every SIPp
run ended with zero failed calls, no wrong password was ever accepted and every attempt was answered,
the idle connections were closed by sipd, after the warm-up (120 s: bindings, nonces and failure counts
last 60 s here, so by then each table holds a steady population) the resident memory grew by at most max(4 MB, 5%) over the rest of the run (least-squares trend;
not judged for a sanitizer build, whose quarantine holds freed memory on purpose), descriptors came back
to where they started, the stored bindings stayed within the users, and SIGTERM stopped sipd with exit
status 0 and no sanitizer report.
"""
import argparse
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "registrar"))
import regclient  # noqa: E402  (the digest client of the registrar tests)

SPAWNED = []  # every process started, killed (with its session) whatever way the run ends


def spawn(argv, stderr, cwd=None):
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True, cwd=cwd)
    SPAWNED.append(p)
    return p


def kill_spawned():
    for p in SPAWNED:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()

HOST = "127.0.0.1"
REALM = regclient.REALM  # the realm regclient signs for
WARMUP = 120          # s: bindings, nonces and failure windows last 60 s here: by then all come and go
SAMPLE_EVERY = 5      # s
IDLE_TIMEOUT = 90     # s: sipd's tcp_idle_timeout in this test
IDLE_CONNS = 40
SANITIZER_RE = re.compile(r"ERROR: AddressSanitizer|LeakSanitizer|runtime error:|WARNING: ThreadSanitizer")


def log(msg):
    sys.stdout.write("%s %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stdout.flush()


def free_ports(count, start):
    ports = regclient.free_ports(count, start)
    if len(ports) < count:
        raise SystemExit("FAIL setup: not %d free ports from %d" % (count, start))
    return ports


def password(user):
    return "pw-" + user[::-1]


# ---------------------------------------------------------------- sipd

class Sipd:
    def __init__(self, binary, work, port):
        self.binary, self.work, self.port = binary, work, port
        self.db = os.path.join(work, "soak.db")
        self.ini = os.path.join(work, "soak.ini")
        self.err = os.path.join(work, "sipd.err")
        self.proc = None
        with open(self.ini, "w") as f:
            f.write("[general]\nlisten = udp:%s:%d, tcp:%s:%d\nworkers = 2\nlog_level = warning\n"
                    "[limits]\ntcp_idle_timeout = %d\n"
                    "[auth]\nrealm = %s\nalgorithms = MD5\nnonce_lifetime = 60\nmax_failures = 5\nfailure_window = 60\n"
                    "block_time = 30\n"
                    "[proxy]\nauth_calls = no\nrecord_route = yes\n"
                    "[database]\npath = %s\n"
                    % (HOST, port, HOST, port, IDLE_TIMEOUT, REALM, self.db))

    def start(self):
        self.proc = spawn([self.binary, "-c", self.ini], open(self.err, "ab"))
        for _ in range(150):
            if self.proc.poll() is not None:
                raise SystemExit("FAIL setup: sipd exited (%s):\n%s" % (self.proc.returncode, tail(self.err)))
            if ping(self.port):
                return
            time.sleep(0.1)
        raise SystemExit("FAIL setup: sipd does not answer OPTIONS on %d" % self.port)

    def stop(self):
        """SIGTERM; the exit status (None if it had to be killed)."""
        if self.proc.poll() is not None:
            return self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            return None

    def sample(self):
        pid = self.proc.pid
        rss = threads = None
        try:
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss = int(line.split()[1])
                    elif line.startswith("Threads:"):
                        threads = int(line.split()[1])
            fds = len(os.listdir("/proc/%d/fd" % pid))
        except OSError:
            return None
        return {"t": time.monotonic(), "rss": rss, "threads": threads, "fds": fds,
                "bindings": stored_bindings(self.db)}


def stored_bindings(db):
    try:
        c = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=5)
        n = c.execute("SELECT count(*) FROM bindings").fetchone()[0]
        c.close()
        return n
    except sqlite3.Error:
        return None


def tail(path, n=30):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def ping(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.3)
    try:
        s.bind((HOST, 0))
        lp = s.getsockname()[1]
        s.sendto(("OPTIONS sip:%s:%d SIP/2.0\r\nVia: SIP/2.0/UDP %s:%d;branch=z9hG4bKsoak%d\r\n"
                  "Max-Forwards: 70\r\nFrom: <sip:soak@%s>;tag=p\r\nTo: <sip:%s:%d>\r\n"
                  "Call-ID: ping-%d@soak\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
                  % (HOST, port, HOST, lp, random.randrange(1 << 30), HOST, HOST, port,
                     random.randrange(1 << 30))).encode(), (HOST, port))
        return s.recv(4096).startswith(b"SIP/2.0 200")
    except OSError:
        return False
    finally:
        s.close()


def make_users(sipd, users):
    """sipd creates its schema; the users' HA1 rows go in with sqlite3 (what sipctl writes)."""
    rows = []
    for u in users:
        a1 = "%s:%s:%s" % (u, REALM, password(u))
        rows.append((u, regclient.H("MD5", a1), regclient.H("SHA-256", a1)))
    c = sqlite3.connect(sipd.db, timeout=10)
    c.executemany("INSERT OR REPLACE INTO users(name, ha1_md5, ha1_sha256) VALUES(?, ?, ?)", rows)
    c.commit()
    c.close()


# ---------------------------------------------------------------- SIPp

class Sipp:
    def __init__(self, name, work, argv):
        self.name = name
        self.stf = os.path.join(work, "sipp-%s.csv" % name)
        self.err = os.path.join(work, "sipp-%s.err" % name)
        self.calls = None
        argv = ["sipp"] + argv + ["-nostdin", "-trace_stat", "-stf", self.stf, "-fd", "5",
                                  "-trace_err", "-error_file", os.path.join(work, "sipp-%s-errors.log" % name)]
        for i, a in enumerate(argv):
            if a == "-m":
                self.calls = int(argv[i + 1])
        self.proc = spawn(argv, open(self.err, "wb"), cwd=work)

    def stats(self):
        try:
            with open(self.stf) as f:
                rows = [r.rstrip("\n").split(";") for r in f if r.strip()]
            d = dict(zip(rows[0], rows[-1]))
            return int(d["SuccessfulCall(C)"]), int(d["FailedCall(C)"])
        except (OSError, IndexError, KeyError, ValueError):
            return None, None

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGUSR1)  # SIPp: stop and write the last statistics
                self.proc.wait(10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


# ---------------------------------------------------------------- hostile traffic

class Hostile:
    """Brute force, garbage and idle connections, in threads, until stopped."""

    def __init__(self, port, targets, scale):
        self.port, self.targets, self.scale = port, targets, scale
        self.stopping = threading.Event()
        self.counts = {"attempts": 0, "401": 0, "403": 0, "accepted": 0, "unanswered": 0, "other": 0,
                       "udp_garbage": 0, "tcp_garbage": 0, "tcp_oversized": 0}
        self.lock = threading.Lock()
        self.idle = []
        self.threads = [threading.Thread(target=f, daemon=True)
                        for f in (self.brute_force, self.udp_garbage, self.tcp_garbage)]
        inv = os.path.join(ROOT, "tests", "torture", "invalid")
        self.invalid = [open(os.path.join(inv, n), "rb").read() for n in sorted(os.listdir(inv))
                        if n.endswith(".sip")]

    def count(self, k, n=1):
        with self.lock:
            self.counts[k] += n

    def start(self):
        for _ in range(IDLE_CONNS):
            s = socket.create_connection((HOST, self.port), timeout=5)
            s.sendall(b"OPTIONS sip:")  # half a request line, then nothing: closed at its 32 s deadline
            self.idle.append(s)
        for t in self.threads:
            t.start()

    def pace(self, per_second):
        self.stopping.wait(1.0 / max(per_second * self.scale, 0.1))

    def brute_force(self):
        while not self.stopping.is_set():
            if random.random() < 0.5:
                # the same few (source, user) pairs again and again: blocked after max_failures
                user, src = random.choice(self.targets), "127.0.0.%d" % random.randrange(2, 6)
            else:
                # a new pair nearly every time: the failure table fills and must stay bounded
                user, src = "nobody%d" % random.randrange(10 ** 6), "127.0.0.%d" % random.randrange(6, 255)
            ua = regclient.UA(self.port, src=src)
            try:
                r = ua.register(user, user, "wrong-" + password(user),
                                contacts=["<sip:%s@%s:%d>" % (user, src, ua.lport)], alg="MD5")
                code = r.code
            except regclient.CaseFail as e:
                # a pair already blocked gets 403 to the first, credential-less REGISTER
                m = re.search(r"got 'SIP/2.0 (\d+)", str(e))
                code = int(m.group(1)) if m else None
            finally:
                ua.close()
            self.count("attempts")
            if code is None:
                self.count("unanswered")
            elif code == 200:
                self.count("accepted")
            elif code in (401, 403):
                self.count(str(code))
            else:
                self.count("other")
            self.pace(20)

    def udp_garbage(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((HOST, 0))
        s.setblocking(False)
        lp = s.getsockname()[1]
        i = 0
        while not self.stopping.is_set():
            raw = self.invalid[i % len(self.invalid)]
            i += 1
            for k, v in ((b"@HOST@", HOST), (b"@PORT@", str(self.port)), (b"@LHOST@", HOST), (b"@LPORT@", str(lp))):
                raw = raw.replace(k, v.encode())
            try:
                s.sendto(raw, (HOST, self.port))
                while True:
                    s.recv(65536)  # whatever sipd answers: drained, not judged (tests/torture judges it)
            except BlockingIOError:
                pass
            except OSError:
                pass
            self.count("udp_garbage")
            self.pace(20)
        s.close()

    def tcp_garbage(self):
        n = 0
        while not self.stopping.is_set():
            n += 1
            try:
                s = socket.create_connection((HOST, self.port), timeout=5)
                if n % 10 == 0:
                    # one header line far over max_message_size (65535): sipd answers or closes, never buffers it all
                    s.sendall(b"OPTIONS sip:%s SIP/2.0\r\nX-Big: " % HOST.encode() + b"a" * 70000)
                    self.count("tcp_oversized")
                else:
                    s.sendall(os.urandom(random.randrange(1, 4096)))
                    self.count("tcp_garbage")
                s.settimeout(0.2)
                try:
                    s.recv(65536)
                except OSError:
                    pass
                s.close()
            except OSError:
                pass
            self.pace(5)

    def idle_closed(self):
        """How many of the idle connections sipd has closed (a read of 0 bytes or a reset)."""
        closed = 0
        for s in self.idle:
            s.setblocking(False)
            try:
                if s.recv(4096) == b"":
                    closed += 1
            except BlockingIOError:
                pass
            except OSError:
                closed += 1
        return closed

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(15)
        for s in self.idle:
            s.close()


# ---------------------------------------------------------------- the run

def register_bob(port, uas_port):
    """bob registers from the port his SIPp UAS will listen on, before it starts there."""
    ua = regclient.UA(port)
    ua.sock.close()
    ua.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ua.sock.bind((HOST, uas_port))
    ua.lport = uas_port
    try:
        r = ua.register("bob", "bob", password("bob"), contacts=["<sip:bob@%s:%d>" % (HOST, uas_port)],
                        expires=7200, alg="MD5")
        return r.code == 200
    finally:
        ua.close()


def trend_kb(samples):
    """Least-squares growth of RSS over the samples' span, kB."""
    n = len(samples)
    if n < 3:
        return 0.0
    ts = [s["t"] for s in samples]
    rs = [s["rss"] for s in samples]
    mt, mr = sum(ts) / n, sum(rs) / n
    var = sum((t - mt) ** 2 for t in ts)
    slope = sum((t - mt) * (r - mr) for t, r in zip(ts, rs)) / var if var else 0.0
    return slope * (ts[-1] - ts[0])


def is_sanitized(binary):
    with open(binary, "rb") as f:
        data = f.read()
    return b"__asan_init" in data or b"__tsan_init" in data  # the runtime's entry, imported or linked in


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("sipd")
    ap.add_argument("--seconds", type=int, default=int(os.environ.get("SOAK_SECONDS", 600)))
    ap.add_argument("--scale", type=float, default=float(os.environ.get("SOAK_SCALE", 1.0)),
                    help="multiplies every rate (0.5 for a sanitizer build on a small machine)")
    ap.add_argument("--work")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    if a.seconds < WARMUP + 60:
        raise SystemExit("FAIL setup: --seconds must be at least %d (warm-up %d s + 60 s judged)"
                         % (WARMUP + 60, WARMUP))
    if not shutil.which("sipp"):
        raise SystemExit("FAIL setup: sipp is not installed (tools/install-deps.sh test)")
    work = a.work or tempfile.mkdtemp(prefix="sipd-soak.")
    os.makedirs(work, exist_ok=True)
    sanitized = is_sanitized(a.sipd)
    port, uas_port, *client_ports = free_ports(7, 5300)
    rate = lambda r: max(1, int(r * a.scale))  # noqa: E731

    # users come round every users/reg_rate s, after their 60 s binding has expired
    reg_rate = rate(40)
    nusers = max(200, int(reg_rate * 100))
    users = ["soak%05d" % i for i in range(nusers)]
    sipd = Sipd(a.sipd, work, port)
    sipd.start()
    targets = ["target%d" % i for i in range(4)]  # real users the brute force aims at, not registered
    make_users(sipd, users + targets + ["bob"])
    inf = os.path.join(work, "users.csv")
    with open(inf, "w") as f:
        f.write("SEQUENTIAL\n")
        for u in users:
            f.write("%s;[authentication username=%s password=%s]\n" % (u, u, password(u)))
    for _ in range(20):  # until sipd has read the users just written
        if register_bob(port, uas_port):
            break
        time.sleep(0.5)
    else:
        raise SystemExit("FAIL setup: bob could not register")

    base = sipd.sample()
    log("sipd %s (%s) on %d, work %s; %d s, scale %.2f; start: rss %d kB, %d fds, %d threads"
        % (a.sipd, "sanitizer build" if sanitized else "release build", port, work, a.seconds, a.scale,
           base["rss"], base["fds"], base["threads"]))
    hostile = Hostile(port, targets, a.scale)
    hostile.start()
    target = "%s:%d" % (HOST, port)
    n = lambda r: rate(r) * a.seconds  # noqa: E731
    bench = os.path.join(ROOT, "bench")
    uas = Sipp("uas", work, ["-sf", os.path.join(bench, "calls-uas.xml"), "-t", "u1", "-i", HOST,
                             "-p", str(uas_port), "-default_behaviors", "all,-bye"])
    time.sleep(0.5)
    loads = [
        Sipp("register", work, ["-sf", os.path.join(HERE, "register-churn.xml"), "-inf", inf,
                                "-r", str(reg_rate), "-m", str(n(40)), "-t", "u1", "-i", HOST,
                                "-p", str(client_ports[0]), target]),
        Sipp("calls-udp", work, ["-sf", os.path.join(bench, "calls-uac.xml"), "-s", "bob",
                                 "-r", str(rate(30)), "-m", str(n(30)), "-t", "u1", "-i", HOST,
                                 "-p", str(client_ports[1]), "-default_behaviors", "all,-bye", target]),
        Sipp("calls-tcp", work, ["-sf", os.path.join(bench, "calls-uac.xml"), "-s", "bob",
                                 "-r", str(rate(10)), "-m", str(n(10)), "-t", "t1", "-i", HOST,
                                 "-p", str(client_ports[2]), "-default_behaviors", "all,-bye", target]),
        Sipp("options-udp", work, ["-sf", os.path.join(bench, "options.xml"), "-r", str(rate(100)),
                                   "-m", str(n(100)), "-t", "u1", "-i", HOST,
                                   "-p", str(client_ports[3]), target]),
        Sipp("options-tcp", work, ["-sf", os.path.join(bench, "options.xml"), "-r", str(rate(50)),
                                   "-m", str(n(50)), "-t", "t1", "-i", HOST,
                                   "-p", str(client_ports[4]), target]),
    ]

    samples, t0, idle_seen = [], time.monotonic(), 0
    failures = []
    try:
        while any(s.proc.poll() is None for s in loads):
            time.sleep(SAMPLE_EVERY)
            if sipd.proc.poll() is not None:
                failures.append("sipd exited during the run (status %s):\n%s"
                                % (sipd.proc.returncode, tail(sipd.err)))
                break
            s = sipd.sample()
            if not s:
                continue
            s["t"] -= t0
            samples.append(s)
            idle_seen = max(idle_seen, hostile.idle_closed())
            if len(samples) % 6 == 0:
                ok = sum((x.stats()[0] or 0) for x in loads)
                bad = sum((x.stats()[1] or 0) for x in loads)
                log("t=%4d s  rss %6d kB  fds %4d  threads %2d  bindings %5s  sipp ok %d failed %d  "
                    "brute force %d (403: %d)" % (s["t"], s["rss"], s["fds"], s["threads"], s["bindings"],
                                                  ok, bad, hostile.counts["attempts"], hostile.counts["403"]))
            if s["t"] > a.seconds + 120:
                failures.append("the SIPp runs were still going %d s after their planned end" % 120)
                break
    finally:
        hostile.stop()
        for x in loads + [uas]:
            x.stop()
    time.sleep(1)
    end = sipd.sample()
    status = sipd.stop()

    # ---- verdict
    for x in loads:
        ok, bad = x.stats()
        if ok is None:
            failures.append("SIPp %s left no statistics (%s)" % (x.name, tail(x.err, 5).strip()))
        elif bad or ok != x.calls:
            failures.append("SIPp %s: %d successful of %d, %d failed (see %s)" % (x.name, ok, x.calls, bad, x.err))
        else:
            log("SIPp %-12s %7d calls, 0 failed" % (x.name, ok))
    ok, bad = uas.stats()
    if bad:
        failures.append("SIPp uas: %s failed calls" % bad)
    c = hostile.counts
    log("brute force: %d attempts, %d answered 401, %d refused 403, %d accepted, %d unanswered, %d other"
        % (c["attempts"], c["401"], c["403"], c["accepted"], c["unanswered"], c["other"]))
    log("garbage: %d invalid UDP messages, %d TCP connections of random bytes, %d oversized; "
        "%d of %d idle connections closed by sipd" % (c["udp_garbage"], c["tcp_garbage"], c["tcp_oversized"],
                                                     idle_seen, IDLE_CONNS))
    if c["accepted"]:
        failures.append("%d wrong passwords were accepted" % c["accepted"])
    if c["unanswered"] or c["other"]:
        failures.append("brute force: %d attempts unanswered, %d answered other than 401/403"
                        % (c["unanswered"], c["other"]))
    if c["403"] == 0:
        failures.append("brute force was never refused with 403")
    if idle_seen < IDLE_CONNS:
        failures.append("only %d of %d idle TCP connections were closed by sipd after %d s"
                        % (idle_seen, IDLE_CONNS, IDLE_TIMEOUT))
    judged = [s for s in samples if s["t"] >= WARMUP]
    if len(judged) < 3:
        failures.append("too few samples after the warm-up")
    else:
        grow = trend_kb(judged)
        first, peak = judged[0]["rss"], max(s["rss"] for s in judged)
        limit = max(4096, 0.05 * first)
        binds = [s["bindings"] for s in judged if s["bindings"] is not None]
        log("after the warm-up (%d samples, %d s): rss %d kB -> %d kB (peak %d), trend %+.0f kB (limit %.0f%s); "
            "fds %d..%d (start %d, end %s); bindings %d..%d of %d users"
            % (len(judged), judged[-1]["t"] - judged[0]["t"], first, judged[-1]["rss"], peak, grow, limit,
               ", not judged: sanitizer build" if sanitized else "",
               min(s["fds"] for s in judged), max(s["fds"] for s in judged), base["fds"],
               end["fds"] if end else "?", min(binds or [0]), max(binds or [0]), nusers + 1))
        if not sanitized and grow > limit:
            failures.append("resident memory grew by %.0f kB after the warm-up (limit %.0f kB)" % (grow, limit))
        if binds and max(binds) > nusers + 1:
            failures.append("%d bindings stored for %d users" % (max(binds), nusers + 1))
        if binds and min(binds) == 0:
            failures.append("no binding stored at some point after the warm-up")
    if end and end["fds"] > base["fds"] + 4:
        failures.append("%d descriptors open at the end, %d at the start" % (end["fds"], base["fds"]))
    if status != 0:
        failures.append("SIGTERM: sipd exited with status %s:\n%s" % (status, tail(sipd.err)))
    if SANITIZER_RE.search(tail(sipd.err, 100000)):
        failures.append("sanitizer report on sipd's stderr:\n%s" % tail(sipd.err, 40))

    for f in failures:
        print("FAIL soak: " + f)
    if not failures:
        print("PASS soak: %d s of mixed traffic, %s, descriptors back, clean exit"
              % (a.seconds, "no sanitizer report" if sanitized else "memory flat"))
    if not a.keep and not failures and not a.work:
        shutil.rmtree(work, ignore_errors=True)
    elif failures:
        print("work directory kept: " + work)
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        rc = main()
    finally:
        kill_spawned()
    sys.exit(rc)
