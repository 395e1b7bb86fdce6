#!/usr/bin/env bash
# run_cli.sh SIPD: sipd's command line, run as an administrator runs it: --help, --version, --explain
# CODE (the status catalogue in English and Chinese, the seed's typos settled by RFC 3261, codes it
# does not know read by their class, words that are no code refused), -c FILE --check (every error
# with its file and line, exit 1; a good file OK, exit 0), --dump-config (every key, which sipd reads
# back to the same configuration), and what it refuses (an unknown option, a stray argument, a file
# that is not there), the control socket's path, and sipctl's commands for it with no sipd running. No
# network: sipd never starts serving here.
set -u

SIPD=${1:?usage: run_cli.sh /path/to/sipd}
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"

need_exec "$SIPD"
lib_init cli
T0=$(date +%s)

# run ARGS...: sipd with ARGS; its exit status in RC, stdout in OUT, stderr in ERR
run() {
	"$SIPD" "$@" >"$WORK/out" 2>"$WORK/err"
	RC=$?
	OUT=$(<"$WORK/out")
	ERR=$(<"$WORK/err")
}

# expect NAME STATUS [STDOUT-REGEX [STDERR-REGEX]]: one case over the last run (grep -E, multi-line)
expect() {
	local name=$1 rc=$2 out=${3:-} err=${4:-} why=()
	[ "$RC" = "$rc" ] || why+=("exit status $RC, expected $rc")
	if [ -n "$out" ] && ! grep -qE -- "$out" <<<"$OUT"; then
		why+=("stdout does not match /$out/: $(head -c 300 <<<"$OUT")")
	fi
	if [ -n "$err" ] && ! grep -qE -- "$err" <<<"$ERR"; then
		why+=("stderr does not match /$err/: $(head -c 300 <<<"$ERR")")
	fi
	if [ "${#why[@]}" -eq 0 ]; then
		pass "$name"
	else
		fail "$name" "$(printf '%s; ' "${why[@]}")"
	fi
}

# ---- help, version, refusals ----
run --help
expect "--help: usage on stdout, exit 0, naming -c, --check, --dump-config, --explain" 0 \
	'^usage: sipd \[-c FILE\] \[--check\] \[--dump-config \[--show-secrets\]\]'
grep -q -- '--explain CODE' <<<"$OUT" || fail "--help lists --explain CODE" "$OUT"
run -V
expect "-V: the version, exit 0" 0 '^sipd [0-9]+\.[0-9]+\.[0-9]+$'
run --version
expect "--version: the same" 0 '^sipd [0-9]+\.[0-9]+\.[0-9]+$'
run --no-such-option
expect "an unknown option: usage on stderr, exit 2" 2 '' '^usage: sipd'
run stray-argument
expect "an argument that is no option: usage on stderr, exit 2" 2 '' '^usage: sipd'
run -c "$WORK/not-there.ini" --check
expect "-c a file that is not there: exit 1, says so" 1 '' "cannot open $WORK/not-there.ini: No such file"

# ---- --explain: the status catalogue ----
run --explain 486
expect "--explain 486: code, reason, class and section, headers, English and Chinese" 0 \
	'^486 Busy Here  \(4xx Client Error; RFC 3261 21\.4\.24\)'
grep -q '^EN: ' <<<"$OUT" && grep -qP '^ZH: .*[\x{4e00}-\x{9fff}]' <<<"$OUT" ||
	fail "--explain 486 has an EN: and a ZH: line in Chinese" "$OUT"
for pair in '181:Call Is Being Forwarded' '183:Session Progress' '305:Use Proxy' '423:Interval Too Brief' \
	'489:Bad Event' '607:Unwanted'; do
	run -e "${pair%%:*}"
	expect "--explain ${pair%%:*}: ${pair#*:} (RFC wording; the seed's typos settled)" 0 "^${pair%%:*} ${pair#*:}  \\("
done
run --explain 405
expect "--explain 405: the headers it must carry (Allow)" 0 '^Headers: .*Allow'
run --explain 299
expect "--explain 299 (no such code): understood by its class as 200 OK (RFC 3261 8.1.3.2), exit 0" 0 \
	'^299 is not a registered response code; a receiver understands it as 200 OK'
run --explain 155
expect "--explain 155 (no such code): understood as 183 Session Progress, as every unknown provisional code (RFC 3261 8.1.3.2), exit 0" 0 \
	'^155 is not a registered response code; a receiver understands it as 183 Session Progress'
for bad in 99 700 4x6 '' -486; do
	run --explain "$bad"
	expect "--explain '$bad': not a SIP response code, exit 2" 2 '' 'is not a SIP response code \(100 to 699\)'
