#!/usr/bin/env python3
"""dnsua.py: the caller and the silent DNS server of sipd's DNS tests (tests/dns/run_dns.sh); the SIP
plumbing (messages, digest, sockets, free ports) is tests/proxy/sipua.py's.

  dnsua.py call --port P --ruri URI [--frm USER] [--from-host H] [--password PW] [--auth-user U] [--no-auth]
                --expect CODE [--reason REGEX] [--cancel-after S] [--min S] [--max S] [--wait S] [--pad N]
                [--expect-request METHOD] [--expect-header REGEX] [--v6]
      INVITE URI through sipd (udp:127.0.0.1:P; --v6: from [::1] to udp:[::1]:P) from sip:USER@H (H
      defaults to 127.0.0.1, sipd's domain); a 407 is ACKed and answered with Proxy-Authorization (MD5,
      digest uri = URI, user U, default USER) unless --no-auth; the
      final must be CODE (its reason phrase matching REGEX, some header line each --expect-header), reached between --min and --max seconds
      after the last INVITE left. A non-2xx is ACKed; a 2xx is ACKed and the call ended with a BYE, both
      sent to sipd (Route: the Record-Route) toward the callee's Contact, the BYE's 200 must come back.
      A request in the dialog from the callee is answered 200; --expect-request METHOD: one must come,
      through sipd once (two Vias, the top one sipd's at port P, no Route left).
      DNSUA_TRACE=FILE (environment): every message the caller and the callee receive is appended to FILE.
      --cancel-after S: a CANCEL S seconds after the (authenticated) INVITE; it must get 200, the INVITE
      then CODE (487). --pad N: the INVITE carries an SDP offer padded with N lines of 50 bytes (its last
      line "a=x-end"), so that 30 make it larger than 1300 bytes (RFC 3261 18.1.1).
  dnsua.py callee --port P --sipd-port SP --ready FILE [--seconds S] [--answer 200] [--register USER]
                  [--family 6|4]
      a callee on udp:[::1]:P (--family 4: 127.0.0.1:P; "its family" below): the INVITE must come with
      sipd's top Via (port SP, rport); it answers 486 to the INVITE's source and the ACK for that must
      come. --answer 200: sipd's Via must name its address of the callee's family (port SP) and its
      Record-Route be doubled (that address first, then the other family's: RFC 5658, the caller being
      of the other family); it answers 200 and, once the ACK came (with that Via), sends an INFO in the
      dialog to sipd at that address along its route set; its 200 and the caller's BYE (with that Via)
      must come. --register USER: first registers sip:USER@127.0.0.1 (password secret) with Contact
      <sip:USER@ITS-ADDRESS:P>, sent to sipd at its address of that family
  dnsua.py swallow --port P --ready FILE [--seconds S]
      a UDP socket on 127.0.0.1:P that reads DNS queries and never answers (a DNS server that is down
      without an ICMP error); prints how many it swallowed
  dnsua.py busy --port P --ready FILE --retry-after N --expect K [--seconds S]
      a next hop on udp:127.0.0.1:P that answers every INVITE 503 Service Unavailable with Retry-After: N
      (the ACKs absorbed); exactly K INVITE transactions (distinct branches) must reach it in S seconds
"""
import argparse
import os
import random
import re
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "proxy"))
from sipua import HOST, Fail, challenge_params, digest, recv_msg, register, response, udp_socket  # noqa: E402


