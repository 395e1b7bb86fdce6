#!/usr/bin/env python3
"""regclient.py: a small REGISTER client for sipd's registrar tests, for what SIPp 3.6 cannot do: SHA-256
digest (RFC 7616, RFC 8760), stale nonces, replayed nonce counts, exact checks of every Contact of a 200,
and checks of the store through sipctl and SQLite.

  regclient.py freeport [--count N] [--start PORT]
      N ports of 127.0.0.1, each free for both UDP and TCP, one per line
  regclient.py ready --port P [--wait S]
      exit 0 once sipd answers on udp:127.0.0.1:P (a stateless 400 to a probe)
  regclient.py case NAME --port P [--sipctl PATH] [--db PATH] [--log PATH]
      runs one named case (regclient.py list names them); exit 0 when every check held, else 1 with
      one line per failed check on stderr
  regclient.py register --port P --user U --password PW [--alg MD5|SHA-256] [--to USER] [--contact C]...
                        [--expires N] [--tcp] [--expect CODE] [--has-contact REGEX]... [--no-contact REGEX]...
                        [--count N] [--kill-pid PID] [--show]
      one authenticated REGISTER (401 first, then the credentials); with no --contact, a query;
      --kill-pid: SIGKILL that process the moment the final response is in
  regclient.py regs --sipctl PATH --db PATH [--aor A] [--contact C] [--received R] [--transport T]
                    [--expires-min N] [--expires-max N] [--ua U] [--q Q] [--count N] [--absent] [--raw-received R]
      checks the rows of `sipctl -d DB show registrations` (and the raw SQLite row with --raw-received)

Every request goes from 127.0.0.1 (unless a case says otherwise); over UDP it is retransmitted (500 ms, doubling, as Timer E) until a final
response comes or 8 s pass.
"""
import argparse
import hashlib
import os
import random
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from email.utils import parsedate_to_datetime

HOST = "127.0.0.1"
REALM = "sipd"


class CaseFail(Exception):
    pass


# ---- messages ----

class Msg:
    def __init__(self, raw):
        self.raw = raw
        text = raw.decode("utf-8", "replace")
        head = text.split("\r\n\r\n", 1)[0]
        lines = head.split("\r\n")
        self.start = lines[0]
        self.headers = []
        for line in lines[1:]:
            if line[:1] in (" ", "\t") and self.headers:  # folded line
                n, v = self.headers[-1]
                self.headers[-1] = (n, v + " " + line.strip())
                continue
            name, _, value = line.partition(":")
            self.headers.append((name.strip(), value.strip()))
        m = re.match(r"SIP/2\.0 (\d{3}) ?(.*)$", self.start)
        self.code = int(m.group(1)) if m else None
        self.reason = m.group(2) if m else None

    def values(self, name):
        short = {"contact": "m", "call-id": "i", "via": "v"}.get(name.lower())
        return [v for n, v in self.headers if n.lower() == name.lower() or (short and n.lower() == short)]

    def first(self, name):
        v = self.values(name)
        return v[0] if v else None

    def contacts(self):
        """Every Contact value of the message, split at the commas between values: [(uri, {param: value})]."""
        out = []
        for v in self.values("contact"):
            for el in split_commas(v):
                m = re.match(r'\s*(?:"[^"]*"\s*)?<([^>]*)>(.*)$', el)
                if m:
                    uri, rest = m.group(1), m.group(2)
                else:
                    uri, _, rest = el.strip().partition(";")
                    rest = ";" + rest if rest else ""
                params = {}
                for p in rest.split(";")[1:]:
                    k, _, val = p.strip().partition("=")
                    params[k.lower()] = val
                out.append((uri, params, el.strip()))
        return out

    def text(self):
        return self.raw.decode("utf-8", "replace")


def split_commas(value):
    out, cur, depth, quoted = [], "", 0, False
    for ch in value:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "<":
            depth += 1
        elif not quoted and ch == ">":
            depth -= 1
        elif not quoted and depth == 0 and ch == ",":
            out.append(cur)
            cur = ""
            continue
        cur += ch
    if cur.strip():
        out.append(cur)
    return out


def parse_challenges(resp):
    """The WWW-Authenticate challenges of a 401, in order: [{param: value}] (values unquoted)."""
    out = []
    for v in resp.values("WWW-Authenticate"):
        scheme, _, rest = v.partition(" ")
        params = {"scheme": scheme}
        for m in re.finditer(r'([A-Za-z-]+)\s*=\s*("((?:[^"\\]|\\.)*)"|[^,\s]+)', rest):
            params[m.group(1).lower()] = m.group(3) if m.group(3) is not None else m.group(2)
        params["_raw"] = v
        out.append(params)
    return out


def H(alg, s):
    h = hashlib.sha256() if alg == "SHA-256" else hashlib.md5()
    h.update(s.encode())
    return h.hexdigest()


def digest_response(alg, user, realm, password, method, uri, nonce, nc, cnonce, qop="auth"):
    ha1 = H(alg, "%s:%s:%s" % (user, realm, password))
    ha2 = H(alg, "%s:%s" % (method, uri))
    return H(alg, "%s:%s:%08x:%s:%s:%s" % (ha1, nonce, nc, cnonce, qop, ha2))


def quoted_pairs(text):
    """text as the content of a quoted-string: '"' and '\\' escaped (RFC 3261 25.1 quoted-pair)."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


def authorization(alg, user, password, uri, nonce, nc, realm=REALM, cnonce=None):
    """Digest credentials; user and realm are plain text, written escaped (the digest is over the plain)."""
    cnonce = cnonce or "%08x" % random.randrange(1 << 32)
    resp = digest_response(alg, user, realm, password, "REGISTER", uri, nonce, nc, cnonce)
    return ('Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=%s, '
            'cnonce="%s", qop=auth, nc=%08x' % (quoted_pairs(user), quoted_pairs(realm), nonce, uri, resp, alg,
                                               cnonce, nc))


# ---- the user agent ----

class UA:
    """One REGISTER dialog-less 'session': one socket, one Call-ID, a CSeq counter, a cached nonce."""

    def __init__(self, port, tcp=False, to_host=HOST, ruri=None, callid=None, src=HOST, realm=REALM, server=HOST):
        self.port = port
        self.server = server  # sipd's address this UA sends to (one of its listeners)
        self.last_src = None  # where the last datagram received came from
        self.realm = realm
        self.tcp = tcp
        self.src = src
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM)
        self.sock.bind((src, 0))
        self.lport = self.sock.getsockname()[1]
        if tcp:
            self.sock.settimeout(5)
            self.sock.connect((server, port))
        self.buf = b""
        rnd = "%d-%06d" % (os.getpid(), random.randrange(10 ** 6))
        self.callid = callid or "reg-%s@%s" % (rnd, HOST)
        self.tag = "rc" + rnd.replace("-", "")
        self.cseq = random.randrange(1, 1000)
        self.to_host = to_host
        self.ruri = ruri or "sip:%s:%d" % (HOST, port)
        self.nonce = None
        self.nc = 0
        self.alg = None
        self.nbranch = 0

    def close(self):
        self.sock.close()

    def build(self, to_user, contacts=(), expires=None, cseq=None, auth=None, extra=(), from_user=None,
              ruri=None, to_host=None):
        self.nbranch += 1
        branch = "z9hG4bKrc%s%d" % (self.tag, self.nbranch)
        tr = "TCP" if self.tcp else "UDP"
        to_host = to_host or self.to_host
        lines = [
            "REGISTER %s SIP/2.0" % (ruri or self.ruri),
            "Via: SIP/2.0/%s %s:%d;branch=%s;rport" % (tr, self.src, self.lport, branch),
            "Max-Forwards: 70",
            "From: <sip:%s@%s>;tag=%s" % (from_user or to_user, to_host, self.tag),
            "To: <sip:%s@%s>" % (to_user, to_host),
            "Call-ID: %s" % self.callid,
            "CSeq: %d REGISTER" % cseq,
        ]
        for c in contacts:
            lines.append("Contact: %s" % c)
        if expires is not None:
            lines.append("Expires: %s" % expires)
        if auth:
            lines.append("Authorization: %s" % auth)
        lines.extend(extra)
        lines.append("User-Agent: regclient")
        lines.append("Content-Length: 0")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def transact(self, data, cseq, timeout=8.0):
        """Sends data; returns the final response for this CSeq, or raises CaseFail."""
        deadline = time.monotonic() + timeout
        if self.tcp:
            self.sock.sendall(data)
        else:
            self.sock.sendto(data, (self.server, self.port))
        interval, next_tx = 0.5, time.monotonic() + 0.5
        while True:
            now = time.monotonic()
            if now >= deadline:
                raise CaseFail("no final response to CSeq %d within %.0f s; sent:\n%s" % (cseq, timeout, data.decode()))
            wait = min(deadline, next_tx if not self.tcp else deadline) - now
            raw = self.recv(max(wait, 0.01))
            if raw is None:
                if not self.tcp and time.monotonic() >= next_tx:
                    self.sock.sendto(data, (self.server, self.port))
                    interval = min(interval * 2, 4.0)
                    next_tx = time.monotonic() + interval
                continue
            m = Msg(raw)
            if m.code is None or m.code < 200:
                continue
            cs = m.first("CSeq") or ""
            if not re.match(r"^%d\s+REGISTER$" % cseq, cs) or m.first("Call-ID") != self.callid:
                continue  # a late answer to an earlier request
            return m

    def recv(self, wait):
        if not self.tcp:
            self.sock.settimeout(wait)
            try:
                raw, self.last_src = self.sock.recvfrom(65536)
                return raw
            except (socket.timeout, ConnectionRefusedError):
                return None
        deadline = time.monotonic() + wait
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                m = re.search(rb"\r\n(?:content-length|l)[ \t]*:[ \t]*(\d+)", self.buf[:end + 2], re.I)
                total = end + 4 + (int(m.group(1)) if m else 0)
                if len(self.buf) >= total:
                    raw, self.buf = self.buf[:total], self.buf[total:]
                    return raw
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return None
            if not chunk:
                raise CaseFail("sipd closed the TCP connection")
            self.buf += chunk

    def request(self, to_user, contacts=(), expires=None, auth=None, extra=(), cseq=None, **kw):
        """One request with the next CSeq (or the one given), as bytes to send, and its CSeq."""
        if cseq is None:
            self.cseq += 1
            cseq = self.cseq
        return self.build(to_user, contacts, expires, cseq, auth, extra, **kw), cseq

    def send(self, to_user, contacts=(), expires=None, auth=None, extra=(), cseq=None, **kw):
        """One request with the next CSeq (or the one given); returns the final response."""
        return self.transact(*self.request(to_user, contacts, expires, auth, extra, cseq, **kw))

    def challenge(self, to_user, alg="SHA-256", **kw):
        """A REGISTER without credentials (a query); expects 401 and caches the nonce of alg's challenge."""
        r = self.send(to_user, **kw)
        if r.code != 401:
            raise CaseFail("expected 401 to a REGISTER without credentials, got '%s'" % r.start)
        for c in parse_challenges(r):
            if c.get("algorithm", "MD5").upper() == alg.upper():
                self.nonce, self.nc, self.alg = c.get("nonce"), 0, alg
                return r
        raise CaseFail("no %s challenge in the 401:\n%s" % (alg, r.text()))

    def auth_request(self, to_user, user, password, contacts=(), expires=None, extra=(), nc=None, cseq=None,
                     ruri=None, **kw):
        """A REGISTER with credentials over the cached nonce (next nc unless given, next CSeq unless
        given), as bytes to send, and its CSeq."""
        self.nc = nc if nc is not None else self.nc + 1
        a = authorization(self.alg, user, password, ruri or self.ruri, self.nonce, self.nc, realm=self.realm)
        return self.request(to_user, contacts, expires, a, extra, cseq, ruri=ruri, **kw)

    def auth_send(self, to_user, user, password, contacts=(), expires=None, extra=(), nc=None, cseq=None,
                  ruri=None, **kw):
        """A REGISTER with credentials over the cached nonce (next nc unless given): the final response."""
        data, cseq = self.auth_request(to_user, user, password, contacts, expires, extra, nc, cseq, ruri, **kw)
        return self.transact(data, cseq)

    def register(self, to_user, user, password, contacts=(), expires=None, alg="SHA-256", extra=(), **kw):
        """401 then the credentials: the final response to the second request."""
        self.challenge(to_user, alg, **{k: v for k, v in kw.items() if k in ("ruri", "to_host")})
        return self.auth_send(to_user, user, password, contacts, expires, extra, **kw)


