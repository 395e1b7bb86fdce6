#!/usr/bin/env python3
"""sipd benchmark driver (called by bench/run.sh; see docs/benchmark.md).

Modes:
  bench.py SIPD_BINARY               OPTIONS, then REGISTER (both below)
  bench.py --options SIPD_BINARY     OPTIONS: throughput ladder + CPU/request, N rounds
  bench.py --register SIPD_BINARY    REGISTER with digest auth over 10 000 users vs
                                     Kamailio (memory and auth_db/SQLite setups),
                                     then sipd's resident memory with 100 000 bindings
  bench.py --callgrind SIPD_BINARY   instructions per OPTIONS under callgrind

Every server and every SIPp run is started the same way, in its own Unix
session (`setsid`), so that each lands in its own scheduler autogroup.
All processes started here are killed on exit, whatever the exit path.
"""

import argparse
import csv
import datetime
import hashlib
import os
import platform
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

import perfsplit

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_DIR = os.path.dirname(BENCH_DIR)
SCENARIO = os.path.join(BENCH_DIR, "options.xml")
REG_SCENARIO = os.path.join(BENCH_DIR, "register.xml")
REG_NOAUTH_SCENARIO = os.path.join(BENCH_DIR, "register-noauth.xml")
KAMAILIO_CFG = os.path.join(BENCH_DIR, "kamailio.cfg")
KAMAILIO_CFGS = {"kamailio": KAMAILIO_CFG,
                 "kamailio-mem": os.path.join(BENCH_DIR, "kamailio-register-mem.cfg"),
                 "kamailio-db": os.path.join(BENCH_DIR, "kamailio-register-db.cfg"),
                 "kamailio-full": os.path.join(BENCH_DIR, "kamailio-register-full.cfg")}
KAMAILIO_MODULES = os.environ.get("BENCH_KAMAILIO_MODULES",
                                  "/usr/lib/x86_64-linux-gnu/kamailio/modules")
RESPONDER_SRC = os.path.join(BENCH_DIR, "udp_responder.c")
KAMAILIO_BIN = os.environ.get("BENCH_KAMAILIO", "/usr/sbin/kamailio")
SIPP_BIN = os.environ.get("BENCH_SIPP", "sipp")

HOST = "127.0.0.1"
PORTS = {"sipd": 5070, "kamailio": 5072, "responder": 5074,
         "kamailio-mem": 5072, "kamailio-db": 5076, "kamailio-full": 5078}
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
    "reg_cg_calls": env_int("BENCH_REG_CG_CALLS", 2000),
    "reg_cg_rate": env_int("BENCH_REG_CG_RATE", 200),
    "reg_cg_servers": os.environ.get("BENCH_REG_CG_SERVERS", "sipd kamailio-mem").split(),
    "reg_cg_refresh": env_int("BENCH_REG_CG_REFRESH", 0),
    "results": os.environ.get("BENCH_RESULTS", os.path.join(BENCH_DIR, "results")),
    # --register
    "reg_rounds": env_int("BENCH_REG_ROUNDS", 3),
    "reg_users": env_int("BENCH_REG_USERS", 10000),
    "reg_ladder": [int(x) for x in os.environ.get(
        "BENCH_REG_LADDER",
        "500 1000 2000 3000 4000 5000 6000 8000 10000 12000 15000 20000 25000 30000 40000"
        ).split()],
    "reg_step_seconds": env_float("BENCH_REG_STEP_SECONDS", 5),
    "reg_cpu_rate": env_int("BENCH_REG_CPU_RATE", 1000),
    "reg_cpu_seconds": env_float("BENCH_REG_CPU_SECONDS", 10),
    "reg_servers": os.environ.get("BENCH_REG_SERVERS",
                                  "sipd kamailio-mem kamailio-full kamailio-db responder").split(),
    "reg_sync": os.environ.get("BENCH_REG_SYNC", "full"),
    "mem_bindings": env_int("BENCH_MEM_BINDINGS", 100000),
    "mem_rate": env_int("BENCH_MEM_RATE", 3000),
    "mem_settle": env_int("BENCH_MEM_SETTLE", 45),
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


def session_cpu_split(sid):
    """(utime, stime) in clock ticks summed over every process of the
    session; a process's /proc/PID/stat already sums all its threads."""
    ut = st_ = 0
    for pid in session_pids(sid):
        st = read_stat(pid)
        if st:
            ut += st[11]
            st_ += st[12]
    return ut, st_


def session_cpu_ticks(sid):
    """utime+stime (clock ticks) summed over every process of the session."""
    return sum(session_cpu_split(sid))


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
    def __init__(self, name, binary=None, valgrind=None, sipd_ini=None, dirname=None,
                 kam_defines=(), responder_args=()):
        self.name = name
        self.port = PORTS[name]
        self.binary = binary
        self.valgrind = valgrind  # list of valgrind argv prefix, or None
        self.sipd_ini = sipd_ini  # sipd: INI text instead of the OPTIONS one
        self.kam_defines = list(kam_defines)  # Kamailio: -A defines
        self.responder_args = list(responder_args)
        self.proc = None
        self.dir = os.path.join(WORK, dirname or name)
        os.makedirs(self.dir, exist_ok=True)
        self.err = os.path.join(self.dir, "stderr.log")

    def argv(self):
        w = CFG["workers"]
        if self.name == "sipd":
            cfg = os.path.join(self.dir, "sipd.ini")
            with open(cfg, "w") as f:
                f.write(self.sipd_ini or
                        "[general]\nlisten = udp:%s:%d\nworkers = %d\nlog_level = warning\n"
                        % (HOST, self.port, w))
            return [self.binary, "-c", cfg]
        if self.name in KAMAILIO_CFGS:
            # production tuning: f_malloc, explicit shm/pkg; -DD keeps the
            # main process in the foreground (children forked), -E logs to
            # stderr; -n = UDP worker processes (= sipd's workers).
            defs = []
            for d in self.kam_defines:
                defs += ["-A", d]
            return [self.binary, "-f", KAMAILIO_CFGS[self.name], "-m", "1024", "-M", "8",
                    "-x", "fm", "-DD", "-E", "-n", str(w)] + defs + [
                    "-Y", self.dir, "-P", os.path.join(self.dir, "kamailio.pid")]
        return [self.binary, HOST, str(self.port)] + self.responder_args

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

    def cpu_split(self):
        return session_cpu_split(self.proc.pid)

    def stop(self, grace=10.0):
        if self.proc:
            stop(self.proc, grace)


