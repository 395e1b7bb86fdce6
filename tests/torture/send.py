#!/usr/bin/env python3
"""send.py: the live half of the torture suite: sends every torture file to a running sipd over UDP
and checks what comes back.

  send.py --host H --port P DIR      run valid/ and invalid/ of DIR
  send.py --host H --port P --ping   one OPTIONS; exit 0 on a 200 (liveness / readiness probe)

Placeholders in the files: @HOST@ @PORT@ become sipd's address, @LHOST@ @LPORT@ the address of the
socket the file is sent from (one fresh socket per file, so late retransmissions of one test never
reach the next). Expectations:
  valid request            a response (any status) whose Call-ID and CSeq echo the request (RFC 3261
                           8.2.6.2); ACK: nothing (RFC 3261 17.2.1, an ACK is never answered)
  valid response           sent for robustness only; whatever comes back is not judged
  invalid NNN-*.sip        a response with status NNN, a non-empty reason phrase and no control character
                           (NUL and the others but HTAB, CR, LF) in its headers
                           (whatever the request held, the fields copied back carry none); when the defect
                           is the Via itself (the name says "via") sipd has nowhere reliable to send
                           it (RFC 3261 18.2.2), so silence is accepted too
  invalid drop-*.sip       nothing at all
"""
import argparse
import os
import re
import socket
import sys
import time

REPLY_WAIT = 4.0    # seconds for a response that must come
SILENCE_WAIT = 1.0  # seconds of silence that count as "nothing"

COMPACT = {"i": "call-id", "v": "via", "f": "from", "t": "to", "l": "content-length", "m": "contact"}


def headers(msg):
    """Unfolded header fields of a message as a list of (lower-case long name, value)."""
    head = msg.lstrip(b"\r\n").split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    head = re.sub(r"\r\n[ \t]+", " ", head)
    out = []
    for line in head.split("\r\n")[1:]:
        if ":" not in line:
            continue
        name, value = line.split(":", 1)
        name = name.strip().lower()
        out.append((COMPACT.get(name, name), value.strip()))
    return out


def first(hdrs, name):
    for n, v in hdrs:
        if n == name:
            return v
    return None


def status_of(msg):
    m = re.match(rb"SIP/2\.0 (\d{3}) ([^\r\n]*)\r\n", msg)
    if not m:
        return None, None
    return int(m.group(1)), m.group(2).decode("utf-8", "replace").strip()


def substitute(raw, host, port, lhost, lport):
    for a, b in (("@LHOST@", lhost), ("@LPORT@", str(lport)), ("@HOST@", host), ("@PORT@", str(port))):
        raw = raw.replace(a.encode(), b.encode())
    return raw


def exchange(raw, host, port, wait):
    """Sends raw (after substitution) from a fresh socket; returns (sent bytes, first reply or None)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((host, 0))
        lhost, lport = s.getsockname()
        msg = substitute(raw, host, port, lhost, lport)
        s.sendto(msg, (host, port))
        s.settimeout(wait)
        try:
            reply, _ = s.recvfrom(65535)
        except socket.timeout:
            reply = None
        return msg, reply
    finally:
        s.close()


def ping(host, port, wait=1.0):
    raw = (b"OPTIONS sip:@HOST@:@PORT@ SIP/2.0\r\n"
           b"Via: SIP/2.0/UDP @LHOST@:@LPORT@;branch=z9hG4bKping%d\r\n"
           b"From: <sip:probe@@LHOST@>;tag=probe\r\n"
           b"To: <sip:@HOST@:@PORT@>\r\n"
           b"Call-ID: torture-probe-%d@@LHOST@\r\n"
           b"CSeq: 1 OPTIONS\r\n"
           b"Max-Forwards: 70\r\n"
           b"Content-Length: 0\r\n\r\n") % (int(time.time() * 1000), os.getpid())
    _, reply = exchange(raw, host, port, wait)
    return status_of(reply)[0] if reply else None


def top_via_reachable(raw):
    """True when the top Via leads back to the sender: our own sent-by, or rport (RFC 3581)."""
    for line in raw.split(b"\r\n")[1:]:
        if re.match(rb"(?i)(via|v)[ \t]*:", line):
            return b"@LPORT@" in line or b"rport" in line.lower()
        if line == b"":
            break
    return False


def check_valid(name, raw, host, port):
    if raw.startswith(b"SIP/"):
        exchange(raw, host, port, 0.3)
        return True, "response sent"
    is_ack = raw.lstrip(b"\r\n").startswith(b"ACK ")
    msg, reply = exchange(raw, host, port, SILENCE_WAIT if is_ack else REPLY_WAIT)
    if is_ack:
        return (reply is None, "no reply" if reply is None else "an ACK was answered: %r" % reply[:60])
    if reply is None:
        if not top_via_reachable(raw):
            return True, "no reply (top Via does not lead back to us)"
        return False, "no response"
    st, reason = status_of(reply)
    if st is None:
        return False, "reply is not a SIP response: %r" % reply[:60]
    req, rsp = headers(msg), headers(reply)
    if first(rsp, "call-id") != first(req, "call-id"):
        return False, "%d: Call-ID %r, sent %r" % (st, first(rsp, "call-id"), first(req, "call-id"))
    if (first(rsp, "cseq") or "").split() != (first(req, "cseq") or "").split():
        return False, "%d: CSeq %r, sent %r" % (st, first(rsp, "cseq"), first(req, "cseq"))
    return True, "%d %s" % (st, reason)


def check_invalid(name, raw, host, port):
    if name.startswith("drop-"):
        _, reply = exchange(raw, host, port, SILENCE_WAIT)
        return (reply is None, "dropped" if reply is None else "answered: %r" % reply[:60])
    want = int(name.split("-", 1)[0])
    _, reply = exchange(raw, host, port, REPLY_WAIT)
    if reply is None:
        if "via" in name:
            return True, "no reply (the Via is the defect)"
        return False, "no response, want %d" % want
    st, reason = status_of(reply)
    if st != want:
        return False, "got %r, want %d" % (reply.split(b"\r\n", 1)[0], want)
    if not reason:
        return False, "%d without a reason phrase" % st
    ctl = re.search(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]", reply.split(b"\r\n\r\n", 1)[0])
    if ctl:
        return False, "%d copies a control character (%r) of the request back" % (st, ctl.group(0))
    return True, "%d %s" % (st, reason)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--ping", action="store_true")
    ap.add_argument("dir", nargs="?")
    a = ap.parse_args()
    if a.ping:
        st = ping(a.host, a.port)
        print("ping: %s" % st)
        return 0 if st == 200 else 1
    if not a.dir:
        ap.error("DIR is required")
    passed = failed = 0
    for sub, check in (("valid", check_valid), ("invalid", check_invalid)):
        d = os.path.join(a.dir, sub)
        for name in sorted(os.listdir(d)):
            if not name.endswith(".sip"):
                continue
            with open(os.path.join(d, name), "rb") as f:
                raw = f.read()
            ok, what = check(name, raw, a.host, a.port)
            print("%s %s/%s: %s" % ("ok  " if ok else "FAIL", sub, name, what))
            passed += ok
            failed += not ok
    print("live: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
