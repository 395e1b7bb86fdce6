#!/usr/bin/env bash
# run_sipvicious.sh SIPD: sipd against SIPVicious (Debian package sipvicious), the scanner behind most
# "friendly-scanner" traffic on the Internet: svmap finds SIP servers, svwar lists the extensions a
# server will tell apart from made-up ones, svcrack guesses passwords. The user's brief asks that an
# unknown user, a disabled one and a wrong password look alike on the wire, and that guessing passwords
# over the network be impractical while honest phones behind the same address go on registering.
#
# One sipd on a free port of 127.0.0.1, `[auth] algorithms = MD5` (what svcrack answers), the default
# brute-force rule (5 failures per source and user in 60 s block that pair); users alice (extension
# 1001), bob (1002) and carol (1003, disabled). Cases:
#   - svmap finds sipd and reads its User-Agent;
#   - svwar, by REGISTER, INVITE and OPTIONS over 1000-1010 (svwar's From and To are the extension at
#     sipd's address, so INVITE and OPTIONS claim to come from sipd's own domain): finds nothing, also
#     with --force. Before sipd authenticated such a request ahead of looking up its target, INVITE and
#     OPTIONS listed 1001 and 1002 (407) apart from the rest (404);
#   - probe.py: REGISTER, INVITE, OPTIONS, MESSAGE and SUBSCRIBE for a user's name, an extension, a
#     disabled user and names nobody has get answers of the same shape (status, header names, challenge
#     but its nonce), without credentials, with a wrong password, and a disabled user's right password
#     like an unknown user's guess;
#   - svcrack: finds bob's password second in its list (the tool works against sipd), not alice's 31st
#     (refused after the fifth failure), nor anything for a user that does not exist, which it cannot
#     tell from alice;
#   - the lockout is per source and user: alice's right password from the guesser's address is refused
#     (403), from another address registers (200), and bob registers from the guesser's address;
#   - guesses for alice from 25 addresses, one each (a botnet, each address under the pair's limit):
#     past `user_max_failures` (20) her right password from an address she never authenticated from is
#     refused (403), from the one she registered from before accepted (200); bob is not concerned;
#   - one address trying one password for 110 made-up names (password spraying, one guess per name):
#     past `source_max_failures` (100) only users that authenticated from that address before may
#     (bob 200), others 403 there (dave) and 200 elsewhere;
#   - restarted on its database, guesses for alice from 25 more addresses: her phone at the address of
#     her stored binding still registers (200), another address 403 (the trust lives in memory; the
#     bindings loaded at start give it back);
#   - sipctl show blocks lists a pair's block, a user's and an address's (from sipd's control socket);
#     sipctl unblock user / address / all lifts them (the refused logins then succeed), says how many,
#     and sipd logs it; a malformed address is refused; after sipd stops, its socket file is gone;
#   - fail2ban-regex with contrib/fail2ban/filter.d/sipd.conf on the run's log: every failed
#     authentication matched, the guessers' addresses found, and not an address a digest user name
#     wrote into the line.
# Prints one PASS/FAIL line per case; exits 1 if anything failed. KEEP=1 keeps the work directory.
set -u

SIPD=${1:?usage: run_sipvicious.sh /path/to/sipd}
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"
RC=(python3 "$HERE/../registrar/regclient.py")
PROBE=(python3 "$HERE/probe.py")
SIPCTL=$(dirname "$SIPD")/sipctl

need_tools svmap svwar svcrack fail2ban-regex python3
need_exec "$SIPD"
need_exec "$SIPCTL"
lib_init scanner
pick_ports 1 6 $((40000 + $$ % 10000)) "${RC[@]}"
PORT=${PORTS[0]}
SIPD_READY=("${RC[@]}")
SIPD_ROLE=" for the scanners"
SIPD_INI_PRE=$'[auth]\nalgorithms = MD5\n\n'
T0=$(date +%s)