# ---- checks ----

class Checks:
    def __init__(self):
        self.fails = []

    def ok(self, cond, msg):
        if not cond:
            self.fails.append(msg)
        return cond

    def code(self, resp, code, reason=None, what=""):
        good = resp.code == code and (reason is None or resp.reason == reason)
        want = "%d%s" % (code, " " + reason if reason else "")
        if not good:
            self.fails.append("%sexpected '%s', got '%s'\n%s" % (what + ": " if what else "", want, resp.start,
                                                                 indent(resp.text())))
        return good

    def contacts_exact(self, resp, specs, what=""):
        """specs: [(uri, regex for the whole Contact value)]: the 200 lists exactly these bindings."""
        got = resp.contacts()
        uris = [u for u, _, _ in got]
        want = [u for u, _ in specs]
        ok = self.ok(sorted(uris) == sorted(want), "%sbindings listed %s, expected %s\n%s"
                     % (what + ": " if what else "", uris, want, indent(resp.text())))
        for uri, rx in specs:
            for u, _, el in got:
                if u == uri:
                    ok &= self.ok(re.search(rx, el) is not None, "%sContact: %s does not match /%s/"
                                  % (what + ": " if what else "", el, rx))
        return ok

    def date(self, resp):
        d = resp.first("Date")
        if not self.ok(d is not None, "no Date header in the 200"):
            return
        try:
            t = parsedate_to_datetime(d).timestamp()
        except (TypeError, ValueError):
            self.fails.append("Date: %s is not an RFC 1123 date" % d)
            return
        self.ok(re.match(r"^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$", d) is not None,
                "Date: %s is not in the RFC 3261 20.17 form (rfc1123-date, GMT)" % d)
        self.ok(abs(t - time.time()) < 5, "Date: %s is off by %.0f s" % (d, t - time.time()))


def indent(text):
    return "\n".join("    " + line for line in text.rstrip().split("\n"))


def exp_alt(n, slack=2):
    """expires=N, N counting down by up to slack seconds (the 200 tells the time left)."""
    return "expires=(%s)" % "|".join(str(n - i) for i in range(slack + 1) if n - i >= 0)


def exp_rx(n, slack=2):
    return exp_alt(n, slack) + "(;|$)"


# ---- the store ----

def sipctl_regs(sipctl, db, who=None):
    """The rows of `sipctl show registrations [WHO]` as dicts keyed by the column names (cells cut by column)."""
    out = subprocess.run([sipctl, "-d", db, "show", "registrations"] + ([who] if who else []), capture_output=True,
                         text=True, timeout=20)
    if out.returncode != 0:
        raise CaseFail("sipctl show registrations: exit %d: %s" % (out.returncode, out.stderr.strip()))
    lines = out.stdout.rstrip("\n").split("\n")
    head = lines[0]
    cols = [(m.group(0), m.start()) for m in re.finditer(r"\S+", head)]
    rows = []
    for line in lines[1:-1]:
        row = {}
        for i, (name, start) in enumerate(cols):
            end = cols[i + 1][1] if i + 1 < len(cols) else None
            row[name] = line[start:end].strip()
        rows.append(row)
    m = re.match(r"^(\d+) registrations?, (\d+) AORs?$", lines[-1])
    if not m or int(m.group(1)) != len(rows):
        raise CaseFail("sipctl show registrations: unexpected summary line '%s'\n%s" % (lines[-1], out.stdout))
    return rows, out.stdout


def db_rows(db):
    """The bindings table as SQLite has it (read-only, alongside sipd's WAL)."""
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=5)
    try:
        con.row_factory = sqlite3.Row
        return [dict(r) for r in con.execute("SELECT * FROM bindings ORDER BY aor, contact")]
    finally:
        con.close()


def find_reg(rows, aor=None, contact=None):
    return [r for r in rows if (aor is None or r["AOR"] == aor) and (contact is None or r["CONTACT"] == contact)]


def check_reg(ck, sipctl, db, aor, contact, received=None, transport=None, expires=None, slack=3, ua=None, q=None,
              nat=None):
    rows, text = sipctl_regs(sipctl, db)
    hit = find_reg(rows, aor, contact)
    if not ck.ok(len(hit) == 1, "sipctl show registrations: %d rows for %s -> %s, expected 1\n%s"
                 % (len(hit), aor, contact, indent(text))):
        return None
    r = hit[0]
    if received is not None:
        ck.ok(r["RECEIVED"] == received, "sipctl: RECEIVED %s, expected %s" % (r["RECEIVED"], received))
    if transport is not None:
        ck.ok(r["TRANSPORT"] == transport, "sipctl: TRANSPORT %s, expected %s" % (r["TRANSPORT"], transport))
    if nat is not None:
        ck.ok(r["NAT"] == nat, "sipctl: NAT %s, expected %s" % (r["NAT"], nat))
    if expires is not None:
        ck.ok(r["EXPIRES"].isdigit() and expires - slack <= int(r["EXPIRES"]) <= expires,
              "sipctl: EXPIRES %s, expected %d (give or take %d s)" % (r["EXPIRES"], expires, slack))
    if ua is not None:
        ck.ok(r["USER-AGENT"] == ua, "sipctl: USER-AGENT '%s', expected '%s'" % (r["USER-AGENT"], ua))
    if q is not None:
        ck.ok(r["Q"] == q, "sipctl: Q '%s', expected '%s'" % (r["Q"], q))
    return r


# ---- the cases ----

CASES = {}


def case(name, doc):
    def deco(f):
        CASES[name] = (f, doc)
        return f
    return deco


def wipe(ua, to_user, user, password, alg="SHA-256"):
    """Contact: * with Expires: 0: the AOR starts with no binding."""
    r = ua.register(to_user, user, password, ["*"], 0, alg=alg)
    if r.code != 200 or r.contacts():
        raise CaseFail("could not clear %s's bindings: '%s'\n%s" % (to_user, r.start, indent(r.text())))


@case("challenge", "401: one WWW-Authenticate per algorithm (MD5 and SHA-256), realm sipd, one nonce, qop=auth")
def c_challenge(a, ck):
    ua = UA(a.port)
    r = ua.send("alice", ["<sip:alice@%s:%d>" % (HOST, ua.lport)], 600)
    if not ck.code(r, 401, "Unauthorized"):
        return
    ch = parse_challenges(r)
    algs = [c.get("algorithm") for c in ch]
    ck.ok(sorted(algs) == ["MD5", "SHA-256"], "challenges for %s, expected one MD5 and one SHA-256" % algs)
    ck.ok(len({c.get("nonce") for c in ch}) == 1, "the challenges carry different nonces (RFC 8760 2.4: one)")
    for c in ch:
        ck.ok(c["scheme"] == "Digest", "scheme %s" % c["scheme"])
        ck.ok(c.get("realm") == REALM, "realm %s, expected sipd" % c.get("realm"))
        ck.ok(c.get("qop") == "auth", 'qop %s, expected "auth"' % c.get("qop"))
        ck.ok("stale" not in c, "stale= in a first challenge: %s" % c["_raw"])
    ck.ok(not r.contacts(), "a 401 lists Contacts")


@case("challenge-order", "with algorithms = MD5, SHA-256 the MD5 challenge comes first (configured order)")
def c_challenge_order(a, ck):
    ua = UA(a.port)
    r = ua.send("alice")
    if not ck.code(r, 401):
        return
    algs = [c.get("algorithm") for c in parse_challenges(r)]
    want = [x.strip() for x in a.order.split(",")]
    ck.ok(algs == want, "WWW-Authenticate algorithms in the order %s, expected %s (the [auth] algorithms order;"
          " SIPp 3.6 answers the first challenge only)" % (algs, want))


@case("sha256", "REGISTER with SHA-256 digest: 200 with the binding and a Date; in SQLite at the 200; in sipctl")
def c_sha256(a, ck):
    ua = UA(a.port)
    wipe(ua, "alice", "alice", "secret")
    contact = "sip:alice-sha@%s:%d" % (HOST, ua.lport)
    r = ua.register("alice", "alice", "secret", ["<%s>" % contact], 600, alg="SHA-256")
    if not ck.code(r, 200, what="SHA-256 REGISTER"):
        return
    got = [el for u, _, el in r.contacts() if u == contact]
    ck.ok(len(got) == 1 and re.search(exp_rx(600), got[0]), "the 200 does not list %s;expires=600: %s"
          % (contact, r.values("Contact")))
    ck.date(r)
    rows = [b for b in db_rows(a.db) if b["aor"] == "sip:alice@127.0.0.1" and b["contact"] == contact]
    ck.ok(len(rows) == 1, "the binding is not in the SQLite file when the 200 comes")
    check_reg(ck, a.sipctl, a.db, "sip:alice@127.0.0.1", contact, received="%s:%d" % (HOST, ua.lport),
              transport="udp", expires=600, ua="regclient")


@case("multi", "several Contacts with q-values: the 200 lists each as <uri>;expires=N;q=0.500; one removed")
def c_multi(a, ck):
    ua = UA(a.port)
    wipe(ua, "alice", "alice", "secret")
    c1, c2, c3 = "sip:m1@10.0.0.1:5060", "sip:m2@10.0.0.2:5060;transport=tcp", "sip:m3@10.0.0.3"
    r = ua.auth_send("alice", "alice", "secret",
                     ["<%s>;q=0.5, <%s>;q=1" % (c1, c2), "<%s>;expires=120" % c3], 600)
    if ck.code(r, 200, what="3 contacts"):
        ck.contacts_exact(r, [(c1, r"^<sip:m1@10\.0\.0\.1:5060>;%s;q=0\.500$" % exp_alt(600)),
                              (c2, r"^<sip:m2@10\.0\.0\.2:5060;transport=tcp>;%s;q=1\.000$" % exp_alt(600)),
                              (c3, r"^<sip:m3@10\.0\.0\.3>;%s$" % exp_alt(120))], "3 contacts")
        ck.ok(len(r.values("Contact")) == 3, "expected 3 Contact header lines, got %d" % len(r.values("Contact")))
        ck.date(r)
    check_reg(ck, a.sipctl, a.db, "sip:alice@127.0.0.1", c1, q="0.5", expires=600)
    check_reg(ck, a.sipctl, a.db, "sip:alice@127.0.0.1", c2, q="1", expires=600)
    check_reg(ck, a.sipctl, a.db, "sip:alice@127.0.0.1", c3, q="-", expires=120)
    # q=0.25 replaces the 0.5 of c1; c2 goes with expires=0
    r = ua.auth_send("alice", "alice", "secret", ["<%s>;q=0.25" % c1, "<%s>;expires=0" % c2], 900)
    if ck.code(r, 200, what="update q, remove one"):
        ck.contacts_exact(r, [(c1, r";%s;q=0\.250$" % exp_alt(900)), (c3, exp_rx(120))], "after removal")
    rows, _ = sipctl_regs(a.sipctl, a.db)
    ck.ok(not find_reg(rows, "sip:alice@127.0.0.1", c2), "sipctl still lists the removed %s" % c2)