# --------------------------------------------------------------------------
# SIPp

def rtt_ms(v):
    """SIPp's cumulative mean response time, "HH:MM:SS:uuuuuu", in ms (None without one)."""
    try:
        h, m, sec, us = (int(x) for x in v.split(":"))
    except ValueError:
        return None
    return ((h * 60 + m) * 60 + sec) * 1e3 + us / 1e3


def sipp_run(port, rate, calls, tag, scenario=SCENARIO, extra=(), trace_err=False):
    """Runs SIPp (own session) for `calls` calls of `scenario` (OPTIONS by
    default) at `rate`/s against port; `extra`: more SIPp arguments.
    trace_err: SIPp logs failed calls (only those: nothing is written while
    all goes well), and the failure reason names the unexpected responses.
    Returns a dict of results; 'ok' tells whether the step had zero failures."""
    stf = os.path.join(WORK, "sipp-%s.csv" % tag)
    errf = os.path.join(WORK, "sipp-%s.err" % tag)
    tracef = os.path.join(WORK, "sipp-%s.errors.log" % tag)
    for f in (stf, tracef):
        if os.path.exists(f):
            os.unlink(f)
    if trace_err:
        extra = list(extra) + ["-trace_err", "-error_file", tracef]
    expected = calls / float(rate)
    argv = [SIPP_BIN, "-sf", scenario, "-m", str(calls), "-r", str(rate), "-rp", "1000",
            "-l", str(max(2 * rate, 100)),
            "-t", "u1", "-i", HOST, "-p", str(SIPP_PORT),
            "-nr",                                   # no UDP retransmission:
            "-recv_timeout", str(CFG["recv_timeout_ms"]),  # a lost packet = a failed call
            "-buff_size", str(4 << 20),
            "-max_recv_loops", "100000", "-max_sched_loops", "100000",
            "-timeout", "%ds" % int(expected + CFG["recv_timeout_ms"] / 1000.0 + 60),
            "-nostdin", "-trace_stat", "-stf", stf, "-fd", "1"] + list(extra) + [
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
        "rtt_ms": rtt_ms(d.get("ResponseTime1(C)", "")),
    })
    why = []
    if res["failed"]:
        parts = ["%d timeouts" % res["timeouts"]] if res["timeouts"] else []
        if res["unexpected"]:
            codes = unexpected_codes(tracef) if trace_err else ""
            parts.append("%d unexpected%s" % (res["unexpected"], codes and " (" + codes + ")"))
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


def unexpected_codes(path, limit=50 << 20):
    """'503 x 4601, 401 x 3' from a SIPp error log: the responses that came
    instead of the expected one."""
    counts = {}
    try:
        with open(path, errors="replace") as f:
            data = f.read(limit)
    except OSError:
        return ""
    for m in re.finditer(r"while expecting '(\w+)'[^\n]*?received 'SIP/2\.0 (\d{3})", data):
        k = "%s instead of %s" % (m.group(2), m.group(1))
        counts[k] = counts.get(k, 0) + 1
    return ", ".join("%s x %d" % (k, v) for k, v in
                     sorted(counts.items(), key=lambda kv: -kv[1]))


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