USERS='[user alice]
password = secret123
extension = 1001

[user bob]
password = hunter2
extension = 1002

[user carol]
password = pw3
extension = 1003
disabled = yes

[user dave]
password = pw4
extension = 1004'
start_sipd main "$PORT" <<<"$USERS" || finish scanner
LOG=$WORK/main.err

# scanner NAME TOOL ARGS...: one run of a sipvicious tool from a port of our own, its output in $OUT
scanner() {
	local name=$1
	shift
	client_port
	OUT=$WORK/$name.out
	timeout 120 "$@" -P "$CPORT" 127.0.0.1 -p "$PORT" >"$OUT" 2>&1 </dev/null
}

# found_nothing NAME: svwar listed no extension (no table row names one)
found_nothing() {
	if grep -q 'found nothing' "$OUT" && ! grep -qE '^\| *[0-9]+ ' "$OUT"; then
		pass "$1"
	else
		fail "$1" "$(grep -E '^\||ERROR|WARNING' "$OUT" | tr '\n' ' ' | cut -c1-300)"
	fi
}

# guesses SRC NAME PASSWORD FIRST LAST: a REGISTER for NAME from SRC with PASSWORD, for each i from FIRST
# to LAST, "{i}" in SRC, NAME and PASSWORD standing for i; n401 and n403 count the answers
guesses() {
	local i got
	n401=0
	n403=0
	for i in $(seq "$4" "$5"); do
		got=$("${PROBE[@]}" alike --src "${1//\{i\}/$i}" --port "$PORT" --method REGISTER --password "${3//\{i\}/$i}" \
			"${2//\{i\}/$i}" 2>&1)
		case $got in
		"SIP/2.0 401 Unauthorized") n401=$((n401 + 1)) ;;
		"SIP/2.0 403 Too many failed authentication attempts") n403=$((n403 + 1)) ;;
		esac
	done
}

# ---- svmap ----
scanner svmap svmap
if grep -qE "127\.0\.0\.1:$PORT +\| sipd/" "$OUT"; then
	pass "svmap finds sipd and its User-Agent"
else
	fail "svmap finds sipd and its User-Agent" "$(tail -5 "$OUT" | tr '\n' ' ')"
fi

# ---- svwar: no extension told apart ----
for m in REGISTER INVITE OPTIONS; do
	scanner "svwar-$m" svwar -e1000-1010 -m "$m"
	found_nothing "svwar -m $m over 1000-1010 finds nothing (every name challenged alike)"
done
scanner svwar-force svwar -e1000-1010 -m INVITE --force
found_nothing "svwar -m INVITE --force over 1000-1010 finds nothing"

# ---- the same shape of answer for every kind of name ----
NAMES=(alice 1001 carol 1003 zed 1005)
src=10
for m in REGISTER INVITE OPTIONS MESSAGE SUBSCRIBE; do
	want="SIP/2.0 407 Proxy Authentication Required"
	[ "$m" = REGISTER ] && want="SIP/2.0 401 Unauthorized"
	got=$("${PROBE[@]}" alike --port "$PORT" --method "$m" "${NAMES[@]}" 2>&1)
	[ "$got" = "$want" ] && pass "$m without credentials: '$want' alike for a name, an extension, a disabled user and nobody" ||
		fail "$m without credentials alike" "$got"
	# each round from its own address: a wrong password counts against (source, user)
	got=$("${PROBE[@]}" alike --src "127.0.0.$src" --port "$PORT" --method "$m" --password wrong "${NAMES[@]}" 2>&1)
	src=$((src + 1))
	[ "$got" = "$want" ] && pass "$m with a wrong password: '$want' alike for all six" ||
		fail "$m with a wrong password alike" "$got"
