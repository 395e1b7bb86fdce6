#!/usr/bin/env bash
# run_proxy.sh SIPD: sipd as a stateful proxy (RFC 3261 16) against a live server. Phones are SIPp UAS
# instances (tests/proxy/scenarios/uas_*.xml), each registered by sipua.py from the very port it then
# listens on (REGISTER with MD5 digest, Contact <sip:callee@127.0.0.1:PORT>;q=Q); callers are SIPp UACs
# (uac_*.xml) sending to sip:USER@127.0.0.1:SIPD_PORT. sipua.py plays what SIPp cannot: a callee behind
# a NAT, phones that must get nothing or must not be CANCELled, challenging phones, a sink on 127.0.0.2
# (another domain), a caller answering a 407 (SIPp 3.6 puts sip:<remote ip>:<port> as the digest uri, not
# the Request-URI), a strict router's BYE; and it checks CANCELs, timing and Vias in SIPp's message logs.
#
# Scenarios are templates: the runner fills in @SIPD_PORT@, @UAS_PORT@ and the per-case @KEY@s (status
# codes, delays) into the work directory; each scenario's header says which it takes.
#
# Starts five sipd instances, each with its own temporary config and database on free ports of
# 127.0.0.1, [auth] algorithms = MD5 (SIPp 3.6 answers the first challenge only, and only MD5), users
# alice, bob, carol (password secret), [proxy] record_route = yes:
#   main       timer_c 180, auth_calls no, outbound none (other domains refused, no DNS: tests/dns has
#              outbound calls): routing, forking, CANCEL, error mapping, 401/407 merging, the
#              ACK of sipd's own errors, relaying, strict routers, TCP, NAT, loops (482) and spirals
#   timerc     timer_c 3: Timer C on a ringing branch, a branch that never answers
#   authcalls  auth_calls yes: 407 for requests out of a dialog from sipd's domain
#   recurse    recurse_3xx yes: the Contacts of a 3xx tried as new branches (main has it off: 3xx relayed)
#   domain     [general] domain = sipd.test (not its address): its own Route and address still name sipd
# Prints one PASS/FAIL line per case (SKIP for what sipd does not do yet); at the end checks that every
# sipd is still alive, exits 0 on SIGTERM and printed no sanitizer report. Exits 1 if anything failed.
# KEEP=1 keeps the work directory (configs, databases, sipd stderr, SIPp message logs) for a look afterwards.
set -u

SIPD=${1:?usage: run_proxy.sh /path/to/sipd}
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"
SCN=$HERE/scenarios
UA=(python3 "$HERE/sipua.py")
SIPCTL=$(dirname "$SIPD")/sipctl

need_tools sipp python3
need_exec "$SIPD"
need_exec "$SIPCTL" "build the sipctl target"
lib_init proxy
SHOW_SKIPPED=1

# ---- ports: 8 for sipd, the rest for SIPp callers and phones ----
pick_ports 9 100 $((40000 + $$ % 10000)) "${UA[@]}"

# ---- sipd instances: start_sipd NAME PORT < [proxy] section and anything else ([general], [auth],
# [database], users from here) ----
SIPD_READY=("${UA[@]}")
SIPD_ROLE=" as a proxy"
SIPD_INI_PRE=$'[auth]\nalgorithms = MD5\n\n'
SIPD_INI_POST=$'[user alice]\npassword = secret\n\n[user bob]\npassword = secret\n\n[user carol]\npassword = secret\n\n'

# ---- one case: phones (SIPp UAS, registered), a caller (SIPp UAC), extra checks ----
# case_begin NAME INSTANCE; uas/pyphone ...; [defer ...]; caller ...; [check ...]; case_end

# render SCENARIO OUT KEY=VALUE...: the template of scenarios/ with @SIPD_PORT@ (first) and every @KEY@ filled in
render() {
	render_template "$SCN/$1" "$2" SIPD_PORT="${SIPD_PORT[$CASE_INST]}" "${@:3}"
}

case_begin() {
	NCASE=$((NCASE + 1))
	CASE_NAME=$1
	CASE_INST=$2
	CASE_LOG=$WORK/case$NCASE
	CASE_WHY=()
	CASE_DIAG=()
	CASE_BG=()
	CASE_BGNAME=()
	CASE_DEFER=()
	NUAS=0
	CALLER_OK=1
	CASE_DEAD=0
	if ! kill -0 "${SIPD_PID[$CASE_INST]}" 2>/dev/null; then
		case_fail "sipd ($CASE_INST) is not running any more"
		CALLER_OK=0
		CASE_DEAD=1
		return 1
	fi
}

case_fail() {
	CASE_WHY+=("$1")
	[ -n "${2:-}" ] && CASE_DIAG+=("$2")
}

# sipp_diag BASE: what a failed SIPp run logged
sipp_diag() {
	{
		grep -v 'Failed to delete FD from epoll' "$1.errors" 2>/dev/null | head -20
		[ -s "$1.errors" ] || tail -5 "$1.out" 2>/dev/null
		echo "--- messages ($(basename "$1")):"
		tail -70 "$1.messages" 2>/dev/null
	}
}

# unbind USER: every binding of USER removed (Contact: *, Expires: 0)
unbind() {
	[ "$CASE_DEAD" = 0 ] || return 1
	"${UA[@]}" register --port "${SIPD_PORT[$CASE_INST]}" --user "$1" --contact '*' --expires 0 \
		2>>"$CASE_LOG.reg" || case_fail "unbind $1: $(tail -1 "$CASE_LOG.reg")"
}

# bind USER CONTACT: a binding for USER that no phone answers at (REGISTER from a throw-away port)
bind() {
	[ "$CASE_DEAD" = 0 ] || return 1
	"${UA[@]}" register --port "${SIPD_PORT[$CASE_INST]}" --user "$1" --contact "$2" --expires 300 \
		2>>"$CASE_LOG.reg" || case_fail "REGISTER $1 with Contact $2: $(tail -1 "$CASE_LOG.reg")"
}

# uas USER Q SCENARIO KEY=VALUE...: a phone on a fresh port: REGISTER USER from that port with Contact
# <sip:callee@127.0.0.1:PORT>;q=Q, then a SIPp UAS with SCENARIO on it (a VALUE may hold @UAS_PORT@).
# UAS_LOG is its log base name, CPORT its port.
uas() {
	local user=$1 q=$2 scn=$3 base
	shift 3
	[ "$CASE_DEAD" = 0 ] || return 1
	client_port
	NUAS=$((NUAS + 1))
	base=$CASE_LOG.uas$NUAS
	UAS_LOG=$base
	if ! "${UA[@]}" register --port "${SIPD_PORT[$CASE_INST]}" --user "$user" --bind "$CPORT" \
		--contact "<sip:callee@127.0.0.1:$CPORT>;q=$q" --expires 300 2>>"$CASE_LOG.reg"; then
		case_fail "REGISTER $user from 127.0.0.1:$CPORT: $(tail -1 "$CASE_LOG.reg")"
		return 1
	fi
	render "$scn" "$base.xml" "$@" UAS_PORT="$CPORT" 2>>"$CASE_LOG.reg" || { case_fail "render $scn"; return 1; }
	(cd "$WORK" && exec timeout 40 sipp -sf "$base.xml" -i 127.0.0.1 -p "$CPORT" -m 1 -nr -nostdin \
		-timeout 20s -timeout_error -trace_err -error_file "$base.errors" \
		-trace_msg -message_file "$base.messages" >"$base.out" 2>&1 </dev/null) &
	CASE_BG+=($!)
	CASE_BGNAME+=("phone $NUAS ($user q=$q, $scn, port $CPORT)|$base")
	BG_PIDS+=($!)
	"${UA[@]}" bound --port "$CPORT" --wait 5 2>>"$CASE_LOG.reg" || case_fail "phone $NUAS: SIPp did not bind $CPORT"
}

# invalid_phone USER Q KEY=VALUE...: uas with uas_invalid.xml; the header lines it does not get as KEYs
# (VIA, FROM, TO, CALLID) are the INVITE's, the To with a tag
invalid_phone() {
	local user=$1 q=$2
	shift 2
	uas "$user" "$q" uas_invalid.xml "$@" VIA='[last_Via:]' FROM='[last_From:]' \
		TO='[last_To:];tag=[pid]x[call_number]' CALLID='[last_Call-ID:]'
}

# tcp_phone USER SCENARIO KEY=VALUE...: a phone registered over UDP (REGISTER USER from a fresh port, Contact
# <sip:callee@127.0.0.1:PORT> without transport=) whose SIPp UAS listens on TCP at that port, while a
# sipua.py sink on its UDP side checks that nothing comes there. UAS_LOG, CPORT as for uas.
tcp_phone() {
	local user=$1 scn=$2 base
	shift 2
	[ "$CASE_DEAD" = 0 ] || return 1
	client_port
	NUAS=$((NUAS + 1))
	base=$CASE_LOG.uas$NUAS
	UAS_LOG=$base
	if ! "${UA[@]}" register --port "${SIPD_PORT[$CASE_INST]}" --user "$user" --bind "$CPORT" \
		--contact "<sip:callee@127.0.0.1:$CPORT>" --expires 300 2>>"$CASE_LOG.reg"; then
		case_fail "REGISTER $user from 127.0.0.1:$CPORT: $(tail -1 "$CASE_LOG.reg")"
		return 1
	fi
	render "$scn" "$base.xml" "$@" UAS_PORT="$CPORT" 2>>"$CASE_LOG.reg" || { case_fail "render $scn"; return 1; }
	(cd "$WORK" && exec timeout 40 sipp -sf "$base.xml" -t t1 -i 127.0.0.1 -p "$CPORT" -m 1 -nr -nostdin \
		-timeout 20s -timeout_error -trace_err -error_file "$base.errors" \
		-trace_msg -message_file "$base.messages" >"$base.out" 2>&1 </dev/null) &
	CASE_BG+=($!)
	CASE_BGNAME+=("phone $NUAS over TCP ($user, $scn, port $CPORT)|$base")
	BG_PIDS+=($!)
	"${UA[@]}" bound --tcp --port "$CPORT" --wait 5 2>>"$CASE_LOG.reg" ||
		case_fail "phone $NUAS: SIPp did not listen on tcp:$CPORT"
	local port=$CPORT
	pybg "the UDP side of phone $NUAS (sipua.py sink, udp:127.0.0.1:$port)" sink --host 127.0.0.1 --port "$port" \
		--seconds 3
	CPORT=$port
}

# pybg LABEL sipua-subcommand args...: sipua.py in the background (a phone, a sink); it touches its ready
# file (first line: its port, left in PY_PORT) once it is listening, and the runner waits for that
pybg() {
	local label=$1 i n
	shift
	[ "$CASE_DEAD" = 0 ] || return 1
	NUAS=$((NUAS + 1))
	n=$CASE_LOG.py$NUAS
	rm -f "$n.ready"
	"${UA[@]}" "$@" --ready "$n.ready" >"$n.out" 2>"$n.py" &
	CASE_BG+=($!)
	CASE_BGNAME+=("$label|$n.py")
	BG_PIDS+=($!)
	for ((i = 0; i < 50; i++)); do
		if [ -s "$n.ready" ]; then
			PY_PORT=$(head -1 "$n.ready")
			return 0
		fi
		kill -0 "${CASE_BG[-1]}" 2>/dev/null || break
		sleep 0.1
	done
	case_fail "$label did not start: $(head -1 "$n.py")"
	return 1
}