def available_servers(sipd_bin, names, kam_defines=()):
    """name -> binary, and name -> reason for skipping.  kam_defines: -A
    defines for `kamailio -c` (the REGISTER configurations' database)."""
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
        elif name in KAMAILIO_CFGS:
            cfg = KAMAILIO_CFGS[name]
            defs = []
            for d in kam_defines:
                defs += ["-A", d]
            if not os.access(KAMAILIO_BIN, os.X_OK):
                skipped[name] = "%s not installed (Debian package `kamailio`)" % KAMAILIO_BIN
            elif name != "kamailio" and not os.path.exists(
                    os.path.join(KAMAILIO_MODULES, "db_sqlite.so")):
                skipped[name] = ("Kamailio's db_sqlite module is not installed (Debian package "
                                 "`kamailio-sqlite-modules`)")
            else:
                r = subprocess.run([KAMAILIO_BIN, "-c", "-f", cfg] + defs,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                if r.returncode != 0:
                    skipped[name] = "kamailio -c rejects %s:\n%s" % (
                        cfg, r.stdout.decode(errors="replace")[-800:])
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


def options_plan():
    return {"tag": "", "scenario": SCENARIO, "extra": [], "warmup": (2000, 2000),
            "cpu_rate": CFG["cpu_rate"], "cpu_seconds": CFG["cpu_seconds"],
            "ladder": CFG["ladder"], "step_seconds": CFG["step_seconds"],
            "make": lambda name, binary, rnd: Server(name, binary)}


def run_server_round(name, binary, rnd, plan=None):
    """One server, one round: start, warm-up, CPU run, ladder, stop.  `plan`
    says which scenario, rates and server set-up (OPTIONS by default)."""
    plan = plan or options_plan()
    sc, pre = plan["scenario"], plan["tag"]
    extra = {"extra": plan["extra"], "trace_err": plan.get("trace_err", False)}
    srv = plan["make"](name, binary, rnd)
    why = srv.start()
    if why:
        return {"error": why}
    res = {"error": None}
    try:
        port = srv.port
        # warm-up: page in code and buffers
        w = sipp_run(port, plan["warmup"][0], plan["warmup"][1],
                     "%s%s-r%d-warmup" % (pre, name, rnd), sc, **extra)
        res["warmup_ok"] = w["ok"]
        # CPU per request at a fixed rate both servers sustain
        rate = plan["cpu_rate"]
        calls = int(rate * plan["cpu_seconds"])
        u0, s0 = srv.cpu_split()
        sampler = perfsplit.Sampler(session_pids(srv.proc.pid), WORK)
        c = sipp_run(port, rate, calls, "%s%s-r%d-cpu" % (pre, name, rnd), sc, **extra)
        u1, s1 = srv.cpu_split()
        c["kernel_share"] = sampler.stop()
        c["uticks"], c["sticks"] = u1 - u0, s1 - s0
        c["ticks"] = c["uticks"] + c["sticks"]
        answered = c.get("ok_calls", 0)
        c["us_per_req"] = (c["ticks"] * 1e6 / CLK_TCK / answered) if answered else None
        c["sipp_us_per_req"] = (c["sipp_cpu_s"] * 1e6 / answered) if answered else None
        res["cpu"] = c
        log("  %-12s round %d: CPU run %d/s x %d: %s, %d ticks, %s us/call"
            % (name, rnd, rate, calls, "ok" if c["ok"] else "FAILURES (" + c["why"] + ")",
               c["ticks"], "%.2f" % c["us_per_req"] if c["us_per_req"] else "n/a"))
        # ladder
        best, fail = 0, None
        steps = []
        retried = []
        for rate in plan["ladder"]:
            calls = int(rate * plan["step_seconds"])
            s = sipp_run(port, rate, calls, "%s%s-r%d-%d" % (pre, name, rnd, rate), sc, **extra)
            for i in range(CFG["step_retries"]):
                if s["ok"] or srv.proc.poll() is not None:
                    break
                # one transient hiccup on a shared machine should not end the
                # ladder: a step fails only if it fails again right away
                log("  %-12s round %d: %d/s failed (%s), retrying"
                    % (name, rnd, rate, s["why"]))
                time.sleep(1)
                s = sipp_run(port, rate, calls, "%s%s-r%d-%d-retry%d"
                             % (pre, name, rnd, rate, i + 1), sc, **extra)
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
        log("  %-12s round %d: max %d/s with 0 failures; first failure: %s"
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
    publish(md, "latest.md")
    return 0


def split_section(rounds, order, base, unit):
    """The report's user/kernel table (perfsplit) with its heading; [] without perf."""
    pairs = {name: [(r[name]["cpu"]["us_per_req"], r[name]["cpu"].get("kernel_share"))
                    for r in rounds if r.get(name) and "cpu" in r[name]] for name in order}
    split = perfsplit.split_lines(pairs, base, unit, {"responder": "udp_responder"})
    return ["### Where the CPU goes: user and kernel", ""] + split + [""] if split else []


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

    top = CFG["ladder"][-1] if CFG["ladder"] else None  # BENCH_LADDER="": CPU run only
    ceiling = med(vals("responder", "max_rate")) if top else None
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
        mr_s = fmt(mr, "%.0f") if top else "not run (no ladder)"
        if top and mr is not None and sum(1 for t in tops if t) * 2 > len([t for t in tops if t is not None]):
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
    L.extend(split_section(rounds, order, "kamailio", "request"))
    if ceiling is not None:
        notes.append("- SIPp's own ceiling on this machine (against the trivial udp_responder): "
                     "median %.0f OPTIONS/s. A server whose max rate reaches it is limited by "
                     "SIPp, not by itself; compare CPU µs/request instead." % ceiling)
    if ceiling is not None and top is not None and ceiling >= top:
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
# REGISTER mode

REALM = "sipd"


def reg_password(user):
    """A fixed password per user (hex, so it needs no quoting in SIPp's
    injection file)."""
    return hashlib.sha256(("sipd-bench:" + user).encode()).hexdigest()[:12]


def reg_users(n, width=5):
    return ["user%0*d" % (width, i) for i in range(n)]


def write_injection(path, users, auth, order="SEQUENTIAL"):
    """SIPp injection file, one user per call in order (or, order RANDOM, a
    user drawn at random for each call).  With auth, field1 is SIPp's whole
    [authentication ...] keyword: SIPp 3.6 expands a keyword held in a field,
    but not [fieldN] inside that keyword."""
    with open(path, "w") as f:
        f.write(order + "\n")
        for u in users:
            if auth:
                f.write("%s;[authentication username=%s password=%s]\n" % (u, u, reg_password(u)))
            else:
                f.write("%s;\n" % u)


def ha1_rows(users):
    for u in users:
        a1 = ("%s:%s:%s" % (u, REALM, reg_password(u))).encode()
        yield u, hashlib.md5(a1).hexdigest(), hashlib.sha256(a1).hexdigest()


def sipd_reg_ini(db, auth=True):
    return ("[general]\nlisten = udp:%s:%d\nworkers = %d\nlog_level = warning\n"
            "[auth]\nrealm = %s\nalgorithms = MD5\nregister_auth = %s\n"
            "[database]\npath = %s\nsync = %s\n"
            % (HOST, PORTS["sipd"], CFG["workers"], REALM, "yes" if auth else "no",
               db, CFG["reg_sync"]))


def sipd_users_db(binary, users):
    """A database with sipd's schema (created by sipd itself, so it is always
    the schema of the binary under test) and the users' HA1 rows, written
    with sqlite3 directly (sipctl user add, one process per user, is slow).
    Returns (path, None) or (None, reason)."""
    srv = Server("sipd", binary, dirname="reg-dbinit")
    path = os.path.join(srv.dir, "users.db")
    srv.sipd_ini = sipd_reg_ini(path)
    argv = srv.argv()  # writes the INI
    r = subprocess.run(argv + ["--check"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        return None, ("the binary rejects the REGISTER configuration (built before [auth] and "
                      "[database]?):\n    " + r.stdout.decode(errors="replace").strip()
                      .replace("\n", "\n    "))
    why = srv.start()
    if why:
        return None, "could not create its database: " + why
    srv.stop()
    try:
        db = sqlite3.connect(path)
        cols = {row[1] for row in db.execute("PRAGMA table_info(users)")}
        if not {"name", "ha1_md5", "ha1_sha256"} <= cols:
            return None, "its database has no users(name, ha1_md5, ha1_sha256) table"
        db.executemany("INSERT OR REPLACE INTO users(name, ha1_md5, ha1_sha256) VALUES(?, ?, ?)",
                       ha1_rows(users))
        db.commit()
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
    except sqlite3.Error as e:
        return None, "cannot write users into %s: %s" % (path, e)
    return path, None


def kamailio_users_db(path, users):
    """Kamailio's subscriber table (and the version table its modules check)
    in an SQLite file: the columns auth_db reads, HA1 precomputed as kamctl
    stores it; ha1b is H(user@domain:realm:password)."""
    if os.path.exists(path):
        os.unlink(path)
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE version(
            id INTEGER PRIMARY KEY NOT NULL,
            table_name VARCHAR(32) NOT NULL UNIQUE,
            table_version INTEGER NOT NULL DEFAULT 0);
        INSERT INTO version(table_name, table_version) VALUES ('version', 1), ('subscriber', 7);
        CREATE TABLE subscriber(
            id INTEGER PRIMARY KEY NOT NULL,
            username VARCHAR(64) NOT NULL DEFAULT '',
            domain VARCHAR(64) NOT NULL DEFAULT '',
            password VARCHAR(64) NOT NULL DEFAULT '',
            ha1 VARCHAR(128) NOT NULL DEFAULT '',
            ha1b VARCHAR(128) NOT NULL DEFAULT '',
            UNIQUE(username, domain));
        CREATE INDEX subscriber_by_username ON subscriber(username);
    """)
    rows = []
    for u, md5, _ in ha1_rows(users):
        pw = reg_password(u)
        ha1b = hashlib.md5(("%s@%s:%s:%s" % (u, REALM, REALM, pw)).encode()).hexdigest()
        rows.append((u, REALM, pw, md5, ha1b))
    db.executemany("INSERT INTO subscriber(username, domain, password, ha1, ha1b) "
                   "VALUES(?, ?, ?, ?, ?)", rows)
    db.commit()
    db.close()


def proc_status(pid):
    """kB values of /proc/PID/status (VmRSS, VmHWM, RssAnon, ...)."""
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                v = v.split()
                if len(v) == 2 and v[1] == "kB":
                    out[k] = int(v[0])
                elif k == "Threads":
                    out[k] = int(v[0])
    except OSError:
        pass
    return out


def live_bindings(db):
    """(bindings, AORs) not yet expired, read next to the running sipd."""
    try:
        c = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=10)
        n, aors = c.execute("SELECT count(*), count(DISTINCT aor) FROM bindings WHERE expires > ?",
                            (int(time.time()),)).fetchone()
        c.close()
        return n, aors
    except sqlite3.Error as e:
        log("bench: cannot count bindings in %s: %s" % (db, e))
        return None, None


def memory_run(binary):
    """sipd without authentication ([auth] register_auth = no) on an empty
    database; N distinct AORs register once each; then its resident memory."""
    n, rate = CFG["mem_bindings"], CFG["mem_rate"]
    inj = os.path.join(WORK, "users-mem.csv")
    write_injection(inj, reg_users(n, width=max(6, len(str(n - 1)))), auth=False)
    srv = Server("sipd", binary, dirname="mem-sipd")
    db = os.path.join(srv.dir, "sipd.db")
    srv.sipd_ini = sipd_reg_ini(db, auth=False)
    why = srv.start()
    if why:
        return {"error": why}
    res = {"error": None, "n": n, "rate": rate}
    try:
        time.sleep(1)
        res["before"] = proc_status(srv.proc.pid)
        log("  sipd memory: %d REGISTERs (distinct AORs, no auth) at %d/s" % (n, rate))
        s = sipp_run(srv.port, rate, n, "mem-sipd", REG_NOAUTH_SCENARIO,
                     ["-inf", inj, "-default_behaviors", "all,-bye"], trace_err=True)
        res["sipp"] = s
        time.sleep(2)  # the group commit of the last REGISTERs, timers
        res["after"] = proc_status(srv.proc.pid)
        res["live"], res["aors"] = live_bindings(db)
        # The REGISTER transactions stay 64*T1 = 32 s after their 200 (Timer J, as echoes); sipd hands freed
        # heap pages back every 10 s. Read again once both have passed: the bindings alone.
        time.sleep(CFG["mem_settle"])
        res["settled"] = proc_status(srv.proc.pid)
        res["live_settled"], _ = live_bindings(db)
        sipctl = os.path.join(os.path.dirname(os.path.abspath(SIPD_INFO.get("path", binary))),
                              "sipctl")
        res["sipctl"] = None
        if os.access(sipctl, os.X_OK):
            r = subprocess.run([sipctl, "-d", db, "show", "registrations"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            lines = r.stdout.decode(errors="replace").strip().splitlines()
            res["sipctl"] = lines[-1] if lines else "(no output, status %d)" % r.returncode
        log("  sipd memory: %s; %s live bindings; VmRSS %s -> %s kB"
            % ("ok" if s["ok"] else s["why"], res["live"],
               res["before"].get("VmRSS"), res["after"].get("VmRSS")))
        if srv.proc.poll() is not None:
            res["error"] = "sipd exited during the run (status %s)" % srv.proc.returncode
    finally:
        srv.stop()
    return res


def fs_of(path):
    try:
        r = subprocess.run(["df", "--output=fstype,source", path], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL)
        return " on ".join(r.stdout.decode().splitlines()[-1].split())
    except (OSError, IndexError):
        return "?"


def publish(md, name):
    """The report on stdout and in the results directory as name."""
    print(md)
    os.makedirs(CFG["results"], exist_ok=True)
    out = os.path.join(CFG["results"], name)
    with open(out, "w") as f:
        f.write(md)
    log("bench: written %s" % out)


def register_setup(sipd_bin, names):
    """What every REGISTER measurement starts from: the servers of names that can run, the users'
    injection file, Kamailio's subscriber table and sipd's database template. Returns (order, bins,
    skipped, inj, make), where make(name, binary) gives a Server ready to start on a fresh copy of
    its database (users, no bindings); order is None when nothing can run."""
    users = reg_users(CFG["reg_users"])
    inj = os.path.join(WORK, "users.csv")
    write_injection(inj, users, auth=True)
    kdb = os.path.join(WORK, "kamailio.db")
    kam_defines = ['BENCH_DB_URL="sqlite://%s"' % kdb]
    bins, skipped = available_servers(sipd_bin, names, kam_defines)
    if any(n.startswith("kamailio") for n in bins):
        kamailio_users_db(kdb, users)
    template = None
    if "sipd" in bins:
        template, why = sipd_users_db(bins["sipd"], users)
        if why:
            skipped["sipd"] = why
            del bins["sipd"]
    for name, why in skipped.items():
        log("bench: register: skipping %s: %s" % (name, why))
    order = [n for n in names if n in bins]

    def make(name, binary, rnd=0):
        if name == "sipd":
            srv = Server(name, binary, dirname="reg-sipd")
            db = os.path.join(srv.dir, "sipd.db")
            for f in (db, db + "-wal", db + "-shm"):
                if os.path.exists(f):
                    os.unlink(f)
            shutil.copyfile(template, db)  # same start every round: users, no bindings
            srv.sipd_ini = sipd_reg_ini(db)
            return srv
        if name in KAMAILIO_CFGS:
            return Server(name, binary, dirname="reg-" + name, kam_defines=kam_defines)
        return Server(name, binary, dirname="reg-" + name, responder_args=["challenge"])

    return (order or None), bins, skipped, inj, make


def register_mode(sipd_bin):
    order, bins, skipped, inj, make = register_setup(sipd_bin, CFG["reg_servers"])
    if not order:
        log("bench: register: nothing to benchmark")
        return 1
    info = host_info()

    plan = {"tag": "reg-", "scenario": REG_SCENARIO,
            "extra": ["-inf", inj, "-default_behaviors", "all,-bye"], "trace_err": True,
            "warmup": (500, 1000), "cpu_rate": CFG["reg_cpu_rate"],
            "cpu_seconds": CFG["reg_cpu_seconds"], "ladder": CFG["reg_ladder"],
            "step_seconds": CFG["reg_step_seconds"], "make": make}
    log("bench: register: %d rounds of %s; %d users; CPU run %d/s x %gs; ladder %s/s, %gs per step"
        % (CFG["reg_rounds"], " -> ".join(order), CFG["reg_users"], CFG["reg_cpu_rate"],
           CFG["reg_cpu_seconds"], ",".join(str(r) for r in CFG["reg_ladder"]),
           CFG["reg_step_seconds"]))
    rounds = []
    for rnd in range(1, CFG["reg_rounds"] + 1):
        log("bench: register: round %d/%d" % (rnd, CFG["reg_rounds"]))
        this = {}
        for name in order:
            if name in skipped:
                continue
            r = run_server_round(name, bins[name], rnd, plan)
            if r["error"] and "cpu" not in r:
                if rnd == 1:
                    skipped[name] = r["error"]
                    log("bench: register: skipping %s: %s" % (name, r["error"]))
                else:
                    log("bench: register: %s round %d failed: %s" % (name, rnd, r["error"]))
            this[name] = r
            time.sleep(1)
        rounds.append(this)
    mem = None
    if "sipd" in bins and CFG["mem_bindings"] > 0:
        mem = memory_run(bins["sipd"])
    md = register_report(order, rounds, skipped, info, mem)
    publish(md, "register.md")
    return 0


REG_SETUP = {
    "sipd": "users' HA1 loaded from SQLite at start; each binding committed to SQLite "
            "(WAL, group commit, `sync = %s`) before the 200",
    "kamailio-mem": "`pv_auth_check` against HA1 in an htable loaded from SQLite at start; "
                    "usrloc in memory (`db_mode=0`)",
    "kamailio-full": "as kamailio-mem, plus what sipd also checks on each REGISTER: "
                     "`sanity_check()`, `uri == myself`, nonce-count replay protection "
                     "(`nonce_count`), failed attempts counted per (source, user) in an htable",
    "kamailio-db": "`auth_check` (auth_db) reading HA1 from SQLite per request via "
                   "db_sqlite; usrloc in memory (`db_mode=0`)",
    "responder": "answers 401 then 200 without checking anything",
}


def register_report(order, rounds, skipped, info, mem):
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
            elif key == "rtt_ms":
                out.append(x["cpu"].get("rtt_ms"))
            else:
                out.append(x.get(key))
        return out

    def ratios(name, base, key):
        a, b = vals(name, key), vals(base, key)
        return [x / y if x is not None and y else None for x, y in zip(a, b)]

    top = CFG["reg_ladder"][-1] if CFG["reg_ladder"] else None  # BENCH_REG_LADDER="": CPU run only
    ceiling = med(vals("responder", "max_rate")) if top else None
    L = ["# sipd REGISTER benchmark\n"]
    L.append("%s; %s CPUs (%s), Linux %s, load before run %s; checkout at %s%s; %s; %s.\n"
             % (info["date"], info["cpus"], info["model"], info["kernel"],
                " ".join(info["load"]), info["commit"],
                ", sipd binary %s built %s" % (SIPD_INFO["path"], SIPD_INFO["mtime"])
                if SIPD_INFO else "", info["sipp"], info["kamailio"]))
    L.append("Each call: REGISTER (Expires 3600, one Contact per user) → 401 → REGISTER with "
             "MD5 digest credentials (qop=auth, CSeq + 1) → 200, i.e. 2 transactions and 4 UDP "
             "messages. %d users (user00000...), one per call in turn (SIPp `-inf`, SEQUENTIAL). "
             "sipd runs with `[auth] algorithms = MD5`, because SIPp 3.6 computes MD5 digests only "
             "and answers the first challenge of a 401. Rounds: %d, interleaved (%s). Workers: %d "
             "(sipd `workers`, Kamailio `-n` and `children`, Kamailio run with `-m 1024 -M 8 -x fm`). "
             "UDP on 127.0.0.1, every server and SIPp in its own session (setsid). CPU run: %d "
             "registrations/s for %g s. Ladder: %s registrations/s, %g s per step (a failed step "
             "is retried %d time(s)), no SIPp retransmissions, %d ms receive timeout. sipd's "
             "database is on %s.\n"
             % (CFG["reg_users"], CFG["reg_rounds"], ", ".join(order), CFG["workers"],
                CFG["reg_cpu_rate"], CFG["reg_cpu_seconds"],
                " ".join(str(r) for r in CFG["reg_ladder"]), CFG["reg_step_seconds"],
                CFG["step_retries"], CFG["recv_timeout_ms"], fs_of(WORK)))
    L.append("| server | set-up | max registrations/s with 0 failures (median) "
             "| CPU µs/registration (median) | SIPp CPU µs/registration (median) "
             "| mean ms from the authenticated REGISTER to its 200 (median) |")
    L.append("|---|---|---:|---:|---:|---:|")
    notes = []
    for name in CFG["reg_servers"]:
        setup = REG_SETUP.get(name, "")
        if name == "sipd":
            setup = setup % CFG["reg_sync"]
        label = {"responder": "udp_responder (SIPp ceiling)"}.get(name, name)
        if name in skipped and not any(r.get(name, {}).get("cpu") for r in rounds):
            L.append("| %s | %s | skipped (see below) | – | – | – |" % (label, setup))
            notes.append("- %s skipped: %s" % (name, skipped[name].splitlines()[0]))
            continue
        if name not in order:
            continue
        mr = med(vals(name, "max_rate"))
        tops = [r.get(name, {}).get("ladder_top") for r in rounds]
        mr_s = fmt(mr, "%.0f") if top else "not run (no ladder)"
        if top and mr is not None and sum(1 for t in tops if t) * 2 > len([t for t in tops if t is not None]):
            mr_s = "≥ " + mr_s
        if name != "responder" and mr is not None and ceiling and top > ceiling <= mr:
            mr_s += " (SIPp-limited)"
        L.append("| %s | %s | %s | %s | %s | %s |" % (label, setup, mr_s, fmt(med(vals(name, "cpu"))),
                                                       fmt(med(vals(name, "sipp_cpu"))),
                                                       fmt(med(vals(name, "rtt_ms")), "%.1f")))
    L.append("")
    if "sipd" in order:
        L.append("| ratio (median of the per-round ratios) | CPU µs/registration | "
                 "max registrations/s |")
        L.append("|---|---:|---:|")
        for base, what in (("kamailio-mem", " (the target: Kamailio's fastest set-up)"),
                           ("kamailio-full", " (Kamailio checking what sipd checks)"),
                           ("kamailio-db", " (Kamailio's usual set-up)")):
            if base in order:
                L.append("| sipd / %s%s | %s | %s |" % (
                    base, what, fmt(med(ratios("sipd", base, "cpu"))),
                    fmt(med(ratios("sipd", base, "max_rate")))))
        L.append("")
    L.extend(split_section(rounds, order, "kamailio-mem", "registration"))
    if ceiling is not None:
        notes.append("- SIPp's own ceiling for this scenario on this machine (against the "
                     "udp_responder, which challenges and accepts without any check): median "
                     "%.0f registrations/s. A server whose max rate reaches it is limited by "
                     "SIPp, not by itself." % ceiling)
    if ceiling is not None and top is not None and ceiling >= top:
        notes.append("- The ladder's top step (%d/s) passed for the responder: extend "
                     "BENCH_REG_LADDER to find the ceiling." % top)
    notes.append("- Mean ms to the 200: SIPp's response time from the authenticated REGISTER to "
                 "its 200 over the CPU run. sipd answers once the binding is committed: under load "
                 "a commit waits up to `[database] commit_delay_ms` (100 ms) for others to share "
                 "its fsync; Kamailio answers at once from memory.")
    notes.append("- CPU µs/registration: user + system time of every process of the server's "
                 "session (all threads; Kamailio's main, timer and worker processes) over the "
                 "CPU run, divided by the registrations that got their 200. A registration is "
                 "two requests (the challenged one and the authenticated one).")
    if "sipd" in order:
        notes.append("- sipd keeps each non-INVITE server transaction for 64×T1 = 32 s after its "
                     "final response over UDP (Timer J, RFC 3261 17.2.2), as its key and "
                     "response only (about 450 bytes), up to `[limits] max_answered` (500 000 by "
                     "default); past that they stay whole and count in `max_transactions` "
                     "(200 000), over which sipd answers 503. The challenge (401) is answered "
                     "statelessly, so a registration is one transaction: with the defaults sipd "
                     "sustains about 700 000 / 32 s ≈ 21 000 registrations/s for longer than "
                     "half a minute. Both Kamailio set-ups answer statelessly (sl) and keep no "
                     "transaction.")
    notes.append("- CPU ratio < 1: sipd spends less CPU per registration; max-rate ratio > 1: "
                 "sipd sustains more. Unlike both Kamailio set-ups, sipd commits every binding "
                 "to SQLite (`sync = %s`: %s) before it answers 200; Kamailio's usrloc here "
                 "keeps bindings in memory only (lost on restart)." % (
                     CFG["reg_sync"], "fsynced, survives a power loss" if CFG["reg_sync"] == "full"
                     else "survives a crash of sipd, not of the machine"))
    L.extend(notes)

    if mem is not None:
        L.append("\n## Resident memory of sipd with %d live bindings\n" % CFG["mem_bindings"])
        if mem.get("error") and "after" not in mem:
            L.append("Not measured: %s\n" % mem["error"].splitlines()[0])
        else:
            s, b = mem["sipp"], mem["before"]
            L.append("A separate sipd (`[auth] register_auth = no`, empty database, same "
                     "workers and `sync = %s`) gets one REGISTER (Expires 3600) for each of %d "
                     "distinct addresses of record, at %d/s (SIPp, `bench/register-noauth.xml`); "
                     "its /proc/PID/status is read 2 s after the last 200 (the REGISTER "
                     "transactions of the last 32 s still live: Timer J, RFC 3261 17.2.2), and "
                     "again %d s later, when they have ended (the bindings alone).\n"
                     % (CFG["reg_sync"], mem["n"], mem["rate"], CFG["mem_settle"]))
            L.append("| when | REGISTERs answered 200 / sent | live bindings (AORs) in the database "
                     "| VmRSS at start | VmRSS with the bindings | growth per binding | VmHWM "
                     "| RssAnon / RssFile / RssShmem with the bindings |")
            L.append("|---|---:|---:|---:|---:|---:|---:|---|")
            for label, key, live in (("2 s after the last REGISTER", "after", mem.get("live")),
                                     ("%d s later" % CFG["mem_settle"], "settled",
                                      mem.get("live_settled"))):
                a = mem.get(key)
                if not a:
                    continue
                grow = (a.get("VmRSS", 0) - b.get("VmRSS", 0))
                per = grow * 1024.0 / live if live else None
                L.append("| %s | %d / %d%s | %s (%s) | %s kB | %s kB | %s | %s kB | %s / %s / %s kB |" % (
                    label, s.get("ok_calls", 0), mem["n"], "" if s["ok"] else " (" + s["why"] + ")",
                    live, mem.get("aors"), b.get("VmRSS"), a.get("VmRSS"),
                    "%.0f bytes" % per if per is not None else "n/a", a.get("VmHWM"),
                    a.get("RssAnon"), a.get("RssFile"), a.get("RssShmem")))
            if mem.get("sipctl"):
                L.append("\n`sipctl -d DB show registrations | tail -1`: `%s`" % mem["sipctl"])
            if mem.get("error"):
                L.append("\n%s" % mem["error"])
        L.append("")

    L.append("\n## Raw per-round numbers\n")
    L.append("The user/system split of the CPU ticks is the kernel's estimate (it divides each "
             "process's run time by sampled ticks) and can be far off over a 10 s run, e.g. "
             "all user or all system for Kamailio; only the sum is exact to a tick.\n")
    L.append("| round | server | max registrations/s | first failing step | CPU run registered | "
             "CPU run failures | server CPU ticks (user + system) | CPU µs/registration "
             "| SIPp CPU µs/registration |")
    L.append("|---:|---|---:|---|---:|---|---:|---:|---:|")
    for i, r in enumerate(rounds, 1):
        for name in order:
            x = r.get(name)
            if not x:
                continue
            if "cpu" not in x:
                L.append("| %d | %s | – | %s | | | | | |" % (
                    i, name, (x.get("error") or "").splitlines()[0]))
                continue
            c = x["cpu"]
            L.append("| %d | %s | %d | %s | %d | %s | %d (%d + %d) | %s | %s |" % (
                i, name, x["max_rate"], x["fail"], c.get("ok_calls", 0),
                "none" if c["ok"] else c["why"], c["ticks"], c["uticks"], c["sticks"],
                fmt(c["us_per_req"]), fmt(c["sipp_us_per_req"])))
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


def callgrind_head(what):
    """The first lines of a callgrind report: what it counts, where and with which tools."""
    info = host_info()
    return ["# sipd callgrind: %s\n" % what,
            "%s; checkout at %s%s; %s; %s.\n" % (
                info["date"], info["commit"],
                ", sipd binary %s built %s" % (SIPD_INFO["path"], SIPD_INFO["mtime"]) if SIPD_INFO else "",
                info["kamailio"], subprocess.run(["valgrind", "--version"], stdout=subprocess.PIPE
                                                 ).stdout.decode().strip())]


def callgrind_load_idle(name, tag, server, load, what, handler=None, prepare=None):
    """Two runs of name under callgrind for the same wall time: one under load(srv) (which returns
    SIPp's result), one idle (start-up, readiness probe, timers, shutdown alike), so that their
    difference is what the load cost. server(valgrind_argv, out_dir) makes the Server; prepare(srv),
    when given, runs in both before the load or the idle time (a state both start from). Returns
    ({"sipp": ..., "answered": n, "load": totals, "idle": totals}, None), totals as callgrind_totals
    gives them, or (None, why) when it did not start or answered none of the load (what it sends,
    in the plural)."""
    result, duration = {}, 0.0
    for phase in ("load", "idle"):
        d = os.path.join(WORK, "%s-%s-%s" % (tag, name, phase))
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        srv = server(["valgrind", "--tool=callgrind", "--trace-children=no",
                      "--callgrind-out-file=%s/callgrind.out.%%p" % d], d)
        why = srv.start(ready_timeout=180)
        if why:
            return None, "under valgrind: " + why
        if prepare:
            why = prepare(srv)
            if why:
                srv.stop(grace=180)
                return None, why
        t0 = time.time()
        if phase == "load":
            result["sipp"] = load(srv)
            duration = time.time() - t0
        else:
            time.sleep(duration)
        srv.stop(grace=180)
        files = [os.path.join(d, f) for f in os.listdir(d) if f.startswith("callgrind.out.")]
        result[phase] = callgrind_totals(files, handler)
    result["answered"] = result["sipp"].get("ok_calls", 0)
    if not result["answered"]:
        return None, "no %s answered under valgrind" % what
    return result, None


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
        handler = find_handler(name, bins[name])
        handlers_used[name] = handler

        def server(vg, d, name=name):
            srv = Server(name, bins[name], valgrind=vg)
            srv.dir = d
            srv.err = os.path.join(d, "stderr.log")
            return srv

        def load(srv, name=name):
            s = sipp_run(srv.port, rate, n, "cg-%s" % name)
            log("  %-9s callgrind: %d OPTIONS at %d/s: %s" % (
                name, n, rate, "ok" if s["ok"] else s["why"]))
            return s

        result, why = callgrind_load_idle(name, "cg", server, load, "requests", handler)
        if why:
            log("bench: callgrind: %s: %s" % (name, why))
            skipped[name] = why
            continue
        answered = result["answered"]
        (lt, lh), (it, ih) = result["load"], result["idle"]
        per = (lt - it) / float(answered)
        hper = ((lh - (ih or 0)) / float(answered)) if lh is not None else None
        rows.append((name, answered, result["sipp"]["ok"], lt, it, per, hper))

    L = callgrind_head("instructions per OPTIONS request")
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
    publish(md, "callgrind.md")
    return 0 if rows else 1


def register_callgrind_mode(sipd_bin):
    """Instructions per registration under callgrind: the CPU runs' scenario, users and set-ups,
    counted instead of timed, so that the comparison does not move with the host's load. As for
    OPTIONS: a run with the registrations and an idle run of the same length (start-up, timers,
    shutdown), every process and thread summed; the difference per registration answered. With
    BENCH_REG_CG_REFRESH=1, both runs first register every user once, and the counted ones are
    refreshes of those bindings by users drawn at random: a registrar's steady state, where each
    commit touches bindings spread over the whole table."""
    if not shutil.which("valgrind"):
        log("bench: valgrind not installed")
        return 1
    order, bins, skipped, inj, make = register_setup(sipd_bin, CFG["reg_cg_servers"])
    if not order:
        log("bench: register-callgrind: nothing to measure")
        return 1
    n, rate, refresh = CFG["reg_cg_calls"], CFG["reg_cg_rate"], CFG["reg_cg_refresh"]
    load_inj, prepare = inj, None
    if refresh:
        load_inj = os.path.join(WORK, "users-random.csv")
        write_injection(load_inj, reg_users(CFG["reg_users"]), auth=True, order="RANDOM")
    rows = []
    for name in order:
        def server(vg, d, name=name):
            srv = make(name, bins[name])
            srv.valgrind = vg
            return srv

        def sipp_register(srv, calls, what, inj_file, name=name):
            s = sipp_run(srv.port, rate, calls, "regcg-%s-%s" % (what, name), REG_SCENARIO,
                         extra=["-inf", inj_file, "-default_behaviors", "all,-bye"])
            log("  %-13s callgrind: %s, %d registrations at %d/s: %s" % (
                name, what, calls, rate, "ok" if s["ok"] else s["why"]))
            return s

        if refresh:
            def prepare(srv):
                s = sipp_register(srv, CFG["reg_users"], "every user once", inj)
                return None if s["ok"] else "the first registration of every user failed: " + s["why"]

        result, why = callgrind_load_idle(
            name, "regcg", server,
            lambda srv: sipp_register(srv, n, "refreshes" if refresh else "load", load_inj),
            "registrations", prepare=prepare)
        if why:
            log("bench: register-callgrind: %s: %s" % (name, why))
            skipped[name] = why
            continue
        answered = result["answered"]
        lt, it = result["load"][0], result["idle"][0]
        rows.append((name, answered, result["sipp"]["ok"], lt, it, (lt - it) / float(answered)))

    L = callgrind_head("instructions per registration" + (", refreshes in random order" if refresh else ""))
    if refresh:
        what = ("%d users each registered once in turn before both runs (and counted in neither), then %d "
                "refreshes by users drawn at random (SIPp `-inf` RANDOM): every binding already there, "
                "each commit's bindings spread over the whole table" % (CFG["reg_users"], n))
    else:
        what = "%d users in turn" % CFG["reg_users"]
    L.append("%d registrations at %d/s under `valgrind --tool=callgrind`, each as in the REGISTER "
             "benchmark (register.md: REGISTER, 401, REGISTER with MD5 credentials, 200; %s; the same "
             "set-ups, %d workers). Ir/registration = (Ir of that run - Ir of an idle "
             "run of the same length) / registrations answered, summed over all processes and "
             "threads: sipd's includes its SQLite writer (every binding committed before its 200), "
             "Kamailio's none.\n" % (n, rate, what, CFG["workers"]))
    L.append("| server | answered | Ir total (load run) | Ir total (idle run) | Ir/registration "
             "| ratio vs kamailio-mem |")
    L.append("|---|---:|---:|---:|---:|---:|")
    base = [r for r in rows if r[0] == "kamailio-mem"]
    for name, ans, ok, lt, it, per in rows:
        ratio = fmt(per / base[0][5]) if base and base[0][5] else "n/a"
        L.append("| %s | %d%s | %d | %d | %.0f | %s |" % (
            name, ans, "" if ok else " (with failures)", lt, it, per, ratio))
    for name, why in skipped.items():
        L.append("\n- %s skipped: %s" % (name, why.splitlines()[0]))
    md = "\n".join(L) + "\n"
    publish(md, "register-refresh-callgrind.md" if refresh else "register-callgrind.md")
    return 0 if rows else 1


# --------------------------------------------------------------------------

def train_mode(sipd_bin):
    """Drives a sipd built with -fprofile-generate (tools/pgo.sh) through the REGISTER benchmark's
    traffic: every user registered once with digest credentials, a third of them again (refreshes),
    then OPTIONS; sipd then stops on SIGTERM, which writes its profile. The proxied calls are trained
    by calls.py (tools/pgo.sh runs both)."""
    order, bins, _skipped, inj, make = register_setup(sipd_bin, ["sipd"])
    if not order:
        log("bench: train: sipd cannot run")
        return 1
    srv = make("sipd", bins["sipd"])
    why = srv.start(ready_timeout=30)
    if why:
        log("bench: train: %s" % why)
        return 1
    n = CFG["reg_users"]
    steps = [("registrations", REG_SCENARIO, 1000, n + n // 3,
              ["-inf", inj, "-default_behaviors", "all,-bye"]),
             ("OPTIONS", SCENARIO, 4000, 20000, [])]
    rc = 0
    for what, scenario, rate, calls, extra in steps:
        s = sipp_run(srv.port, rate, calls, "train-" + what, scenario, extra=extra)
        log("bench: train: %d %s at %d/s: %s" % (calls, what, rate, "ok" if s["ok"] else s["why"]))
        rc = rc or (0 if s["ok"] else 1)
    srv.stop(grace=30)
    if srv.proc.returncode != 0:
        log("bench: train: sipd exited with status %s: no profile" % srv.proc.returncode)
        return 1
    return rc


def main():
    global WORK
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--options", action="store_true",
                      help="only the OPTIONS benchmark (results/latest.md)")
    mode.add_argument("--register", action="store_true",
                      help="only the REGISTER benchmark and sipd's memory with 100 000 "
                           "bindings (results/register.md)")
    mode.add_argument("--callgrind", action="store_true",
                      help="measure instructions per OPTIONS under callgrind")
    mode.add_argument("--register-callgrind", action="store_true",
                      help="measure instructions per registration under callgrind "
                           "(results/register-callgrind.md)")
    mode.add_argument("--train", action="store_true",
                      help="run the REGISTER and OPTIONS traffic once through a sipd built for "
                           "profile-guided optimization (tools/pgo.sh)")
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
        if args.train:
            return train_mode(args.sipd)
        if args.callgrind:
            return callgrind_mode(args.sipd)
        if args.register_callgrind:
            return register_callgrind_mode(args.sipd)
        if args.options:
            return bench_mode(args.sipd)
        if args.register:
            return register_mode(args.sipd)
        # default (make bench): OPTIONS, then REGISTER
        rc = bench_mode(args.sipd)
        return register_mode(args.sipd) or rc
    finally:
        cleanup_all()


if __name__ == "__main__":
    sys.exit(main())
