#!/usr/bin/env bash
# run_registrar.sh SIPD: sipd's registrar (RFC 3261 10.3) and digest authentication against a live server:
# SIPp scenarios with MD5 digest (tests/registrar/scenarios/*.xml), regclient.py for what SIPp 3.6 cannot do
# (SHA-256 digest, stale nonces, replayed nonce counts, exact checks of every Contact, a reason phrase holding
# "CSeq"), sipctl (next to SIPD) and the SQLite file for what was stored, and a sipsak smoke test.
#
# Starts seven sipd instances, each with its own temporary config and database on free ports of 127.0.0.1,
# all with min_expires 60 (but aux), max_expires 3600, max_contacts 3 and users alice (secret, extension
# 100) and bob (hunter2):
#   main     [auth] algorithms = MD5, SHA-256, nonce_lifetime 300: regclient's cases (SHA-256 mostly)
#   md5      the same with algorithms = MD5 (SIPp 3.6 answers the first challenge only, and only MD5)
#   lockout  max_failures 5 in 60 s, block_time 60; also a disabled user eve: the brute-force limiter
#   aux      algorithms = MD5, nonce_lifetime 5, min_expires 5, max_contacts_policy = drop_oldest: stale
#            nonces, expiry on time, drop_oldest, sipsak (whose default expiry is 15 s)
#   full     max_bindings 2, register_auth = no: 503 once the location service is full
#   domains  [general] domain = a.example, b.example, realm 'dom "HQ"', min_expires 7200, MD5: the AOR's
#            domain against the Request-URI's, 423 only under an hour, quoted-pairs in realm and user name
#   nat      nat_keepalive = 1, nat_keepalive_timeout = 3: the OPTIONS pings to phones behind a NAT, and
#            the bindings of those that do not answer removed
# Prints one PASS/FAIL line per case; at the end checks that every sipd is still alive, exits 0 on
# SIGTERM and printed no sanitizer report. Exits 1 if anything failed.
# KEEP=1 keeps the work directory (configs, databases, sipd stderr, SIPp message logs) for a look afterwards.
set -u

SIPD=${1:?usage: run_registrar.sh /path/to/sipd}
SIPCTL=$(dirname "$SIPD")/sipctl
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"
SCN=$HERE/scenarios
RC=(python3 "$HERE/regclient.py")

need_tools sipp sipsak python3
need_exec "$SIPD"
need_exec "$SIPCTL" "build the sipctl target"
lib_init registrar

# ---- ports: 4 for sipd, the rest for SIPp's local UDP port ----
pick_ports 7 40 $((30000 + $$ % 10000)) "${RC[@]}"

# ---- sipd instances: start_sipd NAME PORT < [registrar], [auth] and [user] sections ----
SIPD_READY=("${RC[@]}")
SIPD_ROLE=" with its registrar"

# ---- cases: sipp_case (lib.sh), py_case, regs_case ----

# py_case NAME INSTANCE CASE [regclient case options...]
py_case() {
	local name=$1 inst=$2 c=$3 log
	shift 3
	NCASE=$((NCASE + 1))
	log=$WORK/case$NCASE.py
	if timeout 60 "${RC[@]}" case "$c" --port "${SIPD_PORT[$inst]}" --sipctl "$SIPCTL" --db "$WORK/$inst.db" \
		--log "$WORK/$inst.err" "$@" 2>"$log"; then
		pass "$name"
	else
		fail "$name" "$(head -1 "$log" | cut -c1-300) (regclient case $c)"
		tail -n +2 "$log" | head -40 | sed 's/^/    /'
	fi
}

# reg_case NAME INSTANCE [regclient register options...]: one REGISTER and what its answer must be
reg_case() {
	local name=$1 inst=$2 log
	shift 2
	NCASE=$((NCASE + 1))
	log=$WORK/case$NCASE.reg
	if timeout 30 "${RC[@]}" register --port "${SIPD_PORT[$inst]}" "$@" 2>"$log"; then
		pass "$name"
	else
		fail "$name" "$(head -1 "$log" | cut -c1-300)"
		tail -n +2 "$log" | head -20 | sed 's/^/    /'
	fi
}