def cmd_call(a):
    if a.v6:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        sock.bind(("::1", 0))
    else:
        sock = udp_socket(0)
    lport = sock.getsockname()[1]
    me = "[::1]" if a.v6 else HOST  # our host as URIs and Vias write it
    sipd = ("::1" if a.v6 else HOST, a.port)
    tag = "dc%06d" % random.randrange(10 ** 6)
    callid = "dns-%d-%06d@%s" % (os.getpid(), random.randrange(10 ** 6), HOST)
    frm = "<sip:%s@%s>;tag=%s" % (a.frm, a.from_host, tag)
    fails = []

    def request(method, ruri, cseq, branch, to, extra=()):
        lines = ["%s %s SIP/2.0" % (method, ruri),
                 "Via: SIP/2.0/UDP %s:%d;branch=%s;rport" % (me, lport, branch),
                 "Max-Forwards: 70",
                 "From: %s" % frm,
                 "To: %s" % to,
                 "Call-ID: %s" % callid,
                 "CSeq: %d %s" % (cseq, method)]
        body = ""
        if method == "INVITE":
            lines.append("Contact: <sip:%s@%s:%d>" % (a.frm, me, lport))
            if a.pad:
                body = "v=0\r\no=%s 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0\r\n" % (
                    a.frm, HOST, HOST)
                body += "".join("a=x-pad:%02d 0123456789abcdef0123456789abcdef0123456789\r\n" % i
                                for i in range(a.pad)) + "a=x-end\r\n"
                lines.append("Content-Type: application/sdp")
        lines += list(extra) + ["Content-Length: %d" % len(body)]
        return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()

    def final(data, cseq, method, wait, on_provisional=None):
        """Sends data (retransmitting as 17.1.1.2 / 17.1.2.2 until a provisional) and returns the final
        response for CSeq cseq method; other responses (a CANCEL's 200) are passed to on_other."""
        deadline = time.monotonic() + wait
        sock.sendto(data, sipd)
        nxt, iv = time.monotonic() + 0.5, 0.5
        while True:
            m, _ = recv_msg(sock, min(deadline, nxt))
            if m is not None and os.environ.get("DNSUA_TRACE"):
                open(os.environ["DNSUA_TRACE"], "a").write("%.3f %s\n" % (time.monotonic(), m.text()))
            if m is None:
                if time.monotonic() >= deadline:
                    raise Fail("no final response to %s CSeq %d within %.0f s" % (method, cseq, wait))
                if nxt < deadline:
                    sock.sendto(data, sipd)
                    iv = min(iv * 2, 4.0)
                    nxt = time.monotonic() + iv
                continue
            cs = (m.first("CSeq") or "").split()
            if m.code is None:
                callee_request(m)
                continue
            if cs != [str(cseq), method]:
                if on_provisional:
                    on_provisional(m)
                continue
            if m.code >= 200:
                return m
            nxt = deadline  # a provisional response stops the retransmissions
            if on_provisional:
                on_provisional(m)

    def callee_request(m):
        if m.method in ("ACK", None):
            return
        got.append(m)
        via = m.first("Via") or ""
        if not re.match(r"SIP/2\.0/UDP %s:%d;" % (re.escape(me), a.port), via):
            fails.append("the callee's %s came with top Via %r, expected sipd's at %s:%d" % (
                m.method, via, me, a.port))
        if m.values("Route"):
            fails.append("the callee's %s still carries Route %r" % (m.method, m.values("Route")))
        vias = [v for line in m.values("Via") for v in line.split(",")]
        if len(vias) != 2:
            fails.append("the callee's %s came with %d Vias, expected the callee's and one of sipd's: %r" % (
                m.method, len(vias), vias))
        sock.sendto(response(m, 200, "OK", None), sipd)

    got = []
    to0 = "<%s>" % a.ruri
    cseq = 1
    branch = "z9hG4bKdc%s%d" % (tag, cseq)
    t0 = time.monotonic()
    r = final(request("INVITE", a.ruri, cseq, branch, to0), cseq, "INVITE", a.wait)
    if r.code == 407 and not a.no_auth:
        sock.sendto(request("ACK", a.ruri, cseq, branch, r.first("To")), sipd)
        chals = [challenge_params(v) for v in r.values("Proxy-Authenticate")]
        md5s = [c for c in chals if c.get("scheme", "").lower() == "digest" and
                c.get("algorithm", "MD5").upper() == "MD5"]
        if not md5s:
            raise Fail("407 without a Digest MD5 Proxy-Authenticate: %r" % r.values("Proxy-Authenticate"))
        cseq = 2
        branch = "z9hG4bKdc%s%d" % (tag, cseq)
        auth = digest("INVITE", a.ruri, a.auth_user or a.frm, a.password, md5s[0])
        inv = request("INVITE", a.ruri, cseq, branch, to0, ["Proxy-Authorization: %s" % auth])
        state = {"cancel_sent": None, "cancel_200": False}

        def on_prov(m):
            if m.code == 200 and (m.first("CSeq") or "").split() == [str(cseq), "CANCEL"]:
                state["cancel_200"] = True

        if a.cancel_after is not None:
            sock.sendto(inv, sipd)
            t0 = time.monotonic()
            time.sleep(a.cancel_after)
            cancel = ["CANCEL %s SIP/2.0" % a.ruri,
                      "Via: SIP/2.0/UDP %s:%d;branch=%s;rport" % (me, lport, branch),
                      "Max-Forwards: 70", "From: %s" % frm, "To: %s" % to0, "Call-ID: %s" % callid,
                      "CSeq: %d CANCEL" % cseq, "Content-Length: 0"]
            # the INVITE's own retransmissions are not needed: sipd answered 100 already
            r = final(("\r\n".join(cancel) + "\r\n\r\n").encode(), cseq, "INVITE", a.wait, on_prov)
            if not state["cancel_200"]:
                # the CANCEL's 200 may come after the INVITE's final; give it a moment
                m, _ = recv_msg(sock, time.monotonic() + 1.0)
                if m is not None and m.code == 200 and (m.first("CSeq") or "").split() == [str(cseq), "CANCEL"]:
                    state["cancel_200"] = True
            if not state["cancel_200"]:
                fails.append("no 200 for the CANCEL")
        else:
            t0 = time.monotonic()
            r = final(inv, cseq, "INVITE", a.wait)
    elapsed = time.monotonic() - t0
    if r.code != a.expect:
        raise Fail("INVITE %s from %s@%s: expected %d, got '%s' after %.1f s" % (
            a.ruri, a.frm, a.from_host, a.expect, r.start, elapsed))
    if a.reason and not re.search(a.reason, r.start[12:]):
        fails.append("reason phrase of '%s' does not match '%s'" % (r.start, a.reason))
    have = ["%s: %s" % hv for hv in r.headers]
    for rx in a.expect_header:
        if not any(re.search(rx, h) for h in have):
            fails.append("no header line of '%s' matches %r in %r" % (r.start, rx, have))
    if elapsed < a.min or elapsed > a.max:
        fails.append("final after %.1f s, expected %.1f..%.1f s" % (elapsed, a.min, a.max))
    if len(r.values("Via")) != 1:
        fails.append("the final carries %d Vias" % len(r.values("Via")))
    if r.code >= 300:
        sock.sendto(request("ACK", a.ruri, cseq, branch, r.first("To")), sipd)
    elif r.code >= 200:
        # 12.1.2: the route set is the Record-Route in reverse; the remote target is the Contact
        rr = [v.strip() for line in r.values("Record-Route") for v in line.split(",")]
        routes = ["Route: %s" % ", ".join(reversed(rr))] if rr else []
        m = re.search(r"<([^>]+)>", r.first("Contact") or "")
        if not m:
            raise Fail("200 without a Contact")
        target = m.group(1)
        sock.sendto(request("ACK", target, cseq, "z9hG4bKdcack%s" % tag, r.first("To"), routes), sipd)
        time.sleep(0.2)
        b = final(request("BYE", target, cseq + 1, "z9hG4bKdcbye%s" % tag, r.first("To"), routes), cseq + 1,
                  "BYE", 8)
        if b.code != 200:
            fails.append("BYE to %s: expected 200, got '%s'" % (target, b.start))
    if a.expect_request and not any(m.method == a.expect_request for m in got):
        fails.append("no %s from the callee" % a.expect_request)
    time.sleep(0.2)
    sock.close()
    if fails:
        raise Fail("; ".join(fails))
    print("final %d after %.2f s" % (r.code, elapsed))
    return 0


