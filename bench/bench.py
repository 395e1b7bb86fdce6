#!/usr/bin/env python3
"""sipd OPTIONS benchmark driver (called by bench/run.sh; see docs/benchmark.md).

Modes:
  bench.py SIPD_BINARY               throughput ladder + CPU/request, N rounds
  bench.py --callgrind SIPD_BINARY   instructions per request under callgrind

Every server and every SIPp run is started the same way, in its own Unix
session (`setsid`), so that each lands in its own scheduler autogroup.
All processes started here are killed on exit, whatever the exit path.
"""

import argparse
import csv
import datetime
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_DIR = os.path.dirname(BENCH_DIR)
SCENARIO = os.path.join(BENCH_DIR, "options.xml")
KAMAILIO_CFG = os.path.join(BENCH_DIR, "kamailio.cfg")
RESPONDER_SRC = os.path.join(BENCH_DIR, "udp_responder.c")
KAMAILIO_BIN = os.environ.get("BENCH_KAMAILIO", "/usr/sbin/kamailio")
SIPP_BIN = os.environ.get("BENCH_SIPP", "sipp")

HOST = "127.0.0.1"
PORTS = {"sipd": 5070, "kamailio": 5072, "responder": 5074}
SIPP_PORT = 5080   # SIPp's own UDP port
PROBE_PORT = 5081  # readiness probe


def env_int(name, default):
    return int(os.environ.get(name, default))


def env_float(name, default):
    return float(os.environ.get(name, default))


CFG = {
    "rounds": env_int("BENCH_ROUNDS", 5),
    "workers": env_int("BENCH_WORKERS", 2),
    "ladder": [int(x) for x in os.environ.get(
        "BENCH_LADDER",
        "2000 5000 10000 15000 20000 30000 40000 50000 60000 70000 80000").split()],
    "step_seconds": env_float("BENCH_STEP_SECONDS", 5),
    "cpu_rate": env_int("BENCH_CPU_RATE", 10000),
    "cpu_seconds": env_float("BENCH_CPU_SECONDS", 10),
    "recv_timeout_ms": env_int("BENCH_RECV_TIMEOUT_MS", 2000),
    "min_rate_fraction": env_float("BENCH_MIN_RATE_FRACTION", 0.9),
    "step_retries": env_int("BENCH_STEP_RETRIES", 1),
    "servers": os.environ.get("BENCH_SERVERS", "sipd kamailio responder").split(),
    "cg_calls": env_int("BENCH_CG_CALLS", 20000),
    "cg_rate": env_int("BENCH_CG_RATE", 500),
    "cg_servers": os.environ.get("BENCH_CG_SERVERS", "sipd kamailio responder").split(),
    "results": os.environ.get("BENCH_RESULTS", os.path.join(BENCH_DIR, "results")),
}

CLK_TCK = os.sysconf("SC_CLK_TCK")
SIPD_INFO = {}
LIVE = {}  # pid -> label, every process group we started and not yet reaped
WORK = None


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# process management

def record_pids():
    """Lets run.sh's trap kill our process groups even if we die hard."""
    if WORK:
        with open(os.path.join(WORK, "pids"), "w") as f:
            f.write("".join("%d\n" % p for p in LIVE))


def spawn(label, argv, stdout, stderr, cwd=None):
    """Starts argv in a new Unix session via setsid(1).  Our child is not a
    process-group leader, so setsid(1) calls setsid() and execs in place:
    the pid we get is the session id and the process-group id."""
    p = subprocess.Popen(["setsid"] + argv, stdin=subprocess.DEVNULL,
                         stdout=stdout, stderr=stderr, cwd=cwd or WORK)
    LIVE[p.pid] = label
    record_pids()
    return p


def session_pids(sid):
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        st = read_stat(int(d))
        if st and st[3] == sid:
            pids.append(int(d))
    return pids


def read_stat(pid):
    """Fields of /proc/PID/stat after the command name (index 0 = state)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    rest = s[s.rindex(")") + 2:].split()
    return [rest[0]] + [int(x) for x in rest[1:]]


def session_cpu_ticks(sid):
    """utime+stime (clock ticks) summed over every process of the session;
    a process's /proc/PID/stat already sums all its threads."""
    total = 0
    for pid in session_pids(sid):
        st = read_stat(pid)
        if st:
            total += st[11] + st[12]  # utime, stime
    return total


