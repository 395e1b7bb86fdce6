#!/usr/bin/env python3
"""rawsip.py: sends one hand-written SIP message to sipd over a raw UDP or TCP socket and checks the answer.

For what SIPp cannot express: messages without a Call-ID (SIPp matches responses by Call-ID), without
Via/From/To/CSeq, TCP messages whose connection must be closed after the answer, and checks on the
address sipd saw (received=/rport=).

  rawsip.py freeport [--count N] [--start PORT]
      prints N ports of 127.0.0.1, each free for both UDP and TCP, one per line
  rawsip.py ready --port P [--wait S]
      sends a probe that sipd answers statelessly (400, no transaction) until it answers; exit 0 when it does
  rawsip.py send --port P [--tcp] --file TEMPLATE [--expect CODE] [--reason TEXT] [--header 'Name~regex']...
                 [--none] [--closed] [--timeout S] [--pad N] [--show] [--second | --second-silent | --reconnect]
      sends TEMPLATE and checks the first message that comes back:
        --expect CODE        status code
        --reason TEXT        exact reason phrase
        --header 'Name~re'   some header Name (case-insensitive) has a value matching re (re.search); repeatable
        --none               nothing at all comes back within --timeout (and the TCP connection stays open,
                             unless --closed: then sipd must have closed it)
        --closed             TCP: sipd closes the connection after its answer
        --final              the checks apply to the first final response (1xx skipped), UDP
        --only               nothing else comes back within a second after the answer (one message, one
                             answer: no request hidden in a body, nothing answered twice)
        --second             UDP: a second socket is bound ({lport2}); the answer must come to it, and
                             nothing to the socket that sent (a Via maddr=, RFC 3261 18.2.2)
        --second-silent      UDP: as --second, but the answer must come to the socket that sent, and
                             nothing to the second ([sip] via_maddr = no)
        --reconnect          TCP: a listener is bound ({lport2}, for the template's Via sent-by); the first
                             answer must come on the connection, which is then closed, and the checks
                             apply to the next answer, which must come on a new connection to the
                             listener (RFC 3261 18.2.2)

Templates are text files: leading lines starting with '#' are comments; then one header per line (LF or CRLF, sent as CRLF); after the empty line, the body.
Placeholders: {lhost} {lport} (our socket), {rhost} {rport} (sipd), {transport} (UDP/TCP),
{branch} {callid} {tag} (fresh per run), {pad} (--pad N times "x"), {len} (length of the body in bytes,
filled in last). Regexes in --header may use {lport} and {lhost} as well.
Exit status: 0 when every check held, 1 otherwise, with one line per failed check on stderr.
"""
import argparse
import os
import random
import re
import socket
import sys
import time

HOST = "127.0.0.1"


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


def render(template, subst):
    text = template.replace("\r\n", "\n")
    while text.startswith("#"):  # leading comment lines say what the template is for
        text = text.split("\n", 1)[1] if "\n" in text else ""
    # Drop at most one trailing newline of the file itself: the template decides where the body ends.
    head, sep, body = text.partition("\n\n")
    if not sep:
        head, body = text.rstrip("\n"), ""
    for k, v in subst.items():
        head = head.replace("{" + k + "}", v)
        body = body.replace("{" + k + "}", v)
    body = body.replace("\n", "\r\n")
    head = head.replace("{len}", str(len(body.encode())))
    return (head.replace("\n", "\r\n") + "\r\n\r\n" + body).encode()


class Msg:
    def __init__(self, raw):
        self.raw = raw
        text = raw.decode("utf-8", "replace")
        head = text.split("\r\n\r\n", 1)[0]
        lines = head.split("\r\n")
        self.start = lines[0]
        self.headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            self.headers.append((name.strip(), value.strip()))
        m = re.match(r"SIP/2\.0 (\d{3}) ?(.*)$", self.start)
        self.code = int(m.group(1)) if m else None
        self.reason = m.group(2) if m else None

    def values(self, name):
        return [v for n, v in self.headers if n.lower() == name.lower()]


def content_length(head):
    m = re.search(rb"\r\n(?:content-length|l)[ \t]*:[ \t]*(\d+)", head, re.I)
    return int(m.group(1)) if m else 0


