#!/usr/bin/env bash
# run_restart.sh SIPD: the registrar answers 200 only once the binding is committed to SQLite, so a binding
# acknowledged is never lost: 20 times, regclient.py registers a new contact for alice (SHA-256 and MD5 in
# turn), SIGKILLs sipd the moment the 200 is in, starts sipd again on the same database, and checks that
# an authenticated query (REGISTER without Contact) lists every binding acknowledged so far with a sensible
# expires (the newest 3590..3600 s, the others 3300..3600 s), and that `sipctl show registrations` (next to
# SIPD) lists them too. max_contacts is 32 here so that the 20 bindings fit one AOR. Then the same for a
# removal (the first contact with expires=0): after kill -9 and a restart it stays removed. Then a dialog:
# the Record-Route key is the same after kill -9 and a restart, and a BYE signed with it still goes through.
# Prints one PASS/FAIL line per round; at the end checks the SQLite rows, that no killed sipd printed a
# sanitizer report, and that the last one exits 0 on SIGTERM without one. Exits 1 if anything failed.
# ROUNDS=N changes the 20; KEEP=1 keeps the work directory.
set -u

SIPD=${1:?usage: run_restart.sh /path/to/sipd}
SIPCTL=$(dirname "$SIPD")/sipctl
HERE=$(cd "$(dirname "$0")" && pwd)
RC=(python3 "$HERE/regclient.py")
ROUNDS=${ROUNDS:-20}

# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"
need_tools python3
need_exec "$SIPD"
need_exec "$SIPCTL" "build the sipctl target"
lib_init restart
PID=
WRAP=
LAST_ERR=

# shellcheck disable=SC2317 # called by the EXIT trap (lib.sh)
cleanup_extra() {
	[ -n "$PID" ] && kill -0 "$PID" 2>/dev/null && kill -KILL "$PID" 2>/dev/null
}

PORT=$("${RC[@]}" freeport --count 1 --start $((40000 + $$ % 10000)))
[ -n "$PORT" ] || { echo "FAIL setup: no free port"; exit 1; }
DB=$WORK/sipd.db
cat >"$WORK/sipd.ini" <<EOF
[general]
listen = udp:127.0.0.1:$PORT, tcp:127.0.0.1:$PORT
workers = 2
log_level = info

[registrar]
min_expires = 60
max_expires = 3600
default_expires = 3600
max_contacts = 32

[auth]
algorithms = MD5, SHA-256
nonce_lifetime = 300

[database]
path = $DB

[user alice]
password = secret
extension = 100
EOF

# start N: sipd on the same config and database, its stderr in sipd.N.err. PID is sipd's; WRAP is a
# subshell that waits for it and exits with its status, so that bash reports no "Killed" job on SIGKILL.
start() {
	rm -f "$WORK/pid"
	LAST_ERR=$WORK/sipd.$1.err
	(
		"$SIPD" -c "$WORK/sipd.ini" >"$WORK/sipd.$1.out" 2>"$WORK/sipd.$1.err" &
		echo $! >"$WORK/pid"
		wait $!
	) 2>/dev/null &
	WRAP=$!
	"${RC[@]}" ready --port "$PORT" --wait 15 2>>"$WORK/ready.log"
	PID=$(cat "$WORK/pid")
	[ -n "$PID" ]
}

T0=$(date +%s)
if ! start 0; then
	fail "sipd starts" "$(tail -5 "$WORK/sipd.0.err" | tr '\n' ' ')"
	exit 1
fi