def kill_session(pid, sig):
    try:
        os.killpg(pid, sig)
    except OSError:
        pass
    for p in session_pids(pid):
        try:
            os.kill(p, sig)
        except OSError:
            pass


def stop(proc, grace=10.0):
    """SIGTERM to the main process, then SIGKILL to whatever of its session
    is left after `grace` seconds.  Returns the exit status."""
    if proc.pid not in LIVE:
        return proc.returncode
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
        except OSError:
            pass
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            kill_session(proc.pid, signal.SIGKILL)
            proc.wait()
    # children (Kamailio's workers) may outlive the main process briefly
    deadline = time.time() + grace
    while session_pids(proc.pid) and time.time() < deadline:
        time.sleep(0.05)
    if session_pids(proc.pid):
        kill_session(proc.pid, signal.SIGKILL)
    del LIVE[proc.pid]
    record_pids()
    return proc.returncode


def cleanup_all():
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)  # finish cleaning up, whatever comes
    for pid in list(LIVE):
        kill_session(pid, signal.SIGTERM)
    time.sleep(0.3)
    for pid in list(LIVE):
        kill_session(pid, signal.SIGKILL)
        try:
            os.waitpid(pid, 0)
        except OSError:
            pass
        del LIVE[pid]
    record_pids()


def on_signal(sig, _frame):
    raise SystemExit(128 + sig)


# --------------------------------------------------------------------------
# servers

def tail(path, n=15):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def probe(port, timeout, alive=lambda: True):
    """True once one OPTIONS to HOST:port gets a 200 back; gives up early
    when alive() turns false (the server exited)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((HOST, PROBE_PORT))
    s.settimeout(0.25)
    deadline = time.time() + timeout
    n = 0
    try:
        while time.time() < deadline:
            n += 1
            cid = "probe-%d-%d@%s" % (os.getpid(), n, HOST)
            msg = ("OPTIONS sip:{h}:{p} SIP/2.0\r\n"
                   "Via: SIP/2.0/UDP {h}:{pp};branch=z9hG4bK-probe-{n}\r\n"
                   "Max-Forwards: 70\r\n"
                   "From: <sip:probe@{h}:{pp}>;tag=probe{n}\r\n"
                   "To: <sip:{h}:{p}>\r\n"
                   "Call-ID: {cid}\r\n"
                   "CSeq: 1 OPTIONS\r\n"
                   "Content-Length: 0\r\n\r\n").format(
                       h=HOST, p=port, pp=PROBE_PORT, n=n, cid=cid)
            s.sendto(msg.encode(), (HOST, port))
            end = time.time() + 0.25
            while time.time() < end:
                try:
                    data = s.recv(65535).decode(errors="replace")
                except socket.timeout:
                    break
                except ConnectionRefusedError:
                    time.sleep(0.1)
                    break
                if data.startswith("SIP/2.0 200") and cid in data:
                    return True
            if not alive():
                return False
    finally:
        s.close()
    return False


def port_busy(port):
    """True when something already has HOST:port (UDP) bound: a probe
    answered by some other program would measure the wrong server."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((HOST, port))
        return False
    except OSError:
        return True
    finally:
        s.close()


