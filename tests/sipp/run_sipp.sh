#!/usr/bin/env bash
# run_sipp.sh SIPD: sipd's protocol behaviour against a live server, with SIPp scenarios
# (tests/sipp/scenarios/*.xml), raw messages sent by rawsip.py (tests/sipp/scenarios/*.sip) for what SIPp
# cannot express, and a sipsak smoke test.
#
# Starts four sipd instances, each with its own temporary config on free ports of 127.0.0.1:
#   main      the defaults, unrouted_delay_ms = 1000 (INVITEs ring 1 s before their 404: room for CANCEL)
#   limits    max_message_size = 2000, max_body_size = 100, accept_language = en
#   overload  max_transactions = 2, unrouted_delay_ms = 5000
#   fault     SIPD_FAULT=txn_alloc
# Prints one PASS/FAIL line per case; at the end checks that every sipd is still alive, exits 0 on
# SIGTERM and printed no sanitizer report. Exits 1 if anything failed.
# KEEP=1 keeps the work directory (configs, sipd stderr, SIPp message logs) for a look afterwards.
set -u

SIPD=${1:?usage: run_sipp.sh /path/to/sipd}
HERE=$(cd "$(dirname "$0")" && pwd)
SCN=$HERE/scenarios
RAW=(python3 "$HERE/rawsip.py")

for tool in sipp sipsak python3; do
	if ! command -v "$tool" >/dev/null; then
		echo "FAIL setup: $tool is not installed (tools/install-deps.sh test)"
		exit 1
	fi
