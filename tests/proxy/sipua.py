#!/usr/bin/env python3
"""sipua.py: small SIP helpers for sipd's proxy tests (tests/proxy/run_proxy.sh), for what SIPp 3.6 does
not do well: registering a phone from the very port its SIPp UAS will listen on, a callee behind a NAT
(registers from one socket with a Contact it cannot be reached at, then answers the INVITE on that same
socket), and timing checks over SIPp's message logs.

  sipua.py freeport [--count N] [--start PORT]
      N ports of 127.0.0.1, each free for both UDP and TCP, one per line
  sipua.py ready --port P [--wait S]
      exit 0 once sipd answers on udp:127.0.0.1:P (a stateless 400 to a probe)
  sipua.py bound --port P [--wait S] [--tcp]
      exit 0 once something (a SIPp UAS) holds udp:127.0.0.1:P (tcp: with --tcp)
  sipua.py register --port P --user U --password PW [--bind LPORT] [--contact C]... [--expires N]
                    [--expect CODE]
      one REGISTER for sip:U@127.0.0.1 over UDP from 127.0.0.1:LPORT (0: any), answering a 401 with MD5
      digest; --contact '*' with --expires 0 removes every binding. Exit 0 when the final is --expect
      (default 200).
  sipua.py natcallee --port P --user U --password PW --contact C --ready FILE [--timeout S]
      registers C (a Contact the socket is not at, e.g. sip:bob@10.0.0.99:5060) from one UDP socket,
      touches FILE, then waits on that same socket for sipd's INVITE and checks it (Request-URI is C, top
      Via is sipd's, Record-Route); answers 180 then 200 (Contact: this socket, Record-Route copied),
      retransmits the 200 until the ACK, answers the BYE with 200. Exit 0 when every check held.
  sipua.py phone --port P --user U [--auth-user A] --ready FILE [--seconds S] [--expect invite|nothing] [--answer CODE
                 [--reason TEXT]]
                 [--domain D]
      registers <sip:callee@127.0.0.1:LPORT> for U (sip:U@D with --domain) from one socket, touches FILE,
      listens S seconds: an
      INVITE must come; with --answer it gets CODE and the ACK for that may come, without it nothing is
      answered and nothing but the INVITE's retransmissions may come (no CANCEL: 9.1, 16.8); anything
      else (a CANCEL, an ACK for a response this phone never sent) fails; --delay S before answering,
      --realm R for the challenge of a 401/407. --expect nothing: no message at all may come. --expect
      bye: a BYE must come to sip:callee@127.0.0.1:LPORT without Route (answered 200), nothing else. --expect
      cancel: the INVITE gets 180 only after --delay S; a CANCEL must come after that 180, never before
      (9.1), and gets 200, the INVITE 487, whose ACK must come
  sipua.py tcpdrop --port P --user U --ready FILE [--reset] [--seconds S]
      registers <sip:callee@127.0.0.1:LPORT;transport=tcp> for U from udp:127.0.0.1:LPORT, listens on
      tcp:127.0.0.1:LPORT, touches FILE; takes sipd's connection, reads one whole INVITE (top Via
      SIP/2.0/TCP) and closes the connection without answering (--reset: with a RST, SO_LINGER 0). Then for
      S seconds nothing more may come (no connection, no datagram: no retry, no ACK, no CANCEL)
  sipua.py tcpunreg --port P --user U --keep-user K [--seconds S] [--over same|udp|tcp|sipctl]
                   [--sipctl PATH --db PATH]
      U and K register over a TCP connection each (Expires 300); U takes its binding back (Expires 0) on
      its connection (--over udp: over UDP; tcp: over a new connection; sipctl: `sipctl unregister U`
      removes it instead), after which sipd must close U's
      registration connection within S seconds (its tcp_idle_timeout), while K's stays
  sipua.py tcpreg --port P --user U --ready FILE [--seconds S] [--idle I]
      registers <sip:callee@127.0.0.1:LPORT> (no transport=) for U over a TCP connection and listens for no
      connection; the first INVITE must come on that connection with a flow token in sipd's Record-Route
      (answered 180, 200; the dialog's ACK and BYE must come there too); then it closes the connection
      (touches FILE.closed) and the second INVITE must come over UDP to LPORT (486, ACK). --idle: silent
      for I seconds after the 200 to the REGISTER, before touching FILE
  sipua.py bigack --port P --user U
      a whole call in one process, caller and callee: the callee registers <sip:callee@127.0.0.1:LPORT> (no
      transport=) for U from udp:127.0.0.1:LPORT and listens on tcp:127.0.0.1:LPORT too; the caller (alice)
      INVITEs U through sipd with no body, the callee answers 200 over UDP, the caller ACKs it through sipd
      (Route: the Record-Route) with an SDP answer padded to well over 1300 bytes. That ACK (sipd forwards
      it statelessly, 16.11) must reach the callee over TCP (RFC 3261 18.1.1), sipd's Via on top saying
      TCP, its body whole; nothing may come over UDP but the INVITE and the BYE, whose 200 must come back
  sipua.py byeretx --port P --user U
      a whole call in one process (caller alice, callee U registered over UDP); after the BYE's 200 the
      caller sends the same BYE again (same branch): the same 200 must come back, byte for byte, from
      sipd's transaction, and the callee must not see a second BYE (RFC 3261 17.2.2, 16.6)
  sipua.py strayresp --port P [--status CODE] [--method M]
      a response that matches no transaction, preceded by CRLFs, with sipd's Via on top and this process's
      second: nothing may come back (RFC 6026 7.3, RFC 4320 4.2)
  sipua.py answered2xx --port P --user U [--maddr] [--late S]
      a call to U answered 200; U's phone sends the 200 again, then a 200 with another To tag on the same
      branch: both must reach the caller through sipd (RFC 6026 8.4), a 486 and a 180 after them must not.
      --maddr: the caller's Via is 192.0.2.9:<a second socket's port>;maddr=127.0.0.1: every 200 must reach
      that socket only (18.2.2). --late S: the phone's 200 S s after the first must not come (Timer M)
  sipua.py sink --host H --port P --ready FILE [--seconds S]
      listens on udp:H:P for S seconds; nothing may come
  sipua.py request --port P --method M --ruri URI [--route R]... [--to-tag T] [--header LINE]...
                   [--no-max-forwards] [--cancel-after S] --expect CODE [--expect-header REGEX]...
      one request (From alice with a tag, To the R-URI's user with T) with those Routes and extra header
      lines; the final must be CODE, with a header line matching each REGEX (re.search on "Name: value");
      an INVITE's non-2xx final is ACKed
  sipua.py catch --port P --user U --ready FILE [--seconds S] [--path] [--want-header REGEX]...
                 [--refuse-header REGEX]...
      registers <sip:callee@127.0.0.1:LPORT> for U from one socket, touches FILE; the first request sipd
      forwards must come within S seconds with that Contact as Request-URI, no Route, a header line
      matching each --want-header REGEX and none matching a --refuse-header one; it is answered 200.
      --path: the Contact names a port nobody listens on and the REGISTER carries Path: <sip:127.0.0.1:LPORT;lr> and Supported: path: the request must come to LPORT
      all the same, with Route: <sip:127.0.0.1:LPORT;lr> (RFC 3327 5.3)
  sipua.py invite --port P --to U [--frm alice] [--password PW] [--auth-user U] [--other-realm R] --expect CODE
      INVITE sip:U@127.0.0.1:P from sip:FRM@127.0.0.1: 407 with a Digest MD5 Proxy-Authenticate, ACK, the
      INVITE again with Proxy-Authorization (digest uri = the Request-URI, which SIPp 3.6 cannot do; with
      --other-realm, a Proxy-Authorization for realm R first), then the final must be CODE; ACK
  sipua.py hdr-check --log FILE --msg REGEX --header NAME [--index N] [--match REGEX] [--count C]
      in the first message of a SIPp -trace_msg file matching --msg, value N (0 = top; every line of the
      header, split at commas) of header NAME matches --match (re.search); with --count, there are exactly
      C values (0: no such header)
  sipua.py gap --log FILE --first REGEX --then REGEX [--min S] [--max S]
  sipua.py cancel-check --log FILE
      the first CANCEL received in a SIPp UAS's message log matches the first INVITE (RFC 3261 9.1: one Via,
      the INVITE's top one; same Request-URI, Call-ID, From, To, CSeq number)
  sipua.py order --log-a FILE --a REGEX --log-b FILE --b REGEX [--slack S]
      over SIPp -trace_msg files: the time between two messages of one log is in [min, max]; message a of
      log-a came no later than message b of log-b, give or take S seconds (default 0.05: two SIPp processes
      stamp their logs on their own, a sender after its send returns, so a message sipd relays at once
      can be logged as received before it was logged as sent). A REGEX is matched (re.search, multi-line) against
      "<sent|received>\\n<the message>"; the first match counts.

Failed checks are printed on stderr, one line each, first line first.
"""
import argparse
import datetime
import hashlib
import os
import random
import re
import select
import sqlite3
import socket
import struct
import subprocess
import sys
import time

HOST = "127.0.0.1"


class Fail(Exception):
    pass


# ---- messages ----

class Msg:
    def __init__(self, raw):
        self.raw = raw
        text = raw.decode("utf-8", "replace")
        head, _, self.body = text.partition("\r\n\r\n")
        lines = head.split("\r\n")
        self.start = lines[0]
        self.headers = []
        for line in lines[1:]:
            if line[:1] in (" ", "\t") and self.headers:
                n, v = self.headers[-1]
                self.headers[-1] = (n, v + " " + line.strip())
                continue
            name, _, value = line.partition(":")
            self.headers.append((name.strip(), value.strip()))
        m = re.match(r"SIP/2\.0 (\d{3}) ?(.*)$", self.start)
        self.code = int(m.group(1)) if m else None
        rm = re.match(r"([A-Z]+) (\S+) SIP/2\.0$", self.start)
        self.method = rm.group(1) if rm else None
        self.ruri = rm.group(2) if rm else None

    SHORT = {"via": "v", "call-id": "i", "from": "f", "to": "t", "contact": "m", "content-length": "l",
             "content-type": "c", "subject": "s"}

    def values(self, name):
        short = self.SHORT.get(name.lower())
        return [v for n, v in self.headers if n.lower() == name.lower() or (short and n.lower() == short)]

    def lines(self, name):
        """Every header line of that name, as sent (for copying into a response)."""
        short = self.SHORT.get(name.lower())
        return ["%s: %s" % (n, v) for n, v in self.headers if n.lower() == name.lower() or
                (short and n.lower() == short)]

    def first(self, name):
        v = self.values(name)
        return v[0] if v else None

    def text(self):
        return self.raw.decode("utf-8", "replace")


def md5(s):
    return hashlib.md5(s.encode()).hexdigest()


def challenge_params(value):
    scheme, _, rest = value.partition(" ")
    params = {"scheme": scheme}
    for m in re.finditer(r'([A-Za-z-]+)\s*=\s*("((?:[^"\\]|\\.)*)"|[^,\s]+)', rest):
        params[m.group(1).lower()] = m.group(3) if m.group(3) is not None else m.group(2)
    return params


def digest(method, uri, user, password, chal):
    realm, nonce = chal.get("realm", ""), chal.get("nonce", "")
    ha1 = md5("%s:%s:%s" % (user, realm, password))
    ha2 = md5("%s:%s" % (method, uri))
    out = 'Digest username="%s", realm="%s", nonce="%s", uri="%s", algorithm=MD5' % (user, realm, nonce, uri)
    if "auth" in [q.strip() for q in chal.get("qop", "").split(",")]:
        cnonce = "%08x" % random.randrange(1 << 32)
        resp = md5("%s:%s:00000001:%s:auth:%s" % (ha1, nonce, cnonce, ha2))
        out += ', response="%s", cnonce="%s", qop=auth, nc=00000001' % (resp, cnonce)
    else:
        out += ', response="%s"' % md5("%s:%s:%s" % (ha1, nonce, ha2))
    if "opaque" in chal:
        out += ', opaque="%s"' % chal["opaque"]
    return out


# ---- REGISTER ----