# pyphone LABEL sipua-subcommand args...: a phone played by sipua.py (natcallee, phone), registered with sipd
pyphone() {
	local label=$1
	shift
	pybg "$label" "$@" --port "${SIPD_PORT[$CASE_INST]}"
}

# tcpreg_closed: waits (5 s at most) until the last sipua.py tcpreg phone closed its registration connection
tcpreg_closed() {
	local i
	for ((i = 0; i < 50; i++)); do
		[ -s "$CASE_LOG.py$NUAS.ready.closed" ] && break
		sleep 0.1
	done
	sleep 0.3 # sipd reads the close
}

# caller SCENARIO USER KEY=VALUE... [-- sipp options]: the SIPp UAC, in the foreground
caller() {
	local scn=$1 user=$2 rc keys=() base=$CASE_LOG.uac
	shift 2
	[ "$CASE_DEAD" = 0 ] || return 1
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		keys+=("$1")
		shift
	done
	[ "${1:-}" = -- ] && shift
	render "$scn" "$base.xml" "${keys[@]}" 2>>"$CASE_LOG.reg" || { case_fail "render $scn"; CALLER_OK=0; return 1; }
	client_port
	(cd "$WORK" && timeout 60 sipp "127.0.0.1:${SIPD_PORT[$CASE_INST]}" -sf "$base.xml" -s "$user" -m 1 \
		-i 127.0.0.1 -p "$CPORT" -nr -nostdin -timeout 25s -timeout_error \
		-trace_err -error_file "$base.errors" -trace_msg -message_file "$base.messages" "$@" \
		>"$base.out" 2>&1 </dev/null)
	rc=$?
	if [ "$rc" -ne 0 ]; then
		CALLER_OK=0
		case_fail "caller: sipp exit status $rc ($scn)" "$(sipp_diag "$base")"
	fi
}

# check DESCRIPTION sipua-subcommand args...: an extra check over the logs
# shellcheck disable=SC2317 # called through eval by case_end
check() {
	local what=$1 out
	shift
	[ "$CASE_DEAD" = 0 ] || return 1
	if ! out=$("${UA[@]}" "$@" 2>&1); then
		case_fail "$what: ${out#sipua: }"
	fi
}

# defer DESCRIPTION sipua-subcommand args...: a check run by case_end once the phones are done
defer() {
	CASE_DEFER+=("$(printf '%q ' "$@")")
}