def cmd_callee(a):
    v6 = a.family == 6
    bind_host, uri_host, other = ("::1", "[::1]", HOST) if v6 else (HOST, HOST, "[::1]")
    sock = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((bind_host, a.port))
    if a.register:
        r = register(sock, a.sipd_port, a.register, "secret", ["<sip:%s@%s:%d>" % (a.register, uri_host, a.port)],
                     300, to_host=bind_host)
        if r.code != 200:
            raise Fail("REGISTER %s over IPv%d: expected 200, got '%s'" % (a.register, a.family, r.start))
    with open(a.ready, "w") as f:
        f.write("%d\n" % a.port)
    deadline = time.monotonic() + a.seconds
    inv, acked, info_ok, bye, fails = None, False, False, False, []
    totag = "v%d%d" % (a.family, a.port)
    our_via = r"SIP/2\.0/UDP %s:%d;branch=z9hG4bK[^;]*;rport" % (re.escape(uri_host), a.sipd_port)
    # both of sipd's, each with the dialog's signature (the same: a MAC of the Call-ID)
    rr_want = [r"<sip:%s:%d;lr;sg=[0-9a-f]{16}>" % (re.escape(h), a.sipd_port) for h in (uri_host, other)]
    rr = []

    def via_is(m, pattern):
        via = m.first("Via") or ""
        if not re.match(pattern, via):
            fails.append("%s with top Via %r, expected /%s/" % (m.method or m.start, via, pattern))

    while True:
        m, addr = recv_msg(sock, deadline)
        if m is not None and os.environ.get("DNSUA_TRACE"):
            open(os.environ["DNSUA_TRACE"], "a").write("callee %.3f %s\n" % (time.monotonic(), m.text()))
        if m is None:
            break
        if m.method == "INVITE":
            if inv is None:
                inv = m
                # sipd's own Via on top, with rport: the answer goes back to the INVITE's source, [::1]
                via_is(m, our_via if a.answer == 200 else
                       r"SIP/2\.0/UDP [^;]+:%d;branch=z9hG4bK[^;]*;rport" % a.sipd_port)
                rr = [v.strip() for line in m.values("Record-Route") for v in line.split(",")]
                if a.answer == 200 and (len(rr) != 2 or not all(re.fullmatch(p, v) for p, v in zip(rr_want, rr))
                                        or rr[0].split(";sg=")[1] != rr[1].split(";sg=")[1]):
                    fails.append("Record-Route %r, expected /%s/ with one signature" % (rr, "/, /".join(rr_want)))
            if a.answer == 200:
                sock.sendto(response(m, 200, "OK", totag, ["Contact: <sip:bob@%s:%d>" % (uri_host, a.port)]), addr)
            else:
                sock.sendto(response(m, 486, "Busy Here", totag), addr)
        elif m.method == "ACK" and inv is not None:
            if acked:
                continue
            acked = True
            if a.answer != 200:
                deadline = min(deadline, time.monotonic() + 0.3)
                continue
            via_is(m, r"SIP/2\.0/UDP %s:%d;branch=z9hG4bK" % (re.escape(uri_host), a.sipd_port))
            # 12.1.1: the callee's route set is the Record-Route as it came; the caller's Contact its target
            target = re.search(r"<([^>]+)>", inv.first("Contact") or "").group(1)
            lines = ["INFO %s SIP/2.0" % target,
                     "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bKinfo%06d;rport" % (uri_host, a.port,
                                                                            random.randrange(10 ** 6)),
                     "Max-Forwards: 70", "From: %s;tag=%s" % (inv.first("To"), totag),
                     "To: %s" % inv.first("From"), "Call-ID: %s" % inv.first("Call-ID"), "CSeq: 1 INFO",
                     "Route: %s" % ", ".join(rr), "Content-Length: 0"]
            sock.sendto(("\r\n".join(lines) + "\r\n\r\n").encode(), (bind_host, a.sipd_port))
        elif m.code == 200 and (m.first("CSeq") or "").split() == ["1", "INFO"]:
            info_ok = True
        elif m.method == "BYE" and inv is not None:
            via_is(m, our_via)
            bye = True
            sock.sendto(response(m, 200, "OK", None), addr)
            deadline = min(deadline, time.monotonic() + 0.3)
        elif m.code is None or m.code >= 200:
            fails.append("unexpected %s" % m.start)
    sock.close()
    if inv is None:
        fails.append("no INVITE reached udp:%s:%d" % (uri_host, a.port))
    elif not acked:
        fails.append("no ACK for the %d" % a.answer)
    elif a.answer == 200 and not info_ok:
        fails.append("no 200 for the INFO sent through sipd")
    elif a.answer == 200 and not bye:
        fails.append("no BYE")
    if fails:
        raise Fail("; ".join(fails))
    return 0