@case("query", "REGISTER without Contact: 200 listing every binding; nothing changes")
def c_query(a, ck):
    ua = UA(a.port)
    wipe(ua, "alice", "alice", "secret")
    c1, c2 = "sip:q1@10.0.0.1", "sip:q2@10.0.0.2"
    r = ua.auth_send("alice", "alice", "secret", ["<%s>;expires=300" % c1, "<%s>;q=0.7" % c2], 900)
    ck.code(r, 200, what="register 2")
    before = db_rows(a.db)
    time.sleep(1.1)
    q = UA(a.port)  # another Call-ID
    r = q.register("alice", "alice", "secret")
    if ck.code(r, 200, what="query"):
        ck.contacts_exact(r, [(c1, r"^<sip:q1@10\.0\.0\.1>;expires=(29[6-9])$"),
                              (c2, r"^<sip:q2@10\.0\.0\.2>;expires=(89[6-9]);q=0\.700$")], "query")
        ck.date(r)
    after = db_rows(a.db)
    ck.ok(before == after, "a query changed the store:\n  before %s\n  after  %s" % (before, after))


@case("replay", "a nonce count used again is refused (401); the next nc with the same nonce is taken")
def c_replay(a, ck):
    ua = UA(a.port)
    wipe(ua, "alice", "alice", "secret")
    contact = "<sip:replay@%s:%d>" % (HOST, ua.lport)
    r = ua.register("alice", "alice", "secret", [contact], 600)
    ck.code(r, 200, what="nc=00000001")
    r = ua.auth_send("alice", "alice", "secret", [contact], 700, nc=1)
    if ck.code(r, 401, what="same nonce, nc=00000001 again"):
        ch = parse_challenges(r)
        ck.ok(ch and all(c.get("nonce") != ua.nonce for c in ch), "the 401 to a replay offers the used nonce again")
        ck.ok(all("stale" not in c for c in ch), "the 401 to a replay says stale=true")
    rows, _ = sipctl_regs(a.sipctl, a.db)
    hit = find_reg(rows, "sip:alice@127.0.0.1", "sip:replay@%s:%d" % (HOST, ua.lport))
    ck.ok(hit and int(hit[0]["EXPIRES"]) <= 600, "the replayed request changed the binding: %s" % hit)
    r = ua.auth_send("alice", "alice", "secret", [contact], 800, nc=2)
    if ck.code(r, 200, what="same nonce, nc=00000002"):
        ck.ok(any(re.search(exp_rx(800), el) for u, _, el in r.contacts() if "replay@" in u),
              "nc=2 did not refresh the binding to 800 s: %s" % r.values("Contact"))
    r = ua.auth_send("alice", "alice", "secret", [contact], 800, nc=1)
    ck.code(r, 401, what="same nonce, nc=00000001 after nc=00000002")
    # a success after the failures, so that the limiter starts over for the next cases
    ck.code(ua.register("alice", "alice", "secret"), 200, what="query after")


@case("expires", "Expires above max_expires is lowered to 3600; below min_expires is 423 with Min-Expires: 60")
def c_expires(a, ck):
    ua = UA(a.port)
    wipe(ua, "alice", "alice", "secret")
    c1, c2 = "sip:long@10.0.0.1", "sip:longer@10.0.0.2"
    r = ua.auth_send("alice", "alice", "secret", ["<%s>" % c1, "<%s>;expires=99999999" % c2], 7200)
    if ck.code(r, 200, what="Expires: 7200"):
        ck.contacts_exact(r, [(c1, exp_rx(3600)), (c2, exp_rx(3600))], "lowered to max_expires")
    for hdr, par in ((30, None), (3600, 59), (None, 1)):
        c = "<sip:short@10.0.0.3>" + (";expires=%d" % par if par is not None else "")
        r = ua.auth_send("alice", "alice", "secret", [c], hdr)
        what = "Expires: %s, Contact %s" % (hdr, c)
        if ck.code(r, 423, "Interval Too Brief", what=what):
            ck.ok(r.values("Min-Expires") == ["60"], "%s: Min-Expires %s, expected 60" % (what, r.values("Min-Expires")))
    r = ua.auth_send("alice", "alice", "secret", ["<sip:short@10.0.0.3>"], 60)
    if ck.code(r, 200, what="Expires: 60 (= min_expires)"):
        ck.contacts_exact(r, [(c1, exp_rx(3600)), (c2, exp_rx(3600)), ("sip:short@10.0.0.3", exp_rx(60))], "60")
    r = ua.auth_send("alice", "alice", "secret", ["<sip:never@10.0.0.4>"], 0)
    if ck.code(r, 200, what="Expires: 0 for a contact that has no binding"):
        ck.ok(len(r.contacts()) == 3, "expected the 3 bindings unchanged, got %s" % r.values("Contact"))
    wipe(ua, "alice", "alice", "secret")


@case("expires-malformed", "RFC 3261 20.19: a malformed Expires (abc, over 2**32-1) SHOULD count as 3600, not 400")
def c_expires_malformed(a, ck):
    ua = UA(a.port)
    wipe(ua, "alice", "alice", "secret")
    for i, v in enumerate(("4294967296", "abc")):
        c = "sip:malformed%d@10.0.0.9" % i
        r = ua.auth_send("alice", "alice", "secret", ["<%s>" % c], v)
        if ck.code(r, 200, what="Expires: %s" % v):
            ck.ok(any(u == c and re.search(exp_rx(3600), el) for u, _, el in r.contacts()),
                  "Expires: %s: the 200 does not list %s;expires=3600: %s" % (v, c, r.values("Contact")))
    wipe(ua, "alice", "alice", "secret")


@case("star", "Contact: * with Expires: 0 removes every binding; with Expires: 3600, none, or another Contact: 400")
def c_star(a, ck):
    ua = UA(a.port)
    r = ua.register("alice", "alice", "secret", ["<sip:s1@10.0.0.1>", "<sip:s2@10.0.0.2>"], 600)
    ck.code(r, 200, what="2 contacts")
    reason = "Contact: * needs Expires: 0 and no other Contact"
    for contacts, exp in ((["*"], 3600), (["*"], None), (["*", "<sip:s3@10.0.0.3>"], 0), (["*, <sip:s3@10.0.0.3>"], 0)):
        r = ua.auth_send("alice", "alice", "secret", contacts, exp)
        ck.code(r, 400, reason, what="Contact: %s, Expires: %s" % (" | ".join(contacts), exp))
    r = ua.auth_send("alice", "alice", "secret", ["*"], 0)
    if ck.code(r, 200, what="Contact: *, Expires: 0"):
        ck.ok(not r.contacts(), "bindings left after Contact: *: %s" % r.values("Contact"))
    rows, text = sipctl_regs(a.sipctl, a.db)
    ck.ok(not find_reg(rows, "sip:alice@127.0.0.1"), "sipctl still lists alice:\n" + indent(text))


@case("other-aor", "bob may not register alice's extension 100 (403); alice may (200)")
def c_other_aor(a, ck):
    ua = UA(a.port)
    r = ua.register("100", "bob", "hunter2", ["<sip:bob@10.0.0.5>"], 600)
    ck.code(r, 403, "Not allowed to register this address of record", what="bob -> sip:100@")
    ua = UA(a.port)
    r = ua.register("100", "alice", "secret", ["<sip:alice-ext@10.0.0.5>"], 600)
    if ck.code(r, 200, what="alice -> sip:100@"):
        ck.contacts_exact(r, [("sip:alice-ext@10.0.0.5", exp_rx(600))], "alice -> 100")
    check_reg(ck, a.sipctl, a.db, "sip:100@127.0.0.1", "sip:alice-ext@10.0.0.5", expires=600)


@case("domain", "a Request-URI in a domain sipd does not serve: 404; a To in one: 401 first, 404 once authenticated")
def c_domain(a, ck):
    ua = UA(a.port)
    r = ua.send("alice", ["<sip:alice@10.0.0.1>"], 600, ruri="sip:example.com")
    ck.code(r, 404, what="R-URI sip:example.com")
    r = ua.send("alice", ["<sip:alice@10.0.0.1>"], 600, to_host="example.com")
    ck.code(r, 401, what="To sip:alice@example.com without credentials (10.3: steps 3 and 4 before step 5)")
    r = UA(a.port, to_host="example.com").register("alice", "alice", "secret", ["<sip:alice@10.0.0.1>"], 600)
    ck.code(r, 404, "Address of record not in this domain", what="To sip:alice@example.com, authenticated")
    ua = UA(a.port, to_host="localhost", ruri="sip:localhost:%d" % a.port)
    r = ua.register("alice", "alice", "secret", ["<sip:alice-lh@10.0.0.1>"], 600)
    ck.code(r, 200, what="R-URI and To at localhost")


@case("domains", "[general] domain = a.example, b.example, realm 'dom \"HQ\"', min_expires 7200: the AOR's domain "
      "is the Request-URI's (10.3 step 5); 423 only under an hour (step 7); a malformed expires parameter is 3600 "
      "(20.10); two Contact: * are 400; a realm and a user name holding '\"' and '\\\\' authenticate")
def c_domains(a, ck):
    realm = 'dom "HQ"'
    # 10.3 step 5: another domain of sipd's in To than in the Request-URI
    ua = UA(a.port, to_host="b.example", ruri="sip:a.example", realm=realm)
    r = ua.register("alice", "alice", "secret", ["<sip:alice-ab@10.0.0.1>"], 7200, alg="MD5")
    ck.code(r, 404, "Address of record not in this domain", what="REGISTER sip:a.example, To sip:alice@b.example")
    ua = UA(a.port, ruri="sip:127.0.0.1:%d" % a.port, to_host="a.example", realm=realm)
    r = ua.send("alice", ["<sip:alice-ip@10.0.0.1>"], 7200)
    ck.code(r, 404, "Domain not served here", what="REGISTER sip:127.0.0.1 (not one of the domains)")
    for dom in ("a.example", "b.example"):
        ua = UA(a.port, to_host=dom, ruri="sip:" + dom, realm=realm)
        r = ua.register("alice", "alice", "secret", ["<sip:alice-%s@10.0.0.1>" % dom[0]], 7200, alg="MD5")
        ck.code(r, 200, what="REGISTER sip:%s, To sip:alice@%s, realm %s written escaped" % (dom, dom, realm))
    rows, text = sipctl_regs(a.sipctl, a.db)
    for dom in ("a.example", "b.example"):
        ck.ok(find_reg(rows, "sip:alice@" + dom, "sip:alice-%s@10.0.0.1" % dom[0]),
              "no binding of sip:alice@%s:\n%s" % (dom, indent(text)))
    ck.ok(not find_reg(rows, contact="sip:alice-ab@10.0.0.1"), "the 404'd binding is stored:\n" + indent(text))
    # 10.3 step 7: min_expires 7200, yet an hour or more is taken as asked
    ua = UA(a.port, to_host="a.example", ruri="sip:a.example", realm=realm)
    r = ua.register("alice", "alice", "secret", ["<sip:alice-423@10.0.0.2>"], 3599, alg="MD5")
    if ck.code(r, 423, "Interval Too Brief", what="Expires: 3599 under min_expires 7200"):
        ck.ok(r.first("Min-Expires") == "7200", "Min-Expires: %s, expected 7200" % r.first("Min-Expires"))
    r = ua.auth_send("alice", "alice", "secret", ["<sip:alice-423@10.0.0.2>"], 3600)
    if ck.code(r, 200, what="Expires: 3600 under min_expires 7200 (one hour: no 423)"):
        ck.contacts_exact(r, [("sip:alice-423@10.0.0.2", exp_rx(3600)), ("sip:alice-a@10.0.0.1", exp_rx(7200))],
                          "Expires 3600")
    # 20.10: a malformed expires parameter is taken as 3600
    r = ua.auth_send("alice", "alice", "secret", ["<sip:alice-423@10.0.0.2>;expires=soon"], 7200)
    if ck.code(r, 200, what="Contact ...;expires=soon"):
        ck.contacts_exact(r, [("sip:alice-423@10.0.0.2", exp_rx(3600)), ("sip:alice-a@10.0.0.1", exp_rx(7200))],
                          "expires=soon")
    # 10.3 step 6: one STAR at most
    r = ua.auth_send("alice", "alice", "secret", ["*", "*"], 0)
    ck.code(r, 400, "Contact: * needs Expires: 0 and no other Contact", what="Contact: * twice, Expires: 0")
    rows, text = sipctl_regs(a.sipctl, a.db)
    ck.ok(find_reg(rows, "sip:alice@a.example", "sip:alice-a@10.0.0.1"),
          "the bindings went with the refused Contact: * twice:\n" + indent(text))
    # a user name with a backslash, sent as a quoted-pair
    ua = UA(a.port, to_host="a.example", ruri="sip:a.example", realm=realm)
    r = ua.register("corp%5Ccarol", "corp\\carol", "pw", ["<sip:carol@10.0.0.4>"], 7200, alg="MD5")
    ck.code(r, 200, what="user corp\\carol (username=\"corp\\\\carol\")")