# regs_case NAME INSTANCE [regclient regs options...]: a check of `sipctl show registrations`
regs_case() {
	local name=$1 inst=$2 log
	shift 2
	NCASE=$((NCASE + 1))
	log=$WORK/case$NCASE.regs
	if "${RC[@]}" regs --sipctl "$SIPCTL" --db "$WORK/$inst.db" "$@" 2>"$log"; then
		pass "$name"
	else
		fail "$name" "$(head -1 "$log" | cut -c1-300)"
		tail -n +2 "$log" | head -20 | sed 's/^/    /'
	fi
}

USERS='[user alice]
password = secret
extension = 100

[user bob]
password = hunter2
'
REGISTRAR='[registrar]
min_expires = 60
max_expires = 3600
default_expires = 3600
max_contacts = 3
'

T0=$(date +%s)

# ==== main: MD5 and SHA-256 challenges; regclient ====
if start_sipd main "${PORTS[0]}" <<EOF
$REGISTRAR
[auth]
algorithms = MD5, SHA-256
nonce_lifetime = 300
max_failures = 5
failure_window = 60
block_time = 60

$USERS
[user carol]
ha1 = $(printf 'carol:sipd:pw' | md5sum | cut -d' ' -f1)

[user dave]
ha1_sha256 = $(printf 'dave:sipd:pw' | sha256sum | cut -d' ' -f1)
EOF
then
	py_case "401: one WWW-Authenticate per algorithm (MD5, SHA-256), one nonce, realm sipd, qop=auth" main challenge
	py_case "401: challenges in the configured order (algorithms = MD5, SHA-256: MD5 first)" main challenge-order
	sipp_case "SIPp REGISTER with MD5 against algorithms = MD5, SHA-256 (SIPp answers the first challenge)" \
		main reg_md5.xml
	py_case "REGISTER with SHA-256: 200 + binding + Date; in SQLite at the 200; sipctl lists alice's contact" main sha256
	py_case "several Contacts with q: 200 lists each <uri>;expires=N;q=0.500 exactly; q and removal in sipctl" \
		main multi
	py_case "query (no Contact): 200 lists every binding with time left; the store is unchanged" main query
	py_case "sipctl unregister: a contact, then the user's AOR: gone from SQLite at once and from sipd's memory within a second (query, log); other users untouched; nothing left: exit 1" main unregister
	py_case "replayed nonce count (same nonce, nc not higher): 401; nc+1 with the same nonce: 200" main replay
	py_case "Expires 7200 lowered to 3600; 30, ;expires=59, ;expires=1: 423 + Min-Expires: 60; 60 taken" main expires
	py_case "malformed Expires (4294967296, abc) counts as 3600 (RFC 3261 20.19 SHOULD), not 400" main \
		expires-malformed
	py_case "Contact: * with Expires: 0 removes all; * with Expires: 3600 / none / another Contact: 400" main star
	py_case "out-of-order CSeq (same Call-ID, CSeq = or < stored): 500, unchanged; another Call-ID may" main cseq
	py_case "REGISTER retransmitted after its 200 (same branch): the same 200 byte for byte, store unchanged; new branch: 500" \
		main retransmission
	py_case "bob registering alice's extension: 403; alice registering sip:100@: 200" main other-aor
	py_case "R-URI domain not served: 404; To domain not served: 401, then 404 once authenticated (10.3 steps 3-5); localhost is served" main domain
	py_case "Path + Supported: path: stored and echoed in the 200; without Supported: path, not echoed; a Path over 1 kB refused (500), nothing stored" main path
	py_case "REGISTER over TCP: sipctl shows received 127.0.0.1:<port>, transport tcp" main tcp
	py_case "REGISTER over TCP then shutdown(SHUT_WR): the 200 (sent once durable) still arrives, the binding is in SQLite, sipd closes after it" \
		main tcp-half-close
	py_case "NAT: Contact 10.0.0.99:5060 from 127.0.0.1:<port>: received udp:127.0.0.1:<port> (sipctl, SQLite)" \
		main nat
	py_case "AOR canonical (RFC 3261 10.3 step 5): To sip:%61lice@ is alice's AOR" main aor-canonical
	py_case "a user added by sipctl registers within 3 s (SHA-256, then MD5); disabled by sipctl: 401; a failed user add leaves no database" main dbuser
	py_case "sipctl refuses extension 'alice' and a second user's extension 100 or name 100; a stored user with the file's alice's extension 100 may not register sip:100@ (403)" \
		main dbext
	py_case "RFC 5954 4: a REGISTER to sip:[::ffff:127.0.0.1] binds alice's AOR at sipd (200); a Contact written again in other case refreshes its binding, and Contact: * leaves no row behind" \
		main spellings
	py_case "max_contacts 3 (reject): a 4th binding is 403 'Too many contacts...'; swap in one request: 200" \
		main max-contacts
	py_case "digest uri other than the Request-URI: 400, seven times, then the same URI written otherwise (SIP:, an extra parameter): 200 (no lockout); HA1-only users (ha1, ha1_sha256): 200 with their algorithm, 401 with the other" \
		main cred-checks
	py_case "Contact without its '>': 400 'Malformed Contact header'; sip:alice@@host, port 99999, sip: alone: 400 'Malformed Contact URI' (mailto: kept); 33 Contact values: 400 'Too many Contact header field values'; a Contact URI, +sip.instance or Call-ID longer than sipd stores whole: 400 naming it" \
		main contact-400
	py_case "a write that fails (the database locked by another program past the busy timeout): 500 + Retry-After, and memory set back (10.3 step 7); registers once unlocked" \
		main store-fail
	# SIGHUP, as daemons take it: the file's [user] sections again; a file with errors changes nothing
	reg_case "zoe, not in the file yet: 401 with her password" main --user zoe --password zpass \
		--contact "<sip:zoe@127.0.0.1:7050>" --expect 401
	printf '\n[user zoe]\npassword = zpass\n' >>"$WORK/main.ini"
	kill -HUP "${SIPD_PID[main]}"
	sleep 0.5
	reg_case "SIGHUP after [user zoe] was added to the file: zoe registers (200), sipd still runs" main --user zoe \
		--password zpass --contact "<sip:zoe@127.0.0.1:7050>" --expect 200
	printf 'bogus = 1\n' >>"$WORK/main.ini"
	kill -HUP "${SIPD_PID[main]}"
	sleep 0.5
	reg_case "SIGHUP with an error in the file: nothing reloaded, zoe still registers (200)" main --user zoe \
		--password zpass --contact "<sip:zoe@127.0.0.1:7050>" --expect 200
	if grep -q "warning: SIGHUP: .*main.ini:[0-9]*: \[user zoe\] bogus: unknown key" "$WORK/main.err" &&
		grep -q "SIGHUP: .*main.ini has errors: nothing reloaded" "$WORK/main.err"; then
		pass "the log names the error with its line and says nothing was reloaded"
	else
		fail "the log names the error with its line and says nothing was reloaded" "$(grep SIGHUP "$WORK/main.err")"
	fi