class Server:
    def __init__(self, name, binary=None, valgrind=None):
        self.name = name
        self.port = PORTS[name]
        self.binary = binary
        self.valgrind = valgrind  # list of valgrind argv prefix, or None
        self.proc = None
        self.dir = os.path.join(WORK, name)
        os.makedirs(self.dir, exist_ok=True)
        self.err = os.path.join(self.dir, "stderr.log")

    def argv(self):
        w = CFG["workers"]
        if self.name == "sipd":
            cfg = os.path.join(self.dir, "sipd.ini")
            with open(cfg, "w") as f:
                f.write("[general]\nlisten = udp:%s:%d\nworkers = %d\nlog_level = warning\n"
                        % (HOST, self.port, w))
            return [self.binary, "-c", cfg]
        if self.name == "kamailio":
            # production tuning: f_malloc, explicit shm/pkg; -DD keeps the
            # main process in the foreground (children forked), -E logs to
            # stderr; -n = UDP worker processes (= sipd's workers).
            return [self.binary, "-f", KAMAILIO_CFG, "-m", "1024", "-M", "8",
                    "-x", "fm", "-DD", "-E", "-n", str(w),
                    "-Y", self.dir, "-P", os.path.join(self.dir, "kamailio.pid")]
        return [self.binary, HOST, str(self.port)]

    def start(self, ready_timeout=10.0):
        """Starts the server; returns None when it answers, else a reason."""
        if port_busy(self.port):
            return "UDP port %s:%d is already in use by another program" % (HOST, self.port)
        argv = self.argv()
        if self.valgrind:
            argv = self.valgrind + argv
        out = open(os.path.join(self.dir, "stdout.log"), "ab")
        err = open(self.err, "ab")
        try:
            self.proc = spawn(self.name, argv, out, err, cwd=self.dir)
        except OSError as e:
            return "cannot start %s: %s" % (argv[0], e)
        finally:
            out.close()
            err.close()
        ok = probe(self.port, ready_timeout, lambda: self.proc.poll() is None)
        if ok:
            return None
        if self.proc.poll() is not None:
            why = "exited with status %s before answering OPTIONS" % self.proc.returncode
        else:
            why = "did not answer OPTIONS on %s:%d within %.0f s" % (HOST, self.port, ready_timeout)
        self.stop()
        t = tail(self.err, 8).strip()
        return why + (("; stderr:\n    " + t.replace("\n", "\n    ")) if t else "")

    def cpu_ticks(self):
        return session_cpu_ticks(self.proc.pid)

    def stop(self, grace=10.0):
        if self.proc:
            stop(self.proc, grace)


# --------------------------------------------------------------------------
# SIPp

def sipp_run(port, rate, calls, tag):
    """Runs SIPp (own session) for `calls` OPTIONS at `rate`/s against port.
    Returns a dict of results; 'ok' tells whether the step had zero failures."""
    stf = os.path.join(WORK, "sipp-%s.csv" % tag)
    errf = os.path.join(WORK, "sipp-%s.err" % tag)
    for f in (stf,):
        if os.path.exists(f):
            os.unlink(f)
    expected = calls / float(rate)
    argv = [SIPP_BIN, "-sf", SCENARIO, "-m", str(calls), "-r", str(rate), "-rp", "1000",
            "-l", str(max(2 * rate, 100)),
            "-t", "u1", "-i", HOST, "-p", str(SIPP_PORT),
            "-nr",                                   # no UDP retransmission:
            "-recv_timeout", str(CFG["recv_timeout_ms"]),  # a lost packet = a failed call
            "-buff_size", str(4 << 20),
            "-max_recv_loops", "100000", "-max_sched_loops", "100000",
            "-timeout", "%ds" % int(expected + CFG["recv_timeout_ms"] / 1000.0 + 60),
            "-nostdin", "-trace_stat", "-stf", stf, "-fd", "1",
            "%s:%d" % (HOST, port)]
    with open(errf, "wb") as err:
        p = spawn("sipp", argv, subprocess.DEVNULL, err)
    # wait4 gives SIPp's own CPU time (it is our direct child: setsid execs)
    deadline = time.time() + expected + CFG["recv_timeout_ms"] / 1000.0 + 90
    status = ru = None
    while True:
        wpid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if wpid == p.pid:
            break
        if time.time() > deadline:
            kill_session(p.pid, signal.SIGKILL)
            wpid, status, ru = os.wait4(p.pid, 0)
            break
        time.sleep(0.02)
    p.returncode = os.waitstatus_to_exitcode(status)
    LIVE.pop(p.pid, None)
    record_pids()

    res = {"rate": rate, "calls": calls, "rc": p.returncode,
           "sipp_cpu_s": ru.ru_utime + ru.ru_stime, "ok": False}
    try:
        with open(stf, newline="") as f:
            rows = list(csv.reader(f, delimiter=";"))
        d = dict(zip(rows[0], rows[-1]))
    except (OSError, IndexError, csv.Error):
        res["why"] = "no SIPp statistics (rc=%s): %s" % (p.returncode, tail(errf, 3).strip())
        return res

    def num(k):
        try:
            return int(float(d.get(k, "0") or 0))
        except ValueError:
            return 0

    def when(k):
        return float(d[k].split("\t")[-1])

    elapsed = max(when("CurrentTime") - when("StartTime"), 1e-6)
    created = num("TotalCallCreated")
    res.update({
        "created": created,
        "ok_calls": num("SuccessfulCall(C)"),
        "failed": num("FailedCall(C)"),
        "timeouts": num("FailedTimeoutOnRecv(C)"),
        "unexpected": num("FailedUnexpectedMessage(C)"),
        "max_udp_retrans": num("FailedMaxUDPRetrans(C)"),
        "retrans": num("Retransmissions(C)"),
        "dead": num("DeadCallMsgs(C)") + num("OutOfCallMsgs(C)"),
        "watchdog": num("WatchdogMajor(C)") + num("WatchdogMinor(C)"),
        "elapsed": elapsed,
        "achieved": created / elapsed,
    })
    why = []
    if res["failed"]:
        parts = ["%d timeouts" % res["timeouts"]] if res["timeouts"] else []
        if res["unexpected"]:
            parts.append("%d unexpected" % res["unexpected"])
        if res["max_udp_retrans"]:
            parts.append("%d max-retrans" % res["max_udp_retrans"])
        why.append("%d failed calls (%s)" % (res["failed"], ", ".join(parts) or "see SIPp"))
    if res["ok_calls"] != calls:
        why.append("%d/%d successful" % (res["ok_calls"], calls))
    if res["retrans"]:
        why.append("%d retransmissions" % res["retrans"])
    if res["dead"]:
        why.append("%d stray messages" % res["dead"])
    if res["achieved"] < CFG["min_rate_fraction"] * rate:
        why.append("SIPp reached only %.0f/s" % res["achieved"])
    if p.returncode != 0 and not why:
        why.append("SIPp exit status %d" % p.returncode)
    res["ok"] = not why
    res["why"] = "; ".join(why)
    return res