@case("path", "Path with Supported: path: stored and echoed in the 200; without it, not echoed (RFC 3327 5.3)")
def c_path(a, ck):
    ua = UA(a.port)
    wipe(ua, "alice", "alice", "secret")
    path = "<sip:edge1.example.com;lr>, <sip:edge2.example.com;lr>"
    r = ua.register("alice", "alice", "secret", ["<sip:alice-path@10.0.0.6>"], 600,
                    extra=["Supported: path", "Path: %s" % path])
    if ck.code(r, 200, what="Path + Supported: path"):
        p = ",".join(r.values("Path")).replace(" ", "")
        ck.ok(p == path.replace(" ", ""), "Path in the 200: %s, expected %s" % (r.values("Path"), path))
    rows = [b for b in db_rows(a.db) if b["contact"] == "sip:alice-path@10.0.0.6"]
    ck.ok(rows and rows[0]["path"].replace(" ", "") == path.replace(" ", ""),
          "stored path: %s" % (rows[0]["path"] if rows else "no row"))
    r = ua.auth_send("alice", "alice", "secret", ["<sip:alice-path@10.0.0.6>"], 600, extra=["Path: %s" % path])
    if ck.code(r, 200, what="Path without Supported: path"):
        ck.ok(not r.values("Path"), "Path echoed to a UA that did not say Supported: path: %s" % r.values("Path"))
    # a Path sipd cannot keep whole (over 1 kB) is refused, not stored without it: the binding would not
    # reach the phone through its edge proxies
    long_path = ", ".join("<sip:edge%d.example.com;lr>" % i for i in range(60))
    r = ua.auth_send("alice", "alice", "secret", ["<sip:alice-longpath@10.0.0.6>"], 600,
                     extra=["Supported: path", "Path: %s" % long_path])
    ck.code(r, 500, reason="Path header field too long to store", what="a %d-byte Path" % len(long_path))
    ck.ok(not [b for b in db_rows(a.db) if b["contact"] == "sip:alice-longpath@10.0.0.6"],
          "a binding was stored without its Path")


@case("tcp", "REGISTER over TCP: received tcp:127.0.0.1:<port>")
def c_tcp(a, ck):
    ua = UA(a.port, tcp=True)
    wipe(ua, "alice", "alice", "secret")
    contact = "sip:alice-tcp@%s:%d;transport=tcp" % (HOST, ua.lport)
    r = ua.register("alice", "alice", "secret", ["<%s>" % contact], 600)
    if ck.code(r, 200, what="over TCP"):
        ck.ok(any(u == contact for u, _, _ in r.contacts()), "the 200 does not list %s" % contact)
    check_reg(ck, a.sipctl, a.db, "sip:alice@127.0.0.1", contact, received="%s:%d" % (HOST, ua.lport),
              transport="tcp", expires=600, nat="no")
    ua.close()


@case("tcp-half-close", "REGISTER over TCP, then shutdown(SHUT_WR): the 200 still arrives, the binding is stored")
def c_tcp_half_close(a, ck):
    ua = UA(a.port, tcp=True)
    wipe(ua, "alice", "alice", "secret")
    contact = "sip:alice-half@%s:%d;transport=tcp" % (HOST, ua.lport)
    ua.challenge("alice")
    data, cseq = ua.auth_request("alice", "alice", "secret", ["<%s>" % contact], 600)
    # the 200 comes once the binding is durable, after the FIN: a client done sending (nc -N) waits for it
    ua.sock.sendall(data)
    ua.sock.shutdown(socket.SHUT_WR)
    raw = ua.recv(5.0)
    if not ck.ok(raw is not None, "no response on the half-closed connection within 5 s"):
        ua.close()
        return
    r = Msg(raw)
    if ck.code(r, 200, what="after the client's FIN"):
        ck.ok(any(u == contact for u, _, _ in r.contacts()), "the 200 does not list %s" % contact)
    ck.ok([b for b in db_rows(a.db) if b["contact"] == contact], "no row for %s in SQLite" % contact)
    # and sipd closes its side once nothing more is owed
    ua.sock.settimeout(3)
    try:
        rest = ua.sock.recv(100)
        ck.ok(rest == b"", "after the 200, sipd sent %r instead of closing" % rest)
    except socket.timeout:
        ck.ok(False, "sipd did not close the half-closed connection within 3 s of its 200")
    ua.close()


def sipctl_unregister(a, *args):
    out = subprocess.run([a.sipctl, "-d", a.db, "unregister"] + list(args), capture_output=True, text=True,
                         timeout=20)
    return out.returncode, out.stdout + out.stderr


def query_until(ua, user, password, want, seconds=3.0):
    """REGISTER queries (no Contact) until the 200 lists exactly the contact URIs want, or seconds pass;
    the last 200's contacts."""
    deadline = time.monotonic() + seconds
    while True:
        r = ua.register(user, user, password)
        got = sorted(u for u, _, _ in r.contacts()) if r.code == 200 else None
        if got == sorted(want) or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def alice_and_bob(a, ck, alice_contacts, bob_contacts):
    """Two phones, alice's and bob's, each bound to just these contacts (600 s): the two UAs."""
    ua, ub = UA(a.port), UA(a.port)
    wipe(ua, "alice", "alice", "secret")
    wipe(ub, "bob", "bob", "hunter2")
    ck.code(ua.auth_send("alice", "alice", "secret", ["<%s>" % c for c in alice_contacts], 600), 200, what="alice")
    ck.code(ub.auth_send("bob", "bob", "hunter2", ["<%s>" % c for c in bob_contacts], 600), 200, what="bob")
    return ua, ub


@case("unregister", "sipctl unregister: one contact, then the rest of the AOR by user name: gone from SQLite "
      "at once, from sipd's memory (a query, the log) within a second; bob untouched; nothing left: exit 1")
def c_unregister(a, ck):
    c1, c2, c3 = "sip:u1@10.0.0.1:5060", "sip:u2@10.0.0.2:5060", "sip:u3@10.0.0.3:5060"
    ua, ub = alice_and_bob(a, ck, [c1, c2], [c3])
    for who in ("alice", "alice@127.0.0.1", "sip:alice@127.0.0.1"):
        rows, text = sipctl_regs(a.sipctl, a.db, who)
        ck.ok(sorted(r["CONTACT"] for r in rows) == [c1, c2] and {r["AOR"] for r in rows} == {"sip:alice@127.0.0.1"},
              "sipctl show registrations %s: expected alice's two contacts only\n%s" % (who, indent(text)))
    rc, out = sipctl_unregister(a, "sip:alice@127.0.0.1", c1)
    ck.ok(rc == 0 and "sip:alice@127.0.0.1: 1 binding removed" in out,
          "sipctl unregister sip:alice@127.0.0.1 %s: exit %d: %s" % (c1, rc, out.strip()))
    ck.ok(sorted(b["contact"] for b in db_rows(a.db) if b["aor"] == "sip:alice@127.0.0.1") == [c2],
          "SQLite right after sipctl: %s" % db_rows(a.db))
    got = query_until(UA(a.port), "alice", "secret", [c2])
    ck.ok(got == [c2], "a query 3 s after sipctl unregister lists %s, expected only %s" % (got, c2))
    ck.ok(log_has(a.log, r"registrar: sip:alice@127\.0\.0\.1: binding removed by sipctl: %s" % re.escape(c1)),
          "sipd's log does not say it removed %s" % c1)
    rc, out = sipctl_unregister(a, "alice")
    ck.ok(rc == 0 and "sip:alice@127.0.0.1: 1 binding removed" in out,
          "sipctl unregister alice: exit %d: %s" % (rc, out.strip()))
    got = query_until(UA(a.port), "alice", "secret", [])
    ck.ok(got == [], "a query 3 s after sipctl unregister alice lists %s, expected none" % got)
    ck.ok(not [b for b in db_rows(a.db) if b["aor"] == "sip:alice@127.0.0.1"], "alice's rows still in SQLite")
    got = query_until(UA(a.port), "bob", "hunter2", [c3], 0)
    ck.ok(got == [c3], "bob's bindings after alice's removal: %s, expected %s" % (got, c3))
    rc, out = sipctl_unregister(a, "alice@127.0.0.1")
    ck.ok(rc == 1 and "no registration of alice@127.0.0.1" in out,
          "sipctl unregister of an AOR with nothing bound: exit %d (%s), expected 1" % (rc, out.strip()))
    rc, out = sipctl_unregister(a)
    ck.ok(rc == 2, "sipctl unregister without an AOR: exit %d, expected 2 (usage)" % rc)
    # the phone may register again: the removal was of that binding, not of the user
    r = ua.auth_send("alice", "alice", "secret", ["<%s>" % c1], 600)
    if ck.code(r, 200, what="alice again after sipctl unregister"):
        ck.ok([u for u, _, _ in r.contacts()] == [c1], "the 200 lists %s" % [u for u, _, _ in r.contacts()])
    wipe(ua, "alice", "alice", "secret")
    wipe(ub, "bob", "bob", "hunter2")


def pings(ua, seconds):
    """The OPTIONS that reach ua's socket within seconds (each answered 200, as a phone would)."""
    got, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        raw = ua.recv(max(deadline - time.monotonic(), 0.01))
        if raw is None:
            continue
        m = Msg(raw)
        if not m.start.startswith("OPTIONS "):
            continue
        got.append(m)
        ok = ["SIP/2.0 200 OK"] + ["%s: %s" % (h, m.first(h)) for h in ("Via", "From", "To", "Call-ID", "CSeq")]
        ua.sock.sendto(("\r\n".join(ok + ["Content-Length: 0", "", ""])).encode(), (HOST, ua.port))
    return got


@case("natping", "nat_keepalive = 1: an OPTIONS every second through the pinhole of a phone registered over UDP "
      "from another address than its Contact's, none to one whose Contact is where it registered from, none "
      "once its binding is removed; the phone's 200s are absorbed")
def c_natping(a, ck):
    direct = UA(a.port)
    behind = "sip:alice@10.0.0.99:5060;transport=udp"
    here = "sip:bob@%s:%d" % (HOST, direct.lport)
    nat = UA(a.port)
    wipe(nat, "alice", "alice", "secret")
    wipe(direct, "bob", "bob", "hunter2")
    ck.code(nat.auth_send("alice", "alice", "secret", ["<%s>" % behind], 600), 200, what="alice behind a NAT")
    ck.code(direct.auth_send("bob", "bob", "hunter2", ["<%s>" % here], 600), 200, what="bob, not behind one")
    got = pings(nat, 3.5)
    ck.ok(len(got) >= 2, "%d OPTIONS reached alice's pinhole in 3.5 s with nat_keepalive = 1, expected 3 or so"
          % len(got))
    for m in got[:1]:
        via = m.first("Via") or ""
        ck.ok(m.start == "OPTIONS %s SIP/2.0" % behind, "the ping's start line: '%s'" % m.start)
        ck.ok(re.match(r"^SIP/2\.0/UDP 127\.0\.0\.1:%d;branch=z9hG4bK\w+;rport$" % a.port, via),
              "the ping's Via: '%s'" % via)
        ck.ok(m.first("Max-Forwards") == "70" and m.first("CSeq") == "1 OPTIONS",
              "Max-Forwards '%s', CSeq '%s'" % (m.first("Max-Forwards"), m.first("CSeq")))
        ck.ok(m.first("To") == "<%s>" % behind and re.search(r";tag=\w+$", m.first("From") or ""),
              "To '%s', From '%s'" % (m.first("To"), m.first("From")))
    branches = {re.sub(r".*branch=([^;]+).*", r"\1", m.first("Via") or "") for m in got}
    ck.ok(len(branches) == len(got), "pings share branches: %s" % sorted(branches))
    ck.ok(not pings(direct, 0.1), "bob, registered from the address his Contact names, was pinged")
    ck.code(nat.auth_send("alice", "alice", "secret", ["<%s>" % behind], 0), 200, what="alice un-REGISTERs")
    pings(nat, 0.3)  # one in flight
    late = pings(nat, 2.5)
    ck.ok(not late, "%d pings after alice's binding was removed" % len(late))
    wipe(direct, "bob", "bob", "hunter2")