def read_tcp_message(sock, buf, deadline):
    """One framed message from sock; returns (msg bytes or None, rest, closed)."""
    while True:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            total = end + 4 + content_length(buf[: end + 2])
            if len(buf) >= total:
                return buf[:total], buf[total:], False
        left = deadline - time.monotonic()
        if left <= 0:
            return None, buf, False
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return None, buf, False
        except ConnectionResetError:
            return None, buf, True
        if not chunk:
            return None, buf, True
        buf += chunk


def cmd_send(a):
    proto = "TCP" if a.tcp else "UDP"
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM if a.tcp else socket.SOCK_DGRAM)
    sock.bind((HOST, 0))
    lhost, lport = sock.getsockname()
    if a.tcp:
        sock.settimeout(a.timeout)
        sock.connect((HOST, a.port))
    rnd = "%d%06d" % (os.getpid(), random.randrange(10 ** 6))
    subst = {
        "lhost": lhost, "lport": str(lport), "rhost": HOST, "rport": str(a.port), "transport": proto,
        "branch": "z9hG4bKraw" + rnd, "callid": "raw" + rnd + "@" + lhost, "tag": "rawtag" + rnd,
        "pad": "x" * a.pad,
    }
    second = listener = None
    if a.reconnect:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind((HOST, 0))
        listener.listen(4)
        subst["lport2"] = str(listener.getsockname()[1])
    if a.second or a.second_silent:
        second = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        second.bind((HOST, 0))
        subst["lport2"] = str(second.getsockname()[1])
    with open(a.file, encoding="utf-8") as f:
        data = render(f.read(), subst)
    if a.tcp:
        sock.sendall(data)
    else:
        sock.sendto(data, (HOST, a.port))

    deadline = time.monotonic() + a.timeout
    closed = False
    rest = b""
    if a.tcp:
        raw, rest, closed = read_tcp_message(sock, b"", deadline)
        if listener:
            # the first answer came on the connection; the next must come on one sipd opens to the sent-by
            first = Msg(raw).start if raw else "nothing"
            sock.close()
            listener.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                sock, _ = listener.accept()
                raw, rest, closed = read_tcp_message(sock, b"", deadline)
            except socket.timeout:
                raw = None
                sys.stderr.write("rawsip: after '%s', no connection to the sent-by port\n" % first)
            listener.close()
    else:
        answered, silent = (second, sock) if a.second else (sock, second)
        raw = None
        while True:
            answered.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                raw, _ = answered.recvfrom(65536)
            except (socket.timeout, ConnectionRefusedError):
                raw = None
            code = Msg(raw).code if raw else None
            if not (a.final and code is not None and code < 200):
                break

    fails = []
    if second:
        silent.settimeout(0.3)
        try:
            stray, _ = silent.recvfrom(65536)
            fails.append("the %s socket got an answer too: %s" % ("sending" if a.second else "second",
                                                                 stray.decode("utf-8", "replace").split("\r\n")[0]))
        except (socket.timeout, ConnectionRefusedError):
            pass
        second.close()
    if a.show and raw:
        sys.stderr.write(raw.decode("utf-8", "replace"))
    if a.none:
        if raw is not None:
            fails.append("expected no answer, got: %s" % raw.decode("utf-8", "replace").split("\r\n")[0])
        if closed and not a.closed:
            fails.append("expected the connection to stay open, sipd closed it")
        if a.closed and not closed:
            fails.append("expected sipd to close the connection; still open")
    else:
        if raw is None:
            fails.append("no answer within %.1f s%s" % (a.timeout, " (connection closed)" if closed else ""))
        else:
            m = Msg(raw)
            if a.expect is not None and m.code != a.expect:
                fails.append("expected status %d, got '%s'" % (a.expect, m.start))
            if a.reason is not None and m.reason != a.reason:
                fails.append("expected reason '%s', got '%s'" % (a.reason, m.reason))
            for spec in a.header:
                name, _, rx = spec.partition("~")
                rx = rx.replace("{lport}", str(lport)).replace("{lhost}", re.escape(lhost))
                vals = m.values(name)
                if not vals:
                    fails.append("header %s missing" % name)
                elif not any(re.search(rx, v) for v in vals):
                    fails.append("header %s: %s does not match /%s/" % (name, vals, rx))
            if fails:
                fails.append("the answer was:\n" + raw.decode("utf-8", "replace"))
        if a.only and raw is not None:
            if a.tcp:
                more, rest, _ = read_tcp_message(sock, rest, time.monotonic() + 1.0)
            else:
                sock.settimeout(1.0)
                try:
                    more, _ = sock.recvfrom(65536)
                except (socket.timeout, ConnectionRefusedError):
                    more = None
            if more is not None:
                fails.append("expected one answer, got another: %s%s" % (
                    more.decode("utf-8", "replace").split("\r\n")[0],
                    "".join("\n    " + ln for ln in more.decode("utf-8", "replace").split("\r\n")
                            if ln.lower().startswith("call-id"))))
        if a.closed and not closed:
            # what is left: the close must come soon after the answer
            more, rest, closed = read_tcp_message(sock, rest, time.monotonic() + a.timeout)
            if more is not None:
                fails.append("expected the connection closed, got another message: %s"
                             % more.decode("utf-8", "replace").split("\r\n")[0])
            elif not closed:
                fails.append("expected sipd to close the connection after its answer; still open")
    sock.close()
    for f in fails:
        sys.stderr.write("rawsip: %s\n" % f)
    return 1 if fails else 0