fi

# ==== md5: SIPp ====
if start_sipd md5 "${PORTS[1]}" <<EOF
$REGISTRAR
[auth]
algorithms = MD5
nonce_lifetime = 300

$USERS
EOF
then
	if sipp_case "SIPp REGISTER with MD5 digest: 401, then 200 with the binding and a Date" md5 reg_md5.xml; then
		regs_case "sipctl show registrations lists alice's SIPp contact (received, udp, User-Agent, expires)" md5 \
			--aor sip:alice@127.0.0.1 --contact "sip:sippmd5@127.0.0.1:$CPORT" --received "127.0.0.1:$CPORT" \
			--transport udp --ua sipp-registrar-test --expires-min 595 --expires-max 600
	fi
	if sipp_case "SIPp REGISTER with MD5 over TCP" md5 reg_md5.xml -t t1; then
		regs_case "sipctl: the TCP binding has transport tcp" md5 --aor sip:alice@127.0.0.1 \
			--contact "sip:sippmd5@127.0.0.1:$CPORT" --transport tcp
	fi
	sipp_case "SIPp wrong password: 401 again with a new challenge; right password then: 200" md5 \
		reg_wrong_password.xml
	sipp_case "SIPp Expires 30 / ;expires=59: 423 + Min-Expires: 60; Expires 60: 200; 0: removed" md5 reg_423.xml
	sipp_case "SIPp Contact: * (Expires 0) removes all; * with Expires 3600, none, or another Contact: 400" md5 \
		reg_star.xml
	if sipp_case "SIPp refresh: same Contact again with 1200 s: expires updated, listed once" md5 reg_refresh.xml; then
		regs_case "sipctl: one binding for the refreshed contact, 1200 s" md5 --aor sip:alice@127.0.0.1 \
			--contact "sip:sipprefresh@127.0.0.1:$CPORT" --expires-min 1195 --expires-max 1200
	fi
	sipp_case "SIPp query (no Contact): 200 lists both bindings (q=0.500), twice the same" md5 reg_query.xml
	sipp_case "SIPp alice's credentials for To: bob: 403 'Not allowed to register this address of record'" md5 \
		reg_other_aor_403.xml
	if sipp_case "SIPp extension as AOR user: To sip:100@ with alice's credentials: 200" md5 reg_extension.xml; then
		regs_case "sipctl lists the binding under AOR sip:100@127.0.0.1" md5 --aor sip:100@127.0.0.1 \
			--contact "sip:sippext@127.0.0.1:$CPORT"
	fi
	sipp_case "SIPp max_contacts 3: a 4th (and 4 at once): 403 'Too many contacts...', nothing changes" md5 \
		reg_max_contacts.xml
	py_case "SHA-256 credentials where algorithms = MD5: 401 challenging MD5 only" md5 cred-alg
	if sipp_case "SIPp NAT: Contact 10.0.0.99:5060 from 127.0.0.1:<port>: 200" md5 reg_nat.xml; then
		regs_case "sipctl: received 127.0.0.1:<SIPp port>, transport udp; SQLite: udp:127.0.0.1:<port>" md5 \
			--aor sip:alice@127.0.0.1 --contact sip:alice@10.0.0.99:5060 --received "127.0.0.1:$CPORT" \
			--transport udp --raw-received "udp:127.0.0.1:$CPORT"
	fi