done
got=$("${PROBE[@]}" alike --src 127.0.0.20 --port "$PORT" --method REGISTER --password pw3 carol zed 2>&1)
[ "$got" = "SIP/2.0 401 Unauthorized" ] && pass "a disabled user's right password looks like a guess for nobody (401)" ||
	fail "a disabled user's right password looks like a guess for nobody" "$got"
got=$("${PROBE[@]}" alike --src 127.0.0.20 --port "$PORT" --method INVITE --password pw3 1003 1005 2>&1)
[ "$got" = "SIP/2.0 407 Proxy Authentication Required" ] &&
	pass "an INVITE with a disabled user's right password looks like one from nobody (407)" ||
	fail "an INVITE with a disabled user's right password looks like one from nobody" "$got"
if grep -q "disabled user for user 'carol'" "$LOG" && grep -q "unknown user for user 'zed'" "$LOG" &&
	grep -q "wrong password for user 'alice'" "$LOG"; then
	pass "the log tells the disabled user, the unknown one and the wrong password apart"
else
	fail "the log tells the disabled user, the unknown one and the wrong password apart" \
		"$(grep 'auth:' "$LOG" | tail -3 | tr '\n' ' ')"
fi

# ---- svcrack ----
printf 'guess1\nhunter2\nguess3\n' >"$WORK/short.txt"
{
	for i in $(seq 1 30); do echo "guess$i"; done
	echo secret123
} >"$WORK/long.txt"
scanner svcrack-bob svcrack -u bob -d "$WORK/short.txt"
if grep -qE '^\| bob +\| hunter2 +\|' "$OUT"; then
	pass "svcrack finds bob's password second in its list"
else
	fail "svcrack finds bob's password second in its list" "$(tail -5 "$OUT" | tr '\n' ' ')"
fi
scanner svcrack-alice svcrack -u alice -d "$WORK/long.txt"
if grep -q 'found nothing' "$OUT" && ! grep -q 'secret123' "$OUT"; then
	pass "svcrack does not find alice's password, 31st in its list"
else
	fail "svcrack does not find alice's password, 31st in its list" "$(tail -5 "$OUT" | tr '\n' ' ')"
fi
wrong=$(grep -c "wrong password for user 'alice' from 127\.0\.0\.1$" "$LOG")
refused=$(grep -c "'alice' from 127.0.0.1 refused: too many failures" "$LOG")
if [ "$wrong" -eq 5 ] && [ "$refused" -ge 20 ]; then
	pass "alice: 5 guesses checked, the other $refused refused (403)"
else
	fail "alice: 5 guesses checked, the rest refused" "$wrong checked, $refused refused"
fi
warned=$(grep -c "warning: auth: 'alice' from 127.0.0.1 blocked for 60 s: 5 failed attempts within 60 s$" "$LOG")
[ "$warned" -eq 1 ] && pass "the block's start is one warning in the log" ||
	fail "the block's start is one warning in the log" "$warned such lines"
scanner svcrack-zed svcrack -u zed -d "$WORK/long.txt"
unknown=$(grep -c "unknown user for user 'zed' from 127\.0\.0\.1$" "$LOG")
refused=$(grep -c "'zed' from 127.0.0.1 refused: too many failures" "$LOG")
if grep -q 'found nothing' "$OUT" && [ "$unknown" -eq 5 ] && [ "$refused" -ge 20 ]; then
	pass "svcrack for a user nobody has: refused as alice was ($unknown checked, $refused refused)"
else
	fail "svcrack for a user nobody has: refused as alice was" "$unknown checked, $refused refused: $(tail -2 "$OUT" | tr '\n' ' ')"
fi

# ---- the lockout holds one source and one user ----
"${PROBE[@]}" register --port "$PORT" --src 127.0.0.1 --user alice --password secret123 --expect 403 >/dev/null &&
	pass "alice's right password from the guesser's address: 403 while blocked" ||
	fail "alice's right password from the guesser's address: 403 while blocked"