@case("listener2", "a second UDP listener (127.0.0.3): the 401, its retransmission's and a 400 come from it; a phone "
      "behind a NAT registered through it gets its 200 from it, sipctl shows it as the binding's SOCKET, and the "
      "keep-alives reach the phone from it with a Via naming it (RFC 3581 4: its NAT lets in nothing else)")
def c_listener2(a, ck):
    second = (a.second, a.port)
    ua = UA(a.port, server=a.second)
    wipe(ua, "alice", "alice", "secret")
    data, cseq = ua.request("alice")
    r = ua.transact(data, cseq)
    ck.code(r, 401, what="a REGISTER without credentials to %s" % a.second)
    ck.ok(ua.last_src == second, "the 401 came from %s, expected %s:%d" % (ua.last_src, a.second, a.port))
    ua.sock.sendto(data, second)  # a retransmission: the transaction's echo answers it
    raw = ua.recv(3.0)
    ck.ok(raw is not None and Msg(raw).code == 401 and ua.last_src == second,
          "the retransmission got %s from %s, expected the 401 again from %s:%d"
          % (Msg(raw).start if raw else "nothing", ua.last_src, a.second, a.port))
    bad = re.sub(rb"Call-ID: [^\r]*\r\n", b"", ua.request("alice")[0])
    ua.sock.sendto(bad, second)
    raw = ua.recv(3.0)
    ck.ok(raw is not None and Msg(raw).code == 400 and ua.last_src == second,
          "a REGISTER without Call-ID got %s from %s, expected 400 from %s:%d"
          % (Msg(raw).start if raw else "nothing", ua.last_src, a.second, a.port))
    behind = "sip:alice@10.0.0.96:5060"
    # two requests without credentials: sipd now offers this client MD5 alone (auth/unanswered.c)
    r = ua.register("alice", "alice", "secret", ["<%s>" % behind], 600, alg="MD5")
    ck.code(r, 200, what="alice behind a NAT, through %s" % a.second)
    ck.ok(ua.last_src == second, "the 200 came from %s, expected %s:%d" % (ua.last_src, a.second, a.port))
    rows, out = sipctl_regs(a.sipctl, a.db, "alice")
    row = (find_reg(rows, contact=behind) or [None])[0]
    ck.ok(row and row.get("SOCKET") == "%s:%d" % second, "sipctl shows alice's SOCKET as %s, expected %s:%d\n%s"
          % (row.get("SOCKET") if row else "no row", a.second, a.port, out))
    deadline, got = time.monotonic() + 3.5, None
    while got is None and time.monotonic() < deadline:
        raw = ua.recv(max(deadline - time.monotonic(), 0.01))
        if raw is not None and Msg(raw).start.startswith("OPTIONS "):
            got = Msg(raw)
    if ck.ok(got is not None, "no keep-alive reached alice within 3.5 s"):
        ck.ok(ua.last_src == second, "the keep-alive came from %s, expected %s:%d" % (ua.last_src, a.second, a.port))
        ck.ok(re.match(r"^SIP/2\.0/UDP %s:%d;branch=" % (re.escape(a.second), a.port), got.first("Via") or ""),
              "the keep-alive's Via: '%s'" % got.first("Via"))
    wipe(ua, "alice", "alice", "secret", alg="MD5")


@case("natdead", "nat_keepalive = 1, nat_keepalive_timeout = 3: a phone behind a NAT that answers no ping loses "
      "its binding after about 4 s (the log says why), one that answers keeps it")
def c_natdead(a, ck):
    c_alive, c_dead = "sip:alice@10.0.0.97:5060", "sip:bob@10.0.0.98:5060"
    alive, dead = alice_and_bob(a, ck, [c_alive], [c_dead])
    answered = pings(alive, 6.5)  # bob's pings pile up in his socket, unanswered
    ck.ok(len(answered) >= 4, "alice answered %d pings in 6.5 s, expected 5 or so" % len(answered))
    got = query_until(UA(a.port), "bob", "hunter2", [], 2.0)
    ck.ok(got == [], "bob, silent for 6.5 s, still bound: %s" % got)
    ck.ok(log_has(a.log, r"registrar: sip:bob@127\.0\.0\.1: binding removed \(no answer to keep-alives for 3 s\): "
                  + re.escape(c_dead)), "sipd's log does not say why bob's binding went")
    got = query_until(UA(a.port), "alice", "secret", [c_alive], 0)
    ck.ok(got == [c_alive], "alice, who answered every ping, has %s, expected %s" % (got, c_alive))
    ck.ok(not [b for b in db_rows(a.db) if b["aor"] == "sip:bob@127.0.0.1"], "bob's row still in SQLite")
    wipe(alive, "alice", "alice", "secret")


@case("nat", "Contact 10.0.0.99:5060 from 127.0.0.1:<port>: received udp:127.0.0.1:<port>")
def c_nat(a, ck):
    ua = UA(a.port)
    wipe(ua, "alice", "alice", "secret")
    contact = "sip:alice@10.0.0.99:5060"
    r = ua.register("alice", "alice", "secret", ["<%s>" % contact], 600)
    ck.code(r, 200)
    check_reg(ck, a.sipctl, a.db, "sip:alice@127.0.0.1", contact, received="%s:%d" % (HOST, ua.lport),
              transport="udp", nat="yes")
    rows = [b for b in db_rows(a.db) if b["contact"] == contact]
    ck.ok(rows and rows[0]["received"] == "udp:%s:%d" % (HOST, ua.lport),
          "SQLite received: %s" % (rows[0]["received"] if rows else "no row"))


@case("dbuser", "a user added by sipctl registers within 3 s (SHA-256 and MD5); disabled by sipctl: 401 within 3 s; "
      "a user add that fails creates no database")
def c_dbuser(a, ck):
    name = "dave%d" % random.randrange(10 ** 6)
    # a user add that fails (no password on standard input) leaves no empty database behind
    fresh = a.db + ".fresh"
    out = subprocess.run([a.sipctl, "-d", fresh, "user", "add", name], input="", capture_output=True, text=True,
                         timeout=20)
    ck.ok(out.returncode == 1 and "no password" in out.stderr, "sipctl user add without a password: exit %d %s"
          % (out.returncode, out.stderr.strip()))
    ck.ok(not os.path.exists(fresh), "the failed user add left %s behind" % fresh)
    out = subprocess.run([a.sipctl, "-d", a.db, "user", "add", name, "--password", "d4ve pass"],
                         capture_output=True, text=True, timeout=20)
    t0 = time.monotonic()
    if not ck.ok(out.returncode == 0, "sipctl user add: exit %d %s" % (out.returncode, out.stderr.strip())):
        return
    r = None
    while True:
        ua = UA(a.port)
        r = ua.register(name, name, "d4ve pass", ["<sip:%s@10.0.0.7>" % name], 600)
        if r.code == 200 or time.monotonic() - t0 > 3.0:
            break
        time.sleep(0.8)  # at most 4 failures before the last try: under max_failures
    took = time.monotonic() - t0
    if ck.code(r, 200, what="%s registers (tried for %.1f s)" % (name, took)):
        ck.ok(took <= 3.0, "took %.1f s" % took)
        r = UA(a.port).register(name, name, "d4ve pass", alg="MD5")
        ck.code(r, 200, what="%s queries with MD5" % name)
        check_reg(ck, a.sipctl, a.db, "sip:%s@127.0.0.1" % name, "sip:%s@10.0.0.7" % name, expires=600)
        out = subprocess.run([a.sipctl, "-d", a.db, "user", "disable", name], capture_output=True, text=True,
                             timeout=20)
        t0 = time.monotonic()
        if ck.ok(out.returncode == 0, "sipctl user disable: exit %d %s" % (out.returncode, out.stderr.strip())):
            while True:
                r = UA(a.port).register(name, name, "d4ve pass")
                if r.code != 200 or time.monotonic() - t0 > 3.0:
                    break
                time.sleep(0.5)
            ck.code(r, 401, what="%s disabled by sipctl, %.1f s later" % (name, time.monotonic() - t0))
        # deleting the user takes its registrations with it
        out = subprocess.run([a.sipctl, "-d", a.db, "user", "del", name], capture_output=True, text=True, timeout=20)
        ck.ok(out.returncode == 0 and "sip:%s@127.0.0.1: 1 binding removed" % name in out.stdout,
              "sipctl user del: exit %d: %s %s" % (out.returncode, out.stdout.strip(), out.stderr.strip()))
        rows, text = sipctl_regs(a.sipctl, a.db, name)
        ck.ok(not rows, "sipctl show registrations %s after user del:\n%s" % (name, indent(text)))
        ck.ok(not [b for b in db_rows(a.db) if b["aor"] == "sip:%s@127.0.0.1" % name], "rows left in SQLite")


@case("dbext", "sipctl refuses an extension that is no number or is another stored user's; a stored user "
      "given the extension of a [user] in the file may not register it (403): calls to it reach the file's user")
def c_dbext(a, ck):
    name = "mal%d" % random.randrange(10 ** 6)

    def add(user, ext):
        return subprocess.run([a.sipctl, "-d", a.db, "user", "add", user, "--password", "m4l", "--extension", ext],
                              capture_output=True, text=True, timeout=20)

    out = add("mal@lory", "555")
    ck.ok(out.returncode == 2 and "bad user name 'mal@lory'" in out.stderr,
          "sipctl user add mal@lory (a name the file refuses too): exit %d %s" % (out.returncode, out.stderr.strip()))
    out = add(name, "alice")
    ck.ok(out.returncode == 2 and "bad extension 'alice'" in out.stderr,
          "sipctl user add --extension alice: exit %d %s" % (out.returncode, out.stderr.strip()))
    out = add(name, "100")  # the file's alice has 100: the database cannot know
    if not ck.ok(out.returncode == 0, "sipctl user add --extension 100: exit %d %s" % (out.returncode, out.stderr.strip())):
        return
    out = add(name + "b", "100")
    ck.ok(out.returncode == 1 and "extension 100 is already user '%s''s extension" % name in out.stderr,
          "sipctl user add of a second extension 100: exit %d %s" % (out.returncode, out.stderr.strip()))
    out = add("100", "555")
    ck.ok(out.returncode == 1 and "'100' is already user '%s''s extension" % name in out.stderr,
          "sipctl user add of a user named 100: exit %d %s" % (out.returncode, out.stderr.strip()))
    t0 = time.monotonic()
    while True:
        r = UA(a.port).register(name, name, "m4l", ["<sip:%s@10.0.0.8>" % name], 600)
        if r.code == 200 or time.monotonic() - t0 > 3.0:
            break
        time.sleep(0.8)
    if ck.code(r, 200, what="%s registers its own name" % name):
        r = UA(a.port).register("100", name, "m4l", ["<sip:%s@10.0.0.8>" % name], 600)
        ck.code(r, 403, "Not allowed to register this address of record", what="%s -> sip:100@ (alice's)" % name)
        rows, text = sipctl_regs(a.sipctl, a.db)
        ck.ok(not find_reg(rows, "sip:100@127.0.0.1", "sip:%s@10.0.0.8" % name),
              "a binding of %s under sip:100@ was stored:\n%s" % (name, indent(text)))
    subprocess.run([a.sipctl, "-d", a.db, "user", "del", name], capture_output=True, timeout=20)