for ((i = 1; i <= ROUNDS; i++)); do
	name="round $i: register sip:restart-$i@10.0.1.$i:5060, kill -9 at the 200, restart: all $i bindings there"
	alg=SHA-256
	[ $((i % 2)) -eq 0 ] && alg=MD5
	log=$WORK/round$i.log
	if ! "${RC[@]}" register --port "$PORT" --user alice --password secret --alg "$alg" \
		--contact "<sip:restart-$i@10.0.1.$i:5060>" --expires 3600 --expect 200 \
		--has-contact "^<sip:restart-$i@10\.0\.1\.$i:5060>;expires=(359[0-9]|3600)$" --kill-pid "$PID" 2>"$log"; then
		fail "$name" "$(head -1 "$log")"
		sed 's/^/    /' "$log" | tail -n +2 | head -20
		kill -KILL "$PID" 2>/dev/null
	fi
	wait "$WRAP"
	if ! start "$i"; then
		fail "$name" "sipd did not start again: $(tail -5 "$WORK/sipd.$i.err" | tr '\n' ' ')"
		break
	fi
	checks=(--count "$i")
	for ((j = 1; j < i; j++)); do
		checks+=(--has-contact "^<sip:restart-$j@10\.0\.1\.$j:5060>;expires=(3[3-5][0-9][0-9]|3600)$")
	done
	checks+=(--has-contact "^<sip:restart-$i@10\.0\.1\.$i:5060>;expires=(359[0-9]|3600)$")
	if ! "${RC[@]}" register --port "$PORT" --user alice --password secret --alg "$alg" --expect 200 \
		"${checks[@]}" 2>"$log"; then
		fail "$name" "query after the restart: $(head -1 "$log" | cut -c1-400)"
		sed 's/^/    /' "$log" | tail -n +2 | head -20
		continue
	fi
	if "${RC[@]}" regs --sipctl "$SIPCTL" --db "$DB" --aor sip:alice@127.0.0.1 --count "$i" 2>"$log" &&
		"${RC[@]}" regs --sipctl "$SIPCTL" --db "$DB" --aor sip:alice@127.0.0.1 \
			--contact "sip:restart-$i@10.0.1.$i:5060" --transport udp --ua regclient \
			--expires-min 3590 --expires-max 3600 2>>"$log"; then
		pass "$name ($alg; query and sipctl)"
	else
		fail "$name" "sipctl: $(head -1 "$log" | cut -c1-400)"
		sed 's/^/    /' "$log" | tail -n +2 | head -20
	fi
done

# a removal is as durable as an addition
name="removal: sip:restart-1@... with expires=0, kill -9 at the 200, restart: $((ROUNDS - 1)) bindings left"
log=$WORK/removal.log
if [ -n "$PID" ] && "${RC[@]}" register --port "$PORT" --user alice --password secret \
	--contact "<sip:restart-1@10.0.1.1:5060>;expires=0" --expect 200 --count $((ROUNDS - 1)) \
	--no-contact "restart-1@" --kill-pid "$PID" 2>"$log"; then
	wait "$WRAP"
	if ! start removal; then
		fail "$name" "sipd did not start again: $(tail -5 "$WORK/sipd.removal.err" | tr '\n' ' ')"
	elif "${RC[@]}" register --port "$PORT" --user alice --password secret --expect 200 --count $((ROUNDS - 1)) \
		--no-contact "restart-1@" 2>"$log" &&
		"${RC[@]}" regs --sipctl "$SIPCTL" --db "$DB" --aor sip:alice@127.0.0.1 --count $((ROUNDS - 1)) 2>>"$log" &&
		"${RC[@]}" regs --sipctl "$SIPCTL" --db "$DB" --contact sip:restart-1@10.0.1.1:5060 --absent 2>>"$log"; then
		pass "$name"
	else
		fail "$name" "$(head -1 "$log" | cut -c1-400)"
		sed 's/^/    /' "$log" | tail -n +2 | head -20
	fi
else
	fail "$name" "$(head -1 "$log" | cut -c1-400)"
	sed 's/^/    /' "$log" | tail -n +2 | head -20
fi

# the rows themselves: one per round but the removed one, each with the address it came from
if python3 - "$DB" "$ROUNDS" >"$WORK/rows.log" 2>&1 <<'EOF'; then
import re, sqlite3, sys, time
db, n = sys.argv[1], int(sys.argv[2])
con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
rows = con.execute("SELECT contact, received, expires FROM bindings WHERE aor = 'sip:alice@127.0.0.1'").fetchall()
want = {"sip:restart-%d@10.0.1.%d:5060" % (i, i) for i in range(2, n + 1)}
got = {r[0] for r in rows}
bad = [r for r in rows if not re.match(r"^udp:127\.0\.0\.1:\d+$", r[1]) or not 3300 < r[2] - time.time() <= 3600]
if got != want or bad:
    print("missing %s, extra %s, odd rows %s" % (sorted(want - got), sorted(got - want), bad))
    sys.exit(1)
EOF
	pass "SQLite: $((ROUNDS - 1)) rows, each with received udp:127.0.0.1:<port> and an absolute expiry ~1 h ahead"
