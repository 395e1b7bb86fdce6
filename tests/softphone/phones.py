#!/usr/bin/env python3
"""Real softphones against a live sipd: baresip instances (Debian package baresip-core), each with its
own configuration directory, driven and observed through baresip's ctrl_tcp module (netstring-framed
JSON: commands in, responses and events out).

  phones.py run --port SIPD_PORT --sipctl SIPCTL --config SIPD_INI --log SIPD_STDERR --work DIR
               --ports P1,P2,...   (free local ports: two per phone, SIP and control)

Runs every case in order and prints one line per case, "PASS name" or "FAIL name: why", followed by
indented detail on failure; run_baresip.sh counts them. Exits 0 when every case passed.

Each phone registers with an MD5 digest (baresip, like the libre stack it is built on, answers one
challenge per realm and knows MD5 only, hence sipd's [auth] algorithms = MD5 here), records the SIP
trace of its own messages (-s) in DIR/NAME.log, and uses the opus codec with a sine source so that a
call's media really flows between the two phones (CALL_RTPESTAB), proving that the SDP crossed sipd
intact.
"""
import argparse
import json
import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time

PASSWORD = "secret"
MODULES = "/usr/lib/baresip/modules"


class PhoneError(Exception):
    pass


class Phone:
    """One baresip process with one account, and its control connection."""

    def __init__(self, work, name, sip_port, ctrl_port, sipd_port, user=None, password=PASSWORD,
                 transport="udp", answer="auto", regint=600):
        self.name = name
        self.sip_port = sip_port
        self.sipd_port = sipd_port
        self.user = user or name
        self.dir = os.path.join(work, name)
        self.log = os.path.join(work, name + ".log")
        os.makedirs(self.dir, exist_ok=True)
        with open(os.path.join(self.dir, "config"), "w") as f:
            f.write("poll_method epoll\n"
                    "sip_listen 127.0.0.1:%d\n"
                    "module_path %s\n"
                    "module opus.so\nmodule ausine.so\nmodule aufile.so\n"
                    "module_app account.so\nmodule_app menu.so\nmodule_app ctrl_tcp.so\n"
                    "ctrl_tcp_listen 127.0.0.1:%d\n"
                    "audio_source ausine,440\naudio_player aufile,/dev/null\naudio_alert aufile,/dev/null\n"
                    "rtp_ports 20000-29999\n" % (sip_port, MODULES, ctrl_port))
        tp = ";transport=tcp" if transport == "tcp" else ""
        with open(os.path.join(self.dir, "accounts"), "w") as f:
            f.write("<sip:%s@127.0.0.1:%d%s>;auth_pass=%s;regint=%d;answermode=%s\n"
                    % (self.user, sipd_port, tp, password, regint, answer))
        self.events = queue.Queue()
        self.responses = queue.Queue()
        self.seen = []
        self.proc = subprocess.Popen(["baresip", "-s", "-f", self.dir], stdin=subprocess.DEVNULL,
                                     stdout=open(self.log, "wb"), stderr=subprocess.STDOUT,
                                     cwd=self.dir)
        self.sock = self._connect(ctrl_port)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.token = 0

    def _connect(self, port):
        deadline = time.time() + 10
        while True:
            try:
                return socket.create_connection(("127.0.0.1", port), timeout=1)
            except OSError:
                if self.proc.poll() is not None or time.time() > deadline:
                    raise PhoneError("%s: baresip did not open its control port %d (see %s)"
                                     % (self.name, port, self.log))
                time.sleep(0.05)

    def _read(self):
        buf = b""
        self.sock.settimeout(None)
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            buf += data
            while True:
                colon = buf.find(b":")
                if colon < 0:
                    break
                n = int(buf[:colon])
                if len(buf) < colon + 1 + n + 1:
                    break
                msg = json.loads(buf[colon + 1:colon + 1 + n])
                buf = buf[colon + 1 + n + 1:]
                (self.responses if msg.get("response") else self.events).put(msg)

    def cmd(self, command, params="", timeout=5):
        self.token += 1
        body = json.dumps({"command": command, "params": params, "token": str(self.token)}).encode()
        self.sock.sendall(str(len(body)).encode() + b":" + body + b",")
        deadline = time.time() + timeout
        while True:
            try:
                r = self.responses.get(timeout=max(0.01, deadline - time.time()))
            except queue.Empty:
                raise PhoneError("%s: no answer to command %s" % (self.name, command))
            if r.get("token") == str(self.token):
                if not r.get("ok"):
                    raise PhoneError("%s: command %s %s failed: %s" % (self.name, command, params,
                                                                        r.get("data", "").strip()))
                return r.get("data", "")

    def wait(self, etype, timeout=8, param=None):
        """The next event of type etype (whose param matches the regex param, if given); events of other
        types on the way are kept in self.seen."""
        deadline = time.time() + timeout
        while True:
            left = deadline - time.time()
            if left <= 0:
                raise PhoneError("%s: no %s event within %g s; saw %s" % (
                    self.name, etype, timeout, ", ".join(self.describe(e) for e in self.seen[-8:]) or "nothing"))
            try:
                ev = self.events.get(timeout=left)
            except queue.Empty:
                continue
            self.seen.append(ev)
            if ev.get("type") == etype and (param is None or re.search(param, ev.get("param", ""))):
                return ev

    @staticmethod
    def describe(ev):
        return "%s(%s)" % (ev.get("type"), ev.get("param", ""))

    def drain(self):
        while True:
            try:
                self.seen.append(self.events.get_nowait())
            except queue.Empty:
                return

    def trace(self):
        with open(self.log, "rb") as f:
            return f.read().decode(errors="replace")

    TRACE_MSG = re.compile(r"\x1b\[36;1m#\r?\n(UDP|TCP) (\S+) -> (\S+)\r?\n(.*?)\x1b\[;m", re.S)

    def received(self, first_line, call_id=None):
        """The SIP messages of this phone's trace that it received and whose first line starts with
        first_line (and whose Call-ID is call_id), as (transport, source, text)."""
        out = []
        for m in self.TRACE_MSG.finditer(self.trace()):
            text = m.group(4)
            if not m.group(3).endswith(":%d" % self.sip_port) or not text.startswith(first_line):
                continue
            if call_id and not re.search(r"(?mi)^(Call-ID|i): %s\r?$" % re.escape(call_id), text):
                continue
            out.append((m.group(1), m.group(2), text))
        return out

    def quit(self, timeout=5):
        if self.proc.poll() is None:
            try:
                self.cmd("quit", timeout=2)
            except (PhoneError, OSError):
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.sock.close()