@case("spellings", "one address written otherwise is one host (RFC 5954 4): a REGISTER to sip:[::ffff:127.0.0.1] "
      "binds alice's AOR at sipd; a Contact written again in other case refreshes its binding, and Contact: * "
      "leaves no row of either spelling behind")
def c_spellings(a, ck):
    mapped = "[::ffff:127.0.0.1]"
    ua = UA(a.port, to_host=mapped, ruri="sip:%s:%d" % (mapped, a.port))
    r = ua.register("alice", "alice", "secret", ["<sip:alice-mapped@10.0.0.21>"], 600)
    if ck.code(r, 200, what="R-URI and To at %s (sipd's 127.0.0.1, IPv4-mapped)" % mapped):
        check_reg(ck, a.sipctl, a.db, "sip:alice@127.0.0.1", "sip:alice-mapped@10.0.0.21", expires=600)
    wipe(ua, "alice", "alice", "secret")
    ua = UA(a.port)
    r = ua.register("alice", "alice", "secret", ["<sip:alice@PHONE.example:5070>"], 600)
    ck.code(r, 200, what="Contact sip:alice@PHONE.example:5070")
    r = ua.auth_send("alice", "alice", "secret", ["<sip:alice@phone.example:5070>"], 600)
    if ck.code(r, 200, what="the same Contact as sip:alice@phone.example:5070"):
        ck.ok(len(r.contacts()) == 1, "two bindings for one Contact (19.1.4): %s" % r.values("Contact"))
    r = ua.auth_send("alice", "alice", "secret", ["*"], 0)
    if ck.code(r, 200, what="Contact: *, Expires: 0"):
        ck.ok(not r.contacts(), "bindings left after Contact: *: %s" % r.values("Contact"))
    rows, text = sipctl_regs(a.sipctl, a.db)
    ck.ok(not find_reg(rows, "sip:alice@127.0.0.1"), "a row of alice outlived Contact: * (restart would load it):\n"
          + indent(text))


def log_has(path, rx):
    with open(path, encoding="utf-8", errors="replace") as f:
        return re.search(rx, f.read()) is not None


@case("lockout", "wrong password: 401 with a fresh nonce, 5 times; then 403 even with the right one; bob and "
      "alice from 127.0.0.2 are fine; a success starts the count over; unknown and disabled users: 401")
def c_lockout(a, ck):
    ua = UA(a.port)
    contact = ["<sip:alice@%s:%d>" % (HOST, ua.lport)]
    r = ua.challenge("alice", "MD5")
    nonces = [ua.nonce]
    for i in range(1, 6):
        r = ua.auth_send("alice", "alice", "wrong", contact, 600)
        if not ck.code(r, 401, "Unauthorized", what="wrong password #%d" % i):
            return
        ch = [c for c in parse_challenges(r) if c.get("algorithm") == "MD5"]
        ck.ok(ch and ch[0].get("nonce") not in nonces, "wrong password #%d: no fresh nonce in the 401" % i)
        ck.ok(ch and "stale" not in ch[0], "wrong password #%d: stale=true" % i)
        if ch:
            ua.nonce, ua.nc = ch[0]["nonce"], 0
            nonces.append(ua.nonce)
    ck.ok(log_has(a.log, r"auth: wrong password for user 'alice'"), "no 'auth: wrong password' line in the log")
    r = ua.auth_send("alice", "alice", "secret", contact, 600)
    ck.code(r, 403, "Too many failed authentication attempts", what="right password after 5 failures")
    r = UA(a.port).register("alice", "alice", "secret", contact, 600, alg="MD5")
    ck.code(r, 403, "Too many failed authentication attempts", what="right password, new Call-ID and port")
    rows, _ = sipctl_regs(a.sipctl, a.db)
    ck.ok(not find_reg(rows, "sip:alice@127.0.0.1"), "a binding of alice was stored while blocked")
    ub = UA(a.port)
    r = ub.register("bob", "bob", "hunter2", ["<sip:bob@%s:%d>" % (HOST, ub.lport)], 600, alg="MD5")
    ck.code(r, 200, what="bob from the same address")
    u2 = UA(a.port, src="127.0.0.2")
    r = u2.register("alice", "alice", "secret", ["<sip:alice@127.0.0.2:%d>" % u2.lport], 600, alg="MD5")
    ck.code(r, 200, what="alice from another address (127.0.0.2)")
    # a success starts the count over: 4 failures, a success, 4 failures: never blocked
    ub.challenge("bob", "MD5")
    for i in range(1, 10):
        good = i == 5
        r = ub.auth_send("bob", "bob", "hunter2" if good else "nope", [], None)
        if not ck.code(r, 200 if good else 401, what="bob, %s #%d" % ("right password" if good else "wrong", i)):
            break
        ch = [c for c in parse_challenges(r) if c.get("algorithm") == "MD5"]
        if ch:
            ub.nonce, ub.nc = ch[0]["nonce"], 0
    # the other failures told apart in the log only: all 401
    r = UA(a.port).register("mallory", "mallory", "x", ["<sip:m@10.0.0.1>"], 600, alg="MD5")
    ck.code(r, 401, what="unknown user")
    ck.ok(log_has(a.log, r"auth: unknown user for user 'mallory'"), "no 'auth: unknown user' line in the log")
    r = UA(a.port).register("eve", "eve", "evepass", ["<sip:e@10.0.0.1>"], 600, alg="MD5")
    ck.code(r, 401, what="disabled user")
    ck.ok(log_has(a.log, r"auth: disabled user for user 'eve'"), "no 'auth: disabled user' line in the log")


@case("cred-checks", "credentials checked against the request and the user: a digest uri that is not the "
      "Request-URI (RFC 7616 3.4.6, compared as RFC 3261 19.1.4 compares URIs) is 400, not a failure that counts "
      "towards the lockout; users configured by HA1 alone register with that algorithm and get 401 with the other")
def c_cred_checks(a, ck):
    ua = UA(a.port)
    contact = "sip:bob-cc@%s:%d" % (HOST, ua.lport)
    ua.challenge("bob", "SHA-256")
    # more mismatches than max_failures (5): none of them is a password tried
    for i in range(1, 8):
        auth = authorization("SHA-256", "bob", "hunter2", "sip:elsewhere.example.com", ua.nonce, i)
        r = ua.send("bob", ["<%s>" % contact], 600, auth=auth)
        if not ck.code(r, 400, "Digest uri does not match the Request-URI",
                       what="right password, digest uri sip:elsewhere.example.com, #%d" % i):
            break
        ck.ok(not r.values("WWW-Authenticate"), "the 400 carries a challenge: %s" % r.values("WWW-Authenticate"))
    ck.ok(log_has(a.log, r"auth: the digest uri of 'bob' from 127\.0\.0\.1 is not the Request-URI: 400"),
          "no 'auth: the digest uri of 'bob' ... is not the Request-URI' line in the log")
    rows, text = sipctl_regs(a.sipctl, a.db)
    ck.ok(not find_reg(rows, contact=contact), "a binding was stored for the refused request\n" + indent(text))
    # the same URI written otherwise (the scheme in capitals, a parameter the Request-URI lacks): equal by
    # 19.1.4, and bob is not locked out
    same = "SIP:%s:%d;x-tag=1" % (HOST, a.port)
    auth = authorization("SHA-256", "bob", "hunter2", same, ua.nonce, 8)
    r = ua.send("bob", ["<%s>" % contact], 600, auth=auth)
    ck.code(r, 200, what="right password, digest uri %s for Request-URI %s, after 7 mismatches" % (same, ua.ruri))
    rows, text = sipctl_regs(a.sipctl, a.db)
    ck.ok(find_reg(rows, contact=contact), "bob's binding is not stored\n" + indent(text))
    ua.send("bob", ["<%s>;expires=0" % contact], auth=authorization("SHA-256", "bob", "hunter2", ua.ruri,
                                                                     ua.nonce, 9))
    # without qop (the RFC 2069 form): MD5 only, as RFC 3261 22.4 keeps it; SHA-256 always has qop (RFC 7616
    # 3.3), so SHA-256 credentials without it are no credentials: challenged again, nothing stored
    for alg, want in (("SHA-256", 401), ("MD5", 200)):
        u = UA(a.port)
        c2 = "sip:bob-noqop-%s@%s:%d" % (alg.lower(), HOST, u.lport)
        u.challenge("bob", alg)
        ha1 = H(alg, "bob:%s:hunter2" % REALM)
        resp = H(alg, "%s:%s:%s" % (ha1, u.nonce, H(alg, "REGISTER:%s" % u.ruri)))
        auth = ('Digest username="bob", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=%s'
                % (REALM, u.nonce, u.ruri, resp, alg))
        r = u.send("bob", ["<%s>" % c2], 600, auth=auth)
        ck.code(r, want, what="%s credentials without qop" % alg)
        rows, text = sipctl_regs(a.sipctl, a.db)
        ck.ok(bool(find_reg(rows, contact=c2)) == (want == 200),
              "the binding of the %s credentials without qop is %s\n%s"
              % (alg, "missing" if want == 200 else "stored", indent(text)))
        if want == 200:
            u.send("bob", ["<%s>;expires=0" % c2], auth=auth)  # no nonce count: the same credentials again
    # [user carol] ha1 = MD5 HA1 only; [user dave] ha1_sha256 = SHA-256 HA1 only (password "pw" in realm sipd)
    for user, good, bad in (("carol", "MD5", "SHA-256"), ("dave", "SHA-256", "MD5")):
        u = UA(a.port)
        r = u.register(user, user, "pw", ["<sip:%s@%s:%d>" % (user, HOST, u.lport)], 600, alg=good)
        ck.code(r, 200, what="%s (configured by its %s HA1) answering the %s challenge" % (user, good, good))
        u = UA(a.port)
        r = u.register(user, user, "pw", ["<sip:%s-other@%s:%d>" % (user, HOST, u.lport)], 600, alg=bad)
        ck.code(r, 401, "Unauthorized", what="%s (no %s HA1) answering the %s challenge" % (user, bad, bad))
        ck.ok(log_has(a.log, r"auth: no HA1 for that algorithm for user '%s'" % user),
              "no 'auth: no HA1 for that algorithm' line for %s in the log" % user)


@case("cred-alg", "credentials with an algorithm sipd did not offer (SHA-256 where algorithms = MD5): 401, and "
      "no failure towards a lockout (no password was tried): after six of them (max_failures 5) the right MD5 "
      "credentials get 200")
def c_cred_alg(a, ck):
    ua = UA(a.port)
    ua.challenge("alice", "MD5")
    ua.alg = "SHA-256"
    r = ua.auth_send("alice", "alice", "secret", ["<sip:alice-alg@%s:%d>" % (HOST, ua.lport)], 600)
    ck.code(r, 401, "Unauthorized", what="SHA-256 credentials where only MD5 is offered")
    algs = [c.get("algorithm", "MD5") for c in parse_challenges(r)]
    ck.ok(algs == ["MD5"], "the 401 should challenge with MD5 only: %s" % r.values("WWW-Authenticate"))
    ck.ok(log_has(a.log, r"auth: algorithm not offered for user 'alice'"), "no 'auth: algorithm not offered' line")
    for _ in range(5):
        ua = UA(a.port)
        ua.challenge("alice", "MD5")
        ua.alg = "SHA-256"
        ua.auth_send("alice", "alice", "secret", ["<sip:alice-alg@%s:%d>" % (HOST, ua.lport)], 600)
    ua = UA(a.port)
    r = ua.register("alice", "alice", "secret", ["<sip:alice-alg@%s:%d>" % (HOST, ua.lport)], 0, alg="MD5")
    ck.code(r, 200, what="the right MD5 credentials after six SHA-256 answers (max_failures 5)")


@case("contact-400", "a REGISTER with a malformed Contact, with 33 Contact values (more than sipd takes in one "
      "request), or with a Contact URI, +sip.instance or Call-ID longer than sipd stores whole, is 400 with a "
      "reason naming the defect, and nothing is stored")