fi

# ==== lockout: the brute-force limiter ====
if start_sipd lockout "${PORTS[2]}" <<EOF
$REGISTRAR
[auth]
algorithms = MD5, SHA-256
max_failures = 5
failure_window = 60
block_time = 60

$USERS
[user eve]
password = evepass
disabled = yes
EOF
then
	py_case "wrong password: 401 + fresh nonce x5, then 403 even with the right one; bob and alice@127.0.0.2 fine" \
		lockout lockout
fi

# ==== aux: short nonces, short expiry, drop_oldest, sipsak ====
if start_sipd aux "${PORTS[3]}" <<EOF
[registrar]
min_expires = 5
max_expires = 3600
default_expires = 3600
max_contacts = 3
max_contacts_policy = drop_oldest

[auth]
algorithms = MD5
nonce_lifetime = 5

$USERS
EOF
then
	# the expiry case sleeps as long as the stale one: both at once
	timeout 60 "${RC[@]}" case expiry --port "${SIPD_PORT[aux]}" --sipctl "$SIPCTL" --db "$WORK/aux.db" --alg MD5 --short 5 \
		--log "$WORK/aux.err" 2>"$WORK/expiry.py" &
	EXPIRY_PID=$!
	py_case "stale nonce (older than nonce_lifetime 5), right password: 401 stale=true; wrong password: no stale" \
		aux stale --alg MD5 --lifetime 5
	NCASE=$((NCASE + 1))
	if wait "$EXPIRY_PID"; then
		pass "a binding of 5 s is gone after 6.5 s: queries, sipctl, the SQLite row; the log says it came and went"
	else
		fail "a binding of 5 s is gone after 6.5 s: queries, sipctl, the SQLite row; the log says it came and went" \
			"$(head -1 "$WORK/expiry.py" | cut -c1-300)"
		tail -n +2 "$WORK/expiry.py" | head -20 | sed 's/^/    /'
	fi
	py_case "max_contacts_policy = drop_oldest: a 4th contact goes in, the oldest binding goes" aux drop-oldest \
		--alg MD5

	# sipsak -U: registers -C's contact (expires 15, its default) with MD5 digest
	client_port
	if timeout 20 sipsak -U -i -C "sip:alice@127.0.0.1:$CPORT" -s "sip:alice@127.0.0.1:${SIPD_PORT[aux]}" \
		-u alice -a secret >"$WORK/sipsak.out" 2>&1; then
		pass "sipsak -U -C sip:alice@127.0.0.1:PORT -u alice -a secret (MD5 digest) exits 0"
		regs_case "sipctl lists sipsak's binding (User-Agent sipsak, 15 s)" aux --aor sip:alice@127.0.0.1 \
			--contact "sip:alice@127.0.0.1:$CPORT" --transport udp --expires-min 10 --expires-max 15
	else
		fail "sipsak -U -C sip:alice@127.0.0.1:PORT -u alice -a secret (MD5 digest) exits 0" \
			"$(tail -3 "$WORK/sipsak.out" | tr '\n' ' ')"
	fi
	if timeout 20 sipsak -U -i -C "sip:alice@127.0.0.1:$CPORT" -s "sip:alice@127.0.0.1:${SIPD_PORT[aux]}" \
		-u alice -a wrong >"$WORK/sipsak-wrong.out" 2>&1; then
		fail "sipsak with a wrong password fails" "sipsak exited 0: $(tail -3 "$WORK/sipsak-wrong.out" | tr '\n' ' ')"
	else
		pass "sipsak with a wrong password fails"
	fi