# case_end: wait for the phones (3 s grace when the caller already failed, then they are stopped),
# run the deferred checks, then one PASS or FAIL line
case_end() {
	local i pid t rc name base limit
	for i in "${!CASE_BG[@]}"; do
		pid=${CASE_BG[$i]}
		name=${CASE_BGNAME[$i]%%|*}
		base=${CASE_BGNAME[$i]#*|}
		limit=250
		[ "$CALLER_OK" = 1 ] || limit=30
		for ((t = 0; t < limit; t++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			kill -TERM "$pid" 2>/dev/null
			wait "$pid" 2>/dev/null
			if [ "${base##*.}" = py ]; then
				case_fail "$name: still running $((limit / 10)) s after the caller, stopped" "$(cat "$base")"
			else
				case_fail "$name: still running $((limit / 10)) s after the caller, stopped" "$(sipp_diag "$base")"
			fi
			continue
		fi
		wait "$pid"
		rc=$?
		if [ "$rc" -ne 0 ]; then
			if [ "${base##*.}" = py ]; then
				case_fail "$name: $(head -1 "$base" | sed 's/^sipua: //')"
			else
				case_fail "$name: sipp exit status $rc" "$(sipp_diag "$base")"
			fi
		fi
	done
	if [ "$CALLER_OK" = 1 ]; then
		for i in "${CASE_DEFER[@]}"; do
			eval "check $i"
		done
	fi
	if [ "${#CASE_WHY[@]}" -eq 0 ]; then
		pass "$CASE_NAME"
		return 0
	fi
	fail "$CASE_NAME" "$(printf '%s; ' "${CASE_WHY[@]}" | cut -c1-600)"
	{
		for i in "${CASE_DIAG[@]}"; do printf '%s\n' "$i"; done
		echo "--- sipd ($CASE_INST) log, last lines:"
		tail -8 "$WORK/$CASE_INST.err"
	} | sed 's/^/    /' | head -150
	return 1
}

T0=$(date +%s)
PROXY='[proxy]
record_route = yes
'
RX_INVITE_IN='^received\nINVITE '
RX_CANCEL_IN='^received\nCANCEL '

# ==== main: timer_c 180 ====
if start_sipd main "${PORTS[0]}" <<EOF
$PROXY
timer_c = 180
auth_calls = no
outbound = none
EOF
then
	M=127.0.0.1:${SIPD_PORT[main]}

	case_begin "basic call alice -> bob: INVITE/100/180/200/ACK/BYE/200 through sipd; the callee sees sipd's Via, Record-Route, Max-Forwards 69, its Contact as R-URI; the caller sees only its own Via and the Record-Route in the 200" main
	unbind bob
	uas bob 1.0 uas_answer.xml ANSWER_AFTER=200
	BASIC_UAS=$UAS_LOG
	caller uac_call.xml bob
	case_end

	case_begin "the basic call's record: one log line at its BYE with caller, callee, start, answer, end, status 200 and duration" main
	BASIC_CID=$(sed -n 's/^Call-ID: *//p' "$BASIC_UAS.messages" | head -1 | tr -d '\r')
	if [ -z "$BASIC_CID" ]; then
		case_fail "no Call-ID in the callee's messages"
	elif ! grep -F "call: id=$BASIC_CID " "$WORK/main.err" |
		grep -qE ' from=sip:alice@[^ ]* to=sip:bob@[^ ]* start=[0-9]+ answer=[0-9]+ end=[0-9]+ status=200 duration=[0-9]+s$'; then
		case_fail "no complete record line for $BASIC_CID in sipd's log"
	fi
	case_end

	case_begin "one transport (UDP to UDP): one Record-Route of sipd's in the INVITE the callee got, none left in its BYE" main
	check "the callee's Record-Route (basic call)" hdr-check --log "$BASIC_UAS.messages" --msg "$RX_INVITE_IN" \
		--header Record-Route --count 1
	check "the BYE at the callee (basic call)" hdr-check --log "$BASIC_UAS.messages" --msg '^received\nBYE ' \
		--header Route --count 0
	case_end

	case_begin "16.6: a header field sipd does not change is forwarded as it came (the INVITE's Subject in its compact form, s:)" main
	check "the callee's INVITE (basic call)" hdr-check --log "$BASIC_UAS.messages" \
		--msg "$RX_INVITE_IN"'(.|\n)*\ns: proxied as sent\r?\n' --header Subject --count 1
	case_end

	case_begin "RFC 3581 4 / 18.2.1: the caller's Via in the INVITE sipd forwarded carries rport=<source port> (the caller asked with ;rport) and received" main
	check "the callee's view of the caller's Via (basic call)" hdr-check --log "$BASIC_UAS.messages" \
		--msg "$RX_INVITE_IN" --header Via --index 1 --match ';rport=[0-9]+'
	check "the callee's view of the caller's Via (basic call)" hdr-check --log "$BASIC_UAS.messages" \
		--msg "$RX_INVITE_IN" --header Via --index 1 --match ';received=127\.0\.0\.1'
	case_end

	case_begin "busy callee: its 486 Busy Here relayed (one Via), sipd ACKs it hop by hop" main
	unbind bob
	uas bob 1.0 uas_reject.xml CODE=486 REASON="Busy Here" DELAY=0
	caller uac_fail.xml bob DOMAIN="$M" MAXFWD=70 CODE=486 REASON="Busy Here" WAIT=5000
	case_end

	# busy_callee RETRY-AFTER EXPECTED: bob answers 503 with that Retry-After; the caller gets 500 (16.7
	# step 6) with Retry-After: EXPECTED
	busy_callee() {
		unbind bob
		uas bob 1.0 uas_reject.xml CODE=503 REASON=$'Service Unavailable\n      Retry-After: '"$1" DELAY=0
		caller uac_fail.xml bob DOMAIN="$M" MAXFWD=70 CODE=500 REASON="Server Internal Error" WAIT=5000
		check "the 500's Retry-After" hdr-check --log "$CASE_LOG.uac.messages" --msg '^received\nSIP/2\.0 500 ' \
			--header Retry-After --match "^$2\$"
	}

	case_begin "503 with Retry-After: 7 from the callee is relayed as 500 Server Internal Error (16.7 step 6) that keeps the Retry-After (the pause is temporary: the seed's 500 row)" main
	busy_callee 7 7
	case_end

	case_begin "503 with Retry-After: 86400 from the callee: the 500 says Retry-After: 300 ([proxy] retry_after_max: one device does not hold its callers off for a day)" main
	busy_callee '86400 (maintenance)' 300
	case_end

	case_begin "408 from the callee to an INVITE goes up as it came (16.7 step 6), its reason phrase and Retry-After kept, not replaced by sipd's own 408" main
	unbind bob
	uas bob 1.0 uas_reject.xml CODE=408 REASON=$'Gateway T303\n      Retry-After: 60' DELAY=0
	caller uac_fail.xml bob DOMAIN="$M" MAXFWD=70 CODE=408 REASON="Gateway T303" WAIT=5000
	check "the 408's Retry-After" hdr-check --log "$CASE_LOG.uac.messages" --msg '^received\nSIP/2\.0 408 ' \
		--header Retry-After --match '^60$'
	case_end

	case_begin "a user that sipctl disables, then deletes, while its phone is bound: 480, then 404 (sipctl removes its binding with it), and the phone gets nothing" main
	if "$SIPCTL" -d "$WORK/main.db" user add dora --password secret >/dev/null 2>>"$CASE_LOG.reg"; then
		sleep 2.5 # sipd rereads its users every 2 s
		pybg "dora's phone (sipua.py sink, udp:127.0.0.1)" sink --host 127.0.0.1 --port 0 --seconds 9
		bind dora "<sip:dora@127.0.0.1:$PY_PORT>"
		"$SIPCTL" -d "$WORK/main.db" user disable dora >/dev/null 2>>"$CASE_LOG.reg"
		sleep 2.5
		caller uac_fail.xml dora DOMAIN="$M" MAXFWD=70 CODE=480 REASON="No registered contact" WAIT=3000
		"$SIPCTL" -d "$WORK/main.db" user del dora >/dev/null 2>>"$CASE_LOG.reg"
		sleep 2.5
		CASE_LOG=$CASE_LOG.2 caller uac_fail.xml dora DOMAIN="$M" MAXFWD=70 CODE=404 REASON="Not Found" WAIT=3000
	else
		case_fail "sipctl user add dora: $(tail -1 "$CASE_LOG.reg")"
	fi
	case_end

	case_begin "603 with two bindings: one declines after 0.5 s, the ringing one gets a CANCEL matching its INVITE (9.1) and answers 487, the caller gets 603" main
	unbind bob
	uas bob 1.0 uas_ring_cancel.xml CANCEL_WAIT=5000
	defer "the ringing branch's CANCEL" cancel-check --log "$UAS_LOG.messages"
	uas bob 1.0 uas_reject.xml CODE=603 REASON=Decline DELAY=500
	caller uac_fail.xml bob DOMAIN="$M" MAXFWD=70 CODE=603 REASON=Decline WAIT=5000
	case_end

	case_begin "parallel forking: both bindings (equal q) get the INVITE at once; one answers 200 after 1 s, the other gets a matching CANCEL and answers 487; the call goes through" main
	unbind bob
	uas bob 0.8 uas_ring_cancel.xml CANCEL_WAIT=6000
	RINGER=$UAS_LOG
	defer "the losing branch's CANCEL" cancel-check --log "$RINGER.messages"
	uas bob 0.8 uas_answer.xml ANSWER_AFTER=1000
	defer "the losing branch had its INVITE before the winner's 200 (parallel)" order \
		--log-a "$RINGER.messages" --a "$RX_INVITE_IN" --log-b "$UAS_LOG.messages" --b '^sent\nSIP/2\.0 200 '
	caller uac_call.xml bob
	case_end

	case_begin "sequential forking by q: the q=1.0 binding answers 480 after 1 s, only then the q=0.5 binding gets the INVITE and answers 200" main
	unbind bob
	uas bob 0.5 uas_answer.xml ANSWER_AFTER=200
	LOWQ=$UAS_LOG
	uas bob 1.0 uas_reject.xml CODE=480 REASON="Temporarily Unavailable" DELAY=1000
	defer "the q=0.5 binding got its INVITE only after the q=1.0 binding's 480" order \
		--log-a "$UAS_LOG.messages" --a '^sent\nSIP/2\.0 480 ' --log-b "$LOWQ.messages" --b "$RX_INVITE_IN"
	caller uac_call.xml bob
	case_end

	case_begin "CANCEL by the caller: 200 at once, the ringing callee gets a CANCEL matching its INVITE, its 487 is relayed upstream" main
	unbind bob
	uas bob 1.0 uas_ring_cancel.xml CANCEL_WAIT=5000
	defer "the CANCEL sipd sent" cancel-check --log "$UAS_LOG.messages"
	caller uac_cancel.xml bob
	case_end

	case_begin "9.1 / 16.10: the caller CANCELs 0.3 s after its INVITE, before the callee's 180 (sent after 1 s): 200 to the CANCEL at once, but sipd CANCELs the branch only once the 180 came (never before a provisional); the callee's 487 reaches the caller" main
	unbind bob
	pyphone "bob's phone (sipua.py phone --expect cancel: 180 after 1 s)" phone --user bob --expect cancel --delay 1 --seconds 4
	caller uac_cancel_early.xml bob
	case_end

	case_begin "9.1 / 16.10 with a 100 only: the caller CANCELs 0.3 s after its INVITE; the callee sends 100 Trying after 1 s and nothing else: a 100 is a provisional, so sipd CANCELs the branch then (not never), and the callee's 487 reaches the caller" main
	unbind bob
	pyphone "bob's phone (sipua.py phone --expect cancel --trying: 100 after 1 s)" phone --user bob --expect cancel \
		--trying --delay 1 --seconds 4
	caller uac_cancel_early.xml bob
	case_end

	case_begin "Max-Forwards: 0 on an INVITE for a registered user: 483 Too Many Hops; nothing (not the ACK either) reaches the user's phone" main
	unbind bob
	pyphone "bob's phone (sipua.py phone, expects nothing)" phone --user bob --seconds 2 --expect nothing
	caller uac_fail.xml bob DOMAIN="$M" MAXFWD=0 CODE=483 REASON="Too Many Hops" WAIT=3000
	case_end

	case_begin "16.3 step 5: an INVITE for a registered user with Proxy-Require: foo, bar.baz (option tags sipd does not know) gets 420 Bad Extension with Unsupported: foo, bar.baz; nothing (not the ACK either) reaches the user's phone; a MESSAGE whose tag is 600 characters long gets all of it in Unsupported" main
	unbind bob
	pyphone "bob's phone (sipua.py phone, expects nothing)" phone --user bob --seconds 2 --expect nothing
	check "INVITE with Proxy-Require" request --port "${SIPD_PORT[main]}" --method INVITE --ruri "sip:bob@$M" \
		--header "Proxy-Require: foo, bar.baz" --expect 420 --expect-header '^Unsupported: foo, bar\.baz$'
	long_tag=$(printf 'x%.0s' {1..600})
	check "MESSAGE with a 600-character Proxy-Require tag" request --port "${SIPD_PORT[main]}" --method MESSAGE \
		--ruri "sip:bob@$M" --header "Proxy-Require: foo, $long_tag" --expect 420 \
		--expect-header "^Unsupported: foo, x{600}\$"
	case_end

	case_begin "9.2, 16.10: a CANCEL of a MESSAGE bob's phone leaves unanswered gets 200; the MESSAGE is left to finish (no 487 within a second), and no CANCEL reaches the phone (9.1)" main
	unbind bob
	pyphone "bob's phone (sipua.py phone --method MESSAGE, answers nothing)" phone --user bob --seconds 4 \
		--expect invite --method MESSAGE
	check "MESSAGE, then its CANCEL after 1 s" request --port "${SIPD_PORT[main]}" --method MESSAGE \
		--ruri "sip:bob@$M" --cancel-after 1 --expect 200
	case_end

	case_begin "an extension method sipd does not know (30 characters) is forwarded to the registered phone and its 200 comes back; one of 64 characters (more than a client transaction keeps) gets 501 and reaches nobody" main
	unbind bob
	m30=XEXTENSIONMETHODOFTHIRTYLETTER
	m64=$(printf 'Y%.0s' {1..64})
	pyphone "bob's phone (sipua.py phone --method $m30, answers 200)" phone --user bob --seconds 3 --expect invite \
		--method "$m30" --answer 200
	check "$m30" request --port "${SIPD_PORT[main]}" --method "$m30" --ruri "sip:bob@$M" --expect 200
	check "the 64-character method" request --port "${SIPD_PORT[main]}" --method "$m64" --ruri "sip:bob@$M" \
		--expect 501
	case_end

	case_begin "a MESSAGE forked to two phones: one answers 180, the other 200 half a second later; the 200 goes up and the ringing phone gets no CANCEL (9.1: none for a non-INVITE)" main
	unbind bob
	pyphone "bob's first phone (sipua.py phone --method MESSAGE --answer 180)" phone --user bob --seconds 3 \
		--expect invite --method MESSAGE --answer 180
	pyphone "bob's second phone (sipua.py phone --method MESSAGE --answer 200 --delay 0.5)" phone --user bob \
		--seconds 3 --expect invite --method MESSAGE --answer 200 --delay 0.5
	check "MESSAGE to bob" request --port "${SIPD_PORT[main]}" --method MESSAGE --ruri "sip:bob@$M" --expect 200
	case_end

	case_begin "no domain configured: sipd's names and addresses are one domain; bob registered as sip:bob@localhost gets a MESSAGE sent to sip:bob@127.0.0.1" main
	unbind bob
	pyphone "bob's phone (sipua.py phone --domain localhost, answers 200)" phone --user bob --domain localhost \
		--seconds 3 --expect invite --method MESSAGE --answer 200
	check "MESSAGE to sip:bob@$M" request --port "${SIPD_PORT[main]}" --method MESSAGE --ruri "sip:bob@$M" --expect 200
	case_end

	case_begin "no domain configured: bob registered as sip:bob@127.0.0.1 gets a MESSAGE sent to sip:bob@LOCALHOST (sipd's host name, any case)" main
	unbind bob
	pyphone "bob's phone (sipua.py phone, answers 200)" phone --user bob --seconds 3 --expect invite --method MESSAGE \
		--answer 200
	check "MESSAGE to sip:bob@LOCALHOST:${SIPD_PORT[main]}" request --port "${SIPD_PORT[main]}" --method MESSAGE \
		--ruri "sip:bob@LOCALHOST:${SIPD_PORT[main]}" --expect 200
	case_end

	case_begin "a MESSAGE forked to two phones that both answer 200, the second 0.3 s after the first: the caller gets one 200, the second goes nowhere (16.7 step 5: only an INVITE's 2xx follow the first)" main
	unbind bob
	pyphone "bob's first phone (sipua.py phone --method MESSAGE --answer 200)" phone --user bob --seconds 3 \
		--expect invite --method MESSAGE --answer 200
	pyphone "bob's second phone (sipua.py phone --method MESSAGE --answer 200 --delay 0.3)" phone --user bob \
		--seconds 3 --expect invite --method MESSAGE --answer 200 --delay 0.3
	check "MESSAGE to bob, one final" request --port "${SIPD_PORT[main]}" --method MESSAGE --ruri "sip:bob@$M" \
		--expect 200 --one-final 1.5
	case_end

	case_begin "an INFO in a dialog whose Route holds sipd and 16 more hops (more than sipd carries): 500, never forwarded with some of them gone" main
	routes=(--route "<sip:127.0.0.1:${SIPD_PORT[main]};lr>")
	for i in $(seq 16); do routes+=(--route "<sip:192.0.2.$i;lr>"); done
	check "INFO with 17 Route values" request --port "${SIPD_PORT[main]}" --method INFO --ruri "sip:bob@192.0.2.99" \
		--to-tag r17 "${routes[@]}" --expect 500
	case_end

	case_begin "RFC 6665 4.3: a NOTIFY in a dialog (Route: sipd) reaches the phone with sipd's Record-Route, as the SUBSCRIBE had it, so that a NOTIFY that creates the subscriber's dialog keeps sipd on its path" main
	unbind bob
	pyphone "bob's phone (sipua.py catch, wants a Record-Route)" catch --user bob --seconds 4 \
		--want-header "^Record-Route: <sip:127\\.0\\.0\\.1:${SIPD_PORT[main]};[^>]*lr" &&
		check "NOTIFY with Route: sipd" request --port "${SIPD_PORT[main]}" --method NOTIFY \
			--ruri "sip:callee@127.0.0.1:$PY_PORT" --route "<sip:127.0.0.1:${SIPD_PORT[main]};lr;sg=@SG@>" \
			--sign-db "$WORK/main.db" --to-tag nt1 \
			--header "Event: presence" --header "Subscription-State: active;expires=60" --expect 200
	CALLER_OK=$((${#CASE_WHY[@]} == 0))
	case_end

	case_begin "a user with an extension (sipctl user add erin -e 1005) is called by either name whichever it registered as: a phone registered as erin gets a MESSAGE to sip:1005@, one registered as 1005 a MESSAGE to sip:erin@" main
	if "$SIPCTL" -d "$WORK/main.db" user add erin --password secret -e 1005 >/dev/null 2>>"$CASE_LOG.reg"; then
		sleep 2.5 # sipd rereads its users every 2 s
		pyphone "erin's phone (registered as erin)" phone --user erin --seconds 3 --expect invite --method MESSAGE \
			--answer 200
		check "MESSAGE to sip:1005@" request --port "${SIPD_PORT[main]}" --method MESSAGE --ruri "sip:1005@$M" --expect 200
		unbind erin
		pyphone "erin's phone (registered as 1005)" phone --user 1005 --auth-user erin --seconds 3 --expect invite \
			--method MESSAGE --answer 200
		check "MESSAGE to sip:erin@" request --port "${SIPD_PORT[main]}" --method MESSAGE --ruri "sip:erin@$M" --expect 200
	else
		case_fail "sipctl user add erin: $(tail -1 "$CASE_LOG.reg")"
	fi
	case_end

	case_begin "16.6 step 3: a MESSAGE without Max-Forwards is forwarded with Max-Forwards: 70; the phone's 200 comes back" main
	unbind bob
	pyphone "bob's phone (sipua.py catch)" catch --user bob --want-header '^Max-Forwards: 70$'
	check "MESSAGE without Max-Forwards" request --port "${SIPD_PORT[main]}" --method MESSAGE --ruri "sip:bob@$M" \
		--no-max-forwards --expect 200
	case_end

	case_begin "16.6 step 2: a Contact registered with ;method=INVITE?Subject=hi becomes a Request-URI without them (19.1.1: neither is allowed there)" main
	unbind bob
	pyphone "bob's phone (sipua.py catch --contact-suffix)" catch --user bob --contact-suffix ';method=INVITE?Subject=hi'
	check "MESSAGE to bob" request --port "${SIPD_PORT[main]}" --method MESSAGE --ruri "sip:bob@$M" --expect 200
	case_end

	case_begin "RFC 4320 4.1: a MESSAGE whose phone answers 200 only after 5 s gets sipd's 100 Trying when the caller's Timer E reaches T2 (3.5 s), none before, then the 200; one answered at once gets no 100 at all" main
	unbind bob
	pyphone "bob's phone (sipua.py phone, 200 to the MESSAGE after 5 s)" phone --user bob --seconds 8 \
		--expect invite --method MESSAGE --answer 200 --delay 5
	check "MESSAGE for bob, answered after 5 s" request --port "${SIPD_PORT[main]}" --method MESSAGE \
		--ruri "sip:bob@$M" --expect 200 --trying 3.3:4.3
	unbind bob
	pyphone "bob's phone (sipua.py phone, 200 to the MESSAGE at once)" phone --user bob --seconds 2 \
		--expect invite --method MESSAGE --answer 200
	check "MESSAGE for bob, answered at once" request --port "${SIPD_PORT[main]}" --method MESSAGE \
		--ruri "sip:bob@$M" --expect 200 --trying none
	case_end

	case_begin "RFC 4320 4.1: a MESSAGE whose only phone answers 408 Request Timeout gets no response from sipd (no 408 to a non-INVITE, relayed or not) within 4 s, and sipd logs that the transaction ended unanswered" main
	unbind bob
		pyphone "bob's phone (sipua.py phone, 408 to the MESSAGE)" phone --user bob --seconds 4 \
		--expect invite --method MESSAGE --answer 408
	check "MESSAGE for bob, answered 408 downstream" request --port "${SIPD_PORT[main]}" --method MESSAGE \
		--ruri "sip:bob@$M" --expect 0 --wait 4
	grep -q 'no branch answered the MESSAGE but with a timeout; its transaction ends without a response' \
		"$WORK/main.err" || case_fail "sipd's log does not say the MESSAGE ended unanswered"
	case_end

	case_begin "RFC 3327 5.3: bob registered through an edge proxy (Path: <sip:127.0.0.1:<edge>;lr>, Supported: path, a Contact at a port nobody listens on): a MESSAGE for bob goes to the edge with Route: <sip:127.0.0.1:<edge>;lr> and the Contact as Request-URI; the edge's 200 comes back" main
	unbind bob
	pyphone "bob's edge proxy (sipua.py catch --path)" catch --user bob --path
	check "MESSAGE for bob" request --port "${SIPD_PORT[main]}" --method MESSAGE --ruri "sip:bob@$M" --expect 200
	case_end

	case_begin "unknown user: 404 Not Found" main
	caller uac_fail.xml nobody DOMAIN="$M" MAXFWD=70 CODE=404 REASON="Not Found" WAIT=3000
	case_end

	# nothing listens on CPORT: the kernel answers the INVITE with ICMP port unreachable
	case_begin "a binding at a closed UDP port: the ICMP port unreachable is the branch's 503 at once (8.1.3.1, not Timer B's 32 s), relayed as 500 (16.7 step 6) within 3 s" main
	unbind bob
	client_port
	bind bob "<sip:bob@127.0.0.1:$CPORT>"
	caller uac_fail.xml bob DOMAIN="$M" MAXFWD=70 CODE=500 REASON="[^[:cntrl:]]*" WAIT=3000
	case_end

	case_begin "sequential forking past a dead phone: the q=1.0 binding's port is closed (ICMP), the q=0.5 phone gets the INVITE at once and answers 486" main
	unbind bob
	client_port
	bind bob "<sip:bob@127.0.0.1:$CPORT>;q=1.0"
	uas bob 0.5 uas_reject.xml CODE=486 REASON="Busy Here" DELAY=0
	caller uac_fail.xml bob DOMAIN="$M" MAXFWD=70 CODE=486 REASON="Busy Here" WAIT=3000
	case_end

	# 17.1.4 / 8.1.3.1: a TCP connection that goes away before any answer is a transport error at once,
	# whether the peer closes it (FIN) or resets it (RST)
	for how in close reset; do
		case_begin "a phone registered with ;transport=tcp takes sipd's TCP connection, reads the INVITE and ${how}s the connection without answering: the branch's 503 at once (8.1.3.1, 17.1.4; not Timer B's 32 s), relayed as 500 (16.7 step 6) within 3 s of the INVITE; nothing more reaches the phone" main
		unbind bob
		flag=()
		[ "$how" = reset ] && flag=(--reset)
		pyphone "bob's phone (sipua.py tcpdrop${flag[*]:+ ${flag[*]}})" tcpdrop --user bob "${flag[@]}" --seconds 3
		defer "the caller's 500 within 3 s of its INVITE" gap --log "$CASE_LOG.uac.messages" \
			--first '^sent\nINVITE ' --then '^received\nSIP/2\.0 500 ' --max 3
		caller uac_fail.xml bob DOMAIN="$M" MAXFWD=70 CODE=500 REASON="Server Internal Error" WAIT=3000
		case_end
	done

	# RFC 5626 5.3's flow without the extension: a phone behind TCP is reached over its registration
	# connection (few TCP phones listen, and a NAT lets no connection in); once that is gone, by its Contact
	case_begin "a phone registered over TCP (Contact without transport=, listening for no connection) gets the INVITE on its registration connection (sipd's Via TCP, a flow token in its Record-Route) and answers; the dialog's ACK and BYE, sent to its Contact through sipd, come on that connection too; after it closed the connection, the next INVITE goes to its Contact over UDP" main
	unbind bob
	if pyphone "bob's phone (sipua.py tcpreg)" tcpreg --user bob --seconds 8; then
		caller uac_call.xml bob
		tcpreg_closed
		caller uac_fail.xml bob DOMAIN="$M" MAXFWD=70 CODE=486 REASON="Busy Here" WAIT=3000
	fi
	case_end

	# the reason phrase is free (RFC 3261 7.2, 21); only the code is checked
	case_begin "known user, registered then removed (carol): 480" main
	client_port
	for exp in 300 0; do
		"${UA[@]}" register --port "${SIPD_PORT[main]}" --user carol --contact "<sip:callee@127.0.0.1:$CPORT>" \
			--expires $exp 2>>"$CASE_LOG.reg" || case_fail "REGISTER carol Expires $exp: $(tail -1 "$CASE_LOG.reg")"
	done
	caller uac_fail.xml carol DOMAIN="$M" MAXFWD=70 CODE=480 REASON="[^[:cntrl:]]*" WAIT=3000
	case_end

	case_begin "Request-URI in a domain sipd does not serve (sip:bob@example.com): 403, no DNS" main
	caller uac_fail.xml bob DOMAIN=example.com MAXFWD=70 CODE=403 REASON="[^[:cntrl:]]*" WAIT=3000
	case_end

	case_begin "Request-URI in another domain (sip:bob@127.0.0.2:<port>): 403, and neither the INVITE nor the ACK for that 403 is relayed to 127.0.0.2" main
	client_port
	pybg "udp:127.0.0.2:$CPORT (sipua.py sink)" sink --host 127.0.0.2 --port "$CPORT" --seconds 2
	caller uac_fail.xml bob DOMAIN="127.0.0.2:$CPORT" MAXFWD=70 CODE=403 REASON="[^[:cntrl:]]*" WAIT=3000
	case_end

	case_begin "401 and 407 of two branches merged (16.7 step 7): one phone answers 407 (realm phone-a), the other 401 (realm phone-b) 0.3 s later; the caller's 401/407 carries both challenges" main
	unbind bob
	pyphone "phone a (407 realm phone-a)" phone --user bob --answer 407 --realm phone-a --seconds 4
	pyphone "phone b (401 realm phone-b)" phone --user bob --answer 401 --realm phone-b --delay 0.3 --seconds 4
	caller uac_challenges.xml bob
	case_end

	case_begin "486 then 407 from two branches: the 407 goes up (16.7 step 6 prefers 401, 407, 415, 420, 484 within 4xx)" main
	unbind bob
	pyphone "phone a (486)" phone --user bob --answer 486 --seconds 4
	pyphone "phone b (407 realm phone-b)" phone --user bob --answer 407 --realm phone-b --delay 0.3 --seconds 4
	caller uac_fail.xml bob DOMAIN="$M" MAXFWD=70 CODE=407 REASON="[^[:cntrl:]]*" WAIT=3000
	case_end

	case_begin "a strict router upstream (16.4): BYE with Request-URI sip:127.0.0.1:<sipd>;lr (sipd's Record-Route) and Route: <the phone's Contact>: sipd takes the Request-URI from the last Route, the phone gets the BYE" main
	unbind bob
	pyphone "bob's phone (sipua.py phone, expects the BYE)" phone --user bob --expect bye --seconds 3 &&
		check "BYE via a strict router" request --port "${SIPD_PORT[main]}" --method BYE \
			--ruri "sip:127.0.0.1:${SIPD_PORT[main]};lr;sg=@SG@" --route "<sip:callee@127.0.0.1:$PY_PORT>" \
			--sign-db "$WORK/main.db" --to-tag strict1 \
			--expect 200
	CALLER_OK=$((${#CASE_WHY[@]} == 0))
	case_end

	case_begin "a strict router downstream (16.6 step 6): BYE with Route: <sip:sipd;lr>, <sip:127.0.0.1:<peer>> (no lr) and Request-URI sip:dave@127.0.0.2:9: the peer gets Request-URI sip:127.0.0.1:<peer> and the old Request-URI as its last Route" main
	pybg "the strict router (sipua.py strictpeer)" strictpeer --want-route '<sip:dave@127.0.0.2:9>' &&
		check "BYE toward a strict router" request --port "${SIPD_PORT[main]}" --method BYE \
			--ruri "sip:dave@127.0.0.2:9" --route "<sip:127.0.0.1:${SIPD_PORT[main]};lr;sg=@SG@>, <sip:127.0.0.1:$PY_PORT>" \
			--sign-db "$WORK/main.db" --to-tag strict2 --expect 200
	CALLER_OK=$((${#CASE_WHY[@]} == 0))
	case_end

	case_begin "no open relay in dialogs: requests with a To tag whose Route names sipd without its Record-Route signature (none, or another dialog's), a strict router's Request-URI naming sipd without one, or a Route naming another host first: 403 Relaying denied, and the phone behind the Request-URI gets none of them" main
	unbind bob
	pyphone "bob's phone (sipua.py phone, expects nothing)" phone --user bob --seconds 4 --expect nothing &&
		check "BYE, Route: <sip:sipd;lr>" request --port "${SIPD_PORT[main]}" --method BYE \
			--ruri "sip:callee@127.0.0.1:$PY_PORT" --route "<sip:127.0.0.1:${SIPD_PORT[main]};lr>" --to-tag ur1 \
			--expect 403 --expect-header '^SIP/2\.0 403 Relaying denied: not a dialog of this proxy$' &&
		check "INVITE, another dialog's signature" request --port "${SIPD_PORT[main]}" --method INVITE \
			--ruri "sip:callee@127.0.0.1:$PY_PORT" --route "<sip:127.0.0.1:${SIPD_PORT[main]};lr;sg=c139446419b3d091>" \
			--to-tag ur2 --expect 403 &&
		check "MESSAGE, a signature one digit off" request --port "${SIPD_PORT[main]}" --method MESSAGE \
			--ruri "sip:callee@127.0.0.1:$PY_PORT" --route "<sip:127.0.0.1:${SIPD_PORT[main]};lr;sg=@SG@0>" \
			--sign-db "$WORK/main.db" --to-tag ur3 --expect 403 &&
		check "BYE, strict router, unsigned Request-URI" request --port "${SIPD_PORT[main]}" --method BYE \
			--ruri "sip:127.0.0.1:${SIPD_PORT[main]};lr" --route "<sip:callee@127.0.0.1:$PY_PORT>" --to-tag ur4 \
			--expect 403 &&
		check "INVITE, a Route naming another host first" request --port "${SIPD_PORT[main]}" --method INVITE \
			--ruri "sip:callee@127.0.0.1:$PY_PORT" --route "<sip:127.0.0.1:$PY_PORT;lr>" --to-tag ur5 \
			--expect 403 --expect-header '^SIP/2\.0 403 Relaying denied$'
	case_end

	case_begin "no relay for a party to a dialog: mallory (another domain, no credentials) calls bob through sipd; the 200 carries sipd's Record-Route signed for the caller (16.7 step 4: not the callee's signature); with the call's own route set, mallory's in-dialog INVITE to +1900 at 127.0.0.2 and bob's BYE there get 403, nothing reaches 127.0.0.2, and mallory's BYE to bob's Contact reaches bob; a Route signed for the dialog toward another peer gets 403 too" main
	unbind bob
	pybg "the would-be trunk (sipua.py sink, udp:127.0.0.2)" sink --host 127.0.0.2 --port 0 --seconds 5 &&
		check "mallory calls bob, then reuses the call's route set" reuse --port "${SIPD_PORT[main]}" \
			--target "sip:+19005551234@127.0.0.2:$PY_PORT" &&
		check "BYE, signed for its dialog toward another peer" request --port "${SIPD_PORT[main]}" --method BYE \
			--ruri "sip:callee@127.0.0.1:$PY_PORT" --route "<sip:127.0.0.1:${SIPD_PORT[main]};lr;sg=@SG@>" \
			--sign-db "$WORK/main.db" --sign-pin "sip:127.0.0.1:9" --to-tag rp1 --expect 403 \
			--expect-header '^SIP/2\.0 403 Relaying denied: not a dialog of this proxy$'
	case_end

	case_begin "RFC 3261 12.2, a target refresh through sipd: mallory calls bob, then re-INVITEs from a new port with a Contact naming it; bob's BYE to that Contact, with the route set signed toward mallory's first Contact, reaches mallory there (200). A re-INVITE before it whose Contact names 127.0.0.2 (not where it came from) is relayed but not followed: bob's INFO there gets 403, nothing reaches 127.0.0.2" main
	unbind bob
	pybg "the would-be trunk (sipua.py sink, udp:127.0.0.2)" sink --host 127.0.0.2 --port 0 --seconds 5 &&
		check "mallory calls bob, moves, bob hangs up" moved --port "${SIPD_PORT[main]}" \
			--target "sip:x@127.0.0.2:$PY_PORT"
	case_end

	case_begin "no open relay through a strict router's form: out of a dialog, INVITE sip:<sipd> (no user) from a stranger with Route: <sip:+19005551234@127.0.0.2:<port>> gets 403 Relaying denied, unsigned or with sipd's signature in the Request-URI (strict routing is for dialogs); nothing reaches 127.0.0.2 (sipd relayed it there for anyone)" main
	pybg "the would-be trunk (sipua.py sink, udp:127.0.0.2)" sink --port 0 --seconds 3 &&
		check "INVITE sip:sipd, Route: the trunk" request --port "${SIPD_PORT[main]}" --method INVITE \
			--ruri "sip:127.0.0.1:${SIPD_PORT[main]}" --route "<sip:+19005551234@127.0.0.2:$PY_PORT>" \
			--expect 403 --expect-header '^SIP/2\.0 403 Relaying denied$' &&
		check "the same, signed" request --port "${SIPD_PORT[main]}" --method INVITE \
			--ruri "sip:127.0.0.1:${SIPD_PORT[main]};lr;sg=@SG@" --sign-db "$WORK/main.db" \
			--route "<sip:+19005551234@127.0.0.2:$PY_PORT>" --expect 403
	CALLER_OK=$((${#CASE_WHY[@]} == 0))
	case_end

	case_begin "a phone with an outbound proxy puts <sip:sipd;lr> above its dialog's route set (<sip:sipd;lr;sg=...>): the BYE goes through sipd twice and reaches the callee" main
	unbind bob
	pyphone "bob's phone (sipua.py phone, expects the BYE)" phone --user bob --expect bye --seconds 3 &&
		check "BYE, unsigned Route over the signed one" request --port "${SIPD_PORT[main]}" --method BYE \
			--ruri "sip:callee@127.0.0.1:$PY_PORT" \
			--route "<sip:127.0.0.1:${SIPD_PORT[main]};lr>, <sip:127.0.0.1:${SIPD_PORT[main]};lr;sg=@SG@>" \
			--sign-db "$WORK/main.db" --to-tag ob1 --expect 200
	CALLER_OK=$((${#CASE_WHY[@]} == 0))
	case_end

	case_begin "TCP caller to a UDP callee: the whole call (INVITE to BYE) through sipd, transports converted; sipd Record-Routes twice (RFC 5658: the callee's side <sip:sipd;lr> on top, the caller's <sip:sipd;transport=tcp;lr> under it) and takes both Routes off the BYE" main
	unbind bob
	uas bob 1.0 uas_answer.xml ANSWER_AFTER=200
	caller uac_call.xml bob -- -t t1
	check "the callee's Record-Route (TCP caller)" hdr-check --log "$UAS_LOG.messages" --msg "$RX_INVITE_IN" \
		--header Record-Route --count 2
	check "the callee's Record-Route (TCP caller)" hdr-check --log "$UAS_LOG.messages" --msg "$RX_INVITE_IN" \
		--header Record-Route --index 0 --match "^<sip:$M;lr;sg=[0-9a-f]{16}>\$"
	check "the callee's Record-Route (TCP caller)" hdr-check --log "$UAS_LOG.messages" --msg "$RX_INVITE_IN" \
		--header Record-Route --index 1 --match "^<sip:$M;transport=tcp;lr;sg=[0-9a-f]{16}>\$"
	check "the BYE at the callee (TCP caller)" hdr-check --log "$UAS_LOG.messages" --msg '^received\nBYE ' \
		--header Route --count 0
	case_end

	case_begin "callee behind a NAT: registered from 127.0.0.1:<port> with Contact sip:bob@10.0.0.99:5060; the INVITE (R-URI = that Contact) reaches 127.0.0.1:<port>, the call completes" main
	unbind bob
	pyphone "NAT callee (sipua.py natcallee, Contact sip:bob@10.0.0.99:5060)" natcallee --user bob \
		--contact sip:bob@10.0.0.99:5060 --timeout 10 && caller uac_call.xml bob
	case_end

	# 16.3 step 4 / 16.6 step 8: sipd's branch carries a hash of what routes the request (Request-URI, From and
	# To tags, Call-ID, CSeq, Route, Proxy-Require, Proxy-Authorization); a request that comes back with one of
	# sipd's Vias carrying the same hash has looped
	case_begin "482 Loop Detected: bob's only binding is sipd itself with the same Request-URI (Contact <sip:bob@127.0.0.1:<sipd>>); the forwarded INVITE comes back unchanged, sipd answers it 482, and the caller gets 482 (not 483 after 70 rounds)" main
	unbind bob
	bind bob "<sip:bob@$M>"
	caller uac_fail.xml bob DOMAIN="$M" MAXFWD=70 CODE=482 REASON="Loop Detected" WAIT=5000
	case_end

	case_begin "spiral, not loop: bob's binding is <sip:carol@127.0.0.1:<sipd>>; the INVITE comes back to sipd with another Request-URI, is forwarded again to carol's phone (two Vias and two Record-Routes of sipd's, Max-Forwards 68), the call completes through both passes" main
	unbind bob
	unbind carol
	bind bob "<sip:carol@$M>"
	uas carol 1.0 uas_spiral.xml ANSWER_AFTER=200
	caller uac_call.xml bob
	unbind bob
	case_end

	# 16.7 / 21.5.3: a final answer that is no valid response to the request sent is the branch's 502
	# (docs/architecture.md lists what counts as invalid); the caller gets 502 Bad Gateway when that is
	# the best answer
	case_begin "502 Bad Gateway: the callee answers 200 without a To tag (no dialog can be formed; 8.2.6.2); sipd ACKs it hop by hop, the caller gets 502" main
	unbind bob
	invalid_phone bob 1.0 STATUS="200 OK" TO='[last_To:]'
	caller uac_fail.xml bob DOMAIN="$M" MAXFWD=70 CODE=502 REASON="Bad Gateway" WAIT=5000
	case_end

	# sipua.py, not SIPp: SIPp 3.6 will not send a status code outside 100-699
	case_begin "502 Bad Gateway: the callee answers with status code 700 (outside 100-699, RFC 3261 7.2, 21); sipd ACKs it, the caller gets 502" main
	unbind bob
	pyphone "bob's phone (sipua.py phone, answers 700)" phone --user bob --seconds 4 --expect invite --answer 700
	caller uac_fail.xml bob DOMAIN="$M" MAXFWD=70 CODE=502 REASON="Bad Gateway" WAIT=5000
	case_end

	case_begin "502 Bad Gateway: the callee's 486 has a BEL in its reason phrase (no CTL outside a quoted-pair, RFC 3261 25.1); sipd does not relay it, ACKs it, the caller gets 502" main
	unbind bob
	pyphone "bob's phone (sipua.py phone, answers 486 with a BEL in the reason)" phone --user bob --seconds 4 --expect invite --answer 486 --reason 'Busy\x07Here'
	caller uac_fail.xml bob DOMAIN="$M" MAXFWD=70 CODE=502 REASON="Bad Gateway" WAIT=5000
	case_end

	case_begin "502 Bad Gateway: the callee's 486 carries another Call-ID than the INVITE (its branch and CSeq match); sipd ACKs it, the caller gets 502, not the 486" main
	unbind bob
	invalid_phone bob 1.0 STATUS="486 Busy Here" CALLID="Call-ID: someone-else@127.0.0.1"
	caller uac_fail.xml bob DOMAIN="$M" MAXFWD=70 CODE=502 REASON="Bad Gateway" WAIT=5000
	case_end

	case_begin "502 Bad Gateway: the callee's 486 has a garbled From (no URI); sipd ACKs it, the caller gets 502" main
	unbind bob
	invalid_phone bob 1.0 STATUS="486 Busy Here" FROM="From: garbled <<"
	caller uac_fail.xml bob DOMAIN="$M" MAXFWD=70 CODE=502 REASON="Bad Gateway" WAIT=5000
	case_end

	case_begin "502 Bad Gateway: the callee's 486 keeps only sipd's Via (the caller's is gone, nowhere to send it on; 16.7 step 3); sipd ACKs it, the caller gets 502" main
	unbind bob
	invalid_phone bob 1.0 STATUS="486 Busy Here" VIA='Via:[$via1]'
	caller uac_fail.xml bob DOMAIN="$M" MAXFWD=70 CODE=502 REASON="Bad Gateway" WAIT=5000
	case_end

	case_begin "an invalid answer is only the best when nothing better came: one binding answers 700 at once, the other 486 after 0.5 s; the caller gets the 486 (4xx beats the 502 of the broken branch, 16.7 step 6)" main
	unbind bob
	pyphone "bob's phone (sipua.py phone, answers 700)" phone --user bob --seconds 4 --expect invite --answer 700
	uas bob 1.0 uas_reject.xml CODE=486 REASON="Busy Here" DELAY=500
	caller uac_fail.xml bob DOMAIN="$M" MAXFWD=70 CODE=486 REASON="Busy Here" WAIT=5000
	case_end

	# 18.1.1: over 1300 bytes (MTU 1500 - 200) and a next hop that names no transport: TCP; if TCP is refused, UDP
	case_begin "18.1.1: an INVITE of over 1300 bytes for a phone registered over UDP (Contact without transport=) goes over TCP: the phone's TCP side gets it whole (sipd's Via says TCP) and answers 486, ACKed over TCP; its UDP side gets nothing; the caller gets the 486" main
	unbind bob
	tcp_phone bob uas_big.xml TRANSPORT=TCP
	caller uac_big.xml bob CODE=486 REASON="Busy Here" WAIT=5000
	case_end

	case_begin "18.1.1: the same large INVITE for a phone that takes no TCP (the connection is refused): sipd sends it over UDP after all (its Via says UDP), the phone's 486 comes back to the caller" main
	unbind bob
	uas bob 1.0 uas_big.xml TRANSPORT=UDP
	caller uac_big.xml bob CODE=486 REASON="Busy Here" WAIT=5000
	case_end

	# 16.11 / 18.1.1: the ACK of a 2xx goes without a transaction, and the size rule holds for it too
	case_begin "18.1.1 for the stateless ACK (16.11): bob's phone (registered over UDP, Contact without transport=) answers 200; the caller's ACK carries an SDP answer of over 1300 bytes and sipd forwards it over TCP to that Contact (sipd's Via says TCP, the body whole); nothing but the INVITE and the BYE comes over UDP, and the BYE's 200 comes back" main
	unbind bob
	check "sipua.py bigack" bigack --port "${SIPD_PORT[main]}" --user bob
	CALLER_OK=$((${#CASE_WHY[@]} == 0))
	case_end

	case_begin "17.2.2: the caller's BYE sent again after its 200 (same branch) gets the same 200, byte for byte, from sipd's transaction (kept as its echo); the callee sees one BYE" main
	unbind bob
	check "sipua.py byeretx" byeretx --port "${SIPD_PORT[main]}" --user bob
	case_end

	case_begin "16.11: the caller's ACK for the 2xx sent twice (a retransmission) reaches the phone twice with the same branch in sipd's Via; the BYE with another" main
	unbind bob
	check "sipua.py ackretx" ackretx --port "${SIPD_PORT[main]}" --user bob
	case_end

	case_begin "16.10 whatever worker takes the CANCEL: 8 calls, each CANCEL sent from another source port than its INVITE (sipd's SO_REUSEPORT sockets give it to either worker): each gets 200, each ringing branch gets a CANCEL within 1.5 s, the caller the 487" main
	unbind bob
	check "sipua.py cancelport" cancelport --port "${SIPD_PORT[main]}" --user bob --rounds 8
	case_end

	case_begin "RFC 6026 7.1: the caller's INVITE sent again after sipd passed on the callee's 200 (same branch, as when Timer A fires before the 200 arrives) is absorbed by sipd's Accepted INVITE transaction: the callee sees one INVITE, the caller no answer to it; a CANCEL that crossed the 200 gets 200 (9.2: it matches that transaction) and reaches nobody; ACK and BYE still go through" main
	unbind bob
	check "sipua.py inviteretx" inviteretx --port "${SIPD_PORT[main]}" --user bob
	case_end

	case_begin "16.7 step 5: bob's two phones (equal q) both answer the forked INVITE 200 at once: both 200s reach the caller, each with its phone's To tag (the second although the first ended the search: the Accepted transaction, RFC 6026, keeps the context while a branch is pending); the ACK of each and a BYE for the second reach their phones" main
	unbind bob
	check "sipua.py fork200" fork200 --port "${SIPD_PORT[main]}" --user bob
	unbind bob
	case_end

	case_begin "RFC 6026 8.4: bob's phone sends its 200 again before the caller's ACK, then a 200 with another To tag on the same branch (a fork behind it): sipd's client transaction, Accepted, passes both on by the caller's Via (status line first, sipd's Via gone, body whole); a 486 and a 180 on that branch after them are dropped; ACK and BYE go through" main
	unbind bob
	check "sipua.py answered2xx" answered2xx --port "${SIPD_PORT[main]}" --user bob
	case_end

	case_begin "18.2.2 for the 200s of that call when the caller's Via is 192.0.2.9:<port>;maddr=127.0.0.1 (no rport): the first (by the server transaction) and those passed on by the client transaction all reach the maddr at the sent-by port, none the sender" main
	unbind bob
	check "sipua.py answered2xx --maddr" answered2xx --port "${SIPD_PORT[main]}" --user bob --maddr
	case_end

	case_begin "RFC 6026 7.3: a transaction-stateful proxy forwards no response that matches no client transaction: a 200, a 486 or a 180 to an INVITE (CRLFs before its status line, 7.5), a 100; a 200 or 486 to an OPTIONS, a 200 to a MESSAGE, a 180 to an OPTIONS (RFC 4320 4.2)" main
	for st in 200 486 180 100; do
		check "sipua.py strayresp --status $st --method INVITE" strayresp --port "${SIPD_PORT[main]}" \
			--status "$st" --method INVITE
	done
	check "sipua.py strayresp (200 to OPTIONS)" strayresp --port "${SIPD_PORT[main]}"
	check "sipua.py strayresp --status 486" strayresp --port "${SIPD_PORT[main]}" --status 486
	check "sipua.py strayresp --method MESSAGE" strayresp --port "${SIPD_PORT[main]}" --method MESSAGE
	check "sipua.py strayresp --status 180" strayresp --port "${SIPD_PORT[main]}" --status 180
	case_end

	case_begin "recurse_3xx = no (the default): bob's phone answers 302 Moved Temporarily with Contact <sip:callee@127.0.0.1:<carol's phone>>; sipd ACKs it and relays it with that Contact (16.7 step 4 not taken), carol's phone gets nothing" main
	unbind bob
	unbind carol
	pyphone "carol's phone (sipua.py phone, expects nothing)" phone --user carol --seconds 3 --expect nothing &&
		uas bob 1.0 uas_redirect.xml CODE=302 REASON="Moved Temporarily" CONTACT="<sip:callee@127.0.0.1:$PY_PORT>"
	caller uac_redirect.xml bob DOMAIN="$M" CODE=302 REASON="Moved Temporarily" WAIT=5000 \
		CONTACT_RE="&lt;sip:callee@127\.0\.0\.1:$PY_PORT&gt;"
	case_end
fi

# ==== timerc: timer_c 3, and TCP connections idle for 1 s closed ====
if start_sipd timerc "${PORTS[1]}" <<EOF
$PROXY
timer_c = 3
auth_calls = no

[limits]
tcp_idle_timeout = 1

[sip]
t1 = 100
EOF
then
	case_begin "tcp_idle_timeout = 1: a phone registered over TCP (Expires 300) stays silent for 3 s; its connection is still open (the registration keeps it, as Kamailio's tcp_persistent_flag) and a call reaches it on that connection, ACK and BYE too" timerc
	unbind bob
	if pyphone "bob's phone (sipua.py tcpreg --idle 3)" tcpreg --user bob --seconds 8 --idle 3; then
		caller uac_call.xml bob
		tcpreg_closed
		caller uac_fail.xml bob DOMAIN="127.0.0.1:${SIPD_PORT[timerc]}" MAXFWD=70 CODE=486 REASON="Busy Here" \
			WAIT=3000
	fi
	case_end

	case_begin "tcp_idle_timeout = 1: a phone that un-REGISTERs over TCP (Expires 0 on the connection it registered over) no longer keeps it: sipd closes it at the idle timeout, while another user's registration keeps its own" timerc
	unbind bob
	unbind carol
	check "tcpunreg" tcpunreg --port "${SIPD_PORT[timerc]}" --user bob --keep-user carol --seconds 4
	unbind carol
	case_end

	case_begin "tcp_idle_timeout = 1: a phone registered over TCP that un-REGISTERs over UDP, or over a new TCP connection, no longer keeps its registration connection either: sipd closes it at the idle timeout, another user's stays" timerc
	unbind bob
	unbind carol
	check "tcpunreg over UDP" tcpunreg --port "${SIPD_PORT[timerc]}" --user bob --keep-user carol --seconds 4 --over udp
	unbind bob
	unbind carol
	check "tcpunreg over a new connection" tcpunreg --port "${SIPD_PORT[timerc]}" --user bob --keep-user carol --seconds 4 --over tcp
	unbind bob
	unbind carol
	case_end

	case_begin "tcp_idle_timeout = 1: a phone registered over TCP whose registration sipctl unregister removes no longer keeps its connection: sipd closes it within a second of the removal and the idle timeout; another user's stays" timerc
	unbind bob
	unbind carol
	check "tcpunreg by sipctl" tcpunreg --port "${SIPD_PORT[timerc]}" --user bob --keep-user carol --seconds 4 \
		--over sipctl --sipctl "$SIPCTL" --db "$WORK/timerc.db"
	unbind carol
	case_end

	case_begin "tcp_idle_timeout = 1: a caller over TCP whose callee answers 486 only after 2.5 s gets it on its connection (18.2.2); the idle timeout does not close a connection whose INVITE is unanswered" timerc
	unbind bob
	uas bob 1.0 uas_reject.xml CODE=486 REASON="Busy Here" DELAY=2500
	caller uac_fail.xml bob DOMAIN="127.0.0.1:${SIPD_PORT[timerc]}" MAXFWD=70 CODE=486 REASON="Busy Here" \
		WAIT=6000 -- -t t1
	case_end

	# ring_cancelled SCENARIO CANCEL_MIN CANCEL_MAX FINALS FINAL_MAX: bob rings until sipd CANCELs him
	# CANCEL_MIN..CANCEL_MAX s after his INVITE; the caller's final (a regex of codes) follows its 180 by
	# CANCEL_MIN..FINAL_MAX s
	ring_cancelled() {
		unbind bob
		uas bob 1.0 uas_ring_cancel.xml CANCEL_WAIT=10000
		defer "CANCEL timing" gap --log "$UAS_LOG.messages" --first "$RX_INVITE_IN" --then "$RX_CANCEL_IN" \
			--min "$2" --max "$3"
		defer "the CANCEL sipd sent" cancel-check --log "$UAS_LOG.messages"
		defer "the caller's final timing" gap --log "$CASE_LOG.uac.messages" --first '^received\nSIP/2\.0 180 ' \
			--then "^received\\nSIP/2\\.0 $4 " --min "$2" --max "$5"
		caller "$1" bob
	}

	case_begin "Expires: 2 on the INVITE (timer_c = 3 does not fire first): the only branch rings; 1.5..3 s after its INVITE it gets a matching CANCEL, the caller gets 408 Request Timeout (RFC 3261 21.5.5), not the branch's 487" timerc
	ring_cancelled uac_expires.xml 1.5 2.9 408 4
	case_end

	case_begin "Timer C (timer_c = 3): the only branch rings and never answers; 2.5..6 s after its INVITE it gets a matching CANCEL, and the caller gets 408 Request Timeout, not the 487 that answers sipd's CANCEL (16.8)" timerc
	ring_cancelled uac_timer_c.xml 2.5 6 408 7
	case_end

	case_begin "Timer C (timer_c = 3) on a branch that sent 100 Trying and nothing else: it gets a CANCEL (16.8: a 100 is a provisional response), answers 487, and the caller gets 408" timerc
	unbind bob
	pyphone "bob's phone (sipua.py phone --expect cancel --trying: 100 at once)" phone --user bob --expect cancel \
		--trying --seconds 8
	caller uac_fail.xml bob DOMAIN="127.0.0.1:${SIPD_PORT[timerc]}" MAXFWD=70 CODE=408 REASON="Request Timeout" \
		WAIT=9000
	case_end

	case_begin "Timer C (timer_c = 3) on a re-INVITE whose phone rings: the CANCEL's 487 goes to the caller as it came, not 408, which would end the dialog (12.2.1.2; 16.8 asks 408 only of a branch with no provisional)" timerc
	unbind bob
	pyphone "bob's phone (sipua.py phone --expect cancel: 180 at once)" phone --user bob --expect cancel --delay 0.1 \
		--seconds 8 &&
		check "re-INVITE through sipd" request --port "${SIPD_PORT[timerc]}" --method INVITE \
			--ruri "sip:callee@127.0.0.1:$PY_PORT" --route "<sip:127.0.0.1:${SIPD_PORT[timerc]};lr;sg=@SG@>" \
			--sign-db "$WORK/timerc.db" --to-tag re1 \
			--expect 487
	CALLER_OK=$((${#CASE_WHY[@]} == 0))
	case_end

	case_begin "Timer C, and the ringing phone answers neither the CANCEL nor the INVITE: 64*T1 (6.4 s at t1 = 100) after the CANCEL the branch counts as timed out (9.1, 16.8) and the caller gets 408 Request Timeout, 8.5..11 s after the 180" timerc
	unbind bob
	pyphone "bob's phone (sipua.py phone --expect cancel --mute: 180 at once, then silent)" phone --user bob \
		--expect cancel --mute --seconds 11
	defer "the caller's final timing" gap --log "$CASE_LOG.uac.messages" --first '^received\nSIP/2\.0 180 ' \
		--then '^received\nSIP/2\.0 408 ' --min 8.5 --max 11
	caller uac_fail.xml bob DOMAIN="127.0.0.1:${SIPD_PORT[timerc]}" MAXFWD=70 CODE=408 REASON="Request Timeout" \
		WAIT=13000
	case_end

	case_begin "Timer M (RFC 6026 8.4; 64*T1 = 6.4 s at t1 = 100): bob's phone's 200 sent again at once reaches the caller; sent 8 s after the first, it matches no transaction and is dropped" timerc
	unbind bob
	check "sipua.py answered2xx --late 8" answered2xx --port "${SIPD_PORT[timerc]}" --user bob --late 8
	case_end

	case_begin "a branch that never answers (no provisional response): no CANCEL to it, the caller gets 408 Request Timeout (16.8)" timerc
	unbind bob
	pyphone "bob's phone (sipua.py phone, answers nothing)" phone --user bob --seconds 6 --expect invite
	caller uac_fail.xml bob DOMAIN="127.0.0.1:${SIPD_PORT[timerc]}" MAXFWD=70 CODE=408 REASON="Request Timeout" \
		WAIT=10000
	case_end

	case_begin "a MESSAGE whose only branch answers 180 and never a final (t1 = 100: Timer F 6.4 s): the caller gets neither the 180 nor a 408 (RFC 4320 4.2, 4.1) within 9 s, and sipd logs that the transaction ended unanswered" timerc
	unbind bob
	pyphone "bob's phone (sipua.py phone, 180 to every MESSAGE)" phone --user bob --seconds 9 --expect invite \
		--method MESSAGE --answer 180
	check "MESSAGE for bob, unanswered" request --port "${SIPD_PORT[timerc]}" --method MESSAGE \
		--ruri "sip:bob@127.0.0.1:${SIPD_PORT[timerc]}" --expect 0 --wait 9
	grep -q 'no branch answered the MESSAGE but with a timeout; its transaction ends without a response (RFC 4320)' \
		"$WORK/timerc.err" ||
		case_fail "sipd's log does not say the MESSAGE ended unanswered"
	case_end
fi

# ==== authcalls: auth_calls yes ====
if start_sipd authcalls "${PORTS[2]}" <<EOF
$PROXY
timer_c = 180
auth_calls = yes
EOF
then
	# sipua.py, not SIPp: SIPp 3.6 puts sip:<remote ip>:<port> as the digest uri, not the Request-URI
	case_begin "auth_calls = yes: an INVITE from alice@sipd's domain gets 407 + Proxy-Authenticate, its ACK stays in sipd; with credentials it is routed (bob's 486 relayed)" authcalls
	unbind bob
	pyphone "bob's phone (sipua.py phone, answers 486)" phone --user bob --seconds 10 --expect invite --answer 486
	check "sipua.py invite" invite --port "${SIPD_PORT[authcalls]}" --to bob --frm alice --expect 486
	CALLER_OK=$((${#CASE_WHY[@]} == 0))
	case_end

	case_begin "auth_calls = yes: carol's valid credentials on an INVITE from alice get 403 Credentials do not match the From (RFC 3261 22.3, 26: nobody calls as someone else); bob's phone gets nothing" authcalls
	unbind bob
	pyphone "bob's phone (sipua.py phone --expect nothing)" phone --user bob --seconds 3 --expect nothing
	check "sipua.py invite --frm alice --auth-user carol" invite --port "${SIPD_PORT[authcalls]}" --to bob --frm alice \
		--auth-user carol --expect 403
	CALLER_OK=$((${#CASE_WHY[@]} == 0))
	case_end

	case_begin "auth_calls = yes: an INVITE from sip:alice@[::ffff:127.0.0.1] (sipd's 127.0.0.1 written as IPv4-mapped IPv6: one host, RFC 5954 4) gets 407 as from alice@127.0.0.1; with credentials it is routed (bob's 486 relayed)" authcalls
	unbind bob
	pyphone "bob's phone (sipua.py phone, answers 486)" phone --user bob --seconds 10 --expect invite --answer 486
	check "sipua.py invite --from-host [::ffff:127.0.0.1]" invite --port "${SIPD_PORT[authcalls]}" --to bob --frm alice \
		--from-host '[::ffff:127.0.0.1]' --expect 486
	CALLER_OK=$((${#CASE_WHY[@]} == 0))
	case_end

	case_begin "auth_calls = yes: a MESSAGE from alice@sipd's domain gets 407 too (nobody writes as someone else; Kamailio's default script challenges every such request); with alice's credentials it reaches bob's phone, whose 200 comes back" authcalls
	unbind bob
	pyphone "bob's phone (sipua.py catch, answers 200)" catch --user bob --seconds 10 --want-header '^CSeq: 2 MESSAGE$'
	check "sipua.py invite --method MESSAGE" invite --port "${SIPD_PORT[authcalls]}" --to bob --frm alice \
		--method MESSAGE --expect 200
	CALLER_OK=$((${#CASE_WHY[@]} == 0))
	case_end

	case_begin "auth_calls = yes: an OPTIONS from alice@sipd's domain to bob with carol's credentials: 403 Credentials do not match the From; bob's phone gets nothing" authcalls
	unbind bob
	pyphone "bob's phone (sipua.py phone --expect nothing)" phone --user bob --seconds 3 --expect nothing
	check "sipua.py invite --method OPTIONS --auth-user carol" invite --port "${SIPD_PORT[authcalls]}" --to bob \
		--frm alice --method OPTIONS --auth-user carol --expect 403
	CALLER_OK=$((${#CASE_WHY[@]} == 0))
	case_end

	case_begin "auth_calls = yes: a MESSAGE with a To tag but no Route of sipd's (a UA that ignored Record-Route, or someone posing as one) from alice@sipd's domain to bob is challenged as a new one would be: 407; bob's phone gets nothing" authcalls
	unbind bob
	pyphone "bob's phone (sipua.py phone --expect nothing)" phone --user bob --seconds 3 --expect nothing
	check "MESSAGE with a To tag, no Route" request --port "${SIPD_PORT[authcalls]}" --method MESSAGE \
		--ruri "sip:bob@127.0.0.1:${SIPD_PORT[authcalls]}" --to-tag nr1 --expect 407 \
		--expect-header '^Proxy-Authenticate: Digest '
	CALLER_OK=$((${#CASE_WHY[@]} == 0))
	case_end

	case_begin "auth_calls = yes: a BYE from alice in a dialog sipd Record-Routed (its signed Route) is not challenged: it reaches the phone, whose 200 comes back" authcalls
	unbind bob
	pyphone "bob's phone (sipua.py phone, expects the BYE)" phone --user bob --expect bye --seconds 3 &&
		check "BYE through the signed Route" request --port "${SIPD_PORT[authcalls]}" --method BYE \
			--ruri "sip:callee@127.0.0.1:$PY_PORT" --route "<sip:127.0.0.1:${SIPD_PORT[authcalls]};lr;sg=@SG@>" \
			--sign-db "$WORK/authcalls.db" --to-tag sd1 --expect 200
	CALLER_OK=$((${#CASE_WHY[@]} == 0))
	case_end

	case_begin "RFC 3261 22.3: the INVITE that sipd authenticated reaches bob without the Proxy-Authorization for sipd's realm (consumed, as Kamailio's consume_credentials()), with the one for another proxy's realm as it came" authcalls
	unbind bob
	pyphone "bob's phone (sipua.py catch, answers 200)" catch --user bob --seconds 10 \
		--want-header '^Proxy-Authorization: Digest username="alice", realm="far\.example", nonce="far-nonce"' \
		--refuse-header 'realm="sipd"'
	check "sipua.py invite --other-realm far.example" invite --port "${SIPD_PORT[authcalls]}" --to bob --frm alice \
		--other-realm far.example --expect 200
	CALLER_OK=$((${#CASE_WHY[@]} == 0))
	case_end
fi

# ==== recurse: recurse_3xx yes ====
if start_sipd recurse "${PORTS[3]}" <<EOF
$PROXY
timer_c = 180
auth_calls = no
recurse_3xx = yes
EOF
then
	R=127.0.0.1:${SIPD_PORT[recurse]}

	case_begin "recurse_3xx = yes: bob's phone answers 302 with Contact <sip:callee@127.0.0.1:<carol's phone>>; sipd ACKs the 302 and sends the INVITE there (16.7 step 4); the caller never sees the 302, the call with carol's phone completes" recurse
	unbind bob
	unbind carol
	uas carol 1.0 uas_answer.xml ANSWER_AFTER=200
	TARGET=$UAS_LOG
	uas bob 1.0 uas_redirect.xml CODE=302 REASON="Moved Temporarily" CONTACT="<sip:callee@127.0.0.1:$CPORT>"
	defer "carol's phone got its INVITE only after bob's 302" order --log-a "$UAS_LOG.messages" \
		--a '^sent\nSIP/2\.0 302 ' --log-b "$TARGET.messages" --b "$RX_INVITE_IN"
	caller uac_call.xml bob
	case_end

	case_begin "recurse_3xx = yes, a Contact in sipd's own domain: bob's phone answers 301 with Contact <sip:carol@<sipd>>; the INVITE spirals through sipd to carol's phone, the call completes" recurse
	unbind bob
	unbind carol
	uas carol 1.0 uas_spiral.xml ANSWER_AFTER=200
	uas bob 1.0 uas_redirect.xml CODE=301 REASON="Moved Permanently" CONTACT="<sip:carol@$R>"
	caller uac_call.xml bob
	case_end

	case_begin "recurse_3xx = yes, by q and never twice: a 302 lists the redirecting phone itself (tried already: skipped), a q=0.5 and a q=1.0 phone; the q=1.0 one gets the INVITE first and answers 486, only then the q=0.5 one, which answers; the redirecting phone gets one INVITE" recurse
	unbind bob
	unbind carol
	uas carol 1.0 uas_answer.xml ANSWER_AFTER=200
	LOWQ=$UAS_LOG
	LPORT=$CPORT
	uas carol 1.0 uas_reject.xml CODE=486 REASON="Busy Here" DELAY=500
	HIGHQ=$UAS_LOG
	uas bob 1.0 uas_redirect.xml CODE=302 REASON="Moved Temporarily" \
		CONTACT="<sip:callee@127.0.0.1:@UAS_PORT@>, <sip:callee@127.0.0.1:$LPORT>;q=0.5, <sip:callee@127.0.0.1:$CPORT>;q=1.0"
	defer "the q=0.5 phone got its INVITE only after the q=1.0 phone's 486" order \
		--log-a "$HIGHQ.messages" --a '^sent\nSIP/2\.0 486 ' --log-b "$LOWQ.messages" --b "$RX_INVITE_IN"
	caller uac_call.xml bob
	case_end

	case_begin "recurse_3xx = yes, a Contact sipd cannot use: the 302 lists <tel:+15551234> and a phone that answers 486; sipd tries the phone and relays the 302 with the tel: Contact only (the one recursed on taken out, 16.7 step 4; 3xx beats 486)" recurse
	unbind bob
	unbind carol
	uas carol 1.0 uas_reject.xml CODE=486 REASON="Busy Here" DELAY=0
	uas bob 1.0 uas_redirect.xml CODE=302 REASON="Moved Temporarily" \
		CONTACT="<tel:+15551234>, <sip:callee@127.0.0.1:$CPORT>"
	caller uac_redirect.xml bob DOMAIN="$R" CODE=302 REASON="Moved Temporarily" WAIT=5000 \
		CONTACT_RE="&lt;tel:\+15551234&gt;"
	case_end
fi

# ==== domain: [general] domain = sipd.test, which is not sipd's address ====
# sipd's Record-Route and Via name its address (127.0.0.1:port), not the domain: they still name sipd
if start_sipd domain "${PORTS[4]}" <<EOF
$PROXY
timer_c = 180
auth_calls = no

[general]
domain = sipd.test
EOF
then
	D=127.0.0.1:${SIPD_PORT[domain]}

	case_begin "domain = sipd.test: a BYE in a dialog whose Route is sipd's own Record-Route (<sip:$D;lr>, its address, not the domain) has that Route taken off (16.4) and reaches the phone at its Request-URI; no loop back into sipd" domain
	pyphone "bob's phone (sipua.py phone, registered as bob@sipd.test, expects the BYE)" phone --user bob \
		--domain sipd.test --expect bye --seconds 3 &&
		check "BYE with Route: sipd's address" request --port "${SIPD_PORT[domain]}" --method BYE \
			--ruri "sip:callee@127.0.0.1:$PY_PORT" --route "<sip:$D;lr;sg=@SG@>" --sign-db "$WORK/domain.db" \
			--to-tag dom1 --expect 200
	CALLER_OK=$((${#CASE_WHY[@]} == 0))
	case_end

	case_begin "domain = sipd.test: OPTIONS sip:$D (no user, sipd's address) is answered by sipd itself: 200, not relayed as another domain's" domain
	check "OPTIONS to sipd's address" request --port "${SIPD_PORT[domain]}" --method OPTIONS --ruri "sip:$D" --expect 200
	CALLER_OK=$((${#CASE_WHY[@]} == 0))
	case_end
fi

# ==== budget: [limits] max_transactions = 2, so that transactions may hold 4 kB in all ====
if start_sipd budget "${PORTS[5]}" <<EOF
$PROXY
auth_calls = no

[limits]
max_transactions = 2
EOF
then
	PAD=$(printf 'x%.0s' $(seq 3000))

	case_begin "[limits] max_transactions = 2 (4 kB held in all): the proxy's copies of a request count with its transaction's bytes: a 3.3 kB MESSAGE, whose server transaction alone fits, fails at its branch (503, which the caller gets as 500, 16.7 step 6) and never reaches the phone; a small one after it goes through" budget
	pyphone "bob's phone (sipua.py phone --method MESSAGE --answer 200: the small MESSAGE only)" phone --user bob \
		--seconds 4 --expect invite --method MESSAGE --answer 200 --times 1 &&
		check "MESSAGE of 3.3 kB" request --port "${SIPD_PORT[budget]}" --method MESSAGE \
			--ruri "sip:bob@127.0.0.1:${SIPD_PORT[budget]}" --header "X-Pad: $PAD" --expect 500 &&
		check "MESSAGE of 0.4 kB" request --port "${SIPD_PORT[budget]}" --method MESSAGE \
			--ruri "sip:bob@127.0.0.1:${SIPD_PORT[budget]}" --expect 200
	case_end
fi

# ==== two: a second UDP listener, at 127.0.0.3, and a wildcard one for the rest (RFC 3581 4: what goes to a
# phone leaves from where it sent) ====
if SIPD_INI_PRE="listen = udp:127.0.0.3:${PORTS[6]}, udp:0.0.0.0:${PORTS[6]}"$'\n\n'"$SIPD_INI_PRE" \
	start_sipd two "${PORTS[6]}" <<EOF
$PROXY
auth_calls = no
EOF
then
	case_begin "two UDP listeners, 127.0.0.1 and 127.0.0.3: bob registers through 127.0.0.3 (the 401 and the 200 come from there, the database keeps the listener); mallory calls him through 127.0.0.1: the INVITE reaches bob from 127.0.0.3 with its Via naming it and a Record-Route for each side, the 200 reaches mallory from 127.0.0.1, the ACK through the route set reaches bob from 127.0.0.3, bob's BYE through 127.0.0.3 reaches mallory from 127.0.0.1 and its 200 comes back from 127.0.0.3" two
	check "a call between the listeners" listeners --port "${SIPD_PORT[two]}" --second 127.0.0.3 --db "$WORK/two.db"
	CALLER_OK=$((${#CASE_WHY[@]} == 0))
	case_end

	case_begin "the same through the wildcard listener (udp:0.0.0.0), bob registering at 127.0.0.2: everything to bob leaves from 127.0.0.2 (IP_PKTINFO), where routing alone would send from 127.0.0.1, and the Via and Record-Route name it" two
	unbind bob
	check "a call between the listeners, one a wildcard" listeners --port "${SIPD_PORT[two]}" --second 127.0.0.2 \
		--db "$WORK/two.db"
	CALLER_OK=$((${#CASE_WHY[@]} == 0))
	case_end

	case_begin "RFC 3581 4 for the 200s of a forked call whose caller came to 127.0.0.3: bob's phone sends its 200 again and a second fork's 200 (passed on by the Accepted client transaction, statelessly), all from 127.0.0.3; and for a caller at the wildcard listener's 127.0.0.2, both phones' 200s from 127.0.0.2" two
	unbind bob
	check "the 200s passed on, caller at 127.0.0.3" answered2xx --port "${SIPD_PORT[two]}" --user bob --caller-to 127.0.0.3
	unbind bob
	check "the 200s passed on, caller at 127.0.0.2" answered2xx --port "${SIPD_PORT[two]}" --user bob --caller-to 127.0.0.2
	unbind bob
	check "two phones' 200s, caller at 127.0.0.2" fork200 --port "${SIPD_PORT[two]}" --user bob --caller-to 127.0.0.2
	case_end

	case_begin "two parties behind NATs without STUN (private addresses in their Contacts): bob registered as sip:bob@10.0.0.99:5060, mallory calls with Contact sip:mallory@10.1.1.1:5060; the Contacts sipd relays carry a ;nat= token, mallory's ACK and bob's BYE through sipd's Route reach the other party where it sent from, their Request-URIs without the token; a tampered token is not followed" two
	unbind bob
	check "a call between two NATs" natcall --port "${SIPD_PORT[two]}"
	CALLER_OK=$((${#CASE_WHY[@]} == 0))
	case_end

	case_begin "the same with mallory calling over a TCP connection of hers from behind her NAT: her Contact relayed with ;nat=tcp-<token>, and bob's BYE reaches her on that connection" two
	unbind bob
	check "a call from behind a NAT over TCP" natcall --port "${SIPD_PORT[two]}" --tcp-caller
	CALLER_OK=$((${#CASE_WHY[@]} == 0))
	case_end
fi

# ==== adv: behind a 1:1 NAT, [general] advertise = 127.0.0.9 (where nothing listens: the NAT's address) ====
if SIPD_INI_PRE=$'advertise = 127.0.0.9\n\n'"$SIPD_INI_PRE" start_sipd adv "${PORTS[7]}" <<EOF
$PROXY
auth_calls = no
EOF
then
	case_begin "[general] advertise = 127.0.0.9: REGISTER sip:127.0.0.9 is for sipd (200); a call through sipd names 127.0.0.9 in sipd's Via and Record-Route; the ACK and BYE whose Route names 127.0.0.9, sent to 127.0.0.1 as a NAT passes them on, are taken as sipd's and reach the other party" adv
	check "a call through the advertised address" advertised --port "${SIPD_PORT[adv]}" --public 127.0.0.9
	CALLER_OK=$((${#CASE_WHY[@]} == 0))
	case_end
fi

# ==== wan: a LAN listener (127.0.0.1) and a WAN one behind a 1:1 NAT (127.0.0.3 advertise 127.0.0.8) ====
if SIPD_INI_PRE="listen = udp:127.0.0.3:${PORTS[8]} advertise 127.0.0.8"$'\n\n'"$SIPD_INI_PRE" start_sipd wan "${PORTS[8]}" <<EOF
$PROXY
auth_calls = no
EOF
then
	case_begin "listen = udp:127.0.0.3 advertise 127.0.0.8 beside udp:127.0.0.1: bob registered through 127.0.0.3 is called from there with sipd's Via and his side's Record-Route naming 127.0.0.8, while mallory's side (127.0.0.1) names 127.0.0.1, advertised nowhere; the ACK and BYE through the route set (a Route naming 127.0.0.8) reach the other party" wan
	check "a call between a LAN and an advertised WAN listener" listeners --port "${SIPD_PORT[wan]}" --second 127.0.0.3 \
		--named 127.0.0.8 --db "$WORK/wan.db"
	CALLER_OK=$((${#CASE_WHY[@]} == 0))
	case_end

	case_begin "a listener's advertised address is sipd's own: REGISTER sip:127.0.0.8 (200), and a query of that AOR (200); REGISTER sip:127.0.0.7 (another address, where nothing listens) is 404" wan
	check "REGISTER sip:127.0.0.8" register --port "${SIPD_PORT[wan]}" --user bob --domain "127.0.0.8:${SIPD_PORT[wan]}" \
		--contact "<sip:bob@127.0.0.1:9>" --expires 60
	check "a query of sip:bob@127.0.0.8" register --port "${SIPD_PORT[wan]}" --user bob --domain 127.0.0.8
	check "REGISTER sip:127.0.0.7" register --port "${SIPD_PORT[wan]}" --user bob --domain 127.0.0.7 --expect 404
	case_end
fi

stop_all main timerc authcalls recurse domain budget two adv wan
finish proxy