def c_contact_400(a, ck):
    ua = UA(a.port)
    wipe(ua, "alice", "alice", "secret")
    r = ua.register("alice", "alice", "secret", ["<sip:alice-bad@%s:%d" % (HOST, ua.lport)], 600)
    ck.code(r, 400, "Malformed Contact header", what="Contact without its closing '>'")
    for bad in ("<sip:alice@@10.0.0.1>", "<sip:alice@10.0.0.1:99999>", "<sip:>"):
        r = ua.register("alice", "alice", "secret", [bad], 600)
        ck.code(r, 400, "Malformed Contact URI", what="Contact %s" % bad)
    r = ua.register("alice", "alice", "secret", ["<mailto:alice@example.com>"], 600)
    ck.code(r, 200, what="Contact <mailto:alice@example.com> (a scheme sipd does not route, kept: 10.2.1)")
    rows, text = sipctl_regs(a.sipctl, a.db)
    ck.ok(not [b for b in rows if "@@" in b["CONTACT"] or "99999" in b["CONTACT"]],
          "a malformed Contact URI was stored:\n" + indent(text))
    wipe(ua, "alice", "alice", "secret")
    many = ["<sip:alice-%d@%s:%d>" % (i, HOST, ua.lport) for i in range(33)]
    r = ua.register("alice", "alice", "secret", [", ".join(many[:20]), ", ".join(many[20:])], 600)
    ck.code(r, 400, "Too many Contact header field values", what="33 Contact values")
    # longer than the store keeps whole: refused rather than cut (a cut Contact would reach nobody)
    r = ua.register("alice", "alice", "secret", ["<sip:alice-%s@%s:%d>" % ("x" * 520, HOST, ua.lport)], 600)
    ck.code(r, 400, "Contact URI too long", what="a 550-byte Contact URI")
    r = ua.register("alice", "alice", "secret", ['<sip:alice-i@%s:%d>;+sip.instance="<urn:uuid:%s>"'
                                                 % (HOST, ua.lport, "0" * 200)], 600)
    ck.code(r, 400, "+sip.instance too long", what="a 200-character +sip.instance")
    longid = UA(a.port, callid="reg-%s@%s" % ("c" * 300, HOST))
    r = longid.register("alice", "alice", "secret", ["<sip:alice-c@%s:%d>" % (HOST, ua.lport)], 600)
    ck.code(r, 400, "Call-ID too long", what="a 310-byte Call-ID")
    longid.close()
    rows, text = sipctl_regs(a.sipctl, a.db)
    ck.ok(not find_reg(rows, aor="sip:alice@127.0.0.1"), "bindings were stored for alice\n" + indent(text))


@case("store-fail", "RFC 3261 10.3 step 7: a REGISTER whose write fails (another program holds the database's "
      "write lock past the 5 s busy timeout) gets 500 with Retry-After, and its updates are gone from memory: "
      "the refreshed binding keeps its old time, the new one is not there; once the lock is gone it registers")
def c_store_fail(a, ck):
    ua = UA(a.port)
    wipe(ua, "alice", "alice", "secret")
    ca = "sip:alice-sf1@%s:%d" % (HOST, ua.lport)
    cb = "sip:alice-sf2@%s:%d" % (HOST, ua.lport)
    r = ua.register("alice", "alice", "secret", ["<%s>" % ca], 600)
    if not ck.code(r, 200, what="the first binding"):
        return
    con = sqlite3.connect(a.db, timeout=5, isolation_level=None)
    try:
        con.execute("BEGIN IMMEDIATE")  # the write lock, held past sipd's busy timeout
        t0 = time.monotonic()
        ua.challenge("alice", "SHA-256")
        data, cseq = ua.auth_request("alice", "alice", "secret", ["<%s>;expires=1200" % ca, "<%s>" % cb], 600)
        r = ua.transact(data, cseq, timeout=15)
        dt = time.monotonic() - t0
        ck.code(r, 500, "Binding could not be stored", what="REGISTER while the database is locked")
        ck.ok(r.first("Retry-After") is not None, "the 500 carries no Retry-After")
        ck.ok(dt >= 4.5, "the 500 came after %.1f s, before the 5 s busy timeout" % dt)
        q = ua.register("alice", "alice", "secret", [], None)  # a query: answered from memory
        if ck.code(q, 200, what="query after the failed write"):
            ck.contacts_exact(q, [(ca, exp_alt(600, 12))], what="query after the failed write")
    finally:
        con.rollback()
        con.close()
    ck.ok(log_has(a.log, r"registrar: sip:alice@127\.0\.0\.1: 1 binding\(s\) in memory, as stored, after the failed write"),
          "no line in the log saying the memory was set back")
    r = ua.register("alice", "alice", "secret", ["<%s>" % cb], 600)
    if ck.code(r, 200, what="the new binding once the lock is gone"):
        ck.contacts_exact(r, [(ca, exp_alt(600, 12)), (cb, exp_alt(600))], what="the 200 once the lock is gone")
    rows = sorted(b["contact"] for b in db_rows(a.db) if b["aor"] == "sip:alice@127.0.0.1")
    ck.ok(rows == sorted([ca, cb]), "the file holds %s, expected %s" % (rows, sorted([ca, cb])))


@case("stale", "right password, nonce older than nonce_lifetime: 401 with stale=true; wrong password: no stale")
def c_stale(a, ck):
    good, bad = UA(a.port), UA(a.port)
    good.challenge("alice", a.alg)
    bad.challenge("alice", a.alg)
    time.sleep(a.lifetime + 1.5)
    contact = ["<sip:alice-stale@%s:%d>" % (HOST, good.lport)]
    r = good.auth_send("alice", "alice", "secret", contact, 600)
    if ck.code(r, 401, what="stale nonce, right password"):
        ch = parse_challenges(r)
        ck.ok(ch and all(c.get("stale", "").lower() == "true" for c in ch),
              "not every challenge says stale=true: %s" % [c["_raw"] for c in ch])
        ck.ok(ch and all(c.get("nonce") != good.nonce for c in ch), "the stale 401 offers the old nonce again")
        mine = [c for c in ch if c.get("algorithm") == a.alg]
        if mine:
            good.nonce, good.nc = mine[0]["nonce"], 0
            r = good.auth_send("alice", "alice", "secret", contact, 600)
            ck.code(r, 200, what="again with the fresh nonce")
    r = bad.auth_send("alice", "alice", "wrong", contact, 600)
    if ck.code(r, 401, what="stale nonce, wrong password"):
        ch = parse_challenges(r)
        ck.ok(all("stale" not in c for c in ch), "stale=true for a wrong password: %s" % [c["_raw"] for c in ch])
    ck.code(UA(a.port).register("alice", "alice", "secret", alg=a.alg), 200, what="a query after")


@case("drop-oldest", "max_contacts_policy = drop_oldest: a 4th contact goes in, the oldest binding goes")
def c_drop_oldest(a, ck):
    ua = UA(a.port)
    wipe(ua, "bob", "bob", "hunter2", alg=a.alg)
    r = ua.auth_send("bob", "bob", "hunter2", ["<sip:d1@10.0.0.1>"], 600)
    ck.code(r, 200, what="d1")
    time.sleep(1.1)
    r = ua.auth_send("bob", "bob", "hunter2", ["<sip:d2@10.0.0.2>", "<sip:d3@10.0.0.3>"], 600)
    ck.code(r, 200, what="d2 d3")
    time.sleep(1.1)
    r = ua.auth_send("bob", "bob", "hunter2", ["<sip:d4@10.0.0.4>"], 600)
    if ck.code(r, 200, what="d4 over max_contacts 3"):
        ck.contacts_exact(r, [("sip:d2@10.0.0.2", "expires="), ("sip:d3@10.0.0.3", "expires="),
                              ("sip:d4@10.0.0.4", exp_rx(600))], "after d4")
    rows, text = sipctl_regs(a.sipctl, a.db)
    got = sorted(x["CONTACT"] for x in find_reg(rows, "sip:bob@127.0.0.1"))
    ck.ok(got == ["sip:d2@10.0.0.2", "sip:d3@10.0.0.3", "sip:d4@10.0.0.4"], "sipctl lists %s" % got)


@case("max-contacts", "max_contacts 3, policy reject: a 4th binding is 403 and nothing changes")
def c_max_contacts(a, ck):
    ua = UA(a.port)
    wipe(ua, "bob", "bob", "hunter2", alg=a.alg)
    r = ua.auth_send("bob", "bob", "hunter2", ["<sip:x1@10.0.0.1>", "<sip:x2@10.0.0.2>", "<sip:x3@10.0.0.3>"], 600)
    ck.code(r, 200, what="3 contacts")
    r = ua.auth_send("bob", "bob", "hunter2", ["<sip:x4@10.0.0.4>"], 600)
    ck.code(r, 403, "Too many contacts for this address of record", what="a 4th")
    r = ua.auth_send("bob", "bob", "hunter2", ["<sip:x3@10.0.0.3>;expires=0", "<sip:x4@10.0.0.4>"], 600)
    if ck.code(r, 200, what="x3 out and x4 in, in one request"):
        ck.contacts_exact(r, [("sip:x1@10.0.0.1", "expires="), ("sip:x2@10.0.0.2", "expires="),
                              ("sip:x4@10.0.0.4", exp_rx(600))], "swap")
    wipe(ua, "bob", "bob", "hunter2", alg=a.alg)


@case("retransmission", "a REGISTER sent again after its 200 (same branch, UDP) gets the same 200, byte for byte, "
      "from the transaction (17.2.2), not a second processing; with a new branch the same CSeq is a new request")
def c_retransmission(a, ck):
    ua = UA(a.port)
    wipe(ua, "alice", "alice", "secret")
    contact = "sip:alice-retx@%s:%d" % (HOST, ua.lport)
    data, cseq = ua.auth_request("alice", "alice", "secret", ["<%s>" % contact], 600)
    first = ua.transact(data, cseq)
    if not ck.code(first, 200, what="first REGISTER"):
        return
    before = db_rows(a.db)
    time.sleep(1.1)  # a regenerated 200 would carry another Date and expires
    again = ua.transact(data, cseq)
    ck.ok(again.raw == first.raw, "the retransmission's answer differs from the first 200:\n%s\n---\n%s"
          % (indent(first.text()), indent(again.text())))
    ck.ok(db_rows(a.db) == before, "the retransmission changed the store")
    # the same CSeq in a new transaction is processed, and refused as out of order (10.3 step 7)
    r = ua.auth_send("alice", "alice", "secret", ["<%s>" % contact], 600, cseq=cseq)
    ck.code(r, 500, "Out-of-order CSeq for this Call-ID", what="same CSeq, new branch")
    wipe(ua, "alice", "alice", "secret")


@case("cseq", "same Call-ID, CSeq not higher than the stored one: 500, nothing changes (SIPp 3.6 cannot: it "
      "mis-reads a reason phrase holding 'CSeq')")