done

# ---- --check ----
run --check
expect "--check without -c: the embedded defaults are OK" 0 '^\(embedded defaults\): OK$'
cat >"$WORK/good.ini" <<'EOF'
; a whole configuration an administrator might write
[general]
listen = udp:127.0.0.1:5099
listen = tcp:127.0.0.1:5099
workers = 2
log_level = info

[registrar]
min_expires = 60
max_expires = 7200
max_contacts = 5
max_contacts_policy = drop_oldest

[auth]
algorithms = SHA-256, MD5
realm = example.com

[user alice]
password = secret
extension = 100
display_name = Alice Example

[user bob]
ha1 = 0123456789abcdef0123456789abcdef

[user carol]
ha1_sha256 = 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
disabled = yes
EOF
run -c "$WORK/good.ini" --check
expect "-c good.ini --check: OK, exit 0" 0 "^$WORK/good.ini: OK$"

cat >"$WORK/bad.ini" <<'EOF'
[general]
listen = udp:127.0.0.1:5060
bogus_key = 1
workers = many
this line is garbage

[registrar]
min_expires = 7200
max_expires = 3600

[user alice]
ha1 = 1234

[user bob]
extension = 200

[user carol@x]
password = x
extension = 300
EOF
run -c "$WORK/bad.ini" --check
B=$WORK/bad.ini
expect "-c bad.ini --check: exit 1, the count of errors last" 1 '' "^sipd: 8 error\\(s\\) in $B$"
for want in "^$B:3: unknown key \\[general\\] bogus_key$" \
	"^$B:4: \\[general\\] workers: not a number$" \
	"^$B:5: syntax error: not a \\[section\\] or key = value line$" \
	"^$B:12: \\[user alice\\] ha1: not 32 hex digits$" \
	"^$B:11: \\[user alice\\]: needs a password, ha1 or ha1_sha256$" \
	"^$B:14: \\[user bob\\]: needs a password, ha1 or ha1_sha256$" \
	"^$B:17: \\[user carol@x\\]: a user name is one word" \
	"^$B: \\[registrar\\] min_expires \\(7200\\) is above max_expires \\(3600\\)$"; do
	grep -qE -- "$want" <<<"$ERR" || fail "bad.ini: an error line matching /$want/" "$ERR"
done
[ "${#FAILED[@]}" -eq 0 ] && pass "bad.ini: each error names its file and line (the section's header for a section's own error, told once; none for a check of the whole file)"

{
	echo "[sip]"
	for i in $(seq 300); do echo "t1 = x$i"; done
} >"$WORK/many.ini"
run -c "$WORK/many.ini" --check
expect "-c many.ini --check: 300 errors, each reported" 1 '' "^sipd: 300 error\\(s\\) in $WORK/many.ini$"
n=$(grep -cE "^$WORK/many.ini:[0-9]+: \\[sip\\] t1: not a number$" <<<"$ERR")
[ "$n" = 300 ] && pass "many.ini: all 300 error lines, the last whole (line 301)" ||
	fail "many.ini: all 300 error lines" "$n lines; last: $(grep "many.ini:" <<<"$ERR" | tail -1)"
grep -qE "^$WORK/many.ini:301: " <<<"$ERR" || fail "many.ini: the line of the last error" "$(tail -2 <<<"$ERR")"

printf '[registrar]\nmin_expires = 120\ndefault_expires = 60\n' >"$WORK/default.ini"
run -c "$WORK/default.ini" --check
expect "-c default.ini --check (default_expires 60 under min_expires 120): exit 1, the error says why" 1 '' \
	"^$WORK/default.ini: \\[registrar\\] default_expires \\(60\\) is under min_expires \\(120\\): a REGISTER without an interval would get 423$"

printf '[auth]\nregister_auth = no\n[proxy]\ntimer_c = 60\n' >"$WORK/warn.ini"
run -c "$WORK/warn.ini" --check
expect "-c warn.ini --check (register_auth = no, timer_c = 60): valid, exit 0, with a warning for each on stderr" 0 \
	"^$WORK/warn.ini: OK$" "^sipd: warning: \\[auth\\] register_auth = no: anyone may register"
expect "warn.ini: timer_c under 3 minutes warned of (RFC 3261 16.6 step 11)" 0 '' \
	"^sipd: warning: \\[proxy\\] timer_c = 60: RFC 3261 16.6 step 11 asks for more than 3 minutes"
