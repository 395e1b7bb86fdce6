#!/usr/bin/env python3
"""Proxied-call benchmark: sipd vs Kamailio 5.6 (issue 5 item 8).

    python3 bench/calls.py ./build/sipd

A SIPp UAC (bench/calls-uac.xml) calls a SIPp UAS (bench/calls-uas.xml)
through the server: INVITE, 100, 180, 200, ACK, BYE, 200, Record-Route on,
so ACK and BYE cross the proxy too.  Servers, in interleaved rounds:

  sipd      proxy routing sip:bob@... to bob's registered Contact (the UAS)
  kamailio  tm + rr + sl, record_route(); t_relay() to the UAS
            (bench/kamailio-calls.cfg), loose_route() in-dialog
  kamailio-full  the same plus what sipd does on each call: sanity_check(),
            uri == myself, lookup("location") of bob (registered to it as
            to sipd), dlg_manage() (bench/kamailio-calls-full.cfg)
  direct    no proxy: the UAC calls the UAS itself (the SIPp ceiling)

Per server and round: warm-up, CPU run at a fixed rate (server CPU from
/proc/PID/stat utime+stime summed over the server's session, per
successful call), then a ladder of fixed call rates, stopping at the first
step with a failed call (retried once).  Then sipd's resident memory with
CALLS_MEM_CALLS calls in progress.  Report: bench/results/calls.md.

Conventions follow bench/bench.py (docs/benchmark.md): every server and
SIPp in its own session (setsid), private copy of the sipd binary, temp
work directory, Kamailio with -m 1024 -M 8 -x fm -n WORKERS -DD -E -Y -P.
Ports (not those of bench.py, so both can run): sipd 5170, Kamailio 5172,
UAC 5180, UAS 5190, probe 5181, all on 127.0.0.1.
"""

import csv
import datetime
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import perfsplit

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_DIR = os.path.dirname(BENCH_DIR)
UAC_XML = os.path.join(BENCH_DIR, "calls-uac.xml")
UAS_XML = os.path.join(BENCH_DIR, "calls-uas.xml")
KAM_CFGS = {"kamailio": os.path.join(BENCH_DIR, "kamailio-calls.cfg"),
            "kamailio-full": os.path.join(BENCH_DIR, "kamailio-calls-full.cfg")}
KAMAILIO_BIN = os.environ.get("BENCH_KAMAILIO", "/usr/sbin/kamailio")
SIPP_BIN = os.environ.get("BENCH_SIPP", "sipp")

HOST = "127.0.0.1"
PORTS = {"sipd": 5170, "kamailio": 5172,   # kamailio: also in kamailio-calls.cfg
         "kamailio-full": 5174}             # also in kamailio-calls-full.cfg
UAC_PORT = 5180
UAS_PORT = 5190                            # also in kamailio-calls.cfg
PROBE_PORT = 5181
BEHAVIORS = "all,-bye,-abortunexp"


def env(name, default, conv=str):
    return conv(os.environ.get(name, default))


CFG = {
    "rounds": env("CALLS_ROUNDS", 3, int),
    "workers": env("CALLS_WORKERS", 2, int),
    "ladder": [int(x) for x in env("CALLS_LADDER", "500 1000 2000 3000 4000 5000 6000 8000 10000").split()],
    "step_seconds": env("CALLS_STEP_SECONDS", 5, float),
    "cpu_rate": env("CALLS_CPU_RATE", 300, int),
    "cpu_seconds": env("CALLS_CPU_SECONDS", 10, float),
    "recv_timeout_ms": env("CALLS_RECV_TIMEOUT_MS", 4000, int),
    "min_rate_fraction": env("CALLS_MIN_RATE_FRACTION", 0.9, float),
    "servers": env("CALLS_SERVERS", "sipd kamailio kamailio-full direct").split(),
    "mem_calls": env("CALLS_MEM_CALLS", 10000, int),
    "mem_rate": env("CALLS_MEM_RATE", 500, int),
    "mem_modes": env("CALLS_MEM_MODES", "established ringing").split(),
    "results": env("CALLS_RESULTS", os.path.join(BENCH_DIR, "results")),
}

CLK_TCK = os.sysconf("SC_CLK_TCK")
LIVE = {}
WORK = None


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- processes