"${PROBE[@]}" register --port "$PORT" --src 127.0.0.2 --user alice --password secret123 --expect 200 >/dev/null &&
	pass "alice from another address: 200" || fail "alice from another address: 200"
"${PROBE[@]}" register --port "$PORT" --src 127.0.0.1 --user bob --password hunter2 --expect 200 >/dev/null &&
	pass "bob from the guesser's address (a phone behind the same NAT): 200" ||
	fail "bob from the guesser's address: 200"

# ---- guesses for one user from many addresses, each under the pair's limit ----
guesses '127.0.0.{i}' alice 'guess{i}' 100 124
# alice's failures of the last minute (the cases above) count too: how many of the 25 are checked varies
if [ "$n401" -ge 1 ] && [ "$n403" -ge 1 ] && [ $((n401 + n403)) -eq 25 ]; then
	pass "guesses for alice from 25 addresses, one each: $n401 checked (401), then $n403 refused (403)"
else
	fail "guesses for alice from 25 addresses, one each: checked, then refused" "$n401 got 401, $n403 got 403"
fi
"${PROBE[@]}" register --port "$PORT" --src 127.0.0.60 --user alice --password secret123 --expect 403 >/dev/null &&
	pass "then alice's right password from an address she never authenticated from: 403 (user_max_failures)" ||
	fail "then alice's right password from an address she never authenticated from: 403"
grep -q "'alice' from 127.0.0.60 refused: too many failures for the user from several addresses" "$LOG" &&
	grep -q "warning: auth: 'alice' blocked for 60 s from addresses it never authenticated from: 20 failed attempts within 60 s$" "$LOG" &&
	pass "the log says why (a warning when the user's block starts, each refusal at info)" ||
	fail "the log says why: too many failures for the user from several addresses"
"${PROBE[@]}" register --port "$PORT" --src 127.0.0.2 --user alice --password secret123 --expect 200 >/dev/null &&
	pass "alice's phone at the address she registered from before: 200" ||
	fail "alice's phone at the address she registered from before: 200"
"${PROBE[@]}" register --port "$PORT" --src 127.0.0.61 --user bob --password hunter2 --expect 200 >/dev/null &&
	pass "bob from a new address meanwhile: 200" || fail "bob from a new address meanwhile: 200"

# ---- one address, one password, many users (password spraying) ----
"${PROBE[@]}" register --port "$PORT" --src 127.0.0.80 --user bob --password hunter2 --expect 200 >/dev/null ||
	fail "bob registers from 127.0.0.80 before the spraying: 200"
guesses 127.0.0.80 'spray{i}' 123456 1 110
[ "$n401" -eq 100 ] && [ "$n403" -eq 10 ] &&
	pass "one password for 110 names from one address: 100 checked (source_max_failures), 10 refused" ||
	fail "one password for 110 names from one address: 100 checked, 10 refused" "$n401 got 401, $n403 got 403"
grep -q "warning: auth: 127.0.0.80 blocked for 60 s for users that never authenticated from it: 100 failed attempts within 60 s$" "$LOG" &&
	pass "the spraying address's block is a warning" || fail "the spraying address's block is a warning"
"${PROBE[@]}" register --port "$PORT" --src 127.0.0.80 --user bob --password hunter2 --expect 200 >/dev/null &&
	pass "bob, who authenticated from that address before, still registers from it: 200" ||
	fail "bob, who authenticated from that address before, still registers from it: 200"
"${PROBE[@]}" register --port "$PORT" --src 127.0.0.80 --user dave --password pw4 --expect 403 >/dev/null &&
	pass "dave's right password from that address, where he never authenticated: 403" ||
	fail "dave's right password from that address, where he never authenticated: 403"
"${PROBE[@]}" register --port "$PORT" --src 127.0.0.81 --user dave --password pw4 --expect 200 >/dev/null &&
	pass "dave from another address: 200" || fail "dave from another address: 200"