def cmd_swallow(a):
    sock = udp_socket(a.port)
    with open(a.ready, "w") as f:
        f.write("%d\n" % a.port)
    n = 0
    deadline = time.monotonic() + a.seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            sock.recvfrom(4096)
            n += 1
        except OSError:
            continue
    print("swallowed %d queries" % n)
    return 0


def cmd_busy(a):
    sock = udp_socket(a.port)
    with open(a.ready, "w") as f:
        f.write("%d\n" % a.port)
    t0 = time.monotonic()
    seen = {}
    while True:
        m, addr = recv_msg(sock, t0 + a.seconds)
        if m is None:
            break
        if m.method != "INVITE":
            continue
        branch = re.search(r"branch=([^;,\s]+)", m.first("Via") or "")
        seen.setdefault(branch.group(1) if branch else "", round(time.monotonic() - t0, 2))
        sock.sendto(response(m, 503, "Service Unavailable", "busy%d" % a.port, ["Retry-After: %d" % a.retry_after]),
                    addr)
    sock.close()
    at = sorted(seen.values())
    if len(at) != a.expect:
        raise Fail("%d INVITE transaction(s) reached the busy next hop (at %s s), expected %d" % (len(at), at, a.expect))
    print("%d INVITE transaction(s), at %s s" % (len(at), at))
    return 0