fi

# ==== full: max_bindings = 2, register_auth = no (anyone may bind any AOR: the cap bounds memory) ====
if start_sipd full "${PORTS[4]}" <<'EOF'
[registrar]
max_bindings = 2

[auth]
register_auth = no
EOF
then
	reg_case "max_bindings 2: a first AOR binds (200)" full --to u1 --contact "<sip:u1@127.0.0.1:7001>" --expect 200
	reg_case "max_bindings 2: a second AOR binds (200)" full --to u2 --contact "<sip:u2@127.0.0.1:7002>" --expect 200
	reg_case "max_bindings 2: a third is refused: 503 \"Location service full\" with Retry-After" full --to u3 \
		--contact "<sip:u3@127.0.0.1:7003>" --expect 503 --has '^SIP/2\.0 503 Location service full' \
		--has '^Retry-After: [0-9]+'
	reg_case "max_bindings 2: a refresh adds nothing and passes (200)" full --to u1 \
		--contact "<sip:u1@127.0.0.1:7001>" --expect 200 --count 1
	reg_case "max_bindings 2: a second contact for u1 adds one: 503" full --to u1 \
		--contact "<sip:u1@127.0.0.1:7011>" --expect 503
	reg_case "max_bindings 2: u2 removed (Expires 0)" full --to u2 --contact "<sip:u2@127.0.0.1:7002>" \
		--expires 0 --expect 200
	reg_case "max_bindings 2: room again, u3 binds (200)" full --to u3 --contact "<sip:u3@127.0.0.1:7003>" \
		--expect 200
	regs_case "sipctl lists u1 and u3, 2 bindings in all" full --count 2
	if grep -q "max_bindings 2: new bindings refused (503)" "$WORK/full.err"; then
		pass "the log says the location service is full"
	else
		fail "the log says the location service is full" "no line in $WORK/full.err"
	fi
	# 19.1.4: %75%31 is u1; the same binding, refreshed (at the bound, a new one would get 503)
	reg_case "a refresh of u1 that writes its Contact another way (<sip:%75%31@...>): the same binding (200)" full \
		--to u1 --contact "<sip:%75%31@127.0.0.1:7001>" --expect 200 --count 1
	n_new=$(grep -c "registrar: sip:u1@127.0.0.1: new binding" "$WORK/full.err")
	n_gone=$(grep -c "registrar: sip:u1@127.0.0.1: binding removed" "$WORK/full.err")
	if [ "$n_new" -eq 1 ] && [ "$n_gone" -eq 0 ]; then
		pass "the log has one new binding for u1 and no removal: a refresh is not logged, however its URI is written"
	else
		fail "the log has one new binding for u1 and no removal" "$n_new new, $n_gone removed"
	fi
	# RFC 4475 3.1.1.4 (escnull): a NUL in the AOR's user is no reason to refuse it, nor to cut it short
	reg_case "u1 and u3 removed (Expires 0), room for two" full --to u1 --contact "<sip:u1@127.0.0.1:7001>" \
		--contact "<sip:u3@127.0.0.1:7003>" --expires 0 --expect 200
	reg_case "u3 removed" full --to u3 --contact "<sip:u3@127.0.0.1:7003>" --expires 0 --expect 200 --count 0
	reg_case "RFC 4475 3.1.1.4: To sip:null-%00-null@ binds both of its Contacts, <sip:%00@...> and <sip:%00%00@...> (200)" \
		full --to null-%00-null --contact "<sip:%00@127.0.0.1:7020>" --contact "<sip:%00%00@127.0.0.1:7021>" \
		--expect 200 --count 2 --has-contact 'sip:%00@127\.0\.0\.1:7020' --has-contact 'sip:%00%00@127\.0\.0\.1:7021'
	reg_case "and a query of sip:null-%00-null@ lists them both: the AOR was not cut at its NUL" full \
		--to null-%00-null --expect 200 --count 2
	reg_case "while sip:null-@ (the AOR cut short) has none" full --to null- --expect 200 --count 0
