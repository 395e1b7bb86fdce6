"""Kernel share of a server's CPU, sampled with perf during a benchmark's CPU
run (bench.py and calls.py).

/proc gives each process's user and system ticks, but the kernel splits a
process's run time between the two by sampled ticks, which over a 10 s run
can be far off (all user or all system).  perf samples the CPU clock at a
fixed rate instead, so the share of samples taken in the kernel is an honest
split: "user" is the server's own code and its libraries, "kernel" the system
calls, the UDP stack and the scheduler working for it.  That split tells what
a faster server could still win: only the user part is the server's to cut.

The sampling is system-wide (`perf record -a`) and the server's samples are
picked out by pid afterwards. Sampling the server's threads themselves
(`perf record -p`) would cost the server at each of its context switches (the
per-task sampling timer is stopped and started again), so a server that wakes
once per datagram would pay more for being watched than one that batches,
and its CPU per request would be inflated: by a fifth to a third for Kamailio's
OPTIONS on the 2-core VM. System-wide sampling costs every CPU the same
999 interrupts a second, whoever runs.

Without perf (Debian package linux-perf), without the right to use it, or with
BENCH_PERF=0, the helpers return None and the reports leave the columns out.
"""

import os
import re
import shutil
import signal
import subprocess
import tempfile

PERF = shutil.which("perf") if os.environ.get("BENCH_PERF", "1") != "0" else None
FREQ = 999  # Hz: an odd rate, so samples do not beat with 1 ms timers


class Sampler:
    """perf record on a set of pids; stop() gives the kernel share (0..1)."""

    def __init__(self, pids, workdir):
        self.proc = None
        self.data = None
        # perf attributes samples to threads: every thread of every process, at the start (the
        # servers create theirs at start-up)
        self.tids = set()
        for p in pids:
            try:
                self.tids.update(int(t) for t in os.listdir("/proc/%d/task" % p))
            except OSError:
                pass
        if not PERF or not pids:
            return
        fd, self.data = tempfile.mkstemp(prefix="perf-", suffix=".data", dir=workdir)
        os.close(fd)
        self.proc = subprocess.Popen(
            [PERF, "record", "-q", "-a", "-e", "cpu-clock", "-F", str(FREQ), "-o", self.data],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    def stop(self):
        if not self.proc:
            return None
        try:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
            return None
        share = kernel_share(self.data, self.tids)
        try:
            os.unlink(self.data)
        except OSError:
            pass
        return share


def kernel_share(path, tids):
    """Fraction of the samples of threads tids in `path` taken in the kernel, or None."""
    try:
        out = subprocess.run([PERF, "report", "-i", path, "--stdio", "--no-children",
                              "--sort", "pid,dso"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, timeout=120).stdout.decode(errors="replace")
    except (OSError, subprocess.TimeoutExpired):
        return None
    total = kern = 0.0
    for line in out.splitlines():
        # "    3.98%    14471:sipd-worker  [kernel.kallsyms]"
        m = re.match(r"\s*([0-9.]+)%\s+(\d+):\S*\s+(\S.*)$", line)
        if not m or int(m.group(2)) not in tids:
            continue
        pct = float(m.group(1))
        total += pct
        if m.group(3).startswith("[kernel"):
            kern += pct
    return kern / total if total > 0 else None


def _median(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    m = len(xs) // 2
    return xs[m] if len(xs) % 2 else (xs[m - 1] + xs[m]) / 2.0


def split_lines(per_round, base, unit, labels=None):
    """Markdown lines: user and kernel CPU per `unit` of each server, from
    per_round = {name: [(cpu_us_per_unit, kernel_share), ...]} (one pair per
    round), with ratios against `base` (Kamailio).  [] when perf gave nothing."""
    labels = labels or {}
    rows, meds = [], {}
    for name, pairs in per_round.items():
        users = [us * (1 - k) for us, k in pairs if us is not None and k is not None]
        kerns = [us * k for us, k in pairs if us is not None and k is not None]
        shares = [k for _, k in pairs if k is not None]
        if not shares:
            continue
        meds[name] = (_median(users), _median(kerns), _median(shares))
    if not meds:
        return []
    L = ["| server | kernel share of its CPU (perf samples, median) | user µs/%s | kernel µs/%s "
         "| user ratio vs Kamailio | kernel ratio vs Kamailio |" % (unit, unit),
         "|---|---:|---:|---:|---:|---:|"]
    b = meds.get(base)
    for name, (u, k, s) in meds.items():
        ur = "%.2f" % (u / b[0]) if b and b[0] else "n/a"
        kr = "%.2f" % (k / b[1]) if b and b[1] else "n/a"
        L.append("| %s | %.0f%% | %.2f | %.2f | %s | %s |" % (labels.get(name, name), s * 100, u, k, ur, kr))
    L.append("")
    L.append("User and kernel µs are each server's CPU µs/%s of a round split by the share of "
             "perf's CPU-clock samples (%d Hz on every CPU, system-wide; the samples of the server's "
             "threads picked out) taken in the kernel during that round's CPU run; medians over rounds. The kernel part is "
             "the system calls, the loopback UDP stack (a sender pays for its receiver's "
             "delivery) and the scheduler's wake-ups. It has a floor per datagram that no "
             "server goes below (a trivial responder shows it, where measured); above that "
             "floor, a server lowers it only with fewer system calls and wake-ups per "
             "message (batching), while the user part is all its own." % (unit, FREQ))
    return L