done
[ -x "$SIPD" ] || { echo "FAIL setup: $SIPD is not an executable"; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sipd-sipp.XXXXXX")
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

declare -A SIPD_PID SIPD_PORT
NPASS=0
NCASE=0
FAILED=()

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	local name pid
	for name in "${!SIPD_PID[@]}"; do
		pid=${SIPD_PID[$name]}
		kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
	done
	if [ "${KEEP:-0}" = 1 ]; then
		echo "work directory kept: $WORK"
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pass() {
	NPASS=$((NPASS + 1))
	printf 'PASS %s\n' "$1"
}

fail() {
	FAILED+=("$1")
	printf 'FAIL %s%s\n' "$1" "${2:+: $2}"
}

# ---- ports: 4 for sipd, the rest for SIPp's local UDP port, one per run so that a late retransmission
# from sipd to an earlier run never lands in a later one ----
mapfile -t PORTS < <("${RAW[@]}" freeport --count 64 --start $((20000 + $$ % 10000)))
if [ "${#PORTS[@]}" -lt 64 ]; then
	echo "FAIL setup: not enough free ports"
	exit 1
fi
NEXT_PORT=4
client_port() {
	CPORT=${PORTS[$NEXT_PORT]}
	NEXT_PORT=$(((NEXT_PORT + 1 - 4) % 60 + 4))
}

# ---- sipd instances ----

# start_sipd NAME PORT [VAR=value...] < extra INI sections
start_sipd() {
	local name=$1 port=$2 ini=$WORK/$1.ini
	shift 2
	{
		printf '[general]\nlisten = udp:127.0.0.1:%s, tcp:127.0.0.1:%s\nworkers = 2\nlog_level = warning\n\n' \
			"$port" "$port"
		printf '[database]\npath = %s/%s.db\n\n' "$WORK" "$name"
		cat
	} >"$ini"
	env "$@" "$SIPD" -c "$ini" >"$WORK/$name.out" 2>"$WORK/$name.err" &
	SIPD_PID[$name]=$!
	SIPD_PORT[$name]=$port
	if "${RAW[@]}" ready --port "$port" --wait 15 2>>"$WORK/$name.ready"; then
		pass "$name: sipd starts and answers on udp/tcp 127.0.0.1:$port"
		return 0
	fi
	fail "$name: sipd did not start" "$(tail -5 "$WORK/$name.err" "$WORK/$name.ready" 2>/dev/null | tr '\n' ' ')"
	return 1
}

# stop_sipd NAME: alive after the tests, exit 0 on SIGTERM, no sanitizer report on stderr
stop_sipd() {
	local name=$1 pid=${SIPD_PID[$1]} rc i
	if ! kill -0 "$pid" 2>/dev/null; then
		wait "$pid"
		rc=$?
		fail "$name: sipd is still running after the tests" "it exited with status $rc"
		sed 's/^/    /' "$WORK/$name.err" | head -40
		unset "SIPD_PID[$name]"
		return
	fi
	kill -TERM "$pid"
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		fail "$name: SIGTERM stops sipd" "still running 10 s after SIGTERM"
		kill -KILL "$pid"
		wait "$pid" 2>/dev/null
		unset "SIPD_PID[$name]"
		return
	fi
	wait "$pid"
	rc=$?
	unset "SIPD_PID[$name]"
	if [ "$rc" -ne 0 ]; then
		fail "$name: SIGTERM stops sipd with status 0" "status $rc"
		sed 's/^/    /' "$WORK/$name.err" | head -40
	elif grep -qE 'ERROR: AddressSanitizer|LeakSanitizer|runtime error:' "$WORK/$name.err"; then
		fail "$name: no sanitizer report" "see below"
		sed 's/^/    /' "$WORK/$name.err" | head -60
	else
		pass "$name: sipd alive after the tests, exits 0 on SIGTERM, no sanitizer report"
	fi
}

# ---- cases ----

# sipp_case NAME INSTANCE SCENARIO [sipp options...]
sipp_case() {
	local name=$1 inst=$2 scn=$3 rc log
	shift 3
	NCASE=$((NCASE + 1))
	log=$WORK/case$NCASE
	client_port
	(cd "$WORK" && timeout 60 sipp "127.0.0.1:${SIPD_PORT[$inst]}" -sf "$SCN/$scn" -m 1 -i 127.0.0.1 -p "$CPORT" \
		-nr -nostdin -timeout 20s -timeout_error \
		-trace_err -error_file "$log.errors" -trace_msg -message_file "$log.messages" "$@" \
		>"$log.out" 2>&1 </dev/null)
	rc=$?
	if [ "$rc" -eq 0 ]; then
		pass "$name"
		return
	fi
	fail "$name" "sipp exit status $rc ($scn)"
	{
		grep -v 'Failed to delete FD from epoll' "$log.errors" 2>/dev/null | head -30
		[ -s "$log.errors" ] || tail -5 "$log.out"
		echo "--- messages:"
		tail -60 "$log.messages" 2>/dev/null
	} | sed 's/^/    /'
}

# raw_case NAME INSTANCE TEMPLATE [rawsip send options...]
raw_case() {
	local name=$1 inst=$2 tpl=$3 log
	shift 3
	NCASE=$((NCASE + 1))
	log=$WORK/case$NCASE
	if "${RAW[@]}" send --port "${SIPD_PORT[$inst]}" --file "$SCN/$tpl" "$@" 2>"$log.raw"; then
		pass "$name"
	else
		fail "$name" "$(head -1 "$log.raw") ($tpl)"
		tail -n +2 "$log.raw" | sed 's/^/    /'
	fi
}

T0=$(date +%s)

# ==== main: defaults, INVITEs ring 1 s ====
if start_sipd main "${PORTS[0]}" <<'EOF'
[core]
unrouted_delay_ms = 1000
EOF
then
	# smoke: sipsak's OPTIONS
	if timeout 20 sipsak -s "sip:127.0.0.1:${SIPD_PORT[main]}" >"$WORK/case.sipsak.out" 2>&1; then
		pass "sipsak -s sip:127.0.0.1:PORT (OPTIONS) exits 0"
	else
		fail "sipsak -s sip:127.0.0.1:PORT (OPTIONS) exits 0" "$(tail -3 "$WORK/case.sipsak.out" | tr '\n' ' ')"
	fi

	sipp_case "200 to OPTIONS (UDP): Allow, Accept, Accept-Encoding, Supported" main options_200.xml
	sipp_case "200 to OPTIONS (TCP): Allow, Accept, Accept-Encoding, Supported" main options_200.xml -t t1
	sipp_case "200 to OPTIONS with Max-Forwards: 0" main options_maxfwd0_200.xml
	sipp_case "INVITE: 100 Trying at once, 404, ACK absorbed" main invite_100_404_ack.xml
	sipp_case "INVITE retransmitted: 100 again, 404 again; 404 retransmitted until ACK" main invite_retrans_404.xml
	sipp_case "CANCEL of a pending INVITE: 200, then 487, ACK" main cancel_200_487.xml
	sipp_case "CANCEL matching nothing: 481" main cancel_481.xml
	sipp_case "BYE without a dialog: 481" main bye_481.xml
	sipp_case "SUBSCRIBE NOTIFY MESSAGE INFO REFER UPDATE PRACK PUBLISH: 405 + Allow" main method_405_allow.xml
	sipp_case "unknown method FOO: 501" main unknown_501.xml
	sipp_case "Request-URI http: mailto: urn:: 416" main uri_scheme_416.xml
	sipp_case "Require: foo, bar: 420 + Unsupported: foo, bar" main require_420.xml
	sipp_case "Max-Forwards: 0 on MESSAGE: 483" main maxfwd0_483.xml
	sipp_case "SIP/3.0: 505" main version_505.xml
	sipp_case "Request-URI of 1100+ characters: 414" main uri_414.xml -key longuser "$(printf 'u%.0s' $(seq 1100))"
	raw_case "400 CSeq method does not match request method (raw UDP)" main raw_cseq_mismatch.sip \
		--expect 400 --reason "CSeq method does not match request method" --header 'CSeq~^1 INVITE$'
	raw_case "400 Malformed CSeq header (raw UDP)" main raw_cseq_malformed.sip \
		--expect 400 --reason "Malformed CSeq header"
	sipp_case "400 Malformed Max-Forwards header" main 400_maxfwd_malformed.xml
	sipp_case "400 Duplicate Call-ID header field" main 400_dup_callid.xml
	sipp_case "400 Content-Length larger than message body" main 400_cl_larger.xml
	sipp_case "400 Malformed header line: missing colon" main 400_missing_colon.xml
	sipp_case "400 body without Content-Type" main 400_body_no_ctype.xml
	raw_case "400 Missing Call-ID header field (raw UDP)" main raw_missing_callid.sip \
		--timeout 1.5 --expect 400 --reason "Missing Call-ID header field" --header 'Server~^sipd/0\.1\.0$'
	raw_case "400 Missing Via header field (raw UDP)" main raw_missing_via.sip \
		--timeout 1.5 --expect 400 --reason "Missing Via header field"
	raw_case "400 Missing Via header field (raw TCP)" main raw_missing_via.sip --tcp \
		--timeout 1.5 --expect 400 --reason "Missing Via header field"
	raw_case "400 Malformed Via header (raw UDP)" main raw_malformed_via.sip \
		--timeout 1.5 --expect 400 --reason "Malformed Via header"
	raw_case "400 Malformed Via header (raw TCP)" main raw_malformed_via.sip --tcp \
		--timeout 1.5 --expect 400 --reason "Malformed Via header"
	raw_case "400 Missing From header field (raw UDP)" main raw_missing_from.sip \
		--timeout 1.5 --expect 400 --reason "Missing From header field"
	raw_case "400 Missing To header field (raw UDP)" main raw_missing_to.sip \
		--timeout 1.5 --expect 400 --reason "Missing To header field"
	raw_case "400 Missing CSeq header field (raw UDP)" main raw_missing_cseq.sip \
		--timeout 1.5 --expect 400 --reason "Missing CSeq header field"
	raw_case "400 Missing Content-Length header field (raw TCP)" main raw_tcp_no_cl.sip --tcp \
		--timeout 1.5 --expect 400 --reason "Missing Content-Length header field"
	sipp_case "415 + Accept: application/sdp (text/plain body)" main 415_accept.xml
	sipp_case "415 + Accept-Encoding: identity (Content-Encoding: gzip)" main 415_accept_encoding.xml
	raw_case "received=127.0.0.1 and rport=<port> on the top Via (raw UDP, ;rport)" main raw_rport.sip \
		--expect 200 --header 'Via~^SIP/2\.0/UDP 192\.0\.2\.1:5062;' --header 'Via~;rport={lport}(;|$)' \
		--header 'Via~;received=127\.0\.0\.1(;|$)' --header 'Via~;branch=z9hG4bKraw'
	sipp_case "responses sent to sipd: no answer" main response_no_answer.xml
	sipp_case "ACKs matching nothing: no answer" main ack_no_answer.xml
	raw_case "unparseable start line: no answer (raw UDP)" main raw_garbage_start.sip --none --timeout 1
fi

# ==== limits: small messages and bodies, a language ====
if start_sipd limits "${PORTS[1]}" <<'EOF'
[limits]
max_message_size = 2000
max_body_size = 100
[sip]
accept_language = en
EOF
then
	sipp_case "513 to a 3000-byte UDP request (max_message_size 2000)" limits 513_udp.xml \
		-key pad "$(printf 'p%.0s' $(seq 2800))"
	raw_case "513 to a 3000-byte TCP request, then the connection closed" limits raw_tcp_513.sip --tcp \
		--pad 2900 --expect 513 --reason "Message Too Large" --header 'Server~^sipd/0\.1\.0$' --closed
	sipp_case "413 to a 200-byte body (max_body_size 100)" limits 413_body.xml
	sipp_case "415 + Accept-Language: en (Content-Language: fr)" limits 415_accept_language.xml
fi

# ==== overload: two live transactions at most ====
if start_sipd overload "${PORTS[2]}" <<'EOF'
[limits]
max_transactions = 2
retry_after = 5
[core]
unrouted_delay_ms = 5000
EOF
then
	raw_case "overload: 1st INVITE pending (100)" overload raw_invite_pending.sip --expect 100
	raw_case "overload: 2nd INVITE pending (100)" overload raw_invite_pending.sip --expect 100
	sipp_case "3rd INVITE over max_transactions 2: 503 + Retry-After: 5" overload 503_overload.xml
fi

# ==== fault: every transaction allocation fails ====
if start_sipd fault "${PORTS[3]}" SIPD_FAULT=txn_alloc </dev/null; then
	sipp_case "SIPD_FAULT=txn_alloc: 500 + Retry-After: 5 to INVITE" fault 500_fault.xml
fi

for name in main limits overload fault; do
	[ -n "${SIPD_PID[$name]:-}" ] && stop_sipd "$name"
done

echo "sipp suite: $NPASS passed, ${#FAILED[@]} failed, $(($(date +%s) - T0)) s"
if [ "${#FAILED[@]}" -ne 0 ]; then
	printf '  failed: %s\n' "${FAILED[@]}"
	exit 1
fi
exit 0