def udp_socket(bind_port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((HOST, bind_port))
    return s


def recv_msg(sock, deadline):
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None, None
        sock.settimeout(left)
        try:
            raw, addr = sock.recvfrom(65536)
        except socket.timeout:
            return None, None
        except ConnectionRefusedError:
            continue
        return Msg(raw), addr


def register(sock, port, user, password, contacts, expires, timeout=8.0, domain=None, stream=None, extra=(),
             to_host=HOST, auth_user=None):
    """REGISTER sip:127.0.0.1:port for sip:user@127.0.0.1 from sock (with a domain: REGISTER sip:DOMAIN for
    sip:user@DOMAIN, still sent to 127.0.0.1:port); a 401 is answered once (MD5). Returns the final
    response. stream (a Stream, connected to sipd): over that TCP connection instead, sock unused.
    to_host "::1": sent to sipd at [::1]:port from sock (IPv6), REGISTER sip:[::1]:port, the AOR unchanged."""
    lport = (stream.sock if stream else sock).getsockname()[1]
    uri_host = "[%s]" % to_host if ":" in to_host else to_host

    def send(data):
        if stream:
            stream.sock.sendall(data)
        else:
            sock.sendto(data, (to_host, port))

    src, src401 = [None], None

    def recv(until):
        if stream:
            return stream.read(until)
        m, src[0] = recv_msg(sock, until)
        return m

    tag = "ua%06d" % random.randrange(10 ** 6)
    callid = "reg-%d-%06d@%s" % (os.getpid(), random.randrange(10 ** 6), HOST)
    ruri = "sip:%s" % domain if domain else "sip:%s:%d" % (uri_host, port)
    aor_host = domain or HOST
    auth = None
    for cseq in (1, 2):
        lines = ["REGISTER %s SIP/2.0" % ruri,
                 "Via: SIP/2.0/%s %s:%d;branch=z9hG4bKua%s%d;rport" % ("TCP" if stream else "UDP", uri_host, lport,
                                                                      tag, cseq),
                 "Max-Forwards: 70",
                 "From: <sip:%s@%s>;tag=%s" % (user, aor_host, tag),
                 "To: <sip:%s@%s>" % (user, aor_host),
                 "Call-ID: %s" % callid,
                 "CSeq: %d REGISTER" % cseq]
        lines += ["Contact: %s" % c for c in contacts]
        if expires is not None:
            lines.append("Expires: %s" % expires)
        if auth:
            lines.append("Authorization: %s" % auth)
        lines += list(extra) + ["User-Agent: sipd-proxy-test", "Content-Length: 0"]
        data = ("\r\n".join(lines) + "\r\n\r\n").encode()
        deadline = time.monotonic() + timeout
        interval = 0.5
        resp = None
        send(data)
        while resp is None:
            # over TCP nothing is retransmitted (17.1.2.2): one wait until the deadline
            m = recv(deadline if stream else min(deadline, time.monotonic() + interval))
            if m is None:
                if stream or time.monotonic() >= deadline:
                    raise Fail("no final response to REGISTER %s (CSeq %d) over %s within %.0f s"
                               % (user, cseq, "TCP" if stream else "UDP", timeout))
                send(data)
                interval = min(interval * 2, 4.0)
                continue
            if m.code is None or m.code < 200 or m.first("Call-ID") != callid or \
                    not re.match(r"%d\s+REGISTER$" % cseq, m.first("CSeq") or ""):
                continue
            resp = m
        if resp.code == 401 and auth is None:
            chals = [challenge_params(v) for v in resp.values("WWW-Authenticate")]
            md5s = [c for c in chals if c.get("algorithm", "MD5").upper() == "MD5"]
            if not md5s:
                raise Fail("no MD5 challenge in the 401 to REGISTER %s: %s" % (user, resp.values("WWW-Authenticate")))
            auth = digest("REGISTER", ruri, auth_user or user, password, md5s[0])
            src401 = src[0]
            continue
        resp.src, resp.src401 = src[0], src401
        return resp
    return resp


def cmd_register(a):
    sock = udp_socket(a.bind)
    try:
        r = register(sock, a.port, a.user, a.password, a.contact, a.expires, domain=a.domain)
    finally:
        sock.close()
    if r.code != a.expect:
        raise Fail("REGISTER %s %s: expected %d, got '%s'" % (a.user, a.contact, a.expect, r.start))
    return 0


# ---- the callee behind a NAT ----

SDP_ANSWER = ("v=0\r\no=callee 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
              "m=audio 49180 RTP/AVP 0\r\n")

REASONS = {180: "Ringing", 200: "OK", 404: "Not Found", 408: "Request Timeout", 480: "Temporarily Unavailable", 486: "Busy Here",
           487: "Request Terminated", 503: "Service Unavailable", 603: "Decline"}


def response(req, code, reason, totag, extra=(), sdp=None):
    lines = ["SIP/2.0 %d %s" % (code, reason)]
    lines += req.lines("Via")
    lines += req.lines("Record-Route") if 100 < code < 300 and req.method == "INVITE" else []
    lines.append("From: %s" % req.first("From"))
    to = req.first("To")
    if totag and ";tag=" not in to:
        to += ";tag=%s" % totag
    lines.append("To: %s" % to)
    lines.append("Call-ID: %s" % req.first("Call-ID"))
    lines.append("CSeq: %s" % req.first("CSeq"))
    lines += list(extra)
    if sdp:
        lines.append("Content-Type: application/sdp")
    lines.append("Content-Length: %d" % len(sdp or ""))
    return ("\r\n".join(lines) + "\r\n\r\n" + (sdp or "")).encode()


def cmd_natcallee(a):
    fails = []
    sock = udp_socket(0)
    lport = sock.getsockname()[1]
    r = register(sock, a.port, a.user, a.password, ["<%s>" % a.contact], 300)
    if r.code != 200:
        raise Fail("REGISTER %s with Contact %s: expected 200, got '%s'" % (a.user, a.contact, r.start))
    with open(a.ready, "w") as f:
        f.write("%d\n" % lport)
    deadline = time.monotonic() + a.timeout
    inv = None
    while inv is None:
        m, addr = recv_msg(sock, deadline)
        if m is None:
            raise Fail("no INVITE reached the socket the REGISTER came from (127.0.0.1:%d) within %.0f s"
                       % (lport, a.timeout))
        if m.method == "INVITE":
            inv, src = m, addr
    if inv.ruri != a.contact:
        fails.append("INVITE Request-URI: expected the registered Contact %s, got %s" % (a.contact, inv.ruri))
    vias = inv.values("Via")
    if not vias or not re.match(r"SIP/2\.0/UDP 127\.0\.0\.1:%d;branch=z9hG4bK" % a.port, vias[0]):
        fails.append("INVITE top Via: expected sipd's SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK..., got %r"
                     % (a.port, vias[:1]))
    if len(vias) < 2:
        fails.append("INVITE: expected sipd's Via above the caller's, got %r" % vias)
    rr = inv.values("Record-Route")
    if not rr or not re.match(r"<sip:127\.0\.0\.1:%d(;[^>]*)?>" % a.port, rr[0]) or \
            not re.search(r";lr[;>=]", rr[0]):
        fails.append("INVITE Record-Route: expected <sip:127.0.0.1:%d;lr>, got %r" % (a.port, rr))
    totag = "nat%06d" % random.randrange(10 ** 6)
    contact = "Contact: <sip:%s@%s:%d>" % (a.user, HOST, lport)
    sock.sendto(response(inv, 180, "Ringing", totag, [contact]), src)
    time.sleep(0.2)
    ok200 = response(inv, 200, "OK", totag, [contact], SDP_ANSWER)
    sock.sendto(ok200, src)
    interval, next_tx = 0.5, time.monotonic() + 0.5
    deadline = time.monotonic() + 8
    got_ack = got_bye = False
    while not got_bye:
        m, addr = recv_msg(sock, min(deadline, next_tx) if not got_ack else deadline)
        if m is None:
            if time.monotonic() >= deadline:
                fails.append("no %s reached 127.0.0.1:%d within 8 s of the 200" % ("BYE" if got_ack else "ACK", lport))
                break
            if not got_ack:
                sock.sendto(ok200, src)
                interval = min(interval * 2, 4.0)
                next_tx = time.monotonic() + interval
            continue
        if m.method == "INVITE":
            continue  # a retransmission; the 200 is retransmitted on its own timer
        if m.method == "ACK":
            got_ack = True
            if not re.match(r"sip:%s@127\.0\.0\.1:%d$" % (re.escape(a.user), lport), m.ruri or ""):
                fails.append("ACK Request-URI: expected our Contact sip:%s@127.0.0.1:%d, got %s" % (a.user, lport, m.ruri))
            continue
        if m.method == "BYE":
            got_bye = True
            if not got_ack:
                fails.append("BYE came before any ACK for the 200")
            sock.sendto(response(m, 200, "OK", None), addr)
            continue
        fails.append("unexpected message: %s" % m.start)
    sock.close()
    if fails:
        raise Fail("; ".join(fails))
    return 0


# ---- a phone that never answers, or answers with one final ----

def phone_cancel(a, sock, lport):
    """--expect cancel: the INVITE gets a 180 (a 100 with --trying) only after --delay seconds; a CANCEL must
    come, and only after that provisional (9.1: never before one); it gets 200, the INVITE 487, and the ACK
    for that must come.
    With --mute the phone answers neither the CANCEL nor the INVITE (a phone gone silent while ringing):
    the CANCEL and its retransmissions must come, nothing else."""
    t0 = time.monotonic()
    deadline = t0 + a.seconds
    totag = "pc%06d" % random.randrange(10 ** 6)
    inv, ring_at, rang, cancelled, acked, fails = None, None, None, None, False, []
    copies = 0
    while time.monotonic() < deadline:
        until = min(deadline, ring_at) if ring_at and not rang else deadline
        m, addr = recv_msg(sock, until)
        now = time.monotonic()
        if m is None:
            if ring_at and not rang and now >= ring_at:
                if a.trying:  # a 100 is a provisional too (9.1), though it has no To tag
                    sock.sendto(response(inv, 100, "Trying", None), inv_addr)
                else:
                    sock.sendto(response(inv, 180, "Ringing", totag), inv_addr)
                rang = now
            continue
        if m.method == "INVITE":
            if inv is None:
                inv, inv_addr, ring_at = m, addr, now + a.delay
            continue  # a retransmission: sipd has had no provisional yet
        if m.method == "CANCEL" and inv is not None:
            if not rang:
                fails.append("a CANCEL %.2f s after the INVITE, before any provisional response (9.1)" % (now - t0))
            if cancelled is None:
                cancelled = now
            copies += 1
            if a.mute:
                continue
            sock.sendto(response(m, 200, "OK", totag), addr)
            sock.sendto(response(inv, 487, "Request Terminated", totag), inv_addr)
            continue
        if m.method == "ACK" and cancelled:
            acked = True
            deadline = min(deadline, now + 0.3)
            continue
        fails.append("%.1f s: unexpected %s" % (now - t0, m.start))
    if inv is None:
        fails.append("no INVITE reached 127.0.0.1:%d" % lport)
    elif cancelled is None:
        fails.append("no CANCEL came (the 180 went out %s)" % ("%.2f s after the INVITE" % (rang - t0) if rang else "never"))
    elif not acked and not a.mute:
        fails.append("no ACK for the 487")
    if fails:
        raise Fail("; ".join(fails))
    print("180 at %.2f s, CANCEL at %.2f s (%d cop%s)" % (rang - t0, cancelled - t0, copies, "y" if copies == 1 else "ies"))
    return 0


def cmd_phone(a):
    """Registers <sip:callee@127.0.0.1:LPORT> for a.user from its socket, then listens a.seconds.
    --expect nothing: no message at all may come. --expect invite: an INVITE must come; with --answer CODE
    it is answered with CODE (and the ACK for that is fine), without, nothing is answered and nothing but
    the INVITE's retransmissions may come (9.1, 16.8: no CANCEL before a provisional response)."""
    sock = udp_socket(0)
    lport = sock.getsockname()[1]
    r = register(sock, a.port, a.user, a.password, ["<sip:callee@%s:%d>" % (HOST, lport)], 300, domain=a.domain,
                 auth_user=a.auth_user)
    if r.code != 200:
        raise Fail("REGISTER %s: expected 200, got '%s'" % (a.user, r.start))
    with open(a.ready, "w") as f:
        f.write("%d\n" % lport)
    if a.expect == "cancel":
        return phone_cancel(a, sock, lport)
    t0 = time.monotonic()
    deadline = t0 + a.seconds
    totag = "ph%06d" % random.randrange(10 ** 6)
    invites, stray, acked, byes = [], [], False, []
    while True:
        m, addr = recv_msg(sock, deadline)
        if m is None:
            break
        t = time.monotonic() - t0
        if m.method == a.method:
            invites.append(t)
            if a.answer:
                if len(invites) == 1 and a.delay:
                    time.sleep(a.delay)
                extra = []
                if a.answer in (401, 407):
                    extra.append('%s: Digest realm="%s", nonce="n%d", algorithm=MD5, qop="auth"'
                                 % ("WWW-Authenticate" if a.answer == 401 else "Proxy-Authenticate", a.realm, lport))
                reason = a.reason.encode().decode("unicode_escape") if a.reason else REASONS.get(a.answer, "Whatever")
                sock.sendto(response(m, a.answer, reason, totag, extra), addr)
            continue
        if m.method == "BYE" and a.expect == "bye":
            byes.append(m)
            sock.sendto(response(m, 200, "OK", None), addr)
            deadline = min(deadline, time.monotonic() + 0.5)
            continue
        if m.method == "ACK" and a.answer and invites and ("tag=%s" % totag) in (m.first("To") or ""):
            acked = True
            if a.expect == "invite":
                deadline = min(deadline, time.monotonic() + 0.5)
            continue
        what = m.start
        if m.method == "ACK":
            what += " (To: %s, for a response this phone never sent)" % m.first("To")
        stray.append("%.1f s %s" % (t, what))
    sock.close()
    if a.expect == "nothing":
        got = ["%.1f s INVITE" % t for t in invites] + stray
        if got:
            raise Fail("expected no message at 127.0.0.1:%d, got: %s" % (lport, "; ".join(got)))
        return 0
    fails = []
    if a.expect == "bye":
        want = "sip:callee@%s:%d" % (HOST, lport)
        if not byes:
            fails.append("no BYE reached 127.0.0.1:%d within %.0f s" % (lport, a.seconds))
        elif byes[0].ruri != want:
            fails.append("BYE Request-URI %s (Route %r), expected the Route's last value %s and no Route"
                         % (byes[0].ruri, byes[0].values("Route"), want))
        elif byes[0].values("Route"):
            fails.append("BYE still carries Route %r" % byes[0].values("Route"))
        if stray or invites:
            fails.append("got besides the BYE: %s" % "; ".join(stray + ["INVITE"] * len(invites)))
        if fails:
            raise Fail("; ".join(fails))
        return 0
    if not invites:
        fails.append("no %s reached 127.0.0.1:%d within %.0f s" % (a.method, lport, a.seconds))
    if stray:
        fails.append("got besides the %s: %s" % (a.method, "; ".join(stray)))
    if a.times and len(invites) != a.times:
        fails.append("%s came %d time(s), expected %d" % (a.method, len(invites), a.times))
    if a.answer and invites and not acked and a.method == "INVITE":
        fails.append("no ACK for the %d" % a.answer)
    if fails:
        raise Fail("; ".join(fails))
    print("%s %d time(s), the last %.1f s after the first" % (a.method, len(invites), invites[-1] - invites[0]))
    return 0


# ---- a phone over TCP that hangs up on sipd ----

def read_message(conn, deadline):
    """One whole SIP message (headers and Content-Length bytes of body) from a stream socket, or None."""
    return Stream(conn).read(deadline)


class Stream:
    """A TCP connection read message by message (what one read brings past a message waits for the next)."""

    def __init__(self, sock):
        self.sock, self.buf = sock, b""

    def read(self, deadline):
        while True:
            head, sep, rest = self.buf.partition(b"\r\n\r\n")
            if sep:
                m = re.search(rb"^(?:Content-Length|l)\s*:\s*(\d+)", head, re.M | re.I)
                n = int(m.group(1)) if m else 0
                if len(rest) >= n:
                    self.buf = rest[n:]
                    return Msg(head + sep + rest[:n])
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return None
            except OSError:
                chunk = b""
            if not chunk:
                return None
            self.buf += chunk


def tcp_phone(a, uri_params):
    """A phone listening on TCP and UDP at one port, registered with Contact
    <sip:callee@HOST:PORT + uri_params>. Returns (TCP listener, port, UDP socket)."""
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((HOST, 0))
    lport = lsock.getsockname()[1]
    lsock.listen(8)
    usock = udp_socket(lport)
    r = register(usock, a.port, a.user, a.password, ["<sip:callee@%s:%d%s>" % (HOST, lport, uri_params)], 300)
    if r.code != 200:
        raise Fail("REGISTER %s: expected 200, got '%s'" % (a.user, r.start))
    return lsock, lport, usock


def cmd_tcpdrop(a):
    lsock, lport, usock = tcp_phone(a, ";transport=tcp")
    with open(a.ready, "w") as f:
        f.write("%d\n" % lport)
    deadline = time.monotonic() + 10
    lsock.settimeout(10)
    try:
        conn, _ = lsock.accept()
    except socket.timeout:
        raise Fail("sipd opened no TCP connection to tcp:127.0.0.1:%d within 10 s" % lport)
    inv = read_message(conn, deadline)
    if inv is None or inv.method != "INVITE":
        raise Fail("expected an INVITE on sipd's connection, got %s" % (inv.start if inv else "nothing"))
    fails = []
    vias = inv.values("Via")
    if not vias or not vias[0].startswith("SIP/2.0/TCP "):
        fails.append("INVITE top Via %r, expected sipd's SIP/2.0/TCP" % vias[:1])
    if a.reset:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()
    t0 = time.monotonic()
    stray = []
    while time.monotonic() < t0 + a.seconds:
        ready, _, _ = select.select([lsock, usock], [], [], max(0.0, t0 + a.seconds - time.monotonic()))
        if lsock in ready:
            c, _ = lsock.accept()
            m = read_message(c, time.monotonic() + 1)
            stray.append("%.1f s a new connection carrying %s" % (time.monotonic() - t0, m.start if m else "nothing"))
            c.close()
        if usock in ready:
            raw, _ = usock.recvfrom(65536)
            stray.append("%.1f s udp %s" % (time.monotonic() - t0, Msg(raw).start))
    lsock.close()
    usock.close()
    if stray:
        fails.append("after the %s: %s" % ("RST" if a.reset else "close", "; ".join(stray)))
    if fails:
        raise Fail("; ".join(fails))
    print("INVITE read, connection %s" % ("reset" if a.reset else "closed"))
    return 0


def cmd_tcpreg(a):
    """A phone that registers over TCP and listens for no connection: Contact <sip:callee@127.0.0.1:LPORT>
    (no transport=), LPORT a UDP socket of its own. The first INVITE must come on the registration
    connection (top Via sipd's TCP, a flow token in sipd's Record-Route); it is answered 180 and 200 there,
    and the ACK and the BYE of that dialog (sent by the caller to this Contact, through sipd's Record-Route)
    must come there too, nothing over UDP. Then the phone closes the connection: the second INVITE must
    come to the Contact, over UDP (486, ACK)."""
    usock = udp_socket(0)
    lport = usock.getsockname()[1]
    conn = socket.create_connection((HOST, a.port), timeout=5)
    st = Stream(conn)
    r = register(None, a.port, a.user, a.password, ["<sip:callee@%s:%d>" % (HOST, lport)], 300, stream=st)
    if r.code != 200:
        raise Fail("REGISTER %s over TCP: expected 200, got '%s'" % (a.user, r.start))
    if a.idle:
        time.sleep(a.idle)  # past sipd's tcp_idle_timeout: the registration keeps the connection
    with open(a.ready, "w") as f:
        f.write("%d\n" % lport)
    fails = []
    totag = "tr%06d" % random.randrange(10 ** 6)
    inv = st.read(time.monotonic() + a.seconds)
    if inv is None or inv.method != "INVITE":
        fails.append("no INVITE on the registration connection within %.0f s (got %s)"
                     % (a.seconds, inv.start if inv else "nothing"))
    else:
        vias = inv.values("Via")
        if not vias or not re.match(r"SIP/2\.0/TCP 127\.0\.0\.1:%d;" % a.port, vias[0]):
            fails.append("INVITE top Via %r, expected sipd's SIP/2.0/TCP 127.0.0.1:%d" % (vias[:1], a.port))
        rr = inv.values("Record-Route")
        if not rr or ";flow=" not in rr[0]:
            fails.append("sipd's Record-Route %r carries no flow token" % rr[:1])
        contact = ["Contact: <sip:callee@%s:%d>" % (HOST, lport)]
        conn.sendall(response(inv, 180, "Ringing", totag, contact))
        conn.sendall(response(inv, 200, "OK", totag, contact, SDP_ANSWER))
        for method in ("ACK", "BYE"):
            m = st.read(time.monotonic() + 5)
            if m is None or m.method != method:
                fails.append("expected the dialog's %s on the connection, got %s" % (method, m.start if m else "nothing"))
                break
            if m.ruri != "sip:callee@%s:%d" % (HOST, lport):
                fails.append("%s Request-URI %s, expected the Contact" % (method, m.ruri))
            if method == "BYE":
                conn.sendall(response(m, 200, "OK", None))
    m, _ = recv_msg(usock, time.monotonic() + 0.2)
    if m is not None:
        fails.append("while the connection stood, UDP got %s" % m.start)
    conn.close()
    with open(a.ready + ".closed", "w") as f:
        f.write("closed\n")
    inv, src = None, None
    deadline = time.monotonic() + a.seconds
    while inv is None:
        m, src = recv_msg(usock, deadline)
        if m is None:
            fails.append("after the connection closed, no INVITE came to the Contact over UDP within %.0f s"
                         % a.seconds)
            break
        if m.method == "INVITE":
            inv = m
    if inv is not None:
        usock.sendto(response(inv, 486, "Busy Here", totag + "u"), src)
        m, _ = recv_msg(usock, time.monotonic() + 3)
        if m is None or m.method != "ACK":
            fails.append("expected the ACK for the 486 over UDP, got %s" % (m.start if m else "nothing"))
    usock.close()
    if fails:
        raise Fail("; ".join(fails))
    print("a call over the registration connection, then an INVITE over UDP to the Contact")
    return 0


def cmd_tcpunreg(a):
    """A phone registers over TCP (Expires 300), then takes its binding back (Expires 0) on the same
    connection and stays silent: the registration no longer keeps the connection, so sipd must close it
    at its tcp_idle_timeout, within --seconds. A second phone registered for another user over the same
    kind of connection (--keep-user) is not affected: still open when the first closes."""
    conns = []
    for user in (a.user, a.keep_user):
        conn = socket.create_connection((HOST, a.port), timeout=5)
        st = Stream(conn)
        contact = ["<sip:callee@%s:%d;transport=tcp>" % (HOST, conn.getsockname()[1])]
        r = register(None, a.port, user, a.password, contact, 300, stream=st)
        if r.code != 200:
            raise Fail("REGISTER %s over TCP: expected 200, got '%s'" % (user, r.start))
        conns.append((conn, st, contact))
    conn, st, contact = conns[0]
    side = None
    if a.over != "same":
        # later than the idle timeout: sipd's idle timer already waits for the registration's end
        time.sleep(1.5)
    if a.over == "udp":
        side = udp_socket(0)
        r = register(side, a.port, a.user, a.password, contact, 0)
    elif a.over == "tcp":
        side = socket.create_connection((HOST, a.port), timeout=5)
        r = register(None, a.port, a.user, a.password, contact, 0, stream=Stream(side))
    elif a.over == "sipctl":
        out = subprocess.run([a.sipctl, "-d", a.db, "unregister", a.user], capture_output=True, text=True,
                             timeout=20)
        if out.returncode != 0:
            raise Fail("sipctl unregister %s: exit %d: %s" % (a.user, out.returncode, out.stderr.strip()))
        r = None
    else:
        r = register(None, a.port, a.user, a.password, contact, 0, stream=st)
    if r and (r.code != 200 or r.values("Contact")):
        raise Fail("un-REGISTER (%s): expected 200 with no binding left, got '%s' %s"
                   % (a.over, r.start, r.values("Contact")))
    t0 = time.monotonic()
    conn.settimeout(a.seconds)
    try:
        data = conn.recv(100)
    except socket.timeout:
        raise Fail("the connection of the un-REGISTERed phone still open %.0f s after its un-REGISTER" % a.seconds)
    if data:
        raise Fail("sipd sent %r on the connection instead of closing it" % data)
    closed = time.monotonic() - t0
    other = conns[1][0]
    other.setblocking(False)
    try:
        if other.recv(100) == b"":
            raise Fail("the other phone's connection, still registered, was closed too")
    except BlockingIOError:
        pass  # open and silent, as it should be
    for c, _, _ in conns:
        c.close()
    if side:
        side.close()
    print("un-REGISTERed phone's connection closed %.1f s after the un-REGISTER (over %s); the registered "
          "one's still open" % (closed, {"same": "it", "udp": "UDP", "tcp": "a new connection", "sipctl": "sipctl"}[a.over]))
    return 0


class Caller:
    """alice on one UDP socket, calling through sipd: builds her requests of one dialog and reads
    her final responses."""

    def __init__(self, a, prefix):
        self.sock = udp_socket(0)
        self.port = self.sock.getsockname()[1]
        self.sipd = (HOST, a.port)
        self.tag = "%s%06d" % (prefix, random.randrange(10 ** 6))
        self.callid = "%s-%d-%06d@%s" % (prefix, os.getpid(), random.randrange(10 ** 6), HOST)
        self.frm = "<sip:alice@%s>;tag=%s" % (HOST, self.tag)
        self.ruri = "sip:%s@%s:%d" % (a.user, HOST, a.port)
        self.sent_by, self.via_params = "%s:%d" % (HOST, self.port), ";rport"
        self.rsock = self.sock  # where the responses come

    def request(self, method, uri, cseq, branch, to, extra=(), body=""):
        lines = ["%s %s SIP/2.0" % (method, uri),
                 "Via: SIP/2.0/UDP %s;branch=%s%s" % (self.sent_by, branch, self.via_params),
                 "Max-Forwards: 70", "From: %s" % self.frm, "To: %s" % to, "Call-ID: %s" % self.callid,
                 "CSeq: %d %s" % (cseq, method), "Contact: <sip:alice@%s:%d>" % (HOST, self.port)]
        lines += list(extra)
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append("Content-Length: %d" % len(body))
        return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()

    def send(self, data):
        self.sock.sendto(data, self.sipd)

    def final(self, cseq, method):
        deadline = time.monotonic() + 5
        while True:
            m, _ = recv_msg(self.rsock, deadline)
            if m is None:
                raise Fail("the caller got no final response to %s within 5 s" % method)
            if m.code and m.code >= 200 and (m.first("CSeq") or "").split() == [str(cseq), method]:
                return m

    def invite(self, usock, lport):
        """INVITE through sipd to the phone on usock: (the INVITE as the phone got it, where from)."""
        self.send(self.request("INVITE", self.ruri, 1, "z9hG4bK%sinv" % self.tag, "<%s>" % self.ruri))
        while True:
            inv, src = recv_msg(usock, time.monotonic() + 5)
            if inv is None:
                raise Fail("no INVITE reached the callee at udp:127.0.0.1:%d within 5 s" % lport)
            if inv.method == "INVITE":
                return inv, src

    def establish(self, usock, lport):
        """INVITE through sipd, answered 200 by the phone on usock: (the 200, the Route lines of the
        dialog, the callee's Contact URI)."""
        inv, src = self.invite(usock, lport)
        contact = "Contact: <sip:callee@%s:%d>" % (HOST, lport)
        usock.sendto(response(inv, 200, "OK", "cb%06d" % random.randrange(10 ** 6), [contact], SDP_ANSWER), src)
        ok = self.final(1, "INVITE")
        if ok.code != 200:
            raise Fail("the caller got '%s', expected 200" % ok.start)
        rr = [v.strip() for line in ok.values("Record-Route") for v in line.split(",")]
        routes = ["Route: %s" % ", ".join(reversed(rr))] if rr else []
        return ok, routes, re.search(r"<([^>]+)>", ok.first("Contact") or "").group(1)


def cmd_strictpeer(a):
    """A strict router as the next hop (RFC 3261 16.6 step 6, 16.12.1.2): takes the first request that
    comes, answers 200, and checks it was addressed as a strict router expects: the Request-URI is its own
    URI (sip:127.0.0.1:PORT, the Route value that named it, without lr) and the request's Request-URI is the
    last Route value (--want-route, what the Route header field must end with)."""
    sock = udp_socket(0)
    lport = sock.getsockname()[1]
    with open(a.ready, "w") as f:
        f.write("%d\n" % lport)
    m, src = recv_msg(sock, time.monotonic() + a.seconds)
    if m is None:
        raise Fail("no request reached the strict router at udp:%s:%d within %.0f s" % (HOST, lport, a.seconds))
    sock.sendto(response(m, 200, "OK", "sr%d" % lport), src)
    sock.close()
    fails = []
    if m.ruri != "sip:%s:%d" % (HOST, lport):
        fails.append("Request-URI %s, expected sip:%s:%d (16.6 step 6)" % (m.ruri, HOST, lport))
    routes = [v.strip() for line in m.values("Route") for v in line.split(",")]
    if not routes or routes[-1] != a.want_route:
        fails.append("Route %s, expected it to end with %s" % (routes, a.want_route))
    if fails:
        raise Fail("; ".join(fails))
    print("the strict router got %s with Route %s" % (m.start, ", ".join(routes)))
    return 0


def cmd_ackretx(a):
    """16.11: an ACK for a 2xx, sent twice with the same bytes (a retransmission), reaches the phone twice
    with the same branch in sipd's Via ("the component of the branch parameter that makes it unique MUST
    be the same each time a retransmitted request is forwarded"); another ACK of the call (another CSeq,
    another branch) gets another. Then BYE."""
    lsock, lport, usock = tcp_phone(a, "")
    c = Caller(a, "ar")
    ok, routes, target = c.establish(usock, lport)
    ack = c.request("ACK", target, 1, "z9hG4bK%sack" % c.tag, ok.first("To"), routes)
    c.send(ack)
    time.sleep(0.2)
    c.send(ack)
    vias = []
    deadline = time.monotonic() + 2
    while len(vias) < 2:
        m, _ = recv_msg(usock, deadline)
        if m is None:
            break
        if m.method == "ACK":
            vias.append(m.first("Via"))
    fails = []
    if len(vias) != 2:
        fails.append("%d of the 2 ACKs reached the phone" % len(vias))
    elif vias[0] != vias[1]:
        fails.append("the retransmitted ACK came with another Via: %s, then %s" % (vias[0], vias[1]))
    c.send(c.request("BYE", target, 2, "z9hG4bK%sbye" % c.tag, ok.first("To"), routes))
    deadline = time.monotonic() + 3
    while True:
        m, src = recv_msg(usock, deadline)
        if m is None:
            fails.append("no BYE reached the phone")
            break
        if m.method == "BYE":
            usock.sendto(response(m, 200, "OK", None), src)
            if vias and m.first("Via") == vias[0]:
                fails.append("the BYE came with the ACK's Via: %s" % vias[0])
            break
    for s_ in (lsock, usock, c.sock):
        s_.close()
    if fails:
        raise Fail("; ".join(fails))
    print("a retransmitted ACK went on with the same branch: %s" % vias[0])
    return 0


def cmd_cancelport(a):
    """16.10 whatever socket the CANCEL comes by: --rounds calls to the phone registered on a fresh UDP
    socket, each INVITE from the caller's socket, answered 180, then its CANCEL (the INVITE's Via and
    branch) from another fresh source port, which sipd's SO_REUSEPORT sockets hand to either worker. Each
    CANCEL gets 200, the phone a CANCEL within 1.5 s (it answers 200 and 487), the caller the 487."""
    usock = udp_socket(0)
    lport = usock.getsockname()[1]
    r = register(usock, a.port, a.user, "secret", ["<sip:callee@%s:%d>" % (HOST, lport)], 300)
    if r.code != 200:
        raise Fail("REGISTER %s: %s" % (a.user, r.start))
    fails = []
    for n in range(a.rounds):
        c = Caller(a, "cp%d" % n)
        branch = "z9hG4bK%sinv" % c.tag
        inv, src = c.invite(usock, lport)
        totag = "cp%06d" % random.randrange(10 ** 6)
        usock.sendto(response(inv, 180, "Ringing", totag), src)
        other = udp_socket(0)
        other.sendto(c.request("CANCEL", c.ruri, 1, branch, "<%s>" % c.ruri), c.sipd)
        ans, _ = recv_msg(other, time.monotonic() + 2)
        if ans is None or ans.code != 200:
            fails.append("round %d: the CANCEL from port %d got %s" % (n, other.getsockname()[1],
                                                                        ans.start if ans else "nothing"))
        cancel = None
        deadline = time.monotonic() + 1.5
        while cancel is None:
            m, msrc = recv_msg(usock, deadline)
            if m is None:
                break
            if m.method == "CANCEL":
                cancel = m
        if cancel is None:
            fails.append("round %d: no CANCEL reached the phone (the caller's came from port %d)"
                         % (n, other.getsockname()[1]))
            usock.sendto(response(inv, 486, "Busy Here", totag), src)
        else:
            usock.sendto(response(cancel, 200, "OK", totag), msrc)
            usock.sendto(response(inv, 487, "Request Terminated", totag), src)
        fin = c.final(1, "INVITE")
        c.send(c.request("ACK", c.ruri, 1, branch, fin.first("To")))
        if cancel is not None and fin.code != 487:
            fails.append("round %d: the caller got '%s', expected 487" % (n, fin.start))
        other.close()
        c.sock.close()
    usock.close()
    if fails:
        raise Fail("; ".join(fails))
    print("%d CANCELs from ports other than their INVITE's: each reached the phone" % a.rounds)
    return 0


def cmd_bigack(a):
    fails = []
    lsock, lport, usock = tcp_phone(a, "")
    c = Caller(a, "ba")
    ok, routes, target = c.establish(usock, lport)
    sdp = "v=0\r\no=alice 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0\r\n" % (HOST, HOST)
    sdp += "".join("a=x-pad:%02d 0123456789abcdef0123456789abcdef0123456789\r\n" % i for i in range(30))
    sdp += "a=x-end\r\n"
    ack = c.request("ACK", target, 1, "z9hG4bK%sack" % c.tag, ok.first("To"), routes, sdp)
    c.send(ack)
    lsock.settimeout(3)
    try:
        conn, _ = lsock.accept()
        m = read_message(conn, time.monotonic() + 3)
        conn.close()
    except socket.timeout:
        m = None
    if m is None:
        fails.append("the %d-byte ACK reached the callee over no TCP connection within 3 s" % len(ack))
    elif m.method != "ACK":
        fails.append("over TCP came %s, expected the ACK" % m.start)
    else:
        vias = m.values("Via")
        if not vias or not re.match(r"SIP/2\.0/TCP 127\.0\.0\.1:%d;" % a.port, vias[0]):
            fails.append("ACK top Via %r, expected sipd's SIP/2.0/TCP 127.0.0.1:%d" % (vias[:1], a.port))
        if m.body != sdp:
            fails.append("the ACK's body came %d bytes long, not the %d sent" % (len(m.body), len(sdp)))
    c.send(c.request("BYE", target, 2, "z9hG4bK%sbye" % c.tag, ok.first("To"), routes))
    deadline = time.monotonic() + 5
    bye = None
    while bye is None:
        m, src = recv_msg(usock, deadline)
        if m is None:
            fails.append("no BYE reached the callee at udp:127.0.0.1:%d" % lport)
            break
        if m.method == "BYE":
            bye = m
            usock.sendto(response(m, 200, "OK", None), src)
        elif m.method != "INVITE":
            fails.append("over UDP came %s" % m.start)
    if bye is not None:
        b = c.final(2, "BYE")
        if b.code != 200:
            fails.append("BYE: expected 200, got '%s'" % b.start)
    for s_ in (lsock, usock, c.sock):
        s_.close()
    if fails:
        raise Fail("; ".join(fails))
    print("ACK of %d bytes over TCP" % len(ack))
    return 0


def cmd_strayresp(a):
    """A response that matches no transaction of sipd's, with sipd's Via on top and this process's
    second, preceded by CRLFs (7.5: ignored): nothing may come back within 2 s. RFC 6026 7.3: a
    transaction-stateful proxy forwards no response without a client transaction, not even a 2xx to an
    INVITE (those that follow an answered INVITE's first match its Accepted transaction: answered2xx);
    RFC 4320 4.2 said as much for a non-INVITE. --status, --method: the code and the CSeq method."""
    sock = udp_socket(0)
    lport = sock.getsockname()[1]
    reason = REASONS.get(a.status, "Whatever")
    resp = ("\r\n\r\nSIP/2.0 %d %s\r\n" % (a.status, reason) +
            "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bKstray1\r\n"
            "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bKstray2\r\n"
            "From: <sip:alice@%s>;tag=st1\r\nTo: <sip:bob@%s>;tag=st2\r\nCall-ID: stray-%d@%s\r\n"
            "CSeq: 7 %s\r\nContent-Length: 0\r\n\r\n"
            % (HOST, a.port, HOST, lport, HOST, HOST, lport, HOST, a.method))
    sock.sendto(resp.encode(), (HOST, a.port))
    m, _ = recv_msg(sock, time.monotonic() + 2)
    sock.close()
    if m is not None:
        raise Fail("a stray %d to %s was passed on: %r" % (a.status, a.method, m.raw[:40]))
    print("the stray %d to %s was dropped" % (a.status, a.method))
    return 0


def cmd_byeretx(a):
    """A call through sipd, then the caller's BYE sent again after its 200 (same branch): sipd's
    transaction answers it with the same 200, byte for byte, and the callee sees no second BYE."""
    lsock, lport, usock = tcp_phone(a, "")
    c = Caller(a, "br")

    def callee_byes(wait):
        """The BYEs reaching the callee within wait seconds, each answered 200."""
        got = []
        deadline = time.monotonic() + wait
        while True:
            m, src = recv_msg(usock, deadline)
            if m is None:
                return got
            if m.method == "BYE":
                got.append(m)
                usock.sendto(response(m, 200, "OK", None), src)

    ok, routes, target = c.establish(usock, lport)
    c.send(c.request("ACK", target, 1, "z9hG4bK%sack" % c.tag, ok.first("To"), routes))
    bye = c.request("BYE", target, 2, "z9hG4bK%sbye" % c.tag, ok.first("To"), routes)
    c.send(bye)
    byes = callee_byes(2.0)
    if len(byes) != 1:
        raise Fail("%d BYEs reached the callee, expected 1" % len(byes))
    first = c.final(2, "BYE")
    if first.code != 200:
        raise Fail("BYE: expected 200, got '%s'" % first.start)
    fails = []
    time.sleep(1.1)  # later than the callee's 200: only sipd's transaction can answer now
    c.send(bye)  # the retransmission: same branch, same bytes
    again = c.final(2, "BYE")
    if again.raw != first.raw:
        fails.append("the retransmitted BYE's answer differs from the first 200:\n%s\n---\n%s"
                     % (first.text(), again.text()))
    later = callee_byes(1.5)
    if later:
        fails.append("the retransmitted BYE reached the callee again: %s" % later[0].start)
    for s_ in (lsock, usock, c.sock):
        s_.close()
    if fails:
        raise Fail("; ".join(fails))
    print("BYE retransmission answered by sipd with the same 200; the callee saw one BYE")
    return 0


def cmd_answered2xx(a):
    """RFC 6026 8.4, 7.3: a call through sipd answered 200 by a.user's phone; before the caller ACKs, the
    phone sends that 200 again (13.3.1.4) and then a 200 with another To tag on the same branch (a second
    fork behind it). sipd's client transaction, Accepted, passes both on by the caller's Via, status line
    first, sipd's Via gone, body whole. A 486 and a 180 on that branch after the 200 are dropped.
    --maddr: the caller's Via is 192.0.2.9:<a second socket's port>;maddr=127.0.0.1 (no rport): every 200
    must reach that second socket, none the sender (18.2.2). --late S: S seconds after the first 200
    (past Timer M) the phone's 200 once more must not come through. Then ACK and BYE end the call."""
    lsock, lport, usock = tcp_phone(a, "")
    c = Caller(a, "a2")
    if a.caller_to:  # the caller reaches sipd at another listener: the 200s passed on must leave from there
        c.sipd = (a.caller_to, a.port)
    if a.maddr:
        c.rsock = udp_socket(0)
        c.sent_by, c.via_params = "192.0.2.9:%d" % c.rsock.getsockname()[1], ";maddr=%s" % HOST
    inv, src = c.invite(usock, lport)
    contact = ["Contact: <sip:callee@%s:%d>" % (HOST, lport)]
    ok = response(inv, 200, "OK", "a2p1", contact, SDP_ANSWER)
    usock.sendto(ok, src)
    first = c.final(1, "INVITE")
    t_first = time.monotonic()
    fails = []

    def comes(what, tag):
        m, src = recv_msg(c.rsock, time.monotonic() + 2)
        if m is None:
            fails.append("%s did not reach the caller within 2 s" % what)
            return
        if src != c.sipd:
            fails.append("%s came from %s:%d, expected %s:%d, where the INVITE went (RFC 3581 4)"
                         % (what, src[0], src[1], c.sipd[0], c.sipd[1]))
        vias = m.values("Via")
        if not m.raw.startswith(b"SIP/2.0 200 OK\r\n") or (m.first("CSeq") or "").split() != ["1", "INVITE"]:
            fails.append("%s came as %r" % (what, m.raw[:40]))
        elif ";tag=%s" % tag not in (m.first("To") or ""):
            fails.append("%s came with To %r, expected tag %s" % (what, m.first("To"), tag))
        elif len(vias) != 1 or "z9hG4bK%sinv" % c.tag not in vias[0]:
            fails.append("%s came with Vias %r, expected only the caller's" % (what, vias))
        elif not m.raw.endswith(SDP_ANSWER.encode()):
            fails.append("%s came without its SDP body" % what)

    def nothing(wait, after):
        m, _ = recv_msg(c.rsock, time.monotonic() + wait)
        if m is not None:
            fails.append("after %s the caller got %s" % (after, m.start))

    if first.code != 200 or ";tag=a2p1" not in (first.first("To") or ""):
        fails.append("the caller's first final was '%s' To %r, expected 200 with tag a2p1"
                     % (first.start, first.first("To")))
    usock.sendto(ok, src)
    comes("the phone's 200 sent again", "a2p1")
    usock.sendto(response(inv, 200, "OK", "a2p2", contact, SDP_ANSWER), src)
    comes("a 200 with another To tag on the same branch", "a2p2")
    usock.sendto(response(inv, 486, "Busy Here", "a2p3"), src)
    usock.sendto(response(inv, 180, "Ringing", "a2p1", contact), src)
    nothing(1.0, "a 486 and a 180 on the answered branch")
    if a.late:
        time.sleep(max(0.0, t_first + a.late - time.monotonic()))
        usock.sendto(ok, src)
        nothing(1.5, "the phone's 200 %.0f s after the first (past Timer M)" % a.late)
    if a.maddr:
        m, _ = recv_msg(c.sock, time.monotonic() + 0.1)
        if m is not None:
            fails.append("the sender's socket got %s: responses go to the Via's maddr" % m.start)
    rr = [v.strip() for line in first.values("Record-Route") for v in line.split(",")]
    routes = ["Route: %s" % ", ".join(reversed(rr))] if rr else []
    target = "sip:callee@%s:%d" % (HOST, lport)
    c.send(c.request("ACK", target, 1, "z9hG4bK%sack" % c.tag, first.first("To"), routes))
    c.send(c.request("BYE", target, 2, "z9hG4bK%sbye" % c.tag, first.first("To"), routes))
    got, deadline = [], time.monotonic() + 3
    while "BYE" not in got:
        m, bsrc = recv_msg(usock, deadline)
        if m is None:
            break
        got.append(m.method or "SIP/2.0 %s" % m.code)
        if m.method == "BYE":
            usock.sendto(response(m, 200, "OK", None), bsrc)
    if got != ["ACK", "BYE"]:
        fails.append("the phone got %s after its 200s, expected the ACK, then the BYE" % got)
    elif c.final(2, "BYE").code != 200:
        fails.append("the BYE's answer was not 200")
    for s_ in {lsock, usock, c.sock, c.rsock}:
        s_.close()
    if fails:
        raise Fail("; ".join(fails))
    print("the 200 sent again and another fork's 200 passed on%s; the 486 and 180 after them dropped"
          % (", none past Timer M" if a.late else ""))
    return 0


def cmd_inviteretx(a):
    """RFC 6026 7.1: a call through sipd answered 200, then the caller's INVITE sent again (same branch, as
    a caller whose Timer A fired before the 200 reached it). sipd's INVITE transaction, Accepted, absorbs
    it: the callee sees one INVITE, the caller no second answer from sipd. A CANCEL that crossed the 200
    matches that transaction too: 200 (9.2), and the callee sees no CANCEL. Then ACK and BYE end the call
    (the callee's 200 to the BYE comes back)."""
    lsock, lport, usock = tcp_phone(a, "")
    c = Caller(a, "ir")
    ok, routes, target = c.establish(usock, lport)
    fails = []
    time.sleep(0.6)
    c.send(c.request("INVITE", c.ruri, 1, "z9hG4bK%sinv" % c.tag, "<%s>" % c.ruri))  # the first's bytes
    m, _ = recv_msg(usock, time.monotonic() + 2.0)
    if m is not None:
        fails.append("the retransmitted INVITE reached the callee again: %s" % m.start)
    m, _ = recv_msg(c.sock, time.monotonic() + 0.5)
    if m is not None:
        fails.append("the retransmitted INVITE got an answer from sipd: %s" % m.start)
    # a CANCEL that crossed the 200: it matches the Accepted transaction (9.2: 200) and cancels nothing
    c.send(c.request("CANCEL", c.ruri, 1, "z9hG4bK%sinv" % c.tag, "<%s>" % c.ruri))
    r = c.final(1, "CANCEL")
    if r.code != 200:
        fails.append("the late CANCEL got '%s', expected 200 (it matches the Accepted INVITE)" % r.start)
    c.send(c.request("ACK", target, 1, "z9hG4bK%sack" % c.tag, ok.first("To"), routes))
    c.send(c.request("BYE", target, 2, "z9hG4bK%sbye" % c.tag, ok.first("To"), routes))
    deadline = time.monotonic() + 3
    acked = False
    while True:
        m, src = recv_msg(usock, deadline)
        if m is None:
            fails.append("no BYE reached the callee within 3 s")
            break
        if m.method == "ACK":
            acked = True
        elif m.method == "BYE":
            usock.sendto(response(m, 200, "OK", None), src)
            break
        else:
            fails.append("the callee got %s" % m.start)
    if not acked:
        fails.append("the ACK did not reach the callee before the BYE")
    if not fails and c.final(2, "BYE").code != 200:
        fails.append("the BYE's answer was not 200")
    for s_ in (lsock, usock, c.sock):
        s_.close()
    if fails:
        raise Fail("; ".join(fails))
    print("INVITE retransmission after the 200 absorbed by sipd; the callee saw one INVITE")
    return 0


def cmd_fork200(a):
    """16.7 step 5: a.user's two phones (equal q) both answer the forked INVITE 200 at once, as happens when
    two phones are picked up together: both 2xx must reach the caller, each with its own To tag, the
    second too although the first already ended the search (RFC 6026: the server transaction, Accepted,
    and its response context stay while a branch is pending). The caller ACKs both and hangs up the second
    with a BYE (13.2.2.4); both ACKs and the BYE must reach their phone."""
    phones = []
    for _ in range(2):
        sock = udp_socket(0)
        port = sock.getsockname()[1]
        r = register(sock, a.port, a.user, a.password, ["<sip:callee@%s:%d>" % (HOST, port)], 300)
        if r.code != 200:
            raise Fail("REGISTER %s: expected 200, got '%s'" % (a.user, r.start))
        phones.append((sock, port))
    c = Caller(a, "f2")
    if a.caller_to:  # the caller reaches sipd at another listener: every answer must leave from there
        c.sipd = (a.caller_to, a.port)
    c.send(c.request("INVITE", c.ruri, 1, "z9hG4bK%sinv" % c.tag, "<%s>" % c.ruri))
    fails = []
    for i, (sock, port) in enumerate(phones):
        deadline = time.monotonic() + 3
        while True:
            inv, src = recv_msg(sock, deadline)
            if inv is None or inv.method == "INVITE":
                break
        if inv is None:
            raise Fail("phone %d (udp:127.0.0.1:%d) got no INVITE within 3 s" % (i + 1, port))
        contact = "Contact: <sip:callee@%s:%d>" % (HOST, port)
        sock.sendto(response(inv, 200, "OK", "f2p%d" % (i + 1), [contact], SDP_ANSWER), src)
    oks, deadline = {}, time.monotonic() + 2
    while len(oks) < 2:
        m, src = recv_msg(c.sock, deadline)
        if m is None:
            break
        if m.code == 200 and "1 INVITE" in (m.first("CSeq") or ""):
            tag = re.search(r";tag=([^;>\s]+)", m.first("To") or "")
            oks.setdefault(tag.group(1) if tag else "", m)
            if src != c.sipd:
                fails.append("the 200 with To tag %s came from %s:%d, expected %s:%d (RFC 3581 4)"
                             % (tag.group(1) if tag else "?", src[0], src[1], c.sipd[0], c.sipd[1]))
    if sorted(oks) != ["f2p1", "f2p2"]:
        fails.append("the caller got 200s with To tags %s within 2 s, expected f2p1 and f2p2" % sorted(oks))
    for tag, ok in sorted(oks.items()):
        rr = [v.strip() for line in ok.values("Record-Route") for v in line.split(",")]
        routes = ["Route: %s" % ", ".join(reversed(rr))] if rr else []
        target = re.search(r"<([^>]+)>", ok.first("Contact") or "").group(1)
        c.send(c.request("ACK", target, 1, "z9hG4bK%sack%s" % (c.tag, tag), ok.first("To"), routes))
        if tag == "f2p2":
            c.send(c.request("BYE", target, 2, "z9hG4bK%sbye" % c.tag, ok.first("To"), routes))
    for i, (sock, port) in enumerate(phones):
        want = ["ACK", "BYE"] if i == 1 else ["ACK"]
        got, deadline = [], time.monotonic() + 2
        while len(got) < len(want):
            m, src = recv_msg(sock, deadline)
            if m is None:
                break
            if m.method == "BYE":
                sock.sendto(response(m, 200, "OK", None), src)
            if m.method in ("ACK", "BYE"):
                got.append(m.method)
        if got != want and len(oks) == 2:
            fails.append("phone %d got %s, expected %s" % (i + 1, got, want))
        sock.close()
    c.sock.close()
    if fails:
        raise Fail("; ".join(fails))
    print("both 200s reached the caller (To tags f2p1, f2p2); ACKs and the BYE reached the phones")
    return 0


def split_values(header_values):
    """Comma-separated name-addr values, as a list (no commas inside these tests' URIs)."""
    return [v.strip() for hv in header_values for v in hv.split(",") if v.strip()]


def dialog_request(sock, method, ruri, cseq, frm, to, callid, route=(), contact=None):
    """A request over UDP from sock, Via naming its port, with the Route values and a Contact."""
    lines = ["%s %s SIP/2.0" % (method, ruri),
             "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bKdr%06d;rport" % (HOST, sock.getsockname()[1],
                                                                   random.randrange(10 ** 6)),
             "Max-Forwards: 70", "From: %s" % frm, "To: %s" % to, "Call-ID: %s" % callid,
             "CSeq: %d %s" % (cseq, method)]
    lines += ["Route: %s" % r for r in route]
    lines += ["Contact: <%s>" % contact] if contact else []
    return ("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode()


def final_response(sock, port, data, cseq, method):
    """data sent to sipd from sock as Timer E would; the final response for CSeq cseq method."""
    for r in retransmitted(sock, data, port, time.monotonic() + 8, lambda r: r.code is not None):
        if r.code and r.code >= 200 and (r.first("CSeq") or "").split() == [str(cseq), method]:
            return r
    raise Fail("no final response to %s CSeq %d within 8 s" % (method, cseq))


def bye_through(port, sender, receiver, data, what):
    """Sends the BYE data from sender to sipd: it must reach receiver (answered 200 there) and the 200
    come back to sender. A failure as text, None when it went so."""
    sender.sendto(data, (HOST, port))
    deadline, got = time.monotonic() + 8, None
    while got is None:
        m, addr = recv_msg(receiver, deadline)
        if m is None:
            return "%s did not arrive" % what
        if m.method == "BYE":
            got = m
            receiver.sendto(response(m, 200, "OK", None), addr)
    while True:
        m, _ = recv_msg(sender, deadline)
        if m is None or (m.code and (m.first("CSeq") or "").endswith("BYE")):
            break
    if m is None or m.code != 200:
        return "%s: expected 200, got %s" % (what, m.start if m else "nothing")
    return None


def cmd_moved(a):
    """RFC 3261 12.2: a target refresh. mallory (another domain) calls bob; then, from a new port, sends a
    re-INVITE whose Contact names that port: bob's BYE to the new Contact (with the route set bob got,
    signed toward mallory's first Contact) must reach mallory there. Before it, a re-INVITE whose Contact
    names --target (not the address it came from) must not be followed: bob's INFO there gets 403."""
    bob = udp_socket(0)
    bport = bob.getsockname()[1]
    bcontact = "sip:callee@%s:%d" % (HOST, bport)
    r = register(bob, a.port, "bob", a.password, ["<%s>" % bcontact], 300)
    if r.code != 200:
        raise Fail("REGISTER bob: expected 200, got '%s'" % r.start)
    m1, m2 = udp_socket(0), udp_socket(0)
    tag, callid = "mv%06d" % random.randrange(10 ** 6), "moved-%d@evil.example" % os.getpid()
    mfrom = "<sip:mallory@evil.example>;tag=%s" % tag

    def req(sock, method, ruri, cseq, frm, to, route=(), contact=None):
        return dialog_request(sock, method, ruri, cseq, frm, to, callid, route, contact)

    def answer_at_bob(method, contact=bcontact):
        deadline = time.monotonic() + 8
        while True:
            m, addr = recv_msg(bob, deadline)
            if m is None:
                raise Fail("bob's phone got no %s within 8 s" % method)
            if m.method == method:
                bob.sendto(response(m, 200, "OK", btag, ["Contact: <%s>" % contact]), addr)
                return m

    def final(sock, data, cseq, method):
        return final_response(sock, a.port, data, cseq, method)

    def invite(sock, data, cseq):
        """An INVITE through sipd that bob answers 200: that 200, as sock got it."""
        sock.sendto(data, (HOST, a.port))
        answered = answer_at_bob("INVITE")
        deadline = time.monotonic() + 8
        while True:
            m, _ = recv_msg(sock, deadline)
            if m is None:
                raise Fail("no 200 to INVITE CSeq %d within 8 s" % cseq)
            if m.code == 200 and (m.first("CSeq") or "").split() == [str(cseq), "INVITE"]:
                return answered, m

    btag = "bo%06d" % random.randrange(10 ** 6)
    inv, ok = invite(m1, req(m1, "INVITE", "sip:bob@%s:%d" % (HOST, a.port), 1, mfrom, "<sip:bob@%s>" % HOST,
                             contact="sip:mallory@%s:%d" % (HOST, m1.getsockname()[1])), 1)
    rr_in = split_values(inv.values("Record-Route"))
    to = ok.first("To")
    route = list(reversed(split_values(ok.values("Record-Route"))))
    m1.sendto(req(m1, "ACK", bcontact, 1, mfrom, to, route), (HOST, a.port))
    fails = []
    # a refresh naming another host than the one it came from: relayed, not followed
    invite(m2, req(m2, "INVITE", bcontact, 2, mfrom, to, route, contact=a.target), 2)
    m2.sendto(req(m2, "ACK", bcontact, 2, mfrom, to, route), (HOST, a.port))
    r = final(bob, req(bob, "INFO", a.target, 1, to, mfrom, rr_in), 1, "INFO")
    if r.code != 403:
        fails.append("bob's INFO to %s (a Contact mallory did not send from): expected 403, got '%s'"
                     % (a.target, r.start))
    # mallory moved: its refresh comes from the port its Contact names
    new = "sip:mallory@%s:%d" % (HOST, m2.getsockname()[1])
    invite(m2, req(m2, "INVITE", bcontact, 3, mfrom, to, route, contact=new), 3)
    m2.sendto(req(m2, "ACK", bcontact, 3, mfrom, to, route), (HOST, a.port))
    failed = bye_through(a.port, bob, m2, req(bob, "BYE", new, 2, to, mfrom, rr_in),
                         "bob's BYE to mallory's new Contact %s" % new)
    if failed:
        fails.append(failed)
    for sock in (m1, m2, bob):
        sock.close()
    if fails:
        raise Fail("; ".join(fails))
    return 0


def cmd_reuse(a):
    """A party to a dialog through sipd reuses its Record-Route. bob's phone registers; mallory (another
    domain, no credentials) calls bob, and bob answers 200 with a Contact and the Record-Route. The 200
    mallory gets must carry sipd's Record-Route with another signature than the INVITE's (the caller's own,
    16.7 step 4). Then, with the route set of the call: mallory's in-dialog INVITE to --target, and bob's
    BYE to --target, must get 403 (nothing reaches --target: the shell's sink watches it); mallory's BYE
    to bob's Contact reaches bob and gets 200."""
    bob = udp_socket(0)
    contact = "sip:callee@%s:%d" % (HOST, bob.getsockname()[1])
    r = register(bob, a.port, "bob", a.password, ["<%s>" % contact], 300)
    if r.code != 200:
        raise Fail("REGISTER bob: expected 200, got '%s'" % r.start)
    mal = udp_socket(0)
    mport = mal.getsockname()[1]
    mcontact = "sip:mallory@%s:%d" % (HOST, mport)
    tag, callid = "ma%06d" % random.randrange(10 ** 6), "reuse-%d@evil.example" % os.getpid()
    frm = "<sip:mallory@evil.example>;tag=%s" % tag

    def req(method, ruri, cseq, to, route=(), sock=mal, frm=frm, contact=mcontact):
        return dialog_request(sock, method, ruri, cseq, frm, to, callid, route,
                              contact if method == "INVITE" else None)

    def final(sock, data, cseq, method):
        return final_response(sock, a.port, data, cseq, method)

    mal.sendto(req("INVITE", "sip:bob@%s:%d" % (HOST, a.port), 1, "<sip:bob@%s>" % HOST), (HOST, a.port))
    inv, addr = None, None
    deadline = time.monotonic() + 8
    while inv is None:
        m, addr = recv_msg(bob, deadline)
        if m is None:
            raise Fail("bob's phone got no INVITE within 8 s")
        if m.method == "INVITE":
            inv = m
    btag = "bo%06d" % random.randrange(10 ** 6)
    rr_in = split_values(inv.values("Record-Route"))
    if not rr_in or "sg=" not in rr_in[0]:
        raise Fail("the INVITE bob got has no signed Record-Route: %r" % rr_in)
    bob.sendto(response(inv, 200, "OK", btag, ["Contact: <%s>" % contact]), addr)
    ok = None
    while ok is None:
        m, _ = recv_msg(mal, deadline)
        if m is None:
            raise Fail("mallory got no 200 within 8 s")
        if m.code == 200:
            ok = m
    rr_out = split_values(ok.values("Record-Route"))
    fails = []
    sg = lambda v: re.search(r";sg=([0-9a-f]+)", v).group(1) if re.search(r";sg=([0-9a-f]+)", v) else None
    if len(rr_out) != len(rr_in) or [re.sub(r";sg=\w+", "", v) for v in rr_out] != \
            [re.sub(r";sg=\w+", "", v) for v in rr_in]:
        fails.append("the 200's Record-Route %r is not the INVITE's %r but for the signature" % (rr_out, rr_in))
    elif sg(rr_out[0]) is None or sg(rr_out[0]) == sg(rr_in[0]):
        fails.append("the 200 carries the callee's signature (%s) back to the caller, not the caller's own"
                     % sg(rr_out[0]))
    to = ok.first("To")
    route = list(reversed(rr_out))
    mal.sendto(req("ACK", contact, 1, to, route), (HOST, a.port))
    # mallory's own dialog, its own Route, toward a trunk that trusts sipd's address: 403
    r = final(mal, req("INVITE", a.target, 2, to, route), 2, "INVITE")
    if r.code != 403 or "not a dialog of this proxy" not in r.start:
        fails.append("mallory's in-dialog INVITE to %s: expected 403 Relaying denied: not a dialog of this "
                     "proxy, got '%s'" % (a.target, r.start))
    # bob's copy of the route set is signed toward mallory's Contact, not anywhere
    bob_from = "%s" % to
    r = final(bob, req("BYE", a.target, 1, frm, rr_in, sock=bob, frm=bob_from), 1, "BYE")
    if r.code != 403:
        fails.append("bob's BYE to %s: expected 403, got '%s'" % (a.target, r.start))
    # and the dialog still works the way it was set up: mallory's BYE reaches bob
    failed = bye_through(a.port, mal, bob, req("BYE", contact, 3, to, route),
                         "mallory's BYE to bob's Contact through the Route")
    if failed:
        fails.append(failed)
    mal.close()
    bob.close()
    if fails:
        raise Fail("; ".join(fails))
    return 0


def wait_for(src, pred, seconds=8):
    """The first message from src (a UDP socket, or a function of a deadline giving (message, address))
    that pred takes, within seconds: (message, address), or (None, None)."""
    recv = src if callable(src) else (lambda deadline: recv_msg(src, deadline))
    deadline = time.monotonic() + seconds
    while True:
        m, addr = recv(deadline)
        if m is None or pred(m):
            return m, addr


def mallory_calls_bob(port, mal, send, mcontact, bob, name):
    """mallory (another domain, no credentials) sends INVITE sip:bob@HOST:port from mal (by send) with
    Contact mcontact; bob's phone (a UDP socket) gets it. (From, Call-ID, the INVITE, where it came from)."""
    tag, callid = "m%s%06d" % (name[:2], random.randrange(10 ** 6)), "%s-%d@evil.example" % (name, os.getpid())
    frm = "<sip:mallory@evil.example>;tag=%s" % tag
    send(dialog_request(mal, "INVITE", "sip:bob@%s:%d" % (HOST, port), 1, frm, "<sip:bob@%s>" % HOST, callid,
                        contact=mcontact))
    inv, addr = wait_for(bob, lambda m: m.method == "INVITE")
    if inv is None:
        raise Fail("bob's phone got no INVITE within 8 s")
    return frm, callid, inv, addr


def cmd_listeners(a):
    """sipd listens on udp:127.0.0.1:PORT and udp:SECOND:PORT. bob registers through SECOND: the 401 and the
    200 come from SECOND:PORT, and the database keeps the listener with the binding. mallory (another domain)
    calls bob through 127.0.0.1: the INVITE reaches bob from SECOND:PORT (its NAT would let in nothing else),
    its Via names SECOND:PORT and two Record-Routes name each side; mallory's answers come from 127.0.0.1.
    The ACK through the route set reaches bob from SECOND, bob's BYE reaches mallory from 127.0.0.1, and its
    200 comes back to bob from SECOND."""
    port, second = a.port, a.second
    named = a.named or second  # what sipd names itself by at SECOND: its own, or what it advertises there
    fails = []

    def expect_from(what, addr, host):
        if addr != (host, port):
            fails.append("%s came from %s, expected %s:%d" % (what, "%s:%d" % addr if addr else "nowhere", host, port))

    bob = udp_socket(0)
    contact = "sip:bob@%s:%d" % (HOST, bob.getsockname()[1])
    r = register(bob, port, "bob", a.password, ["<%s>" % contact], 300, to_host=second)
    if r.code != 200:
        raise Fail("REGISTER bob through %s: expected 200, got '%s'" % (second, r.start))
    expect_from("the 401 to bob's REGISTER through %s" % second, getattr(r, "src401", None), second)
    expect_from("the 200 to bob's REGISTER through %s" % second, r.src, second)
    try:
        with sqlite3.connect(a.db) as db:
            rows = db.execute("SELECT local FROM bindings WHERE contact = ?", (contact,)).fetchall()
    except sqlite3.Error as e:
        rows = str(e)
    if rows != [("udp:%s:%d" % (second, port),)]:
        fails.append("the database keeps bob's binding with local %r, expected udp:%s:%d" % (rows, second, port))
    mal = udp_socket(0)
    mcontact = "sip:mallory@%s:%d" % (HOST, mal.getsockname()[1])
    frm, callid, inv, addr = mallory_calls_bob(port, mal, lambda d: mal.sendto(d, (HOST, port)), mcontact, bob,
                                               "listeners")
    expect_from("the INVITE to bob", addr, second)
    via = inv.first("Via") or ""
    if not via.startswith("SIP/2.0/UDP %s:%d;" % (named, port)):
        fails.append("the INVITE's top Via names '%s', expected %s:%d" % (via, named, port))
    rr_in = split_values(inv.values("Record-Route"))
    want = [r"^<sip:%s:%d;lr;sg=\w+>$" % (re.escape(h), port) for h in (named, HOST)]
    if len(rr_in) != 2 or not all(re.match(w, v) for w, v in zip(want, rr_in)):
        fails.append("the INVITE's Record-Route %r: expected one for each side, %s:%d on top and %s:%d below"
                     % (rr_in, named, port, HOST, port))
    btag = "bl%06d" % random.randrange(10 ** 6)
    bob.sendto(response(inv, 200, "OK", btag, ["Contact: <%s>" % contact]), addr)
    ok, addr = wait_for(mal, lambda m: m.code == 200)
    if ok is None:
        raise Fail("mallory got no 200 within 8 s")
    expect_from("the 200 to mallory's INVITE", addr, HOST)
    to = ok.first("To")
    route = list(reversed(split_values(ok.values("Record-Route"))))
    mal.sendto(dialog_request(mal, "ACK", contact, 1, frm, to, callid, route), (HOST, port))
    ack, addr = wait_for(bob, lambda m: m.method == "ACK")
    if ack is None:
        raise Fail("bob's phone got no ACK within 8 s")
    expect_from("the ACK to bob", addr, second)
    if not (ack.first("Via") or "").startswith("SIP/2.0/UDP %s:%d;" % (named, port)):
        fails.append("the ACK's top Via names '%s', expected %s:%d" % (ack.first("Via"), named, port))
    bye = dialog_request(bob, "BYE", mcontact, 1, to, frm, callid, rr_in)
    bob.sendto(bye, (second, port))
    m, addr = wait_for(mal, lambda m: m.method == "BYE")
    if m is None:
        raise Fail("mallory got no BYE within 8 s")
    expect_from("bob's BYE to mallory", addr, HOST)
    if not (m.first("Via") or "").startswith("SIP/2.0/UDP %s:%d;" % (HOST, port)):
        fails.append("the BYE's top Via names '%s', expected %s:%d" % (m.first("Via"), HOST, port))
    mal.sendto(response(m, 200, "OK", None), addr)
    ok, addr = wait_for(bob, lambda m: m.code == 200 and (m.first("CSeq") or "").endswith("BYE"))
    if ok is None:
        raise Fail("bob got no 200 to his BYE within 8 s")
    expect_from("the 200 to bob's BYE", addr, second)
    mal.close()
    bob.close()
    if fails:
        raise Fail("; ".join(fails))
    return 0


def cmd_advertised(a):
    """sipd behind a 1:1 NAT: it listens on 127.0.0.1:PORT and [general] advertise names PUBLIC (where
    nothing listens: the NAT's address). bob registers with REGISTER sip:PUBLIC:PORT (sipd's own domain:
    200); mallory calls bob: the INVITE reaches bob with sipd's Via and Record-Route naming PUBLIC:PORT,
    so that bob's answers and requests of the dialog go to the address the world reaches sipd at; the 200
    reaches mallory with that Record-Route; mallory's ACK and bob's BYE, their Route naming PUBLIC (sent to
    127.0.0.1, as the NAT would pass them on), are taken as sipd's own Route and reach the other party."""
    port, pub = a.port, a.public
    fails = []

    bob = udp_socket(0)
    contact = "sip:bob@%s:%d" % (HOST, bob.getsockname()[1])
    r = register(bob, port, "bob", a.password, ["<%s>" % contact], 300, domain="%s:%d" % (pub, port))
    if r.code != 200:
        raise Fail("REGISTER sip:%s:%d (the advertised address): expected 200, got '%s'" % (pub, port, r.start))
    r = register(bob, port, "bob", a.password, ["<%s>" % contact], 300)
    if r.code != 200:
        raise Fail("REGISTER bob: expected 200, got '%s'" % r.start)
    mal = udp_socket(0)
    mcontact = "sip:mallory@%s:%d" % (HOST, mal.getsockname()[1])
    frm, callid, inv, addr = mallory_calls_bob(port, mal, lambda d: mal.sendto(d, (HOST, port)), mcontact, bob, "adv")
    if not (inv.first("Via") or "").startswith("SIP/2.0/UDP %s:%d;" % (pub, port)):
        fails.append("the INVITE's top Via names '%s', expected %s:%d" % (inv.first("Via"), pub, port))
    rr_in = split_values(inv.values("Record-Route"))
    if len(rr_in) != 1 or not re.match(r"^<sip:%s:%d;lr;sg=\w+>$" % (re.escape(pub), port), rr_in[0]):
        fails.append("the INVITE's Record-Route %r, expected one naming %s:%d" % (rr_in, pub, port))
    bob.sendto(response(inv, 200, "OK", "ba%06d" % random.randrange(10 ** 6), ["Contact: <%s>" % contact]), addr)
    ok, _ = wait_for(mal, lambda m: m.code == 200)
    if ok is None:
        raise Fail("mallory got no 200 within 8 s")
    to = ok.first("To")
    route = list(reversed(split_values(ok.values("Record-Route"))))
    mal.sendto(dialog_request(mal, "ACK", contact, 1, frm, to, callid, route), (HOST, port))
    ack, _ = wait_for(bob, lambda m: m.method == "ACK", 4)
    if ack is None:
        fails.append("mallory's ACK with Route %r did not reach bob" % route)
    elif ack.values("Route"):
        fails.append("the ACK reached bob with Route %r: sipd did not take its own off" % ack.values("Route"))
    failed = bye_through(port, bob, mal, dialog_request(bob, "BYE", mcontact, 1, to, frm, callid, rr_in),
                         "bob's BYE with Route %r" % rr_in)
    if failed:
        fails.append(failed)
    mal.close()
    bob.close()
    if fails:
        raise Fail("; ".join(fails))
    return 0


def cmd_natcall(a):
    """Two parties behind NATs, without STUN: each writes its private address in its Contact. bob registers
    with Contact sip:bob@10.0.0.99:5060; mallory (another domain) calls him with Contact
    sip:mallory@10.1.1.1:5060, over UDP or (--tcp-caller) over a TCP connection of hers. Each Contact sipd
    relays gets a ;nat= token (bob's INVITE, mallory's 200), the requests of the dialog sent to those
    Contacts through sipd's Route reach the parties where they sent from (mallory's on her connection),
    with the token taken off their Request-URI (mallory's ACK, bob's BYE and its 200): without it the ACK
    went to 10.0.0.99 and the call ended at Timer H. A token whose MAC does not hold is not followed
    (nothing reaches bob)."""
    port = a.port
    fails = []

    def uri_of(contact):
        return re.sub(r"^[^<]*<([^>]*)>.*$", r"\1", contact or "")

    bob = udp_socket(0)
    bcontact = "sip:bob@10.0.0.99:5060"
    r = register(bob, port, "bob", a.password, ["<%s>" % bcontact], 300)
    if r.code != 200:
        raise Fail("REGISTER bob with Contact %s: expected 200, got '%s'" % (bcontact, r.start))
    if a.tcp_caller:
        mal = socket.create_connection((HOST, port), timeout=5)
        stream = Stream(mal)
        mal_send = lambda data: mal.sendall(data.replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP", 1))
        mal_recv = lambda deadline: (stream.read(deadline), None)
    else:
        mal = udp_socket(0)
        mal_send = lambda data: mal.sendto(data, (HOST, port))
        mal_recv = lambda deadline: recv_msg(mal, deadline)
    mcontact = "sip:mallory@10.1.1.1:5060"
    frm, callid, inv, addr = mallory_calls_bob(port, mal, mal_send, mcontact, bob, "natcall")
    minv = uri_of(inv.first("Contact"))
    if not re.match(r"^%s;nat=%s[0-9a-f]+\.[0-9a-f]{16}$" % (re.escape(mcontact), "tcp-" if a.tcp_caller else ""), minv):
        fails.append("the INVITE's Contact is '%s', expected mallory's with a ;nat= token" % inv.first("Contact"))
    rr_in = split_values(inv.values("Record-Route"))
    bob.sendto(response(inv, 200, "OK", "bn%06d" % random.randrange(10 ** 6), ["Contact: <%s>" % bcontact]), addr)
    ok, _ = wait_for(mal_recv, lambda m: m.code == 200)
    if ok is None:
        raise Fail("mallory got no 200 within 8 s")
    b200 = uri_of(ok.first("Contact"))
    if not re.match(r"^%s;nat=[0-9a-f]+\.[0-9a-f]{16}$" % re.escape(bcontact), b200):
        fails.append("the 200's Contact is '%s', expected bob's with a ;nat= token" % ok.first("Contact"))
    to = ok.first("To")
    route = list(reversed(split_values(ok.values("Record-Route"))))
    mal_send(dialog_request(mal, "ACK", b200, 1, frm, to, callid, route))
    ack, _ = wait_for(bob, lambda m: m.method == "ACK", 4)
    if ack is None:
        fails.append("mallory's ACK to %s did not reach bob's phone" % b200)
    elif ack.ruri != bcontact:
        fails.append("the ACK's Request-URI is '%s', expected bob's Contact as he wrote it, %s" % (ack.ruri, bcontact))
    # a token of sipd's with one digit of its MAC changed: not followed
    forged = b200[:-1] + ("0" if b200[-1] != "0" else "1")
    mal_send(dialog_request(mal, "INFO", forged, 2, frm, to, callid, route))
    m, _ = wait_for(bob, lambda m: m.method == "INFO", 1.5)
    if m is not None:
        fails.append("an INFO whose ;nat= token was tampered with reached bob's phone")
    bob.sendto(dialog_request(bob, "BYE", minv, 1, to, frm, callid, rr_in), (HOST, port))
    bye, addr = wait_for(mal_recv, lambda m: m.method == "BYE", 4)
    if bye is None:
        fails.append("bob's BYE to %s did not reach mallory" % minv)
    else:
        if bye.ruri != mcontact:
            fails.append("the BYE's Request-URI is '%s', expected mallory's Contact as she wrote it, %s"
                         % (bye.ruri, mcontact))
        if a.tcp_caller:
            mal.sendall(response(bye, 200, "OK", None))
        else:
            mal.sendto(response(bye, 200, "OK", None), addr)
        ok, _ = wait_for(bob, lambda m: m.code == 200 and (m.first("CSeq") or "").endswith("BYE"), 4)
        if ok is None:
            fails.append("the 200 to bob's BYE did not come back")
    mal.close()
    bob.close()
    if fails:
        raise Fail("; ".join(fails))
    return 0


def cmd_sink(a):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((a.host, a.port))
    port = sock.getsockname()[1]  # --port 0: a free one, told in the ready file
    with open(a.ready, "w") as f:
        f.write("%d\n" % port)
    got = []
    t0 = time.monotonic()
    while True:
        m, _ = recv_msg(sock, t0 + a.seconds)
        if m is None:
            break
        got.append("%.1f s %s (To: %s)" % (time.monotonic() - t0, m.start, m.first("To")))
    sock.close()
    if got:
        raise Fail("udp:%s:%d, where nothing may come, got: %s" % (a.host, port, "; ".join(got)))
    return 0


def retransmitted(sock, data, port, deadline, stop=lambda r: False):
    """Sends data to sipd as Timer E does (0.5 s, doubling up to 4 s) and yields each response until
    deadline; a response for which stop() is true ends the retransmissions (17.1.1.2 for an INVITE)."""
    nxt, iv = time.monotonic(), 0.5
    while True:
        if time.monotonic() >= nxt:
            sock.sendto(data, (HOST, port))
            nxt = time.monotonic() + iv
            iv = min(iv * 2, 4.0)
        r, _ = recv_msg(sock, min(deadline, nxt))
        if r is None:
            if time.monotonic() >= deadline:
                return
            continue
        if stop(r):
            nxt = deadline
        yield r


def request_unanswered(a, sock, data):
    """--expect 0: the request, retransmitted as Timer E says, gets no response but 100 within --wait s
    (RFC 4320: no 408 to a non-INVITE, no provisional but 100)."""
    t0 = time.monotonic()
    got = ["%.1f s: %s" % (time.monotonic() - t0, r.start)
           for r in retransmitted(sock, data, a.port, t0 + a.wait) if r.code != 100]
    sock.close()
    if got:
        raise Fail("%s %s: expected no response but 100 within %.0f s, got %s" % (a.method, a.ruri, a.wait, got))
    print("%s %s: no response but 100 in %.0f s" % (a.method, a.ruri, a.wait))
    return 0


def request_cancelled(a, sock, data, cancel):
    """--cancel-after S: the request, no final within S s, then its CANCEL (same branch, 9.1), whose answer
    must be --expect; the request itself must then get no final within a second (a CANCEL does not end a
    non-INVITE: 9.1)."""
    t0 = time.monotonic()
    for r in retransmitted(sock, data, a.port, t0 + a.cancel_after):
        if r.code and r.code >= 200:
            raise Fail("%s %s: a final '%s' came before the CANCEL" % (a.method, a.ruri, r.start))
    sock.sendto(cancel, (HOST, a.port))
    got, deadline = None, time.monotonic() + 4.0
    while got is None:
        r, _ = recv_msg(sock, deadline)
        if r is None:
            raise Fail("no answer to the CANCEL of %s %s within 4 s" % (a.method, a.ruri))
        if r.code and re.match(r"^\d+\s+CANCEL$", r.first("CSeq") or ""):
            got = r
        elif r.code and r.code >= 200:
            raise Fail("%s %s: a final '%s' came before the CANCEL's answer" % (a.method, a.ruri, r.start))
    if got.code != a.expect:
        raise Fail("CANCEL of %s %s: expected %d, got '%s'" % (a.method, a.ruri, a.expect, got.start))
    deadline = time.monotonic() + 1.0
    while True:
        r, _ = recv_msg(sock, deadline)
        if r is None:
            break
        if r.code and r.code >= 200:
            raise Fail("%s %s: the CANCEL ended it with '%s' (9.1: it cannot)" % (a.method, a.ruri, r.start))
    sock.close()
    return 0


def siphash24_128(key, data):
    """SipHash-2-4 with its 128-bit output (what sipd signs its Record-Route with, src/proxy/rrsig.c)."""
    mask = (1 << 64) - 1

    def rotl(x, b):
        return ((x << b) | (x >> (64 - b))) & mask

    def rounds(v, n):
        v0, v1, v2, v3 = v
        for _ in range(n):
            v0 = (v0 + v1) & mask; v1 = rotl(v1, 13) ^ v0; v0 = rotl(v0, 32)
            v2 = (v2 + v3) & mask; v3 = rotl(v3, 16) ^ v2
            v0 = (v0 + v3) & mask; v3 = rotl(v3, 21) ^ v0
            v2 = (v2 + v1) & mask; v1 = rotl(v1, 17) ^ v2; v2 = rotl(v2, 32)
        return [v0, v1, v2, v3]

    k0, k1 = struct.unpack("<QQ", key)
    v = [k0 ^ 0x736f6d6570736575, k1 ^ 0x646f72616e646f6d ^ 0xee, k0 ^ 0x6c7967656e657261, k1 ^ 0x7465646279746573]
    end = len(data) - len(data) % 8
    last = (len(data) & 0xff) << 56
    for i, c in enumerate(data[end:]):
        last |= c << (8 * i)
    for m in [struct.unpack_from("<Q", data, i)[0] for i in range(0, end, 8)] + [last]:
        v[3] ^= m
        v = rounds(v, 2)
        v[0] ^= m
    v[2] ^= 0xee
    v = rounds(v, 4)
    out0 = v[0] ^ v[1] ^ v[2] ^ v[3]
    v[1] ^= 0xdd
    v = rounds(v, 4)
    return struct.pack("<QQ", out0, v[0] ^ v[1] ^ v[2] ^ v[3])


def rr_pin(uri):
    """What sipd signs a Record-Route toward (src/proxy/rrsig.c): a newline, the host of a URI or name-addr
    in lower case and ':' with its port when it has one."""
    m = re.match(r"\s*<?\s*sips?:(?:[^@;>]*@)?(\[[^\]]*\]|[^:;>?]*)(?::(\d+))?", uri)
    if not m:
        raise Fail("no host in %r" % uri)
    return "\n%s:%s" % (m.group(1).lower(), m.group(2) or "")


def rr_signature(db, callid, pin):
    """The value of sipd's ";sg=" for a dialog: the first 8 bytes of the MAC of its Call-ID and the pin
    (rr_pin: the hop after sipd) under the key in the database's secrets (so that a test can write a Route
    of a dialog sipd Record-Routed)."""
    import sqlite3
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    try:
        row = con.execute("SELECT value FROM secrets WHERE name = 'record_route'").fetchone()
    finally:
        con.close()
    if not row:
        raise Fail("no record_route key in %s" % db)
    return siphash24_128(bytes(row[0]), (callid + pin).encode()).hex()[:16]


def cmd_request(a):
    sock = udp_socket(0)
    lport = sock.getsockname()[1]
    tag = "rq%06d" % random.randrange(10 ** 6)
    m = re.match(r"sip:(?:([^@;>]+)@)?", a.ruri)
    user = m.group(1) if m and m.group(1) else "bob"
    branch = "z9hG4bKrq%s" % tag
    callid = "rq-%d-%s@%s" % (os.getpid(), tag, HOST)
    if a.sign_db:  # @SG@ in the Request-URI and the Routes: the signature sipd writes for this Call-ID
        if a.sign_pin:
            pin = rr_pin(a.sign_pin)
        else:
            values = split_values(a.route)
            if "@SG@" in a.ruri:  # a strict router's form: the Route set's last value is the Request-URI
                pin = rr_pin(values[-1])
            else:  # toward the Route after the signed one, else the Request-URI
                i = next(k for k, r in enumerate(values) if "@SG@" in r)
                pin = rr_pin(values[i + 1] if i + 1 < len(values) else a.ruri)
        sg = rr_signature(a.sign_db, callid, pin)
        a.ruri = a.ruri.replace("@SG@", sg)
        a.route = [r.replace("@SG@", sg) for r in a.route]
    to = "<sip:%s@%s>%s" % (user, HOST, ";tag=%s" % a.to_tag if a.to_tag else "")
    lines = ["%s %s SIP/2.0" % (a.method, a.ruri),
             "Via: SIP/2.0/UDP %s:%d;branch=%s;rport" % (HOST, lport, branch)]
    lines += ["Route: %s" % r for r in a.route]
    lines += [] if a.no_max_forwards else ["Max-Forwards: 70"]
    lines += ["From: <sip:alice@%s>;tag=%s" % (HOST, tag),
              "To: %s" % to,
              "Call-ID: %s" % callid,
              "CSeq: 5 %s" % a.method]
    if a.method == "INVITE":
        lines.append("Contact: <sip:alice@%s:%d>" % (HOST, lport))
    lines += list(a.header) + ["Content-Length: 0"]
    data = ("\r\n".join(lines) + "\r\n\r\n").encode()
    if a.expect == 0:
        return request_unanswered(a, sock, data)
    if a.cancel_after is not None:
        cancel = lines[:2] + ["Max-Forwards: 70", "From: <sip:alice@%s>;tag=%s" % (HOST, tag), "To: %s" % to,
                              "Call-ID: %s" % callid, "CSeq: 5 CANCEL", "Content-Length: 0"]
        cancel[0] = "CANCEL %s SIP/2.0" % a.ruri
        return request_cancelled(a, sock, data, ("\r\n".join(cancel) + "\r\n\r\n").encode())
    t0, tries = time.monotonic(), []
    for r in retransmitted(sock, data, a.port, t0 + 8, lambda r: r.code and a.method == "INVITE"):
        if r.code == 100:
            tries.append(time.monotonic() - t0)
        if r.code and r.code >= 200:
            break
    else:
        raise Fail("no final response to %s %s within 8 s" % (a.method, a.ruri))
    if a.trying == "none" and tries:
        raise Fail("%s %s: a 100 came %.2f s after the request, expected none" % (a.method, a.ruri, tries[0]))
    if a.trying and a.trying != "none":
        lo, hi = (float(x) for x in a.trying.split(":"))
        if not tries or not lo <= tries[0] <= hi:
            raise Fail("%s %s: expected a first 100 %.1f..%.1f s after the request, got %s"
                       % (a.method, a.ruri, lo, hi, ", ".join("%.2f s" % t for t in tries) or "none"))
    if a.method == "INVITE" and r.code >= 300:
        # 17.1.1.3: the ACK of a non-2xx final, on the INVITE's branch, with the response's To
        ack = ["ACK %s SIP/2.0" % a.ruri, "Via: SIP/2.0/UDP %s:%d;branch=%s;rport" % (HOST, lport, branch)]
        ack += ["Route: %s" % x for x in a.route]
        ack += ["Max-Forwards: 70", "From: <sip:alice@%s>;tag=%s" % (HOST, tag), "To: %s" % r.first("To"),
                "Call-ID: %s" % callid, "CSeq: 5 ACK", "Content-Length: 0"]
        sock.sendto(("\r\n".join(ack) + "\r\n\r\n").encode(), (HOST, a.port))
    if a.one_final:
        # 16.7 step 5: after the first final only an INVITE's 2xx go up; any other final is a second answer
        end = time.monotonic() + a.one_final
        while True:
            m, _ = recv_msg(sock, end)
            if m is None:
                break
            if m.code and m.code >= 200 and m.first("To") != r.first("To") and \
                    (a.method == "INVITE" and m.code >= 300 or a.method != "INVITE"):
                raise Fail("%s %s: a second final '%s' (To %s) after '%s'" % (a.method, a.ruri, m.start,
                                                                               m.first("To"), r.start))
    sock.close()
    if r.code != a.expect:
        raise Fail("%s %s (Route %s): expected %d, got '%s'" % (a.method, a.ruri, a.route, a.expect, r.start))
    have = [r.start] + ["%s: %s" % hv for hv in r.headers]  # the status line too
    for rx in a.expect_header:
        if not any(re.search(rx, h) for h in have):
            raise Fail("%s to %s %s: no header line matches %r in %r" % (r.start, a.method, a.ruri, rx, have))
    return 0


def cmd_catch(a):
    """A UA registered for a.user that takes the first request sipd forwards to it, checks it and answers
    200. --path: the binding's Contact names a port nobody listens on, and the REGISTER carries Path: <this
    socket;lr> and Supported: path, so that the request must reach this socket as the edge proxy of RFC
    3327 5.3: with the Contact as Request-URI and Route: <this socket;lr> on top."""
    sock = udp_socket(0)
    lport = sock.getsockname()[1]
    contact = "sip:callee@%s:%d" % (HOST, lport)
    extra = []
    if a.path:
        dead = udp_socket(0)  # a port bound for a moment, so that nothing else holds it, then let go
        contact = "sip:callee@%s:%d" % (HOST, dead.getsockname()[1])
        dead.close()
        extra = ["Supported: path", "Path: <sip:%s:%d;lr>" % (HOST, lport)]
    # --contact-suffix: parameters and headers a Contact may carry and a Request-URI may not (16.6 step 2)
    r = register(sock, a.port, a.user, a.password, ["<%s%s>" % (contact, a.contact_suffix)], 300, extra=extra)
    if r.code != 200:
        raise Fail("REGISTER %s: expected 200, got '%s'" % (a.user, r.start))
    with open(a.ready, "w") as f:
        f.write("%d\n" % lport)
    deadline = time.monotonic() + a.seconds
    got = None
    while True:
        m, addr = recv_msg(sock, deadline)
        if m is None:
            break
        if m.method is None or m.method == "ACK":
            continue
        if got is None:
            got = m
        elif m.first("Via") != got.first("Via"):
            raise Fail("a second request besides the first: %s" % m.start)
        sock.sendto(response(m, 200, "OK", "ca%d" % lport), addr)
        deadline = min(deadline, time.monotonic() + 0.5)
    sock.close()
    if got is None:
        raise Fail("no request reached udp:%s:%d within %.0f s" % (HOST, lport, a.seconds))
    fails = []
    if got.ruri != contact:
        fails.append("Request-URI %s, expected the binding's Contact %s" % (got.ruri, contact))
    routes = [v.strip() for line in got.values("Route") for v in line.split(",")]
    want = ["<sip:%s:%d;lr>" % (HOST, lport)] if a.path else []
    if routes != want:
        fails.append("Route %r, expected %r" % (routes, want))
    have = ["%s: %s" % hv for hv in got.headers]
    for rx in a.want_header:
        if not any(re.search(rx, h) for h in have):
            fails.append("no header line matches %r in %r" % (rx, have))
    for rx in a.refuse_header:
        fails += ["a header line matches %r: %r" % (rx, h) for h in have if re.search(rx, h)]
    if fails:
        raise Fail("%s: %s" % (got.start, "; ".join(fails)))
    return 0


# ---- an INVITE through a proxy that challenges ----

def cmd_invite(a):
    """INVITE (or --method) sip:TO@127.0.0.1:P from sip:FROM@127.0.0.1 over UDP; a 407 is checked, ACKed (an
    INVITE's) and answered with Proxy-Authorization (MD5, digest uri = the Request-URI); the final must be
    --expect, then ACK (an INVITE's)."""
    meth = a.method
    sock = udp_socket(0)
    lport = sock.getsockname()[1]
    ruri = "sip:%s@%s:%d" % (a.to, HOST, a.port)
    tag = "in%06d" % random.randrange(10 ** 6)
    callid = "inv-%d-%06d@%s" % (os.getpid(), random.randrange(10 ** 6), HOST)
    fails = []

    def request(method, cseq, branch, to, extra=()):
        lines = ["%s %s SIP/2.0" % (method, ruri),
                 "Via: SIP/2.0/UDP %s:%d;branch=%s;rport" % (HOST, lport, branch),
                 "Max-Forwards: 70",
                 "From: <sip:%s@%s>;tag=%s" % (a.frm, a.from_host or HOST, tag),
                 "To: %s" % to,
                 "Call-ID: %s" % callid,
                 "CSeq: %d %s" % (cseq, method)]
        if method == "INVITE":
            lines.append("Contact: <sip:%s@%s:%d>" % (a.frm, HOST, lport))
        lines += list(extra) + ["Content-Length: 0"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def final(data, cseq):
        deadline = time.monotonic() + 8
        sock.sendto(data, (HOST, a.port))
        nxt, iv = time.monotonic() + 0.5, 0.5
        while True:
            m, _ = recv_msg(sock, min(deadline, nxt))
            if m is None:
                if time.monotonic() >= deadline:
                    raise Fail("no final response to %s CSeq %d within 8 s" % (meth, cseq))
                sock.sendto(data, (HOST, a.port))
                iv = min(iv * 2, 4.0)
                nxt = time.monotonic() + iv
                continue
            if m.code and m.code >= 200 and (m.first("CSeq") or "").split()[:1] == [str(cseq)]:
                return m
            if m.code and m.code < 200:
                nxt = deadline  # a provisional response stops the retransmissions

    to0 = "<%s>" % ruri
    b1 = "z9hG4bKin%s1" % tag
    r = final(request(meth, 1, b1, to0), 1)
    if r.code != 407:
        raise Fail("%s from %s without credentials: expected 407, got '%s'" % (meth, a.frm, r.start))
    chals = [challenge_params(v) for v in r.values("Proxy-Authenticate")]
    md5s = [c for c in chals if c.get("scheme", "").lower() == "digest" and
            c.get("algorithm", "MD5").upper() == "MD5"]
    if not md5s:
        raise Fail("407 without a Digest MD5 Proxy-Authenticate: %r" % r.values("Proxy-Authenticate"))
    if len(r.values("Via")) != 1:
        fails.append("407 carries %d Vias" % len(r.values("Via")))
    if meth == "INVITE":
        sock.sendto(request("ACK", 1, b1, r.first("To")), (HOST, a.port))
    auth = ["Proxy-Authorization: %s" % digest(meth, ruri, a.auth_user or a.frm, a.password, md5s[0])]
    if a.other_realm:  # credentials for a proxy further on, before sipd's
        auth.insert(0, "Proxy-Authorization: %s" % digest("INVITE", ruri, a.frm, "elsewhere", {
            "realm": a.other_realm, "nonce": "far-nonce", "qop": "auth"}))
    b2 = "z9hG4bKin%s2" % tag
    r = final(request(meth, 2, b2, to0, auth), 2)
    if r.code != a.expect:
        fails.append("%s with %s's credentials: expected %d, got '%s'" % (meth, a.auth_user or a.frm, a.expect,
                                                                         r.start))
    if meth == "INVITE":
        sock.sendto(request("ACK", 2, b2, r.first("To")), (HOST, a.port))
    time.sleep(0.3)
    sock.close()
    if fails:
        raise Fail("; ".join(fails))
    return 0


# ---- SIPp message logs ----

def log_events(path):
    """[(epoch seconds, 'sent'|'received' + newline + the message)] from a SIPp -trace_msg file."""
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    out = []
    for chunk in re.split(r"^-{10,} ", text, flags=re.M)[1:]:
        stamp, _, rest = chunk.partition("\n")
        m = re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)", stamp)
        if not m:
            continue
        t = datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp()
        kind = "sent" if re.match(r"\S+ message sent", rest) else "received"
        out.append((t, kind + "\n" + rest.split("\n", 1)[1].lstrip("\n")))
    return out


def find_event(path, rx):
    for t, text in log_events(path):
        if re.search(rx, text, re.M):
            return t
    raise Fail("no message matching %r in %s" % (rx, os.path.basename(path)))


def logged_msgs(path, kind, method):
    out = []
    for _, text in log_events(path):
        k, _, msg = text.partition("\n")
        if k != kind:
            continue
        m = Msg(msg.replace("\r\n", "\n").replace("\n", "\r\n").encode())
        if m.method == method:
            out.append(m)
    return out


def cmd_cancel_check(a):
    """9.1: the CANCEL sipd sent matches the INVITE it cancels."""
    invs, cans = logged_msgs(a.log, "received", "INVITE"), logged_msgs(a.log, "received", "CANCEL")
    if not invs or not cans:
        raise Fail("no INVITE or no CANCEL received in %s" % os.path.basename(a.log))
    inv, can = invs[0], cans[0]
    fails = []
    if can.ruri != inv.ruri:
        fails.append("CANCEL Request-URI %s, the INVITE's is %s" % (can.ruri, inv.ruri))
    if len(can.values("Via")) != 1 or can.values("Via")[0] != inv.values("Via")[0]:
        fails.append("CANCEL Via %r, expected only the INVITE's top Via %r" % (can.values("Via"), inv.values("Via")[:1]))
    for h in ("Call-ID", "From", "To"):
        if can.first(h) != inv.first(h):
            fails.append("CANCEL %s %r differs from the INVITE's %r" % (h, can.first(h), inv.first(h)))
    cn, inn = (can.first("CSeq") or "").split(), (inv.first("CSeq") or "").split()
    if cn[:1] != inn[:1] or cn[1:] != ["CANCEL"]:
        fails.append("CANCEL CSeq %r, the INVITE's is %r" % (can.first("CSeq"), inv.first("CSeq")))
    if fails:
        raise Fail("; ".join(fails))
    return 0


def cmd_hdr_check(a):
    """In the first message of a SIPp log matching --msg, value number --index (0 = top) of header --header
    (every line, split at commas) matches --match."""
    for _, text in log_events(a.log):
        if not re.search(a.msg, text, re.M):
            continue
        m = Msg(text.partition("\n")[2].replace("\r\n", "\n").replace("\n", "\r\n").encode())
        vals = [v.strip() for line in m.values(a.header) for v in line.split(",")]
        if a.count is not None:
            if len(vals) != a.count:
                raise Fail("%s: %d %s value(s) %r, expected %d" % (m.start, len(vals), a.header, vals, a.count))
            if a.match is None:
                return 0
        if a.index >= len(vals):
            raise Fail("%s: no %s number %d in %r" % (m.start, a.header, a.index, vals))
        if a.match is None:
            raise Fail("hdr-check: --match or --count")
        if not re.search(a.match, vals[a.index]):
            raise Fail("%s: %s number %d is %r, expected to match %r" % (m.start, a.header, a.index,
                                                                         vals[a.index], a.match))
        return 0
    raise Fail("no message matching %r in %s" % (a.msg, os.path.basename(a.log)))


def cmd_gap(a):
    t1, t2 = find_event(a.log, a.first), find_event(a.log, a.then)
    d = t2 - t1
    if d < a.min or d > a.max:
        raise Fail("%.2f s between %r and %r, expected %.1f..%.1f s" % (d, a.first, a.then, a.min, a.max))
    return 0


def cmd_order(a):
    ta, tb = find_event(a.log_a, a.a), find_event(a.log_b, a.b)
    if ta > tb + a.slack:
        raise Fail("%r (%s) came %.3f s after %r (%s)" % (a.a, os.path.basename(a.log_a), ta - tb, a.b,
                                                         os.path.basename(a.log_b)))
    return 0


# ---- ports ----

def free_ports(count, start):
    ports, p = [], start
    while len(ports) < count and p < 65000:
        ok = True
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            s = socket.socket(socket.AF_INET, kind)
            try:
                s.bind((HOST, p))
            except OSError:
                ok = False
            finally:
                s.close()
        if ok:
            ports.append(p)
        p += 1
    return ports


def cmd_ready(a):
    """An OPTIONS with an unparseable Max-Forwards: sipd answers it statelessly (400)."""
    deadline = time.monotonic() + a.wait
    sock = udp_socket(0)
    lport = sock.getsockname()[1]
    n = 0
    while time.monotonic() < deadline:
        n += 1
        probe = ("OPTIONS sip:%s:%d SIP/2.0\r\nVia: SIP/2.0/UDP %s:%d;branch=z9hG4bKready%d-%d\r\n"
                 "Max-Forwards: probe\r\nFrom: <sip:probe@%s>;tag=p%d\r\nTo: <sip:%s:%d>\r\n"
                 "Call-ID: ready%d-%d\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
                 % (HOST, a.port, HOST, lport, os.getpid(), n, HOST, n, HOST, a.port, os.getpid(), n))
        sock.sendto(probe.encode(), (HOST, a.port))
        sock.settimeout(0.2)
        try:
            sock.recvfrom(65536)
            return 0
        except (socket.timeout, ConnectionRefusedError):
            time.sleep(0.05)
    raise Fail("sipd on port %d did not answer within %.1f s" % (a.port, a.wait))


def cmd_bound(a):
    deadline = time.monotonic() + a.wait
    while time.monotonic() < deadline:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if a.tcp else socket.SOCK_DGRAM)
        try:
            s.bind((HOST, a.port))
        except OSError:
            return 0
        finally:
            s.close()
        time.sleep(0.02)
    raise Fail("nothing listens on %s:127.0.0.1:%d after %.1f s" % ("tcp" if a.tcp else "udp", a.port, a.wait))


def phone_args(parser, seconds):
    """The options of a phone that registers with sipd and then listens: --port (sipd's), --user,
    --password, --ready, --seconds."""
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", default="secret")
    parser.add_argument("--ready", required=True)
    parser.add_argument("--seconds", type=float, default=seconds)


def main():
    p = argparse.ArgumentParser(description="SIP helpers for sipd's proxy tests")
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("freeport")
    f.add_argument("--count", type=int, default=1)
    f.add_argument("--start", type=int, default=40000 + os.getppid() % 10000)
    for name in ("ready", "bound"):
        r = sub.add_parser(name)
        r.add_argument("--port", type=int, required=True)
        r.add_argument("--wait", type=float, default=10.0)
        if name == "bound":
            r.add_argument("--tcp", action="store_true")
    g = sub.add_parser("register")
    g.add_argument("--port", type=int, required=True)
    g.add_argument("--user", required=True)
    g.add_argument("--password", default="secret")
    g.add_argument("--bind", type=int, default=0)
    g.add_argument("--contact", action="append", default=[])
    g.add_argument("--expires")
    g.add_argument("--expect", type=int, default=200)
    g.add_argument("--domain", help="REGISTER sip:DOMAIN for sip:USER@DOMAIN (still sent to 127.0.0.1:PORT)")
    n = sub.add_parser("natcallee")
    n.add_argument("--port", type=int, required=True)
    n.add_argument("--user", required=True)
    n.add_argument("--password", default="secret")
    n.add_argument("--contact", required=True)
    n.add_argument("--ready", required=True)
    n.add_argument("--timeout", type=float, default=10.0)
    h = sub.add_parser("hdr-check")
    h.add_argument("--log", required=True)
    h.add_argument("--msg", required=True)
    h.add_argument("--header", required=True)
    h.add_argument("--index", type=int, default=0)
    h.add_argument("--match")
    h.add_argument("--count", type=int, help="exactly this many values (0: the header is absent)")
    t = sub.add_parser("gap")
    t.add_argument("--log", required=True)
    t.add_argument("--first", required=True)
    t.add_argument("--then", required=True)
    t.add_argument("--min", type=float, default=0.0)
    t.add_argument("--max", type=float, default=1e9)
    q = sub.add_parser("phone")
    phone_args(q, 5.0)
    q.add_argument("--expect", choices=("invite", "nothing", "bye", "cancel"), default="invite")
    q.add_argument("--answer", type=int)
    q.add_argument("--reason", help="the reason phrase of --answer, Python escapes (\\x07) allowed")
    q.add_argument("--delay", type=float, default=0.0)
    q.add_argument("--mute", action="store_true", help="with --expect cancel: the CANCEL and the INVITE go unanswered")
    q.add_argument("--trying", action="store_true", help="with --expect cancel: the provisional is 100 Trying, not 180")
    q.add_argument("--method", default="INVITE", help="with --expect invite: the request that must come instead")
    q.add_argument("--times", type=int, help="with --expect invite: exactly this many must come")
    q.add_argument("--realm", default="phone")
    q.add_argument("--domain", help="register for sip:USER@DOMAIN (REGISTER sip:DOMAIN)")
    q.add_argument("--auth-user", help="the user name of the credentials (default: USER; e.g. the name of "
                   "the user whose extension USER is)")
    d = sub.add_parser("tcpdrop")
    phone_args(d, 3.0)
    d.add_argument("--reset", action="store_true")
    d2 = sub.add_parser("tcpreg")
    phone_args(d2, 8.0)
    d2.add_argument("--idle", type=float, default=0.0, help="silent this long after the REGISTER's 200")
    d3 = sub.add_parser("tcpunreg")
    d3.add_argument("--port", type=int, required=True)
    d3.add_argument("--user", required=True)
    d3.add_argument("--keep-user", required=True)
    d3.add_argument("--password", default="secret")
    d3.add_argument("--seconds", type=float, default=4.0)
    d3.add_argument("--over", choices=("same", "udp", "tcp", "sipctl"), default="same",
                    help="where the un-REGISTER goes: the registration's connection, UDP, a new connection; "
                         "sipctl: none, `sipctl unregister U` instead")
    d3.add_argument("--sipctl", help="sipctl, for --over sipctl")
    d3.add_argument("--db", help="sipd's database, for --over sipctl")
    g3 = sub.add_parser("strayresp")
    g3.add_argument("--port", type=int, required=True)
    g3.add_argument("--status", type=int, default=200)
    g3.add_argument("--method", default="OPTIONS")
    g2 = sub.add_parser("bigack")
    g2.add_argument("--port", type=int, required=True)
    g2.add_argument("--user", required=True)
    g2.add_argument("--password", default="secret")
    g3 = sub.add_parser("byeretx")
    g3.add_argument("--port", type=int, required=True)
    g3.add_argument("--user", required=True)
    g3.add_argument("--password", default="secret")
    g5 = sub.add_parser("answered2xx")
    g5.add_argument("--port", type=int, required=True)
    g5.add_argument("--user", required=True)
    g5.add_argument("--password", default="secret")
    g5.add_argument("--maddr", action="store_true")
    g5.add_argument("--caller-to", help="the caller sends to sipd at this address (another listener, same port)")
    g5.add_argument("--late", type=float, help="seconds after the first 200: past Timer M")
    for name in ("inviteretx", "fork200"):
        g4 = sub.add_parser(name)
        g4.add_argument("--port", type=int, required=True)
        g4.add_argument("--user", required=True)
        g4.add_argument("--password", default="secret")
        g4.add_argument("--caller-to", help="the caller sends to sipd at this address (another listener, same "
                        "port); its answers must come from there")
    k = sub.add_parser("sink")
    k.add_argument("--host", default="127.0.0.2")
    k.add_argument("--port", type=int, required=True)
    k.add_argument("--ready", required=True)
    k.add_argument("--seconds", type=float, default=2.0)
    mv = sub.add_parser("moved")
    mv.add_argument("--port", type=int, required=True)
    mv.add_argument("--password", default="secret")
    mv.add_argument("--target", required=True, help="a Contact that is not where the refresh came from")
    ru = sub.add_parser("reuse")
    ru.add_argument("--port", type=int, required=True)
    ru.add_argument("--password", default="secret")
    ru.add_argument("--target", required=True, help="a Request-URI no request of the call may reach")
    ad = sub.add_parser("advertised")
    ad.add_argument("--port", type=int, required=True)
    ad.add_argument("--public", required=True, help="the address [general] advertise names")
    ad.add_argument("--password", default="secret")
    nc = sub.add_parser("natcall")
    nc.add_argument("--port", type=int, required=True)
    nc.add_argument("--password", default="secret")
    nc.add_argument("--tcp-caller", action="store_true", help="mallory calls over a TCP connection of hers")
    li = sub.add_parser("listeners")
    li.add_argument("--port", type=int, required=True)
    li.add_argument("--second", required=True, help="sipd's second UDP listener's address, at the same port")
    li.add_argument("--named", help="the address that listener advertises (listen = ... advertise ADDR); "
                    "the first advertises none")
    li.add_argument("--db", required=True)
    li.add_argument("--password", default="secret")
    r = sub.add_parser("request")
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--method", default="BYE")
    r.add_argument("--ruri", required=True)
    r.add_argument("--route", action="append", default=[])
    r.add_argument("--sign-db", help="sipd's database: @SG@ in --ruri and --route becomes its Record-Route "
                   "signature for the request's Call-ID")
    r.add_argument("--sign-pin", help="the URI the signature is toward (default: the Route after the signed "
                   "one, else the Request-URI; for @SG@ in the Request-URI, the last Route)")
    r.add_argument("--to-tag")
    r.add_argument("--header", action="append", default=[], help="an extra header line")
    r.add_argument("--no-max-forwards", action="store_true")
    r.add_argument("--expect", type=int, required=True, help="the final's status; 0: no response but 100 (--wait)")
    r.add_argument("--wait", type=float, default=8.0, help="with --expect 0: seconds to listen")
    r.add_argument("--expect-header", action="append", default=[], help="a regex the status line or some header line of the final must match")
    r.add_argument("--cancel-after", type=float, help="S: no final within S s, then a CANCEL on the branch, "
                   "whose answer must be --expect; no final for the request in the second after it")
    r.add_argument("--one-final", type=float, help="S: for S s after the final, no other final may come")
    r.add_argument("--trying", help="MIN:MAX: a 100 must come between MIN and MAX s after the request, and none "
                   "before (RFC 4320 4.1); 'none': no 100 may come")
    ca = sub.add_parser("catch")
    phone_args(ca, 5.0)
    ca.add_argument("--path", action="store_true")
    ca.add_argument("--want-header", action="append", default=[])
    ca.add_argument("--refuse-header", action="append", default=[], help="a regex no header line may match")
    ca.add_argument("--contact-suffix", default="", help="appended to the registered Contact URI")
    sp = sub.add_parser("strictpeer")
    sp.add_argument("--ready", required=True)
    sp.add_argument("--seconds", type=float, default=5.0)
    sp.add_argument("--want-route", required=True)
    ar = sub.add_parser("ackretx")
    ar.add_argument("--port", type=int, required=True)
    ar.add_argument("--user", default="bob")
    ar.add_argument("--password", default="secret")
    cp = sub.add_parser("cancelport")
    cp.add_argument("--port", type=int, required=True)
    cp.add_argument("--user", default="bob")
    cp.add_argument("--rounds", type=int, default=8)
    i = sub.add_parser("invite")
    i.add_argument("--port", type=int, required=True)
    i.add_argument("--to", required=True)
    i.add_argument("--frm", default="alice")
    i.add_argument("--method", default="INVITE")
    i.add_argument("--from-host", help="the From URI's host (default: 127.0.0.1)")
    i.add_argument("--password", default="secret")
    i.add_argument("--auth-user", help="the user name of the credentials (default: the From's)")
    i.add_argument("--expect", type=int, required=True)
    i.add_argument("--other-realm", help="the credentials also carry a Proxy-Authorization for this realm")
    c = sub.add_parser("cancel-check")
    c.add_argument("--log", required=True)
    o = sub.add_parser("order")
    o.add_argument("--log-a", required=True)
    o.add_argument("--a", required=True)
    o.add_argument("--log-b", required=True)
    o.add_argument("--b", required=True)
    o.add_argument("--slack", type=float, default=0.05)
    a = p.parse_args()
    try:
        if a.cmd == "freeport":
            ports = free_ports(a.count, a.start)
            if len(ports) < a.count:
                raise Fail("not enough free ports")
            print("\n".join(map(str, ports)))
            return 0
        return {"ready": cmd_ready, "bound": cmd_bound, "register": cmd_register, "natcallee": cmd_natcallee,
                "gap": cmd_gap, "hdr-check": cmd_hdr_check, "cancel-check": cmd_cancel_check,
                "phone": cmd_phone, "tcpdrop": cmd_tcpdrop, "tcpreg": cmd_tcpreg, "tcpunreg": cmd_tcpunreg, "bigack": cmd_bigack, "byeretx": cmd_byeretx, "invite": cmd_invite,
                "strayresp": cmd_strayresp,
                "sink": cmd_sink, "cancelport": cmd_cancelport, "ackretx": cmd_ackretx, "strictpeer": cmd_strictpeer, "answered2xx": cmd_answered2xx, "inviteretx": cmd_inviteretx, "fork200": cmd_fork200, "request": cmd_request, "reuse": cmd_reuse, "listeners": cmd_listeners, "natcall": cmd_natcall, "advertised": cmd_advertised, "moved": cmd_moved, "catch": cmd_catch, "order": cmd_order}[a.cmd](a)
    except (Fail, OSError) as e:
        sys.stderr.write("sipua: %s\n" % e)
        return 1


if __name__ == "__main__":
    sys.exit(main())