fi

# ==== domains: two domains of sipd's, a realm and a user name that need quoted-pairs ====
if SIPD_INI_PRE=$'domain = a.example, b.example\n\n' start_sipd domains "${PORTS[5]}" <<'EOF'
[registrar]
min_expires = 7200
max_expires = 86400
default_expires = 7200

[auth]
realm = dom "HQ"
algorithms = MD5

[user alice]
password = secret

[user corp\carol]
password = pw
EOF
then
	py_case "domains a.example, b.example: To in the other domain than the Request-URI: 404 (10.3 step 5); each in its own: 200; min_expires 7200: 3599 is 423, 3600 is 200 (step 7); ;expires=soon is 3600 (20.10); Contact: * twice: 400; realm 'dom \"HQ\"' and user corp\\carol written as quoted-pairs: 200" \
		domains domains
fi

# ==== nat: nat_keepalive = 1, a second UDP listener at 127.0.0.3, and a wildcard one for the rest ====
if SIPD_INI_PRE="listen = udp:127.0.0.3:${PORTS[6]}, udp:0.0.0.0:${PORTS[6]}"$'\n\n'"${SIPD_INI_PRE:-}" \
	start_sipd nat "${PORTS[6]}" <<EOF
$REGISTRAR
nat_keepalive = 1
nat_keepalive_timeout = 3

$USERS
EOF
then
	py_case "nat_keepalive = 1: an OPTIONS each second to a phone registered over UDP from another address than its Contact (Via, branch, CSeq 1 OPTIONS, To its Contact), none to one registered from where its Contact says, none once its binding is gone; its 200s absorbed" \
		nat natping
	py_case "nat_keepalive_timeout = 3: a phone behind a NAT that answers no keep-alive loses its binding (memory, SQLite; the log says why), one that answers keeps it" \
		nat natdead
	py_case "a second UDP listener (127.0.0.3): the 401, the 401 to its retransmission and a 400 come from it; a phone behind a NAT registered through it gets its 200 from it, sipctl shows it as the SOCKET, and its keep-alives leave from it with a Via naming it (RFC 3581 4)" \
		nat listener2
	py_case "a wildcard UDP listener (0.0.0.0) reached at 127.0.0.2: the same, from 127.0.0.2 (IP_PKTINFO), where routing alone would send from 127.0.0.1" \
		nat listener2 --second 127.0.0.2
fi

stop_all main md5 lockout aux full domains nat
finish registrar