# ---- what sipd knows ----

def registrations(a):
    out = subprocess.run([a.sipctl, "-c", a.config, "show", "registrations"], capture_output=True,
                         text=True, timeout=10)
    if out.returncode != 0:
        raise PhoneError("sipctl show registrations failed: %s" % out.stderr.strip())
    rows = []
    for line in out.stdout.splitlines()[1:]:
        f = line.split()
        if f and f[0].startswith("sip:"):
            rows.append({"aor": f[0], "contact": f[1], "received": f[2], "transport": f[3],
                         "line": line})
    return rows


def wait_registrations(a, pred, what, timeout=6):
    deadline = time.time() + timeout
    while True:
        rows = registrations(a)
        if pred(rows):
            return rows
        if time.time() > deadline:
            raise PhoneError("%s; sipctl shows: %s" % (what, [r["line"] for r in rows] or "nothing"))
        time.sleep(0.1)


def sipd_log(a):
    with open(a.log, errors="replace") as f:
        return f.read()


def call_record(a, call_id, timeout=5):
    """sipd's log line for the call with this Call-ID (the proxy's record of a call)."""
    deadline = time.time() + timeout
    pat = re.compile(r"call: id=%s .*" % re.escape(call_id))
    while True:
        with open(a.log, errors="replace") as f:
            m = pat.search(f.read())
        if m:
            return m.group(0)
        if time.time() > deadline:
            raise PhoneError("no call record for Call-ID %s in sipd's log" % call_id)
        time.sleep(0.1)


def check(cond, why):
    if not cond:
        raise PhoneError(why)


# ---- cases ----

