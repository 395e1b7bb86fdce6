#!/usr/bin/env python3
"""probe.py: what a scanner learns from sipd's answers, asked the way sipvicious asks.

  probe.py alike --port P --method M NAME...  [--password PW] [--src ADDR]
      one request per NAME, each from its own socket as svwar sends it (From and To the NAME at sipd's
      address, the Request-URI sip:NAME@host, or sip:host for REGISTER); with --password the challenge
      is answered with that password for the NAME (MD5, qop=auth). Every final answer must look the
      same: its status line, its header field names in order, and its challenge's parameters but the
      nonce. Prints that status line; exits 1 (naming the NAMEs that differ) otherwise.
  probe.py register --port P --src ADDR --user U --password PW --expect CODE [--auth-user NAME]
      a REGISTER for U from ADDR, the challenge answered (as NAME if given): exits 0 when the final
      answer is CODE.

The digest is regclient.py's (tests/registrar); a name is a user name or an extension.
"""
import argparse
import os
import random
import re
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "registrar"))
from regclient import digest_response, quoted_pairs  # noqa: E402  (the registrar tests' digest)

HOST = "127.0.0.1"


def send(sock, port, method, name, from_host, auth=None, cseq=1, call_id=None, tag=None):
    lport = sock.getsockname()[1]
    src = sock.getsockname()[0]
    uri = "sip:%s" % HOST if method == "REGISTER" else "sip:%s@%s" % (name, HOST)
    lines = [
        "%s %s SIP/2.0" % (method, uri),
        "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK-%d;rport" % (src, lport, random.getrandbits(32)),
        "Max-Forwards: 70",
        'To: "%s"<sip:%s@%s>' % (name, name, HOST),
        'From: "%s"<sip:%s@%s>;tag=%s' % (name, name, from_host, tag),
        "User-Agent: friendly-scanner",
        "Call-ID: %s" % call_id,
        "Contact: sip:%s@%s:%d" % (name, src, lport),
        "CSeq: %d %s" % (cseq, method),
        "Accept: application/sdp",
    ]
    if auth:
        lines.append(auth)
    lines += ["Content-Length: 0", "", ""]
    sock.sendto("\r\n".join(lines).encode(), (HOST, port))
    return uri


def final(sock):
    while True:
        data = sock.recv(65535).decode(errors="replace")
        if not data.startswith("SIP/2.0 1"):
            return data


def headers(resp):
    head = resp.split("\r\n\r\n", 1)[0].split("\r\n")
    return head[0], [(h.split(":", 1)[0].strip().lower(), h.split(":", 1)[1].strip()) for h in head[1:] if ":" in h]


def challenge(hdrs):
    for name, value in hdrs:
        if name in ("www-authenticate", "proxy-authenticate"):
            return name, dict(re.findall(r'(\w+)="?([^",]*)"?', value))
    return None, {}


def answer(hname, ch, method, uri, name, password, auth_user=None):
    cnonce, realm = "%08x" % random.getrandbits(32), ch.get("realm", "")
    name = auth_user or name
    resp = digest_response("MD5", name, realm, password, method, uri, ch["nonce"], 1, cnonce)
    field = "Authorization" if hname == "www-authenticate" else "Proxy-Authorization"
    return ('%s: Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=MD5, '
            'cnonce="%s", qop=auth, nc=00000001%s' % (field, quoted_pairs(name), quoted_pairs(realm), ch["nonce"],
                                                     uri, resp, cnonce,
                                                     ', opaque="%s"' % ch["opaque"] if "opaque" in ch else ""))


def ask(port, method, name, password, from_host, src=HOST, auth_user=None):
    """The final answer to one request (and to its second with credentials when password is set)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((src, 0))
    sock.settimeout(3)
    call_id, tag = "%d@scan" % random.getrandbits(48), "%d" % random.getrandbits(32)
    try:
        uri = send(sock, port, method, name, from_host, call_id=call_id, tag=tag)
        resp = final(sock)
        if password is not None:
            hname, ch = challenge(headers(resp)[1])
            if "nonce" not in ch:
                return resp
            auth = answer(hname, ch, method, uri, name, password, auth_user)
            send(sock, port, method, name, from_host, auth, 2, call_id, tag)
            resp = final(sock)
        return resp
    except socket.timeout:
        return "timeout"
    finally:
        sock.close()


def shape(resp):
    if resp == "timeout":
        return ("timeout",)
    status, hdrs = headers(resp)
    hname, ch = challenge(hdrs)
    ch.pop("nonce", None)
    return (status, tuple(n for n, _ in hdrs), hname, tuple(sorted(ch.items())))


def cmd_alike(a):
    shapes = {}
    for name in a.names:
        shapes.setdefault(shape(ask(a.port, a.method, name, a.password, HOST, a.src)), []).append(name)
    if len(shapes) == 1:
        print(next(iter(shapes))[0])
        return 0
    for sh, names in shapes.items():
        print("%s: %s %s" % (",".join(names), sh[0], " ".join(sh[1])))
    return 1


def cmd_register(a):
    resp = ask(a.port, "REGISTER", a.user, a.password, HOST, a.src, a.auth_user)
    status = resp.split("\r\n", 1)[0]
    print(status)
    return 0 if status.startswith("SIP/2.0 %d " % a.expect) else 1


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    al = sub.add_parser("alike")
    al.add_argument("--port", type=int, required=True)
    al.add_argument("--method", required=True)
    al.add_argument("--password")
    al.add_argument("--src", default=HOST)
    al.add_argument("names", nargs="+")
    rg = sub.add_parser("register")
    rg.add_argument("--port", type=int, required=True)
    rg.add_argument("--src", default=HOST)
    rg.add_argument("--user", required=True)
    rg.add_argument("--password", required=True)
    rg.add_argument("--auth-user", help="the digest user name, when not --user (which To and From name)")
    rg.add_argument("--expect", type=int, required=True)
    a = p.parse_args()
    return cmd_alike(a) if a.cmd == "alike" else cmd_register(a)


if __name__ == "__main__":
    sys.exit(main())