def spawn(label, argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=None):
    p = subprocess.Popen(["setsid"] + argv, stdin=subprocess.DEVNULL,
                         stdout=stdout, stderr=stderr, cwd=cwd or WORK)
    LIVE[p.pid] = label
    return p


def read_stat(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    rest = s[s.rindex(")") + 2:].split()
    return [rest[0]] + [int(x) for x in rest[1:]]


def session_pids(sid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = read_stat(int(d))
            if st and st[3] == sid:
                out.append(int(d))
    return out


def session_cpu_ticks(sid):
    t = 0
    for pid in session_pids(sid):
        st = read_stat(pid)
        if st:
            t += st[11] + st[12]
    return t


def status_kb(pid):
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if v.strip().endswith("kB"):
                    out[k] = int(v.split()[0])
    except OSError:
        pass
    return out


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
    if proc is None or proc.pid not in LIVE:
        return
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
    deadline = time.time() + grace
    while session_pids(proc.pid) and time.time() < deadline:
        time.sleep(0.05)
    if session_pids(proc.pid):
        kill_session(proc.pid, signal.SIGKILL)
    del LIVE[proc.pid]


def cleanup_all():
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
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


def on_signal(sig, _frame):
    raise SystemExit(128 + sig)


def port_busy(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((HOST, port))
        return False
    except OSError:
        return True
    finally:
        s.close()


def tail(path, n=8):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


# ---------------------------------------------------------------- SIP helpers

def sip_exchange(src_port, dst_port, msg, want, timeout):
    """Sends msg from HOST:src_port to dst_port until a response whose first
    line starts with `want` arrives (resent every 0.25 s).  Returns the
    response text or None."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((HOST, src_port))
    s.settimeout(0.25)
    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            s.sendto(msg.encode(), (HOST, dst_port))
            end = time.time() + 0.25
            while time.time() < end:
                try:
                    data = s.recv(65535).decode(errors="replace")
                except socket.timeout:
                    break
                except ConnectionRefusedError:
                    time.sleep(0.1)
                    break
                if data.startswith("SIP/2.0 " + want):
                    return data
    finally:
        s.close()
    return None


def probe(port, timeout):
    n = int(time.time() * 1000) % 1000000
    msg = ("OPTIONS sip:{h}:{p} SIP/2.0\r\n"
           "Via: SIP/2.0/UDP {h}:{pp};branch=z9hG4bK-cprobe-{n}\r\n"
           "Max-Forwards: 70\r\n"
           "From: <sip:probe@{h}:{pp}>;tag=cp{n}\r\n"
           "To: <sip:{h}:{p}>\r\n"
           "Call-ID: cprobe-{n}@{h}\r\n"
           "CSeq: 1 OPTIONS\r\n"
           "Content-Length: 0\r\n\r\n").format(h=HOST, p=port, pp=PROBE_PORT, n=n)
    return sip_exchange(PROBE_PORT, port, msg, "200", timeout) is not None


def register_bob(port):
    """REGISTER bob with Contact <sip:bob@HOST:UAS_PORT>, sent from UAS_PORT
    itself (before the UAS starts there); True on 200."""
    n = int(time.time() * 1000) % 1000000
    msg = ("REGISTER sip:{h}:{p} SIP/2.0\r\n"
           "Via: SIP/2.0/UDP {h}:{u};branch=z9hG4bK-creg-{n}\r\n"
           "Max-Forwards: 70\r\n"
           "From: <sip:bob@{h}>;tag=cr{n}\r\n"
           "To: <sip:bob@{h}>\r\n"
           "Call-ID: creg-{n}@{h}\r\n"
           "CSeq: 1 REGISTER\r\n"
           "Contact: <sip:bob@{h}:{u}>\r\n"
           "Expires: 3600\r\n"
           "Content-Length: 0\r\n\r\n").format(h=HOST, p=port, u=UAS_PORT, n=n)
    return sip_exchange(UAS_PORT, port, msg, "200", 5.0) is not None


# ---------------------------------------------------------------- servers

class Server:
    def __init__(self, name, binary):
        self.name, self.binary = name, binary
        self.port = PORTS.get(name, UAS_PORT)
        self.dir = os.path.join(WORK, name)
        os.makedirs(self.dir, exist_ok=True)
        self.proc = None
        self.uas = None

    def argv(self):
        if self.name == "sipd":
            cfg = os.path.join(self.dir, "sipd.ini")
            db = os.path.join(self.dir, "calls.db")
            if os.path.exists(db):
                os.unlink(db)
            with open(cfg, "w") as f:
                f.write("[general]\nlisten = udp:%s:%d\nworkers = %d\nlog_level = warning\n"
                        "[auth]\nregister_auth = no\n"
                        "[proxy]\nauth_calls = no\nrecord_route = yes\n"
                        "[database]\npath = %s\nsync = normal\n"
                        "[user bob]\npassword = x\n" % (HOST, self.port, CFG["workers"], db))
            return [self.binary, "-c", cfg]
        return [self.binary, "-f", KAM_CFGS[self.name], "-m", "1024", "-M", "8", "-x", "fm",
                "-DD", "-E", "-n", str(CFG["workers"]),
                "-Y", self.dir, "-P", os.path.join(self.dir, "kamailio.pid")]

    def start(self, uas_pause_ms=0, uas_wait_ms=0):
        """Server (if any), bob's registration, then the UAS; None or why.
        uas_pause_ms: the UAS's hold between 180 and 200 (-d); uas_wait_ms:
        how long the UAS must wait for the BYE (its -recv_timeout covers it)."""
        if self.name != "direct":
            if port_busy(self.port):
                return "UDP port %d busy" % self.port
            err = open(os.path.join(self.dir, "stderr.log"), "ab")
            self.proc = spawn(self.name, self.argv(), err, err, cwd=self.dir)
            err.close()
            if not probe(self.port, 10.0):
                self.stop()
                return "did not answer OPTIONS: " + tail(os.path.join(self.dir, "stderr.log"))
            if self.name in ("sipd", "kamailio-full") and not register_bob(self.port):
                self.stop()
                return "REGISTER of bob not answered with 200"
        if port_busy(UAS_PORT):
            self.stop()
            return "UAS port %d busy" % UAS_PORT
        uerr = open(os.path.join(self.dir, "uas.err"), "ab")
        self.uas = spawn("sipp-uas", [
            SIPP_BIN, "-sf", UAS_XML, "-t", "u1", "-i", HOST, "-p", str(UAS_PORT),
            "-nr", "-recv_timeout",
            str(max(CFG["recv_timeout_ms"], uas_pause_ms + 30000, uas_wait_ms + 30000)),
            "-d", str(uas_pause_ms), "-default_behaviors", BEHAVIORS,
            "-buff_size", str(4 << 20), "-max_recv_loops", "100000",
            "-max_sched_loops", "100000", "-nostdin", "-fd", "1",
            "-trace_stat", "-stf", os.path.join(self.dir, "uas-stat.csv")],
            subprocess.DEVNULL, uerr)
        uerr.close()
        time.sleep(0.5)
        if self.uas.poll() is not None:
            self.stop()
            return "SIPp UAS exited: " + tail(os.path.join(self.dir, "uas.err"))
        return None

    def target(self):
        return self.port

    def cpu_ticks(self):
        return session_cpu_ticks(self.proc.pid) if self.proc else 0

    def stop(self):
        stop(self.uas)
        self.uas = None
        stop(self.proc)


# ---------------------------------------------------------------- SIPp UAC

def uac_run(port, rate, calls, tag, recv_timeout_ms=None, hold_ms=0, wait_extra=0):
    rt = recv_timeout_ms or CFG["recv_timeout_ms"]
    stf = os.path.join(WORK, "uac-%s.csv" % tag)
    errf = os.path.join(WORK, "uac-%s.err" % tag)
    if os.path.exists(stf):
        os.unlink(stf)
    expected = calls / float(rate)
    argv = [SIPP_BIN, "-sf", UAC_XML, "-s", "bob", "-m", str(calls), "-r", str(rate),
            "-rp", "1000", "-l", str(max(2 * rate, 100) + int(rate * max(hold_ms, rt - CFG["recv_timeout_ms"]) / 1000.0)),
            "-t", "u1", "-i", HOST, "-p", str(UAC_PORT), "-nr",
            "-recv_timeout", str(rt), "-d", str(hold_ms),
            "-default_behaviors", BEHAVIORS, "-buff_size", str(4 << 20),
            "-max_recv_loops", "100000", "-max_sched_loops", "100000",
            "-timeout", "%ds" % int(expected + rt / 1000.0 + hold_ms / 1000.0 + 60),
            "-nostdin", "-trace_stat", "-stf", stf, "-fd", "1",
            "%s:%d" % (HOST, port)]
    with open(errf, "wb") as err:
        p = spawn("sipp-uac", argv, subprocess.DEVNULL, err)
    return p, stf, errf, expected + rt / 1000.0 + hold_ms / 1000.0 + 90


def uac_wait(p, stf, errf, limit, rate, calls, rt=None):
    rt = rt or CFG["recv_timeout_ms"]
    deadline = time.time() + limit
    while True:
        wpid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if wpid == p.pid:
            break
        if time.time() > deadline:
            kill_session(p.pid, signal.SIGKILL)
            wpid, status, ru = os.wait4(p.pid, 0)
            break
        time.sleep(0.02)
    rc = os.waitstatus_to_exitcode(status)
    LIVE.pop(p.pid, None)
    res = {"rate": rate, "calls": calls, "rc": rc, "ok": False,
           "sipp_cpu_s": ru.ru_utime + ru.ru_stime}
    try:
        with open(stf, newline="") as f:
            rows = list(csv.reader(f, delimiter=";"))
        d = dict(zip(rows[0], rows[-1]))
    except (OSError, IndexError, csv.Error):
        res["why"] = "no SIPp statistics (rc=%s): %s" % (rc, tail(errf, 3).strip())
        return res

    def num(k):
        try:
            return int(float(d.get(k, "0") or 0))
        except ValueError:
            return 0

    def when(k):
        return float(d[k].split("\t")[-1])

    elapsed = max(when("CurrentTime") - when("StartTime"), 1e-6)
    res.update({"created": num("TotalCallCreated"), "ok_calls": num("SuccessfulCall(C)"),
                "failed": num("FailedCall(C)"), "timeouts": num("FailedTimeoutOnRecv(C)"),
                "unexpected": num("FailedUnexpectedMessage(C)"),
                "dead": num("DeadCallMsgs(C)") + num("OutOfCallMsgs(C)"),
                "elapsed": elapsed})
    # SIPp's creation rate over the sending period (elapsed includes the tail)
    res["achieved"] = res["created"] / max(elapsed - 0.0, 1e-6)
    why = []
    if res["failed"]:
        why.append("%d failed calls (%d timeouts, %d unexpected)"
                   % (res["failed"], res["timeouts"], res["unexpected"]))
    if res["ok_calls"] != calls:
        why.append("%d/%d successful" % (res["ok_calls"], calls))
    if res["created"] < calls:
        why.append("SIPp created only %d of %d calls" % (res["created"], calls))
    if rc != 0 and not why:
        why.append("SIPp exit status %d" % rc)
    res["ok"] = not why
    res["why"] = "; ".join(why)
    return res


def uac(port, rate, calls, tag, **kw):
    p, stf, errf, limit = uac_run(port, rate, calls, tag, **kw)
    return uac_wait(p, stf, errf, limit, rate, calls)


# ---------------------------------------------------------------- rounds

def server_round(name, binary, rnd):
    srv = Server(name, binary)
    why = srv.start()
    if why:
        return {"error": why}
    res = {"error": None}
    try:
        port = srv.target()
        w = uac(port, 200, 400, "%s-r%d-warmup" % (name, rnd))
        res["warmup_ok"] = w["ok"]
        rate = CFG["cpu_rate"]
        calls = int(rate * CFG["cpu_seconds"])
        t0 = srv.cpu_ticks()
        sampler = perfsplit.Sampler(session_pids(srv.proc.pid) if srv.proc else [], WORK)
        c = uac(port, rate, calls, "%s-r%d-cpu" % (name, rnd))
        c["ticks"] = srv.cpu_ticks() - t0
        c["kernel_share"] = sampler.stop()
        n = c.get("ok_calls", 0)
        c["us_per_call"] = c["ticks"] * 1e6 / CLK_TCK / n if n and srv.proc else None
        c["sipp_us_per_call"] = c["sipp_cpu_s"] * 1e6 / n if n else None
        res["cpu"] = c
        log("  %-8s round %d: CPU run %d/s x %d: %s; %s us/call (server), %s us/call (UAC)"
            % (name, rnd, rate, calls, "ok" if c["ok"] else "FAIL " + c["why"],
               fmt(c["us_per_call"], "%.1f"), fmt(c["sipp_us_per_call"], "%.1f")))
        best, fail, retried = 0, None, []
        for rate in CFG["ladder"]:
            calls = int(rate * CFG["step_seconds"])
            s = uac(port, rate, calls, "%s-r%d-%d" % (name, rnd, rate))
            if not s["ok"] and (srv.proc is None or srv.proc.poll() is None):
                log("  %-8s round %d: %d/s failed (%s), retrying" % (name, rnd, rate, s["why"]))
                time.sleep(max(1.0, CFG["recv_timeout_ms"] / 1000.0))
                s = uac(port, rate, calls, "%s-r%d-%d-retry" % (name, rnd, rate))
                if s["ok"]:
                    retried.append(rate)
            if not s["ok"]:
                fail = s
                break
            best = rate
            time.sleep(0.5)
        res["max_rate"] = best
        res["fail"] = ("%d/s: %s" % (fail["rate"], fail["why"]) if fail
                       else "none up to %d/s" % best)
        if retried:
            res["fail"] += " (passed on retry: %s)" % ", ".join("%d/s" % r for r in retried)
        log("  %-8s round %d: max %d calls/s with 0 failures; first failure: %s"
            % (name, rnd, best, res["fail"]))
        if srv.proc and srv.proc.poll() is not None:
            res["error"] = "server exited (status %s)" % srv.proc.returncode
    finally:
        srv.stop()
    return res


def memory_run(binary, mode):
    """sipd's RSS with mem_calls calls in progress.  established: the UAC
    holds each answered call (after ACK) long enough that all are up at
    once; ringing: the UAS answers 180 and waits before the 200, so every
    INVITE transaction is pending."""
    n, rate = CFG["mem_calls"], CFG["mem_rate"]
    fill = n / float(rate)
    hold = int((fill + 15) * 1000)
    srv = Server("sipd", binary)
    why = (srv.start(uas_pause_ms=hold) if mode == "ringing"
           else srv.start(uas_wait_ms=hold))
    if why:
        return {"error": why}
    res = {"error": None, "mode": mode, "hold_ms": hold}
    try:
        pid = srv.proc.pid
        time.sleep(0.5)
        res["before"] = status_kb(pid)
        kw = ({"hold_ms": hold} if mode == "established"
              else {"recv_timeout_ms": hold + 20000})
        p, stf, errf, limit = uac_run(srv.port, rate, n, "mem-" + mode, **kw)
        time.sleep(fill + 3)   # all n created, none ended yet (hold > fill + 3)
        res["during"] = status_kb(pid)
        res["cpu_ticks_fill"] = srv.cpu_ticks()
        r = uac_wait(p, stf, errf, limit, rate, n)
        res["sipp"] = r
        time.sleep(1)
        res["after"] = status_kb(pid)
        log("  sipd memory (%s): VmRSS %s -> %s kB with %d calls up; after: %s kB; SIPp: %s"
            % (mode, res["before"].get("VmRSS"), res["during"].get("VmRSS"), n,
               res["after"].get("VmRSS"), "ok" if r["ok"] else r["why"]))
    finally:
        srv.stop()
    return res


# ---------------------------------------------------------------- report

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, f="%.2f"):
    return "n/a" if x is None else f % x


def host_info():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break

    def first(argv):
        try:
            r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
            return next((l.strip() for l in r.stdout.decode(errors="replace").splitlines()
                         if l.strip()), "?")
        except (OSError, subprocess.TimeoutExpired):
            return "?"
    commit = subprocess.run(["git", "-C", REPO_DIR, "rev-parse", "--short", "HEAD"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
                            ).stdout.decode().strip() or "?"
    return {"date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), "cpus": os.cpu_count(),
            "model": model, "kernel": platform.release(), "sipp": first([SIPP_BIN, "-v"]),
            "kamailio": first([KAMAILIO_BIN, "-v"]), "commit": commit,
            "load": " ".join(open("/proc/loadavg").read().split()[:3])}


def report(order, rounds, skipped, mem, info, sipd_bin, sipd_mtime):
    L = ["# Proxied calls over UDP: sipd vs Kamailio", "",
         "Generated by `python3 bench/calls.py %s` on %s; commit %s; sipd binary built %s."
         % (sipd_bin, info["date"], info["commit"], sipd_mtime), "",
         "Host: %s CPUs, %s, Linux %s; load average at start %s. %s; %s."
         % (info["cpus"], info["model"], info["kernel"], info["load"], info["sipp"],
            info["kamailio"]), "",
         "Call: SIPp UAC -> server -> SIPp UAS, INVITE / 100 / 180 / 200 / ACK / BYE / 200, "
         "Record-Route on (ACK and BYE cross the proxy), SIPp `-nr` (no retransmissions) "
         "`-recv_timeout %d` `-default_behaviors %s`. Server workers: %d (sipd `workers`, "
         "Kamailio `-n`). %d interleaved rounds (%s); medians."
         % (CFG["recv_timeout_ms"], BEHAVIORS, CFG["workers"], CFG["rounds"],
            " -> ".join(order)), ""]
    for n, why in skipped.items():
        L.append("Skipped %s: %s" % (n, why))
        L.append("")

    def vals(name, f):
        out = []
        for r in rounds:
            x = r.get(name)
            if x and "cpu" in x:
                out.append(f(x))
        return out

    L += ["## Highest call rate with zero failed calls", "",
          "Ladder %s calls/s, %g s per step; a failed step is run once more before it counts."
          % (", ".join(str(x) for x in CFG["ladder"]), CFG["step_seconds"]), "",
          "| server | per round (calls/s) | median | first failure (per round) |",
          "|---|---|---|---|"]
    for name in order:
        m = vals(name, lambda x: x.get("max_rate"))
        fails = vals(name, lambda x: x.get("fail", "?"))
        L.append("| %s | %s | %s | %s |" % (name, ", ".join(str(x) for x in m),
                                             fmt(med(m), "%g"), "<br>".join(fails)))
    L += ["", "## CPU per call at %d calls/s (%g s, %d calls)" % (
        CFG["cpu_rate"], CFG["cpu_seconds"], int(CFG["cpu_rate"] * CFG["cpu_seconds"])), "",
        "Server CPU = utime+stime of every process in the server's session "
        "(/proc/PID/stat) over the run, divided by successful calls. "
        "UAC CPU: SIPp's own rusage (UAC only).", "",
        "| server | server µs/call per round | median | UAC µs/call (median) | runs clean |",
        "|---|---|---|---|---|"]
    meds = {}
    for name in order:
        u = vals(name, lambda x: x["cpu"].get("us_per_call"))
        s = vals(name, lambda x: x["cpu"].get("sipp_us_per_call"))
        ok = vals(name, lambda x: x["cpu"]["ok"])
        meds[name] = med(u)
        L.append("| %s | %s | %s | %s | %d/%d |" % (
            name, ", ".join(fmt(x, "%.1f") for x in u), fmt(med(u), "%.1f"),
            fmt(med(s), "%.1f"), sum(ok), len(ok)))
    for base, what in (("kamailio", "Kamailio relaying to a fixed address"),
                       ("kamailio-full", "Kamailio doing what sipd does on a call")):
        if not (meds.get("sipd") and meds.get(base)):
            continue
        # per round too (the same round: the same machine state), as the OPTIONS report gives it
        per = []
        for r in rounds:
            a = r.get("sipd", {}).get("cpu", {}).get("us_per_call")
            b = r.get(base, {}).get("cpu", {}).get("us_per_call")
            if a and b:
                per.append(a / b)
        L += ["", "Ratio sipd / %s (%s), CPU per call: **%.2f** (of the medians); per round %s, "
              "median %s" % (base, what, meds["sipd"] / meds[base], ", ".join("%.2f" % r for r in per),
                             fmt(med(per)) if per else "n/a")]
    split = perfsplit.split_lines(
        {name: [(x["cpu"].get("us_per_call"), x["cpu"].get("kernel_share"))
                for x in vals(name, lambda x: x)] for name in order if name != "direct"},
        "kamailio", "call")
    if split:
        L += ["", "### Where the CPU goes: user and kernel", ""] + split
    if mem:
        L += ["", "## sipd resident memory with %d calls in progress" % CFG["mem_calls"], "",
              "%d calls started at %d/s; RSS read %d s after the first, when all have been "
              "created and none has ended. *established*: answered, ACKed, held by the UAC "
              "before its BYE; *ringing*: the UAS sent 180 and holds the 200 (every INVITE "
              "transaction pending)." % (CFG["mem_calls"], CFG["mem_rate"],
                                         CFG["mem_calls"] / CFG["mem_rate"] + 3), "",
              "| calls held | VmRSS before | VmRSS with the calls | per call | VmHWM | "
              "VmRSS after all ended | calls ok |", "|---|---|---|---|---|---|---|"]
        for m in mem:
            if m.get("error"):
                L.append("| %s | error: %s | | | | | |" % (m.get("mode"), m["error"]))
                continue
            b, d, a = m["before"], m["during"], m["after"]
            per = (d.get("VmRSS", 0) - b.get("VmRSS", 0)) * 1024.0 / CFG["mem_calls"]
            L.append("| %s | %s kB | %s kB | %.0f B | %s kB | %s kB | %s |" % (
                m["mode"], b.get("VmRSS"), d.get("VmRSS"), per, a.get("VmHWM"),
                a.get("VmRSS"), "%d/%d" % (m["sipp"].get("ok_calls", 0), CFG["mem_calls"])
                + ("" if m["sipp"]["ok"] else " (" + m["sipp"]["why"] + ")")))
    return "\n".join(L) + "\n"


def main():
    global WORK
    if len(sys.argv) != 2:
        print("usage: python3 bench/calls.py SIPD_BINARY", file=sys.stderr)
        return 2
    sipd_src = sys.argv[1]
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    WORK = tempfile.mkdtemp(prefix="sipd-calls.")
    try:
        info = host_info()
        bins, skipped = {}, {}
        for name in CFG["servers"]:
            if name == "sipd":
                if not os.access(sipd_src, os.X_OK):
                    skipped[name] = "binary %s not found" % sipd_src
                    continue
                bins[name] = os.path.join(WORK, "sipd.bin")
                shutil.copy2(sipd_src, bins[name])
            elif name in KAM_CFGS:
                r = subprocess.run([KAMAILIO_BIN, "-c", "-f", KAM_CFGS[name]],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                if r.returncode:
                    skipped[name] = "kamailio -c rejects the config"
                else:
                    bins[name] = KAMAILIO_BIN
            elif name == "direct":
                bins[name] = None
        order = [n for n in CFG["servers"] if n in bins]
        mtime = (datetime.datetime.fromtimestamp(os.stat(sipd_src).st_mtime)
                 .strftime("%Y-%m-%d %H:%M:%S") if "sipd" in bins else "-")
        log("calls: %d rounds of %s; CPU run %d/s x %gs; ladder %s" % (
            CFG["rounds"], " -> ".join(order), CFG["cpu_rate"], CFG["cpu_seconds"],
            " ".join(map(str, CFG["ladder"]))))
        rounds = []
        for rnd in range(1, CFG["rounds"] + 1):
            log("calls: round %d/%d" % (rnd, CFG["rounds"]))
            this = {}
            for name in order:
                if name in skipped:
                    continue
                r = server_round(name, bins[name], rnd)
                if r["error"] and "cpu" not in r:
                    log("calls: %s round %d: %s" % (name, rnd, r["error"]))
                    if rnd == 1:
                        skipped[name] = r["error"]
                this[name] = r
                time.sleep(1)
            rounds.append(this)
        mem = []
        if "sipd" in bins and CFG["mem_calls"] > 0:
            for mode in CFG["mem_modes"]:
                mem.append(memory_run(bins["sipd"], mode))
                time.sleep(1)
        md = report(order, rounds, skipped, mem, info, sipd_src, mtime)
        print(md)
        os.makedirs(CFG["results"], exist_ok=True)
        with open(os.path.join(CFG["results"], "calls.md"), "w") as f:
            f.write(md)
        return 0
    finally:
        cleanup_all()
        if os.environ.get("CALLS_KEEP"):
            log("calls: work directory kept: %s" % WORK)
        else:
            shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