# --------------------------------------------------------------------------
# throughput / CPU mode

def build_responder():
    exe = os.path.join(WORK, "udp_responder")
    cc = os.environ.get("CC", "cc")
    r = subprocess.run([cc, "-O2", "-o", exe, RESPONDER_SRC],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        return None, "udp_responder did not compile:\n" + r.stdout.decode(errors="replace")
    return exe, None


def available_servers(sipd_bin, names):
    """name -> binary, and name -> reason for skipping."""
    bins, skipped = {}, {}
    for name in names:
        if name == "sipd":
            if not sipd_bin or not os.path.isfile(sipd_bin) or not os.access(sipd_bin, os.X_OK):
                skipped[name] = "binary %s not found (build it with `make build`)" % sipd_bin
            else:
                # run a private copy: a rebuild of build/sipd in the middle of
                # the rounds must not mix two versions in one result
                copy = os.path.join(WORK, "sipd.bin")
                shutil.copy2(sipd_bin, copy)
                bins[name] = copy
                SIPD_INFO["path"] = sipd_bin
                SIPD_INFO["mtime"] = datetime.datetime.fromtimestamp(
                    os.stat(sipd_bin).st_mtime).strftime("%Y-%m-%d %H:%M:%S")
        elif name == "kamailio":
            if not os.access(KAMAILIO_BIN, os.X_OK):
                skipped[name] = "%s not installed (Debian package `kamailio`)" % KAMAILIO_BIN
            else:
                r = subprocess.run([KAMAILIO_BIN, "-c", "-f", KAMAILIO_CFG],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                if r.returncode != 0:
                    skipped[name] = "kamailio -c rejects %s:\n%s" % (
                        KAMAILIO_CFG, r.stdout.decode(errors="replace")[-800:])
                else:
                    bins[name] = KAMAILIO_BIN
        elif name == "responder":
            exe, why = build_responder()
            if exe:
                bins[name] = exe
            else:
                skipped[name] = why
        else:
            skipped[name] = "unknown server name"
    return bins, skipped


def run_server_round(name, binary, rnd):
    srv = Server(name, binary)
    why = srv.start()
    if why:
        return {"error": why}
    res = {"error": None}
    try:
        port = srv.port
        # warm-up: page in code and buffers
        w = sipp_run(port, 2000, 2000, "%s-r%d-warmup" % (name, rnd))
        res["warmup_ok"] = w["ok"]
        # CPU per request at a fixed rate both servers sustain
        rate = CFG["cpu_rate"]
        calls = int(rate * CFG["cpu_seconds"])
        t0 = srv.cpu_ticks()
        c = sipp_run(port, rate, calls, "%s-r%d-cpu" % (name, rnd))
        t1 = srv.cpu_ticks()
        c["ticks"] = t1 - t0
        answered = c.get("ok_calls", 0)
        c["us_per_req"] = (c["ticks"] * 1e6 / CLK_TCK / answered) if answered else None
        c["sipp_us_per_req"] = (c["sipp_cpu_s"] * 1e6 / answered) if answered else None
        res["cpu"] = c
        log("  %-9s round %d: CPU run %d/s x %d: %s, %d ticks, %s us/request"
            % (name, rnd, rate, calls, "ok" if c["ok"] else "FAILURES (" + c["why"] + ")",
               c["ticks"], "%.2f" % c["us_per_req"] if c["us_per_req"] else "n/a"))
        # ladder
        best, fail = 0, None
        steps = []
        retried = []
        for rate in CFG["ladder"]:
            calls = int(rate * CFG["step_seconds"])
            s = sipp_run(port, rate, calls, "%s-r%d-%d" % (name, rnd, rate))
            for i in range(CFG["step_retries"]):
                if s["ok"] or srv.proc.poll() is not None:
                    break
                # one transient hiccup on a shared machine should not end the
                # ladder: a step fails only if it fails again right away
                log("  %-9s round %d: %d/s failed (%s), retrying"
                    % (name, rnd, rate, s["why"]))
                time.sleep(1)
                s = sipp_run(port, rate, calls, "%s-r%d-%d-retry%d" % (name, rnd, rate, i + 1))
                if s["ok"]:
                    retried.append(rate)
            steps.append(s)
            if not s["ok"]:
                fail = s
                break
            best = rate
            if srv.proc.poll() is not None:
                break
            time.sleep(0.5)
        res["max_rate"] = best
        res["ladder_top"] = fail is None
        res["fail"] = "%d/s: %s" % (fail["rate"], fail["why"]) if fail else "none up to %d/s" % best
        if retried:
            res["fail"] += " (passed on retry: %s)" % ", ".join("%d/s" % r for r in retried)
        log("  %-9s round %d: max %d/s with 0 failures; first failure: %s"
            % (name, rnd, best, res["fail"]))
        if srv.proc.poll() is not None:
            res["error"] = "exited during the run (status %s)" % srv.proc.returncode
    finally:
        srv.stop()
    return res


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, f="%.2f"):
    return "n/a" if x is None else f % x


def host_info():
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass

    def first_line(argv):
        try:
            r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
            for line in r.stdout.decode(errors="replace").splitlines():
                if line.strip():
                    return line.strip()
        except (OSError, subprocess.TimeoutExpired):
            pass
        return "?"

    try:
        commit = subprocess.run(["git", "-C", REPO_DIR, "rev-parse", "--short", "HEAD"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
                                ).stdout.decode().strip() or "?"
    except OSError:
        commit = "?"
    return {
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "cpus": os.cpu_count(), "model": model or "?", "kernel": platform.release(),
        "sipp": first_line([SIPP_BIN, "-v"]),
        "kamailio": first_line([KAMAILIO_BIN, "-v"]) if os.access(KAMAILIO_BIN, os.X_OK) else "-",
        "commit": commit,
        "load": open("/proc/loadavg").read().split()[0:3],
    }


def bench_mode(sipd_bin):
    bins, skipped = available_servers(sipd_bin, CFG["servers"])
    for name, why in skipped.items():
        log("bench: skipping %s: %s" % (name, why))
    order = [n for n in CFG["servers"] if n in bins]
    if not order:
        log("bench: nothing to benchmark")
        return 1
    info = host_info()
    log("bench: %d rounds of %s; CPU run %d/s x %gs; ladder %s/s, %gs per step"
        % (CFG["rounds"], " -> ".join(order), CFG["cpu_rate"], CFG["cpu_seconds"],
           ",".join(str(r) for r in CFG["ladder"]), CFG["step_seconds"]))
    rounds = []  # list of {name: result}
    for rnd in range(1, CFG["rounds"] + 1):
        log("bench: round %d/%d" % (rnd, CFG["rounds"]))
        this = {}
        for name in order:
            if name in skipped:
                continue
            r = run_server_round(name, bins[name], rnd)
            if r["error"] and "cpu" not in r:
                if rnd == 1:
                    skipped[name] = r["error"]
                    log("bench: skipping %s: %s" % (name, r["error"]))
                else:
                    log("bench: %s round %d failed: %s" % (name, rnd, r["error"]))
            this[name] = r
            time.sleep(1)
        rounds.append(this)
    md = report(order, rounds, skipped, info)
    print(md)
    os.makedirs(CFG["results"], exist_ok=True)
    with open(os.path.join(CFG["results"], "latest.md"), "w") as f:
        f.write(md)
    log("bench: written %s" % os.path.join(CFG["results"], "latest.md"))
    return 0


def report(order, rounds, skipped, info):
    def vals(name, key):
        out = []
        for r in rounds:
            x = r.get(name)
            if not x or "cpu" not in x:
                out.append(None)
            elif key == "cpu":
                out.append(x["cpu"]["us_per_req"])
            elif key == "sipp_cpu":
                out.append(x["cpu"]["sipp_us_per_req"])
            else:
                out.append(x.get(key))
        return out

    def ratios(name, key):
        a, b = vals(name, key), vals("kamailio", key)
        return [x / y if x is not None and y else None for x, y in zip(a, b)]

    ceiling = med(vals("responder", "max_rate"))
    top = CFG["ladder"][-1]
    L = []
    L.append("# sipd OPTIONS benchmark\n")
    L.append("%s; %s CPUs (%s), Linux %s, load before run %s; checkout at %s%s; %s; %s.\n"
             % (info["date"], info["cpus"], info["model"], info["kernel"],
                " ".join(info["load"]), info["commit"],
                ", sipd binary %s built %s" % (SIPD_INFO["path"], SIPD_INFO["mtime"])
                if SIPD_INFO else "", info["sipp"], info["kamailio"]))
    L.append("Rounds: %d, interleaved (%s). Workers: %d (sipd `workers`, Kamailio `-n`). "
             "UDP on 127.0.0.1, every server and SIPp in its own session (setsid). "
             "CPU run: %d OPTIONS/s for %g s. Ladder: %s OPTIONS/s, %g s per step "
             "(a failed step is retried %d time(s)), no SIPp retransmissions, %d ms receive "
             "timeout.\n"
             % (CFG["rounds"], ", ".join(order), CFG["workers"], CFG["cpu_rate"],
                CFG["cpu_seconds"], " ".join(str(r) for r in CFG["ladder"]),
                CFG["step_seconds"], CFG["step_retries"], CFG["recv_timeout_ms"]))
    L.append("| server | max OPTIONS/s with 0 failures (median) | CPU µs/request (median) "
             "| CPU ratio vs Kamailio (median) | max-rate ratio vs Kamailio (median) |")
    L.append("|---|---:|---:|---:|---:|")
    notes = []
    for name in CFG["servers"]:
        if name in skipped and not any(r.get(name, {}).get("cpu") for r in rounds):
            L.append("| %s | skipped (see below) | – | – | – |" % name)
            notes.append("- %s skipped: %s" % (name, skipped[name].splitlines()[0]))
            continue
        if name not in order:
            continue
        mr = med(vals(name, "max_rate"))
        tops = [r.get(name, {}).get("ladder_top") for r in rounds]
        mr_s = fmt(mr, "%.0f")
        if mr is not None and sum(1 for t in tops if t) * 2 > len([t for t in tops if t is not None]):
            mr_s = "≥ " + mr_s
        if name != "responder" and mr is not None and ceiling and top > ceiling <= mr:
            mr_s += " (SIPp-limited)"
        cr = "1.00" if name == "kamailio" else fmt(med(ratios(name, "cpu")))
        rr = "1.00" if name == "kamailio" else fmt(med(ratios(name, "max_rate")))
        label = {"responder": "udp_responder (SIPp ceiling)"}.get(name, name)
        if "kamailio" not in order:
            cr = rr = "n/a"
        L.append("| %s | %s | %s | %s | %s |" % (label, mr_s, fmt(med(vals(name, "cpu"))), cr, rr))
    L.append("")
    if ceiling is not None:
        notes.append("- SIPp's own ceiling on this machine (against the trivial udp_responder): "
                     "median %.0f OPTIONS/s. A server whose max rate reaches it is limited by "
                     "SIPp, not by itself; compare CPU µs/request instead." % ceiling)
    if ceiling is not None and ceiling >= top:
        notes.append("- The ladder's top step (%d/s) passed for the responder: extend "
                     "BENCH_LADDER to find the ceiling." % top)
    scpu = med(vals("kamailio", "sipp_cpu")) or med(vals("responder", "sipp_cpu"))
    if scpu:
        notes.append("- SIPp itself uses about %.1f µs of CPU per OPTIONS it sends and "
                     "receives, on the same %s cores." % (scpu, info["cpus"]))
    notes.append("- Ratios are medians of the per-round ratios (same round, so the same "
                 "machine state). CPU ratio < 1 means sipd spends less CPU per request "
                 "than Kamailio.")
    L.extend(notes)
    L.append("\n## Raw per-round numbers\n")
    L.append("| round | server | max OPTIONS/s | first failing step | CPU run answered | "
             "CPU run failures | server CPU ticks | CPU µs/request | SIPp CPU µs/request |")
    L.append("|---:|---|---:|---|---:|---|---:|---:|---:|")
    for i, r in enumerate(rounds, 1):
        for name in order:
            x = r.get(name)
            if not x:
                continue
            if "cpu" not in x:
                L.append("| %d | %s | – | %s | | | | | |" % (i, name, (x.get("error") or "").splitlines()[0]))
                continue
            c = x["cpu"]
            L.append("| %d | %s | %d | %s | %d | %s | %d | %s | %s |" % (
                i, name, x["max_rate"], x["fail"], c.get("ok_calls", 0),
                "none" if c["ok"] else c["why"], c["ticks"], fmt(c["us_per_req"]),
                fmt(c["sipp_us_per_req"])))
    L.append("")
    return "\n".join(L)


# --------------------------------------------------------------------------
# callgrind mode

# Per-message receive handler of each server, first symbol found wins
# (BENCH_CG_HANDLER_<NAME> overrides); its inclusive Ir is reported too.
HANDLERS = {"sipd": ["sipd_on_message", "core_on_message"],
            "kamailio": ["receive_msg"], "responder": ["build_reply"]}


def find_handler(name, binary):
    env = os.environ.get("BENCH_CG_HANDLER_" + name.upper())
    if env:
        return env
    syms = set()
    for flags in (["-a"], ["-D"]):
        try:
            r = subprocess.run(["nm"] + flags + [binary], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL)
        except OSError:
            return None
        for line in r.stdout.decode(errors="replace").splitlines():
            parts = line.split()
            if parts:
                syms.add(parts[-1].split("@")[0])
    for cand in HANDLERS.get(name, []):
        # gcc clones (foo.constprop.0, foo.isra.0) count as foo
        if cand in syms or any(s.startswith(cand + ".") for s in syms):
            return cand
    return None


def callgrind_totals(files, func):
    """(total Ir over files, inclusive Ir of func or None)."""
    total, incl = 0, None
    for fn in files:
        with open(fn, errors="replace") as f:
            tot = summ = None
            for line in f:
                if line.startswith("totals:"):
                    tot = int(line.split()[1])
                elif line.startswith("summary:"):
                    summ = int(line.split()[1])
        total += tot if tot is not None else (summ or 0)
        if func:
            r = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", fn],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            pat = re.compile(r"^\s*([\d,]+) .*[:\s]%s(?:\.\w+(?:\.\d+)?)*(?:'\d+)? \["
                             % re.escape(func))
            for line in r.stdout.decode(errors="replace").splitlines():
                m = pat.match(line)
                if m:
                    incl = (incl or 0) + int(m.group(1).replace(",", ""))
                    break
    return total, incl


def callgrind_mode(sipd_bin):
    if not shutil.which("valgrind"):
        log("bench: valgrind not installed")
        return 1
    bins, skipped = available_servers(sipd_bin, CFG["cg_servers"])
    for name, why in skipped.items():
        log("bench: skipping %s: %s" % (name, why))
    n, rate = CFG["cg_calls"], CFG["cg_rate"]
    rows = []
    handlers_used = {}
    for name in [s for s in CFG["cg_servers"] if s in bins]:
        # Two runs, same duration: one idle (start-up, probe, timers, shutdown)
        # and one with n OPTIONS; the difference is what the n requests cost.
        durations = None
        result = {}
        handler = find_handler(name, bins[name])
        handlers_used[name] = handler
        for phase in ("load", "idle"):
            d = os.path.join(WORK, "cg-%s-%s" % (name, phase))
            os.makedirs(d, exist_ok=True)
            vg = ["valgrind", "--tool=callgrind", "--trace-children=no",
                  "--callgrind-out-file=%s/callgrind.out.%%p" % d]
            srv = Server(name, bins[name], valgrind=vg)
            srv.dir = d
            srv.err = os.path.join(d, "stderr.log")
            why = srv.start(ready_timeout=120)
            if why:
                log("bench: callgrind: %s: %s" % (name, why))
                skipped[name] = "under valgrind: " + why
                result = None
                break
            t0 = time.time()
            if phase == "load":
                s = sipp_run(srv.port, rate, n, "cg-%s" % name)
                durations = time.time() - t0
                result["sipp"] = s
                log("  %-9s callgrind: %d OPTIONS at %d/s: %s" % (
                    name, n, rate, "ok" if s["ok"] else s["why"]))
            else:
                time.sleep(durations)
            srv.stop(grace=120)
            files = [os.path.join(d, f) for f in os.listdir(d) if f.startswith("callgrind.out.")]
            result[phase] = callgrind_totals(files, handler)
        if not result:
            continue
        answered = result["sipp"].get("ok_calls", 0)
        if not answered:
            skipped[name] = "no request answered under valgrind"
            continue
        (lt, lh), (it, ih) = result["load"], result["idle"]
        per = (lt - it) / float(answered)
        hper = ((lh - (ih or 0)) / float(answered)) if lh is not None else None
        rows.append((name, answered, result["sipp"]["ok"], lt, it, per, hper))

    info = host_info()
    L = ["# sipd callgrind: instructions per OPTIONS request\n"]
    L.append("%s; checkout at %s%s; %s; %s.\n" % (
        info["date"], info["commit"],
        ", sipd binary %s built %s" % (SIPD_INFO["path"], SIPD_INFO["mtime"]) if SIPD_INFO else "",
        info["kamailio"], subprocess.run(["valgrind", "--version"], stdout=subprocess.PIPE
                                         ).stdout.decode().strip()))
    L.append("%d OPTIONS at %d/s under `valgrind --tool=callgrind`; Ir/request = (Ir of "
             "that run - Ir of an idle run of the same length) / requests answered, summed "
             "over all processes and threads. Handler Ir/request = inclusive Ir of the "
             "per-message receive function (%s) per request.\n" % (n, rate, ", ".join(
                 "%s: `%s`" % (k, v) if v else "%s: none found" % k
                 for k, v in handlers_used.items())))
    L.append("| server | answered | Ir total (load run) | Ir total (idle run) | Ir/request "
             "| handler Ir/request | ratio vs Kamailio |")
    L.append("|---|---:|---:|---:|---:|---:|---:|")
    kam = [r for r in rows if r[0] == "kamailio"]
    for name, ans, ok, lt, it, per, hper in rows:
        ratio = fmt(per / kam[0][5]) if kam and kam[0][5] else "n/a"
        L.append("| %s | %d%s | %d | %d | %.0f | %s | %s |" % (
            name, ans, "" if ok else " (with failures)", lt, it, per, fmt(hper, "%.0f"), ratio))
    for name, why in skipped.items():
        L.append("\n- %s skipped: %s" % (name, why.splitlines()[0]))
    md = "\n".join(L) + "\n"
    print(md)
    os.makedirs(CFG["results"], exist_ok=True)
    with open(os.path.join(CFG["results"], "callgrind.md"), "w") as f:
        f.write(md)
    log("bench: written %s" % os.path.join(CFG["results"], "callgrind.md"))
    return 0 if rows else 1


# --------------------------------------------------------------------------

def main():
    global WORK
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--callgrind", action="store_true",
                    help="measure instructions per request under callgrind")
    ap.add_argument("sipd", nargs="?", default=os.path.join(REPO_DIR, "build", "sipd"))
    args = ap.parse_args()

    for tool in ("setsid", SIPP_BIN):
        if not shutil.which(tool):
            log("bench: %s not found (install sip-tester / util-linux)" % tool)
            return 1
    for port in (SIPP_PORT, PROBE_PORT):
        if port_busy(port):
            log("bench: UDP port %s:%d (load generator) is already in use" % (HOST, port))
            return 1
    WORK = os.environ.get("BENCH_WORK") or tempfile.mkdtemp(prefix="sipd-bench.")
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    try:
        if args.callgrind:
            return callgrind_mode(args.sipd)
        return bench_mode(args.sipd)
    finally:
        cleanup_all()


if __name__ == "__main__":
    sys.exit(main())