printf '[sip]\nt1 = 400\n[database]\ncommit_delay_ms = 400\n' >"$WORK/slowcommit.ini"
run -c "$WORK/slowcommit.ini" --check
expect "-c slowcommit.ini --check (commit_delay_ms = t1 = 400): valid, exit 0, warned that phones would resend" 0 \
	"^$WORK/slowcommit.ini: OK$" \
	"^sipd: warning: \\[database\\] commit_delay_ms = 400: at or over \\[sip\\] t1 \\(400 ms\\), phones over UDP send their REGISTER again"
run --check
[ -z "$ERR" ] && pass "--check of the embedded defaults: no warning" || fail "--check of the defaults warns" "$ERR"

# ---- --dump-config ----
run --dump-config
expect "--dump-config: the embedded defaults, every section" 0 '^\[general\]'
for sec in registrar auth database proxy limits dns; do
	grep -q "^\[$sec\]" <<<"$OUT" || fail "--dump-config has a [$sec] section" "$(head -c 400 <<<"$OUT")"
done
run -c "$WORK/good.ini" --dump-config
expect "-c good.ini --dump-config: the users' passwords and HA1s not shown, a comment says they are set" 0 \
	'^; password: set, not shown \(--show-secrets\)$'
SHOWN=$(grep -E -- '^password = |^ha1 = |^ha1_sha256 = |secret$|0123456789abcdef' <<<"$OUT" || true)
if [ -z "$SHOWN" ]; then
	pass "--dump-config without --show-secrets: no password or HA1 value in its output"
else
	fail "--dump-config without --show-secrets: no password or HA1 value in its output" "$SHOWN"
fi
run -c "$WORK/good.ini" --dump-config --show-secrets
expect "-c good.ini --dump-config --show-secrets: its values, its users with every key" 0 '^password = secret$'
printf '%s\n' "$OUT" >"$WORK/dump1.ini"
for want in '^listen = udp:127.0.0.1:5099, tcp:127.0.0.1:5099$' '^max_contacts_policy = drop_oldest$' '^\[user bob\]$' \
	'^ha1 = 0123456789abcdef0123456789abcdef$' '^disabled = yes$' '^display_name = Alice Example$' \
	'^extension = 100$'; do
	grep -qE -- "$want" "$WORK/dump1.ini" || fail "the dump of good.ini has a line matching /$want/" "$OUT"
done
run -c "$WORK/dump1.ini" --check
expect "the dump, read back: OK" 0 "^$WORK/dump1.ini: OK$"
run -c "$WORK/dump1.ini" --dump-config --show-secrets
if [ "$OUT" = "$(<"$WORK/dump1.ini")" ]; then
	pass "the dump, read back and dumped again: the same text (nothing lost or changed on the way)"
else
	fail "the dump, read back and dumped again: the same text" "$(diff <(printf '%s\n' "$OUT") "$WORK/dump1.ini" | head -20)"
fi

# ---- the control socket: its path checked, and sipctl's commands for it without a sipd ----
printf '[general]\ncontrol_socket = /tmp/%0120d\n' 0 >"$WORK/ctl.ini"
run -c "$WORK/ctl.ini" --check
expect "-c ctl.ini --check (control_socket of 125 bytes): exit 1, too long for a Unix socket" 1 '' \
	"ctl.ini:2: \[general\] control_socket: too long for a Unix socket's path \(107 bytes at most\)"
SIPCTL=$(dirname "$SIPD")/sipctl
if [ -x "$SIPCTL" ]; then
	"$SIPCTL" -d "$WORK/none.db" ping >"$WORK/out" 2>"$WORK/err"
	RC=$?
	OUT=$(<"$WORK/out")
	ERR=$(<"$WORK/err")
	expect "sipctl ping with no sipd running: exit 1, says where it asked" 1 '' \
		"^sipctl: sipd does not answer on $WORK/none.ctl: is it running\?"
	"$SIPCTL" unblock >"$WORK/out" 2>"$WORK/err"
	RC=$?
	ERR=$(<"$WORK/err")
	expect "sipctl unblock with no one named: usage, exit 2" 2 '' '^sipctl: unblock whom\?'
	printf '[general]\ncontrol_socket = none\n' >"$WORK/noctl.ini"
	"$SIPCTL" -c "$WORK/noctl.ini" show blocks >"$WORK/out" 2>"$WORK/err"
	RC=$?
	ERR=$(<"$WORK/err")
	expect "sipctl show blocks with control_socket = none: exit 1, says so" 1 '' \
		'^sipctl: the configuration has no control socket'
else
	fail "sipctl next to sipd" "$SIPCTL is missing"
fi

finish cli