def main():
    p = argparse.ArgumentParser(description="the caller and the silent DNS server of sipd's DNS tests")
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("call")
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--ruri", required=True)
    c.add_argument("--frm", default="alice")
    c.add_argument("--from-host", default=HOST)
    c.add_argument("--password", default="secret")
    c.add_argument("--auth-user")
    c.add_argument("--no-auth", action="store_true")
    c.add_argument("--expect", type=int, required=True)
    c.add_argument("--reason")
    c.add_argument("--expect-header", action="append", default=[], help="a regex some line of the final must match")
    c.add_argument("--cancel-after", type=float)
    c.add_argument("--min", type=float, default=0.0)
    c.add_argument("--max", type=float, default=1e9)
    c.add_argument("--wait", type=float, default=20.0)
    c.add_argument("--pad", type=int, default=0)
    c.add_argument("--expect-request")
    c.add_argument("--v6", action="store_true")
    v = sub.add_parser("callee")
    v.add_argument("--port", type=int, required=True)
    v.add_argument("--sipd-port", type=int, required=True)
    v.add_argument("--ready", required=True)
    v.add_argument("--seconds", type=float, default=8.0)
    v.add_argument("--answer", type=int, choices=(486, 200), default=486)
    v.add_argument("--register")
    v.add_argument("--family", type=int, choices=(4, 6), default=6)
    s = sub.add_parser("swallow")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--ready", required=True)
    s.add_argument("--seconds", type=float, default=30.0)
    b = sub.add_parser("busy")
    b.add_argument("--port", type=int, required=True)
    b.add_argument("--ready", required=True)
    b.add_argument("--retry-after", type=int, required=True)
    b.add_argument("--expect", type=int, required=True)
    b.add_argument("--seconds", type=float, default=8.0)
    a = p.parse_args()
    try:
        return {"call": cmd_call, "swallow": cmd_swallow, "callee": cmd_callee, "busy": cmd_busy}[a.cmd](a)
    except Fail as e:
        print("dnsua: %s" % e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