# ---- the administrator sees the blocks and lifts them (sipctl, through sipd's control socket) ----
guesses 127.0.0.90 bob 'wrong{i}' 1 5
BLOCKS=$WORK/blocks.out
if "$SIPCTL" -c "$WORK/main.ini" show blocks >"$BLOCKS" 2>&1 &&
	grep -qE '^user-address +bob +127\.0\.0\.90 +[1-6]?[0-9]s +60s$' "$BLOCKS" &&
	grep -qE '^user +alice +- +[0-9]+s +60s$' "$BLOCKS" &&
	grep -qE '^address +- +127\.0\.0\.80 +[0-9]+s +60s$' "$BLOCKS" && grep -qE '^[0-9]+ blocks$' "$BLOCKS"; then
	pass "sipctl show blocks: bob from 127.0.0.90 (max_failures), alice (user_max_failures), 127.0.0.80 (source_max_failures)"
else
	fail "sipctl show blocks lists the three kinds of block" "$(tr '\n' '|' <"$BLOCKS")"
fi
# sipctl_lifts NAME ARGS...: sipctl unblock ARGS says one block was lifted
sipctl_lifts() {
	local name=$1 out
	shift
	out=$("$SIPCTL" -c "$WORK/main.ini" unblock "$@" 2>&1)
	[ "$out" = "1 block lifted" ] && pass "$name" || fail "$name" "$out"
}
sipctl_lifts "sipctl unblock user bob: his block from 127.0.0.90 lifted" user bob
"${PROBE[@]}" register --port "$PORT" --src 127.0.0.90 --user bob --password hunter2 --expect 200 >/dev/null &&
	pass "then bob from 127.0.0.90: 200" || fail "then bob from 127.0.0.90: 200"
sipctl_lifts "sipctl unblock address 127.0.0.80: the sprayer's address lifted" address 127.0.0.80
"${PROBE[@]}" register --port "$PORT" --src 127.0.0.80 --user dave --password pw4 --expect 200 >/dev/null &&
	pass "then dave from 127.0.0.80: 200" || fail "then dave from 127.0.0.80: 200"
"$SIPCTL" -c "$WORK/main.ini" unblock user alice >/dev/null 2>&1 &&
	"${PROBE[@]}" register --port "$PORT" --src 127.0.0.63 --user alice --password secret123 --expect 200 >/dev/null &&
	pass "sipctl unblock user alice: then her right password from a new address: 200" ||
	fail "sipctl unblock user alice: then her right password from a new address: 200"
grep -q "warning: auth: blocks lifted by the administrator (user bob, address any): 1$" "$LOG" &&
	pass "the log says who lifted which blocks" || fail "the log says who lifted which blocks"
out=$("$SIPCTL" -c "$WORK/main.ini" unblock address 127.0.0 2>&1)
[ $? -eq 1 ] && [ "$out" = "sipctl: sipd: not an IP address: 127.0.0" ] &&
	pass "sipctl unblock address 127.0.0: refused (exit 1)" || fail "sipctl unblock address 127.0.0: refused" "$out"
# a user name is what the guesser wrote: a tab in it (allowed in a quoted-string) comes out as \x09, so it
# neither splits the line into fields nor reaches the administrator's terminal as it is
for i in 1 2 3 4 5; do
	"${PROBE[@]}" register --port "$PORT" --src 127.0.0.92 --user bob --auth-user $'ev\til' --password "w$i" \
		--expect 401 >/dev/null || fail "a guess as 'ev<TAB>il': 401"
done
"$SIPCTL" -c "$WORK/main.ini" show blocks >"$BLOCKS" 2>&1
grep -qE '^user-address +ev\\x09il +127\.0\.0\.92 +[0-9]+s +60s$' "$BLOCKS" &&
	pass "sipctl show blocks writes a control character of a user name as \\x09" ||
	fail "sipctl show blocks writes a control character of a user name as \\x09" "$(tr '\n' '|' <"$BLOCKS")"