class Suite:
    def __init__(self, a):
        self.a = a
        self.ports = [int(p) for p in a.ports.split(",")]
        self.phones = {}
        self.failed = 0
        self.dual = argparse.Namespace(sipctl=a.sipctl, config=a.dual_config, log=a.dual_log, port=a.dual_port)

    def phone(self, name, sipd=None, **kw):
        if len(self.ports) < 2:
            raise PhoneError("out of free ports")
        sip, ctrl = self.ports.pop(0), self.ports.pop(0)
        p = Phone(self.a.work, name, sip, ctrl, (sipd or self.a).port, **kw)
        self.phones[name] = p
        return p

    def aor(self, user):
        return "sip:%s@127.0.0.1" % user

    def uri(self, user):
        return "sip:%s@127.0.0.1:%d" % (user, self.a.port)

    def case(self, name, fn):
        try:
            fn()
        except PhoneError as e:
            self.failed += 1
            print("FAIL %s: %s" % (name, e), flush=True)
            return False
        print("PASS %s" % name, flush=True)
        return True

    @staticmethod
    def dial(caller, user):
        """caller dials sip:user at its sipd, its earlier events set aside."""
        caller.drain()
        caller.cmd("dial", "sip:%s@127.0.0.1:%d" % (user, caller.sipd_port))

    def call(self, caller, callee):
        """caller dials callee's AOR and both see the call established; returns its id (the SIP Call-ID)."""
        self.dial(caller, callee.user)
        ev = caller.wait("CALL_ESTABLISHED")
        callee.wait("CALL_ESTABLISHED")
        return ev["id"]

    @staticmethod
    def hang_up(phone, other):
        """phone ends its call; returns the event that tells the other phone."""
        phone.cmd("hangup")
        return other.wait("CALL_CLOSED")

    # registration

    def c_register_udp(self):
        alice, bob = self.phones["alice"], self.phones["bob"]
        rows = wait_registrations(self.a, lambda r: {self.aor("alice"), self.aor("bob")} <= {x["aor"] for x in r},
                                  "alice and bob are not both listed")
        for r in rows:
            if r["aor"] in (self.aor("alice"), self.aor("bob")):
                check(r["transport"] == "udp", "transport %s, expected udp: %s" % (r["transport"], r["line"]))
                check("baresip" in r["line"], "User-Agent baresip not shown: %s" % r["line"])
        for p in (alice, bob):
            tr = p.trace()
            check("WWW-Authenticate: Digest" in tr and "Authorization: Digest" in tr and "algorithm=MD5" in tr,
                  "%s's trace shows no MD5 challenge answered with Authorization" % p.name)
            check(re.search(r"registrar: %s: new binding sip:%s-\S+ from udp:127\.0\.0\.1:%d for 600 s \(baresip "
                            % (re.escape(self.aor(p.user)), p.user, p.sip_port), sipd_log(self.a)),
                  "sipd's log has no line for %s's new binding" % p.name)

    def c_register_tcp(self):
        rows = wait_registrations(self.a, lambda r: any(x["aor"] == self.aor("carol") for x in r),
                                  "carol is not listed")
        row = [x for x in rows if x["aor"] == self.aor("carol")][0]
        check(row["transport"] == "tcp", "carol registered over TCP, listed as %s" % row["transport"])

    def c_wrong_password(self):
        # erin, not alice: the failures count against (127.0.0.1, erin) and would lock alice's own
        # requests out of this address after max_failures
        before = registrations(self.a)
        mallory = self.phone("mallory", user="erin", password="guess", regint=3600)
        try:
            deadline = time.time() + 8
            while mallory.trace().count("SIP/2.0 401 Unauthorized") < 2:
                check(time.time() < deadline, "mallory did not get two 401s (challenge, then wrong credentials)")
                time.sleep(0.05)
            with open(self.a.log, errors="replace") as f:
                log = f.read()
            check(re.search(r"erin.*wrong password|wrong password.*erin", log),
                  "sipd's log does not say that erin's password was wrong")
            check(not re.search(r"SIP/2.0 200 OK\r?\n(?:[^\r\n]+\r?\n)*CSeq: \d+ REGISTER", mallory.trace()),
                  "a REGISTER with a wrong password got 200 OK")
            after = registrations(self.a)
            check(not any(r["aor"] == self.aor("erin") for r in after), "erin is listed after a wrong password")
            check(len(after) == len(before), "bindings changed: %s -> %s" % (len(before), len(after)))
        finally:
            mallory.quit()
            del self.phones["mallory"]

    # calls

    def c_call_caller_hangs_up(self):
        alice, bob = self.phones["alice"], self.phones["bob"]
        cid = self.call(alice, bob)
        alice.wait("CALL_RTPESTAB")
        bob.wait("CALL_RTPESTAB")
        tr = alice.trace()
        check("407 Proxy Authentication Required" in tr and "Proxy-Authorization: Digest" in tr,
              "alice's INVITE was not challenged with 407 and answered (auth_calls = yes)")
        time.sleep(0.3)
        self.hang_up(alice, bob)
        rec = call_record(self.a, cid)
        check("status=200" in rec and "answer=" in rec and "duration=" in rec,
              "call record does not show an answered call: %s" % rec)
        check("from=sip:alice@" in rec and "to=sip:bob@" in rec, "call record parties: %s" % rec)

    def c_call_callee_hangs_up(self):
        alice, bob = self.phones["alice"], self.phones["bob"]
        cid = self.call(alice, bob)
        self.hang_up(bob, alice)
        check("status=200" in call_record(self.a, cid), "call record without status=200")
        check(re.search(r"BYE sip:alice-[^ ]*@127\.0\.0\.1:\d+ SIP/2\.0\s*\nVia: SIP/2\.0/UDP 127\.0\.0\.1:%d;"
                        % self.a.port, alice.trace()),
              "the callee's BYE did not reach alice through sipd (Record-Route)")

    def c_cancel(self):
        alice, dave = self.phones["alice"], self.phones["dave"]
        dave.drain()
        self.dial(alice, "dave")
        dave.wait("CALL_INCOMING")
        ev = alice.wait("CALL_RINGING")
        time.sleep(0.2)
        self.hang_up(alice, dave)
        check("487 Request Terminated" in dave.trace() and "CANCEL sip:dave-" in dave.trace(),
              "dave saw no CANCEL answered with 487")
        rec = call_record(self.a, ev["id"])
        check("status=487" in rec, "call record: %s" % rec)

    def c_busy(self):
        alice, dave = self.phones["alice"], self.phones["dave"]
        dave.drain()
        self.dial(alice, "dave")
        dave.wait("CALL_INCOMING")
        ev = self.hang_up(dave, alice)
        check("486" in ev.get("param", ""), "alice's call closed with %r, expected 486 Busy Here" % ev.get("param"))

    def c_tcp_to_udp(self):
        carol, bob = self.phones["carol"], self.phones["bob"]
        cid = self.call(carol, bob)
        carol.wait("CALL_RTPESTAB")
        self.hang_up(carol, bob)
        check("status=200" in call_record(self.a, cid), "no answered call record")
        # RFC 3261 18.1.1: a request over 1300 bytes to a hop whose URI names no transport goes over TCP
        # (bob's Contact is at the address his REGISTER came from: no NAT, so TCP may reach him)
        m = re.search(r"(INVITE sip:bob-.*?)\r?\n\r?\n", bob.trace(), re.S)
        check(m, "bob got no INVITE")
        inv = m.group(1)
        via = re.search(r"\nVia: SIP/2\.0/(UDP|TCP) 127\.0\.0\.1:%d;" % self.a.port, inv)
        check(via, "the INVITE's top Via is not sipd's: %s" % inv[:300])
        body = re.search(r"Content-Length: (\d+)", inv)
        size = len(inv) + 4 + int(body.group(1)) if body else len(inv)
        want = "TCP" if size > 1300 else "UDP"
        check(via.group(1) == want, "the %d-byte INVITE went to bob over %s, expected %s" % (size, via.group(1), want))

    def c_udp_to_tcp(self):
        bob, carol = self.phones["bob"], self.phones["carol"]
        cid = self.call(bob, carol)
        self.hang_up(bob, carol)
        check("status=200" in call_record(self.a, cid), "no answered call record")
        check(re.search(r"INVITE sip:carol-[^\n]*\nVia: SIP/2\.0/TCP 127\.0\.0\.1:%d;" % self.a.port, carol.trace()),
              "carol did not get the INVITE over TCP from sipd")

    def refused(self, user, code, phrase):
        """alice calls user; the call ends with code, which her phone reports."""
        alice = self.phones["alice"]
        self.dial(alice, user)
        ev = alice.wait("CALL_CLOSED")
        check(str(code) in ev.get("param", ""), "closed with %r, expected %d %s" % (ev.get("param"), code, phrase))

    def c_offline(self):
        self.refused("erin", 480, "Temporarily Unavailable")

    def c_unknown(self):
        self.refused("nobody", 404, "Not Found")

    def c_hold_resume(self):
        alice, bob = self.phones["alice"], self.phones["bob"]
        cid = self.call(alice, bob)
        for command, direction in (("hold", "sendonly"), ("resume", "sendrecv")):
            bob.drain()
            alice.cmd(command)
            bob.wait("CALL_REMOTE_SDP", param="offer")
            invites = bob.received("INVITE ", cid)
            check(len(invites) >= 2 and "a=%s" % direction in invites[-1][2],
                  "after %s bob got no re-INVITE with a=%s" % (command, direction))
            check(re.search(r"\nVia: SIP/2\.0/\w+ 127\.0\.0\.1:%d;" % self.a.port, invites[-1][2]),
                  "the re-INVITE did not come through sipd (Record-Route)")
        check(len(alice.received("SIP/2.0 407", cid)) == 1,
              "alice got %d 407s in the call; only its first INVITE is challenged, not requests inside the dialog"
              % len(alice.received("SIP/2.0 407", cid)))
        self.hang_up(alice, bob)
        check("status=200" in call_record(self.a, cid), "no answered call record")

    def c_transfer(self):
        alice, bob, carol = self.phones["alice"], self.phones["bob"], self.phones["carol"]
        cid = self.call(alice, bob)
        bob.drain()
        carol.drain()
        alice.cmd("transfer", self.uri("carol"))
        ev = bob.wait("CALL_ESTABLISHED")
        check(ev.get("peeruri", "").startswith("sip:carol@"), "bob's new call is with %s" % ev.get("peeruri"))
        carol.wait("CALL_ESTABLISHED")
        alice.wait("CALL_CLOSED")
        refers = bob.received("REFER ", cid)
        check(refers and re.search(r"(?mi)^Refer-To: <?sip:carol@", refers[0][2]), "bob got no REFER to carol")
        check(alice.received("NOTIFY ", cid), "alice got no NOTIFY of the transfer's progress")
        self.hang_up(bob, carol)
        check("status=200" in call_record(self.a, cid), "the first call has no answered record")
        check("status=200" in call_record(self.a, ev["id"]), "the transferred call has no answered record")

    def c_options(self):
        alice, bob = self.phones["alice"], self.phones["bob"]
        before = len(bob.received("OPTIONS "))
        alice.cmd("options", self.uri("bob"))
        deadline = time.time() + 5
        while len(bob.received("OPTIONS ")) == before:
            check(time.time() < deadline, "bob got no OPTIONS")
            time.sleep(0.05)
        text = bob.received("OPTIONS ")[-1][2]
        check(re.search(r"\nVia: SIP/2\.0/UDP 127\.0\.0\.1:%d;" % self.a.port, text) and "Max-Forwards: 69" in text,
              "the OPTIONS did not come through sipd with Max-Forwards 69: %s" % text[:400])

    def c_refresh(self):
        ivan = self.phones["ivan"]
        deadline = time.time() + 40
        while True:
            regs = [m[2] for m in ivan.received("SIP/2.0 ") if re.search(r"(?m)^CSeq: \d+ REGISTER", m[2])]
            oks = [t for t in regs if t.startswith("SIP/2.0 200")]
            if len(oks) >= 2:
                break
            check(time.time() < deadline, "in 40 s ivan's phone did not register and refresh: %s"
                  % [t.split("\r\n", 1)[0] for t in regs])
            time.sleep(0.2)
        for t in oks:
            m = re.search(r"(?m)^Contact: <sip:ivan-[^>]*>;expires=(\d+)", t)
            check(m and 0 < int(m.group(1)) <= 20, "a 200 to ivan's REGISTER lists %s, expected his binding with "
                  "expires <= 20" % (m.group(0) if m else "no binding of his"))
            check(re.search(r"(?m)^Date: ", t), "a 200 to REGISTER without Date")
        check([r for r in registrations(self.a) if r["aor"] == self.aor("ivan")], "ivan is not listed")
        n = sipd_log(self.a).count("registrar: %s: new binding" % self.aor("ivan"))
        check(n == 1, "sipd logged %d new bindings for ivan; a refresh is not one" % n)

    def c_fallback(self):
        frank, grace = self.phones["frank"], self.phones["grace"]
        d = self.dual
        wait_registrations(d, lambda r: {self.aor("frank"), self.aor("grace")} <= {x["aor"] for x in r},
                           "frank and grace (libre, against algorithms = SHA-256, MD5) are not both registered",
                           timeout=100)
        for p in (frank, grace):
            challenges = [re.findall(r"(?m)^WWW-Authenticate: .*algorithm=([\w-]+)", m[2])
                          for m in p.received("SIP/2.0 401")]
            check(challenges and challenges[0] == ["SHA-256", "MD5"],
                  "%s's first 401: %s, expected SHA-256 then MD5" % (p.name, challenges[:1]))
            check(["MD5"] in challenges, "%s never got a 401 with MD5 alone: %s" % (p.name, challenges))
        with open(d.log, errors="replace") as f:
            n = f.read().count("answered none of 2 challenges and asked again")
        check(n == 2, "sipd logged %d clients that could not cope with two challenges, expected 2" % n)
        # the same client calling: its 407 carries MD5 alone too, and the call goes through
        cid = self.call(frank, grace)
        self.hang_up(frank, grace)
        c407 = [re.findall(r"(?m)^Proxy-Authenticate: .*algorithm=([\w-]+)", m[2])
                for m in frank.received("SIP/2.0 407", cid)]
        check(c407 == [["MD5"]], "frank's 407s: %s, expected one with MD5 alone" % c407)
        check("status=200" in call_record(d, cid), "no answered call record")

    def c_unregister(self):
        dave = self.phones.pop("dave")
        wait_registrations(self.a, lambda r: any(x["aor"] == self.aor("dave") for x in r), "dave is not listed")
        dave.quit()
        wait_registrations(self.a, lambda r: not any(x["aor"] == self.aor("dave") for x in r),
                           "dave's binding is still listed after baresip quit (REGISTER with expires=0)")
        check(re.search(r"registrar: %s: binding removed: sip:dave-" % re.escape(self.aor("dave")), sipd_log(self.a)),
              "sipd's log does not say that dave's binding was removed")

    def run(self):
        try:
            self.phone("alice")
            self.phone("bob")
            self.phone("carol", transport="tcp")
            self.phone("dave", answer="manual")
            self.phone("ivan", regint=20)
            # against sipd's default algorithms (SHA-256, MD5): libre fails on two challenges, then retries
            self.phone("frank", sipd=self.dual)
            self.phone("grace", sipd=self.dual)
        except PhoneError as e:
            print("FAIL baresip phones start: %s" % e, flush=True)
            return 1
        cases = [
            ("baresip alice and bob register over UDP with an MD5 digest; sipctl lists them, User-Agent baresip",
             self.c_register_udp),
            ("baresip carol registers over TCP; sipctl lists transport tcp", self.c_register_tcp),
            ("a wrong password for erin: 401 again, the reason in sipd's log, no binding",
             self.c_wrong_password),
            ("alice calls bob: 407 answered, call established, RTP flows, alice hangs up, record status=200",
             self.c_call_caller_hangs_up),
            ("alice calls bob, bob hangs up: his BYE reaches alice through sipd", self.c_call_callee_hangs_up),
            ("alice calls dave and gives up while it rings: CANCEL, 487, record status=487", self.c_cancel),
            ("dave rejects alice's call: 486 Busy Here reaches alice", self.c_busy),
            ("carol (TCP) calls bob (UDP): established; the INVITE, over 1300 bytes, reaches bob over TCP (18.1.1)",
             self.c_tcp_to_udp),
            ("bob (UDP) calls carol (TCP): established, INVITE to carol over TCP", self.c_udp_to_tcp),
            ("alice holds bob and resumes: re-INVITEs (sendonly, sendrecv) through sipd", self.c_hold_resume),
            ("alice transfers bob to carol: REFER, NOTIFY, bob's new call to carol answered, both recorded",
             self.c_transfer),
            ("alice sends OPTIONS to bob's AOR: sipd forwards it to his phone", self.c_options),
            ("alice calls erin, a user with no binding: 480", self.c_offline),
            ("alice calls nobody, no such user: 404", self.c_unknown),
            ("dave quits: baresip unregisters, sipctl no longer lists him", self.c_unregister),
            ("ivan's phone registers for 20 s (libre refreshes at 90%) and refreshes in time: challenged, "
             "answered, 200 with his binding, expires <= 20, and a Date; one new-binding line in the log",
             self.c_refresh),
            ("libre phones against algorithms = SHA-256, MD5: two challenges fail them, their retry gets MD5 "
             "alone and registers; their calls' 407 too", self.c_fallback),
        ]
        for name, fn in cases:
            self.case(name, fn)
        for p in list(self.phones.values()):
            p.quit()
        return 1 if self.failed else 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--sipctl", required=True)
    r.add_argument("--config", required=True)
    r.add_argument("--log", required=True)
    r.add_argument("--work", required=True)
    r.add_argument("--ports", required=True)
    r.add_argument("--dual-port", type=int, required=True)
    r.add_argument("--dual-config", required=True)
    r.add_argument("--dual-log", required=True)
    a = p.parse_args()
    sys.exit(Suite(a).run())


if __name__ == "__main__":
    main()