def c_cseq(a, ck):
    ua = UA(a.port)
    wipe(ua, "alice", "alice", "secret")
    contact = "sip:alice-cseq@%s:%d" % (HOST, ua.lport)
    r = ua.auth_send("alice", "alice", "secret", ["<%s>" % contact], 600, cseq=500)
    ck.code(r, 200, what="CSeq 500")
    reason = "Out-of-order CSeq for this Call-ID"
    for cseq, contacts, exp in ((500, ["<%s>" % contact], 1200), (499, ["<%s>" % contact], 1200),
                                (498, ["<%s>;expires=0" % contact], None), (497, ["*"], 0)):
        r = ua.auth_send("alice", "alice", "secret", contacts, exp, cseq=cseq)
        ck.code(r, 500, reason, what="CSeq %d, Contact %s, Expires %s" % (cseq, contacts[0], exp))
    rows = [b for b in db_rows(a.db) if b["contact"] == contact]
    ck.ok(len(rows) == 1 and rows[0]["cseq"] == 500, "stored row after the 500s: %s" % rows)
    r = UA(a.port).register("alice", "alice", "secret")
    if ck.code(r, 200, what="query from another Call-ID"):
        ck.contacts_exact(r, [(contact, exp_rx(600, 3))], "unchanged after the 500s")
    r = ua.auth_send("alice", "alice", "secret", ["<%s>" % contact], 1200, cseq=501)
    if ck.code(r, 200, what="CSeq 501"):
        ck.contacts_exact(r, [(contact, exp_rx(1200))], "CSeq 501")
    # another Call-ID may take the binding over with any CSeq (10.3 step 7 compares within one Call-ID)
    other = UA(a.port)
    other.challenge("alice")
    r = other.auth_send("alice", "alice", "secret", ["<%s>" % contact], 900, cseq=1)
    if ck.code(r, 200, what="another Call-ID, CSeq 1"):
        ck.contacts_exact(r, [(contact, exp_rx(900))], "another Call-ID")
    rows = [b for b in db_rows(a.db) if b["contact"] == contact]
    ck.ok(len(rows) == 1 and rows[0]["call_id"] == other.callid and rows[0]["cseq"] == 1,
          "stored row after the other Call-ID: %s" % rows)
    wipe(other, "alice", "alice", "secret")


@case("aor-canonical", "RFC 3261 10.3 step 5: To: sip:%61lice@ (escaped) and sip:alice@ are one AOR")
def c_aor_canonical(a, ck):
    ua = UA(a.port)
    wipe(ua, "alice", "alice", "secret")
    r = UA(a.port).register("%61lice", "alice", "secret", ["<sip:escaped@10.0.0.8>"], 600)
    ck.code(r, 200, what="To: <sip:%61lice@127.0.0.1>")
    r = UA(a.port).register("alice", "alice", "secret")
    if ck.code(r, 200, what="query as sip:alice@127.0.0.1"):
        ck.ok([u for u, _, _ in r.contacts()] == ["sip:escaped@10.0.0.8"],
              "the query of sip:alice@127.0.0.1 lists %s, expected the binding made through sip:%%61lice@ "
              "(the AOR is canonical: escapes undone)" % [u for u, _, _ in r.contacts()])
    rows, text = sipctl_regs(a.sipctl, a.db)
    ck.ok(not find_reg(rows, "sip:%61lice@127.0.0.1"), "sipctl lists an AOR sip:%61lice@127.0.0.1:\n" + indent(text))
    wipe(UA(a.port), "%61lice", "alice", "secret")
    wipe(ua, "alice", "alice", "secret")


@case("expiry", "a binding is gone when its time is up: from queries, from sipctl and from the SQLite file")
def c_expiry(a, ck):
    ua = UA(a.port)
    contact = "sip:alice-expiry@%s:%d" % (HOST, ua.lport)
    r = ua.register("alice", "alice", "secret", ["<%s>" % contact], a.short, alg=a.alg)
    if not ck.code(r, 200, what="Expires: %d" % a.short):
        return
    ck.ok(any(u == contact and re.search(exp_rx(a.short, 1), el) for u, _, el in r.contacts()),
          "the 200 does not list %s;expires=%d: %s" % (contact, a.short, r.values("Contact")))
    t0 = time.monotonic()
    # the whole grant: time is kept in whole seconds, and a binding must not lose the fraction of a
    # second it was granted in (a phone refreshing just in time would find it gone)
    time.sleep(a.short - 0.3)
    r = UA(a.port).register("alice", "alice", "secret", alg=a.alg)
    if ck.code(r, 200, what="query after %.1f s" % (a.short - 0.3)):
        ck.ok(any(u == contact and re.search(r";expires=[1-9]", el) for u, _, el in r.contacts()),
              "%.1f s into its %d s the binding is not listed with time left: %s"
              % (time.monotonic() - t0, a.short, r.values("Contact")))
    time.sleep(max(0.0, a.short + 1.5 - (time.monotonic() - t0)))
    r = UA(a.port).register("alice", "alice", "secret", alg=a.alg)
    if ck.code(r, 200, what="query after %d s" % (a.short + 1)):
        ck.ok(all(u != contact for u, _, _ in r.contacts()), "the expired binding is still listed: %s"
              % r.values("Contact"))
    rows, _ = sipctl_regs(a.sipctl, a.db)
    ck.ok(not find_reg(rows, "sip:alice@127.0.0.1", contact), "sipctl lists the expired binding")
    deadline = time.monotonic() + 3
    while [b for b in db_rows(a.db) if b["contact"] == contact] and time.monotonic() < deadline:
        time.sleep(0.2)
    ck.ok(not [b for b in db_rows(a.db) if b["contact"] == contact],
          "the expired binding is still in the SQLite file %d s after its end" % (a.short + 4))
    if a.log:
        with open(a.log, errors="replace") as f:
            log = f.read()
        ck.ok("registrar: sip:alice@127.0.0.1: binding expired: %s" % contact in log,
              "sipd's log does not say that %s expired" % contact)
        ck.ok("registrar: sip:alice@127.0.0.1: new binding %s from udp:" % contact in log,
              "sipd's log does not say that %s was bound" % contact)


def run_case(a):
    f, _ = CASES[a.name]
    ck = Checks()
    try:
        f(a, ck)
    except CaseFail as e:
        ck.fails.append(str(e))
    except (OSError, sqlite3.Error, subprocess.SubprocessError) as e:
        ck.fails.append("%s: %s" % (type(e).__name__, e))
    for msg in ck.fails:
        sys.stderr.write("regclient: %s\n" % msg)
    return 1 if ck.fails else 0


def cmd_register(a):
    ua = UA(a.port, tcp=a.tcp)
    ck = Checks()
    try:
        if a.user:
            r = ua.register(a.to or a.user, a.user, a.password, a.contact, a.expires, alg=a.alg)
        else:
            r = ua.send(a.to, a.contact, a.expires)
        if a.kill_pid:
            os.kill(a.kill_pid, signal.SIGKILL)  # the moment the final response is in
        if a.show:
            sys.stderr.write(r.text())
        if a.expect is not None:
            ck.code(r, a.expect)
        for rx in a.has:
            ck.ok(re.search(rx, r.text(), re.M), "the %d does not match /%s/:\n%s" % (r.code, rx, indent(r.text())))
        for rx in a.has_contact:
            ck.ok(any(re.search(rx, el) for _, _, el in r.contacts()),
                  "no Contact of the %d matches /%s/: %s" % (r.code, rx, r.values("Contact")))
        for rx in a.no_contact:
            ck.ok(not any(re.search(rx, el) for _, _, el in r.contacts()),
                  "a Contact of the %d matches /%s/: %s" % (r.code, rx, r.values("Contact")))
        if a.count is not None:
            ck.ok(len(r.contacts()) == a.count, "%d Contacts in the %d, expected %d: %s"
                  % (len(r.contacts()), r.code, a.count, r.values("Contact")))
        if a.print_contacts:
            for _, _, el in r.contacts():
                print(el)
    except (CaseFail, OSError) as e:
        ck.fails.append(str(e))
    for msg in ck.fails:
        sys.stderr.write("regclient: %s\n" % msg)
    return 1 if ck.fails else 0


def cmd_regs(a):
    ck = Checks()
    try:
        rows, text = sipctl_regs(a.sipctl, a.db)
        if a.show:
            sys.stderr.write(text)
        hit = find_reg(rows, a.aor, a.contact)
        if a.absent:
            ck.ok(not hit, "sipctl lists %s -> %s:\n%s" % (a.aor, a.contact, indent(text)))
        elif a.count is not None:
            ck.ok(len(hit) == a.count, "sipctl: %d rows for %s -> %s, expected %d\n%s"
                  % (len(hit), a.aor, a.contact, a.count, indent(text)))
        else:
            r = check_reg(ck, a.sipctl, a.db, a.aor, a.contact, a.received, a.transport, None, 0, a.ua, a.q)
            if r and (a.expires_min is not None or a.expires_max is not None):
                e = int(r["EXPIRES"]) if r["EXPIRES"].lstrip("-").isdigit() else None
                ck.ok(e is not None and (a.expires_min is None or e >= a.expires_min) and
                      (a.expires_max is None or e <= a.expires_max),
                      "sipctl: EXPIRES %s not in [%s, %s]" % (r["EXPIRES"], a.expires_min, a.expires_max))
        if a.raw_received:
            got = [b["received"] for b in db_rows(a.db) if (a.aor is None or b["aor"] == a.aor) and
                   (a.contact is None or b["contact"] == a.contact)]
            ck.ok(got == [a.raw_received], "SQLite received %s, expected %s" % (got, a.raw_received))
    except (CaseFail, OSError, sqlite3.Error, subprocess.SubprocessError) as e:
        ck.fails.append(str(e))
    for msg in ck.fails:
        sys.stderr.write("regclient: %s\n" % msg)
    return 1 if ck.fails else 0


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
    """A REGISTER with an unparseable Max-Forwards: sipd answers it statelessly (400), no registrar work."""
    deadline = time.monotonic() + a.wait
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((HOST, 0))
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
    sys.stderr.write("regclient: sipd on port %d did not answer within %.1f s\n" % (a.port, a.wait))
    return 1


def main():
    p = argparse.ArgumentParser(description="REGISTER client for sipd's registrar tests")
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("freeport")
    f.add_argument("--count", type=int, default=1)
    f.add_argument("--start", type=int, default=30000 + os.getppid() % 10000)
    r = sub.add_parser("ready")
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--wait", type=float, default=10.0)
    sub.add_parser("list")
    c = sub.add_parser("case")
    c.add_argument("name", choices=sorted(CASES))
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--sipctl")
    c.add_argument("--db")
    c.add_argument("--log")
    c.add_argument("--second", default="127.0.0.3", help="listener2 case: sipd's second UDP listener, same port")
    c.add_argument("--alg", default="SHA-256")
    c.add_argument("--lifetime", type=float, default=5)
    c.add_argument("--order", default="MD5, SHA-256")
    c.add_argument("--short", type=int, default=5, help="expiry case: a time >= min_expires")
    g = sub.add_parser("register")
    g.add_argument("--port", type=int, required=True)
    g.add_argument("--tcp", action="store_true")
    g.add_argument("--user")
    g.add_argument("--password")
    g.add_argument("--alg", default="SHA-256")
    g.add_argument("--to")
    g.add_argument("--contact", action="append", default=[])
    g.add_argument("--expires")
    g.add_argument("--expect", type=int)
    g.add_argument("--has", action="append", default=[], help="a regex the whole response must match")
    g.add_argument("--has-contact", action="append", default=[])
    g.add_argument("--no-contact", action="append", default=[])
    g.add_argument("--count", type=int)
    g.add_argument("--print-contacts", action="store_true")
    g.add_argument("--show", action="store_true")
    g.add_argument("--kill-pid", type=int, help="SIGKILL this process as soon as the final response is in")
    s = sub.add_parser("regs")
    s.add_argument("--sipctl", required=True)
    s.add_argument("--db", required=True)
    s.add_argument("--aor")
    s.add_argument("--contact")
    s.add_argument("--received")
    s.add_argument("--transport")
    s.add_argument("--ua")
    s.add_argument("--q")
    s.add_argument("--expires-min", type=int)
    s.add_argument("--expires-max", type=int)
    s.add_argument("--count", type=int)
    s.add_argument("--absent", action="store_true")
    s.add_argument("--raw-received")
    s.add_argument("--show", action="store_true")
    a = p.parse_args()
    if a.cmd == "freeport":
        ports = free_ports(a.count, a.start)
        if len(ports) < a.count:
            sys.stderr.write("regclient: not enough free ports\n")
            return 1
        print("\n".join(map(str, ports)))
        return 0
    if a.cmd == "ready":
        return cmd_ready(a)
    if a.cmd == "list":
        for name in sorted(CASES):
            print("%-14s %s" % (name, CASES[name][1]))
        return 0
    if a.cmd == "case":
        return run_case(a)
    if a.cmd == "register":
        return cmd_register(a)
    return cmd_regs(a)


if __name__ == "__main__":
    sys.exit(main())