guesses 127.0.0.91 bob 'wrong{i}' 1 5
out=$("$SIPCTL" -c "$WORK/main.ini" unblock all 2>&1)
left=$("$SIPCTL" -c "$WORK/main.ini" show blocks 2>&1)
[[ "$out" =~ ^[1-9][0-9]*\ blocks?\ lifted$ ]] && [ "$left" = "0 blocks" ] &&
	pass "sipctl unblock all: $out; none left" || fail "sipctl unblock all" "$out / $left"

# ---- fail2ban's filter (contrib/fail2ban) on this run's log ----
# a user name that names another address, which the filter must not take for the source
"${PROBE[@]}" register --port "$PORT" --src 127.0.0.70 --user bob --auth-user "x' from 192.0.2.66" \
	--password wrong --expect 401 >/dev/null ||
	fail "a digest user name naming another address: 401"
F2B=$WORK/fail2ban.out
fail2ban-regex "$LOG" "$HERE/../../contrib/fail2ban/filter.d/sipd.conf" >"$F2B" 2>&1
matched=$(sed -n 's/^Lines: .* \([0-9][0-9]*\) matched.*/\1/p' "$F2B")
failures=$(grep -c ' info: auth: ' "$LOG")
if [ -n "$matched" ] && [ "$matched" -eq "$failures" ] && [ "$failures" -gt 100 ]; then
	pass "fail2ban-regex: the filter matches each of the $failures failed authentications sipd logged"
else
	fail "fail2ban-regex: the filter matches each failed authentication" "${matched:-none} of $failures matched"
fi
ips=$(fail2ban-regex --out ip "$LOG" "$HERE/../../contrib/fail2ban/filter.d/sipd.conf" 2>/dev/null | sort -u | tr '\n' ' ')
if [[ " $ips" == *" 192.0.2.66 "* ]]; then
	fail "fail2ban: a user name cannot name the address to ban" "$ips"
elif [[ " $ips" == *" 127.0.0.1 "* && " $ips" == *" 127.0.0.60 "* && " $ips" == *" 127.0.0.70 "* ]]; then
	pass "fail2ban: the guessers' addresses found, not one a user name named"
else
	fail "fail2ban: the guessers' addresses found" "$ips"
fi

# ---- after a restart: a loaded binding's address is its user's, as before ----
stop_sipd main
start_sipd main "$PORT" <<<"$USERS" || finish scanner
guesses '127.0.0.{i}' alice 'guess{i}' 130 154
[ "$n401" -eq 20 ] && [ "$n403" -eq 5 ] &&
	pass "restarted: guesses for alice from 25 addresses, 20 checked (user_max_failures), 5 refused" ||
	fail "restarted: guesses for alice from 25 addresses, 20 checked, 5 refused" "$n401 got 401, $n403 got 403"
"${PROBE[@]}" register --port "$PORT" --src 127.0.0.2 --user alice --password secret123 --expect 200 >/dev/null &&
	pass "restarted: alice's phone at the address of her stored binding: 200" ||
	fail "restarted: alice's phone at the address of her stored binding: 200"
"${PROBE[@]}" register --port "$PORT" --src 127.0.0.62 --user alice --password secret123 --expect 403 >/dev/null &&
	pass "restarted: alice's right password from an address of no binding of hers: 403" ||
	fail "restarted: alice's right password from an address of no binding of hers: 403"

stop_sipd main
out=$("$SIPCTL" -c "$WORK/main.ini" ping 2>&1)
[ $? -eq 1 ] && [ ! -e "$WORK/main.ctl" ] && [[ "$out" == *"sipd does not answer on $WORK/main.ctl"* ]] &&
	pass "sipd stopped: its control socket is gone, and sipctl says sipd does not answer" ||
	fail "sipd stopped: its control socket is gone, and sipctl says sipd does not answer" "$out"
finish scanner