else
	fail "SQLite: $((ROUNDS - 1)) rows, each with received udp:127.0.0.1:<port> and an absolute expiry ~1 h ahead" \
		"$(head -3 "$WORK/rows.log" | tr '\n' ' ')"
fi

# a dialog sipd Record-Routed outlives a restart: the key of its Record-Route signature is in the database
name="dialogs outlive kill -9: the Record-Route key stays in the database, and after a restart a BYE whose Route carries the signature it gives reaches the phone; an unsigned one gets 403"
log=$WORK/dialog.log
UA=(python3 "$HERE/../proxy/sipua.py")
rrkey() {
	python3 -c 'import sqlite3, sys
con = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
row = con.execute("SELECT value FROM secrets WHERE name = '"'record_route'"'").fetchone()
print(bytes(row[0]).hex() if row else "")' "$DB" 2>>"$log"
}
key1=$(rrkey)
if [ -n "$PID" ]; then
	kill -KILL "$PID" 2>/dev/null
	wait "$WRAP"
fi
if ! start dialog; then
	fail "$name" "sipd did not start again: $(tail -5 "$WORK/sipd.dialog.err" | tr '\n' ' ')"
else
	key2=$(rrkey)
	rm -f "$WORK/phone.ready"
	"${UA[@]}" phone --port "$PORT" --user alice --password secret --expect bye --seconds 5 \
		--ready "$WORK/phone.ready" >"$WORK/phone.out" 2>"$WORK/phone.err" &
	PHONE=$!
	for ((i = 0; i < 50; i++)); do [ -s "$WORK/phone.ready" ] && break; sleep 0.1; done
	PY_PORT=$(head -1 "$WORK/phone.ready" 2>/dev/null)
	if [ ${#key1} -ne 32 ] || [ "$key1" != "$key2" ]; then
		fail "$name" "the key before the restart '$key1', after '$key2'"
	elif [ -z "$PY_PORT" ]; then
		fail "$name" "the phone did not start: $(head -1 "$WORK/phone.err")"
	elif ! "${UA[@]}" request --port "$PORT" --method BYE --ruri "sip:callee@127.0.0.1:$PY_PORT" \
		--route "<sip:127.0.0.1:$PORT;lr;sg=@SG@>" --sign-db "$DB" --to-tag rs1 --expect 200 2>>"$log"; then
		fail "$name" "signed BYE: $(tail -1 "$log")"
	elif ! "${UA[@]}" request --port "$PORT" --method BYE --ruri "sip:callee@127.0.0.1:$PY_PORT" \
		--route "<sip:127.0.0.1:$PORT;lr>" --to-tag rs2 --expect 403 2>>"$log"; then
		fail "$name" "unsigned BYE: $(tail -1 "$log")"
	elif ! wait "$PHONE"; then
		PHONE=
		fail "$name" "the phone: $(tail -1 "$WORK/phone.err")"
	else
		PHONE=
		pass "$name"
	fi
	[ -n "$PHONE" ] && kill "$PHONE" 2>/dev/null && wait "$PHONE" 2>/dev/null
fi

# sanitizers: the killed ones had no chance to report leaks, but any error before the kill shows
if grep -lE 'ERROR: AddressSanitizer|runtime error:' "$WORK"/sipd.*.err >"$WORK/asan.list" 2>/dev/null; then
	fail "no sanitizer report from the killed sipds" "$(tr '\n' ' ' <"$WORK/asan.list")"
	head -40 "$(head -1 "$WORK/asan.list")" | sed 's/^/    /'
else
	pass "no sanitizer report from the killed sipds"
fi
if kill -0 "$PID" 2>/dev/null; then
	if ! sigterm_wait "$PID"; then
		fail "the last sipd stops on SIGTERM" "still running after 10 s"
		kill -KILL "$PID"
		wait "$WRAP"
	else
		wait "$WRAP"
		rc=$?
		last=$LAST_ERR
		if [ "$rc" -ne 0 ]; then
			fail "the last sipd exits 0 on SIGTERM" "status $rc"
			tail -20 "$last" | sed 's/^/    /'
		elif sanitizer_report "$last"; then
			fail "the last sipd: no sanitizer report" "see below"
			head -60 "$last" | sed 's/^/    /'
		else
			pass "the last sipd exits 0 on SIGTERM, no sanitizer report"
		fi
	fi
	PID=
else
	fail "the last sipd is alive after the rounds"
fi

finish restart