PROBE = ("OPTIONS sip:{rhost}:{rport} SIP/2.0\n"
         "Via: SIP/2.0/UDP {lhost}:{lport};branch={branch}\n"
         "Max-Forwards: probe\n"
         "From: <sip:probe@{lhost}>;tag={tag}\n"
         "To: <sip:{rhost}:{rport}>\n"
         "Call-ID: {callid}\n"
         "CSeq: 1 OPTIONS\n"
         "Content-Length: 0\n\n")


def cmd_ready(a):
    """sipd answers the malformed Max-Forwards statelessly: no transaction is spent on the probe."""
    deadline = time.monotonic() + a.wait
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((HOST, 0))
    lhost, lport = sock.getsockname()
    n = 0
    while time.monotonic() < deadline:
        n += 1
        subst = {"lhost": lhost, "lport": str(lport), "rhost": HOST, "rport": str(a.port),
                 "branch": "z9hG4bKprobe%d-%d" % (os.getpid(), n), "callid": "probe%d-%d" % (os.getpid(), n),
                 "tag": "probe%d" % n}
        sock.sendto(render(PROBE, subst), (HOST, a.port))
        sock.settimeout(0.2)
        try:
            sock.recvfrom(65536)
            return 0
        except (socket.timeout, ConnectionRefusedError):
            time.sleep(0.05)
    sys.stderr.write("rawsip: sipd on port %d did not answer within %.1f s\n" % (a.port, a.wait))
    return 1


def main():
    p = argparse.ArgumentParser(description="raw SIP sender for sipd's tests")
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("freeport")
    f.add_argument("--count", type=int, default=1)
    f.add_argument("--start", type=int, default=20000 + os.getppid() % 10000)
    r = sub.add_parser("ready")
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--wait", type=float, default=10.0)
    s = sub.add_parser("send")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--tcp", action="store_true")
    s.add_argument("--file", required=True)
    s.add_argument("--expect", type=int)
    s.add_argument("--reason")
    s.add_argument("--header", action="append", default=[])
    s.add_argument("--none", action="store_true")
    s.add_argument("--closed", action="store_true")
    s.add_argument("--only", action="store_true")
    s.add_argument("--final", action="store_true")
    s.add_argument("--timeout", type=float, default=2.0)
    s.add_argument("--pad", type=int, default=0)
    s.add_argument("--show", action="store_true")
    s.add_argument("--second", action="store_true")
    s.add_argument("--second-silent", action="store_true")
    s.add_argument("--reconnect", action="store_true")
    a = p.parse_args()
    if a.cmd == "freeport":
        ports = free_ports(a.count, a.start)
        if len(ports) < a.count:
            sys.stderr.write("rawsip: not enough free ports\n")
            return 1
        print("\n".join(map(str, ports)))
        return 0
    if a.cmd == "ready":
        return cmd_ready(a)
    return cmd_send(a)


if __name__ == "__main__":
    sys.exit(main())
