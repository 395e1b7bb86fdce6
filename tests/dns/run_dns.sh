#!/usr/bin/env bash
# run_dns.sh SIPD: sipd locating other domains' servers by DNS (RFC 3263: NAPTR, SRV, A) against a real
# DNS server: dnsmasq on a free port of 127.0.0.1 (no upstream, no hosts file, authoritative for .test:
# --local=/test/ makes every other .test name NXDOMAIN, every record has a TTL of 60 s), with
#   example.test           NAPTR 10 50 "s" "SIP+D2U" -> _sip._udp.example.test
#   _sip._udp.example.test SRV 10 0 <UAS port> uas.example.test;  uas.example.test A 127.0.0.1
#   _sip._udp.failover.test SRV 10 0 <dead port> dead.failover.test, SRV 20 0 <UAS port> live.failover.test
#   dead.failover.test, live.failover.test A 127.0.0.1
#   _sip._udp.busy.test    SRV 10 0 <busy port> unavail.busy.test, SRV 20 0 <UAS port> live.busy.test (A 127.0.0.1)
#   _sip._udp.paused.test  SRV 10 0 <busy port> unavail.busy.test (the only target)
#   big.test               A 127.0.0.1 (no NAPTR, no SRV)
#   _sip._tcp.tcponly.test SRV 10 0 <TCP UAS port> tcp.tcponly.test;  tcp.tcponly.test A 127.0.0.1
#   _sip._udp.nosip.test   SRV with the target "." (RFC 2782: the service is not offered)
#   sctp.test              NAPTR 10 50 "s" "SIP+D2S" -> _sip._sctp.sctp.test (a transport sipd lacks)
#   v6.test                AAAA ::1 only
# Callers are tests/dns/dnsua.py (alice answers sipd's 407: SIPp 3.6 cannot, see tests/proxy/sipua.py);
# callees are SIPp UAS instances (tests/dns/scenarios/uas_answer.xml, uas_big.xml).
#
# Four sipd instances, [auth] algorithms = MD5, users alice and bob (password secret):
#   main    [dns] servers = dnsmasq, [proxy] outbound = users
#   silent  [dns] servers = a UDP socket that reads queries and never answers, timeout = 1000 ms
#   closed  [proxy] outbound = none
#   v6      as main, listening on [::1] too (only where ::1 can be bound; else its cases are skipped)
# Prints one PASS/FAIL line per case; at the end checks that every sipd is still alive, exits 0 on
# SIGTERM and printed no sanitizer report. Exits 1 if anything failed. KEEP=1 keeps the work directory.
set -u

SIPD=${1:?usage: run_dns.sh /path/to/sipd}
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"
SCN=$HERE/scenarios
UA=(python3 "$HERE/../proxy/sipua.py")
DUA=(python3 "$HERE/dnsua.py")
DNSMASQ=$(command -v dnsmasq || echo /usr/sbin/dnsmasq)

need_tools sipp python3
need_exec "$SIPD"
need_exec "$DNSMASQ" "dnsmasq-base: tools/install-deps.sh test"
lib_init dns
T0=$(date +%s)

pick_ports 4 40 $((30000 + $$ % 10000)) "${UA[@]}"
client_port; DNS_PORT=$CPORT
client_port; SWALLOW_PORT=$CPORT
client_port; UAS_NAPTR=$CPORT
client_port; UAS_LIVE=$CPORT
client_port; DEAD_PORT=$CPORT # nothing ever listens here
client_port; BUSY_PORT=$CPORT # dnsua.py busy: 503 with Retry-After
client_port; UAS_BIG=$CPORT
client_port; UAS_TCP=$CPORT
client_port; UAS_V6=$CPORT # on [::1]
HAVE_V6=0
python3 -c 'import socket; socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).bind(("::1", 0))' 2>/dev/null && HAVE_V6=1

# ---- the DNS servers ----
DNSLOG=$WORK/dnsmasq.log
"$DNSMASQ" -k --conf-file=/dev/null --user="$(id -un)" --no-resolv --no-hosts --no-negcache --local-ttl=60 \
	--port="$DNS_PORT" --listen-address=127.0.0.1 --bind-interfaces --local=/test/ \
	--naptr-record=example.test,10,50,s,SIP+D2U,,_sip._udp.example.test \
	--srv-host=_sip._udp.example.test,uas.example.test,"$UAS_NAPTR",10,0 \
	--host-record=uas.example.test,127.0.0.1 \
	--srv-host=_sip._udp.failover.test,dead.failover.test,"$DEAD_PORT",10,0 \
	--srv-host=_sip._udp.failover.test,live.failover.test,"$UAS_LIVE",20,0 \
	--host-record=dead.failover.test,127.0.0.1 --host-record=live.failover.test,127.0.0.1 \
	--srv-host=_sip._udp.busy.test,unavail.busy.test,"$BUSY_PORT",10,0 \
	--srv-host=_sip._udp.busy.test,live.busy.test,"$UAS_LIVE",20,0 \
	--host-record=unavail.busy.test,127.0.0.1 --host-record=live.busy.test,127.0.0.1 \
	--srv-host=_sip._udp.paused.test,unavail.busy.test,"$BUSY_PORT",10,0 \
	--host-record=big.test,127.0.0.1 \
	--srv-host=_sip._tcp.tcponly.test,tcp.tcponly.test,"$UAS_TCP",10,0 --host-record=tcp.tcponly.test,127.0.0.1 \
	--srv-host=_sip._udp.nosip.test \
	--naptr-record=sctp.test,10,50,s,SIP+D2S,,_sip._sctp.sctp.test \
	--host-record=v6.test,::1 \
	--log-queries --log-facility="$DNSLOG" >"$WORK/dnsmasq.out" 2>&1 &
DNSMASQ_PID=$!
BG_PIDS+=($!)
if ! "${UA[@]}" bound --port "$DNS_PORT" --wait 5 2>/dev/null; then
	fail "dnsmasq: starts on udp:127.0.0.1:$DNS_PORT" "$(tail -3 "$WORK/dnsmasq.out")"
	finish dns
fi
pass "dnsmasq answers on udp:127.0.0.1:$DNS_PORT (NAPTR, SRV, A records of example.test and failover.test)"
"${DUA[@]}" swallow --port "$SWALLOW_PORT" --ready "$WORK/swallow.ready" --seconds 300 >"$WORK/swallow.out" 2>&1 &
SWALLOW_PID=$!
BG_PIDS+=($!)

# ---- sipd ----
SIPD_READY=("${UA[@]}")
SIPD_ROLE=" as a proxy with DNS"
SIPD_INI_PRE=$'[auth]\nalgorithms = MD5\n\n'
SIPD_INI_POST=$'[user alice]\npassword = secret\n\n[user bob]\npassword = secret\n\n'

# render SCENARIO OUT KEY=VALUE...: the template of scenarios/ with every @KEY@ filled in
render() {
	render_template "$SCN/$1" "$2" "${@:3}"
}

# uas NAME PORT KEY=VALUE...: a SIPp UAS in the background on udp:127.0.0.1:PORT; UAS_PID, UAS_LOG
uas() {
	local name=$1 port=$2
	shift 2
	NCASE=$((NCASE + 1))
	UAS_LOG=$WORK/case$NCASE.$name
	render uas_answer.xml "$UAS_LOG.xml" "$@" || return 1
	(cd "$WORK" && exec timeout 40 sipp -sf "$UAS_LOG.xml" -i 127.0.0.1 -p "$port" -m 1 -nr -nostdin \
		-timeout 30s -timeout_error -trace_err -error_file "$UAS_LOG.errors" \
		-trace_msg -message_file "$UAS_LOG.messages" >"$UAS_LOG.out" 2>&1 </dev/null) &
	UAS_PID=$!
	BG_PIDS+=($!)
	"${UA[@]}" bound --port "$port" --wait 5 2>/dev/null
}

# uas_big NAME PORT TRANSPORT KEY=VALUE...: like uas, with uas_big.xml over TRANSPORT (UDP or TCP)
uas_big() {
	local name=$1 port=$2 tp=$3 opt=()
	shift 3
	NCASE=$((NCASE + 1))
	UAS_LOG=$WORK/case$NCASE.$name
	render uas_big.xml "$UAS_LOG.xml" TRANSPORT="$tp" "$@" || return 1
	[ "$tp" = TCP ] && opt=(-t t1)
	(cd "$WORK" && exec timeout 40 sipp -sf "$UAS_LOG.xml" "${opt[@]}" -i 127.0.0.1 -p "$port" -m 1 -nr -nostdin \
		-timeout 30s -timeout_error -trace_err -error_file "$UAS_LOG.errors" \
		-trace_msg -message_file "$UAS_LOG.messages" >"$UAS_LOG.out" 2>&1 </dev/null) &
	UAS_PID=$!
	BG_PIDS+=($!)
	if [ "$tp" = TCP ]; then
		"${UA[@]}" bound --tcp --port "$port" --wait 5 2>/dev/null
	else
		"${UA[@]}" bound --port "$port" --wait 5 2>/dev/null
	fi
}

# uas_wait: 0 when the UAS ran its scenario through; else its errors in UAS_WHY
uas_wait() {
	local t
	for ((t = 0; t < 150; t++)); do
		kill -0 "$UAS_PID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$UAS_PID" 2>/dev/null; then
		kill -TERM "$UAS_PID" 2>/dev/null
		wait "$UAS_PID" 2>/dev/null
		UAS_WHY="the SIPp UAS did not finish: $(tail -30 "$UAS_LOG.messages" 2>/dev/null | tr '\r\n' '  ' | cut -c1-600)"
		return 1
	fi
	if ! wait "$UAS_PID"; then
		UAS_WHY="the SIPp UAS failed: $(grep -v 'Failed to delete FD' "$UAS_LOG.errors" 2>/dev/null | head -5 | tr '\n' ' ')"
		return 1
	fi
	return 0
}

# call NAME INSTANCE dnsua-call-options...: one case, the caller's verdict
call() {
	local name=$1 inst=$2 out
	shift 2
	if out=$("${DUA[@]}" call --port "${SIPD_PORT[$inst]}" "$@" 2>&1); then
		CALL_OUT=$out
		return 0
	fi
	CALL_OUT=$out
	return 1
}

# dns_asked REGEX: dnsmasq logged a query matching REGEX
dns_asked() {
	grep -qE "$1" "$DNSLOG"
}

case_result() {
	local name=$1
	shift
	if [ $# -eq 0 ]; then
		pass "$name"
	else
		fail "$name" "$(printf '%s; ' "$@" | cut -c1-900)"
		for inst in "${!SIPD_PID[@]}"; do
			echo "    --- sipd ($inst) log, last lines:"
			tail -6 "$WORK/$inst.err" | sed 's/^/    /'
		done
	fi
}

# main's configuration; the v6 instance's too, with a listener on [::1]
MAIN_INI="[proxy]
outbound = users

[dns]
servers = 127.0.0.1:$DNS_PORT
timeout = 2000"

if start_sipd main "${PORTS[0]}" <<EOF
$MAIN_INI
EOF
then
	# ---- NAPTR -> SRV -> A ----
	why=()
	uas naptr "$UAS_NAPTR" SIPD_PORT="${SIPD_PORT[main]}" RURI_RE='sip:bob@example\.test' \
		CONTACT_HOST=uas.example.test CONTACT_HOST_RE='uas\.example\.test' || why+=("SIPp UAS did not start")
	call naptr main --ruri sip:bob@example.test --expect 200 --max 5 || why+=("caller: $CALL_OUT")
	uas_wait || why+=("$UAS_WHY")
	for q in 'query\[NAPTR\] example\.test' 'query\[SRV\] _sip\._udp\.example\.test' 'query\[A\] uas\.example\.test'; do
		dns_asked "$q" || why+=("dnsmasq never saw ${q//\\/}")
	done
	# the records carry a TTL of 60 s (--local-ttl): the ACK and the BYE find uas.example.test in the cache
	n=$(grep -c 'query\[A\] uas\.example\.test' "$DNSLOG")
	[ "$n" = 1 ] || why+=("uas.example.test was asked $n times (INVITE, ACK, BYE: once, then cached for its TTL)")
	case_result "RFC 3263 NAPTR -> SRV -> A: alice (407, then authenticated) calls sip:bob@example.test; the SIPp UAS at uas.example.test:$UAS_NAPTR (SRV) gets the INVITE with the Request-URI unchanged, sipd's Via and Record-Route; its Contact names a host (uas.example.test) that sipd locates again for the ACK (stateless) and the BYE; the BYE's 200 comes back; uas.example.test asked once (TTL cache)" "${why[@]}"

	# ---- 16.4: a Request-URI maddr naming sipd ----
	why=()
	uas maddr "$UAS_NAPTR" SIPD_PORT="${SIPD_PORT[main]}" RURI_RE='sip:bob@example\.test;x=1;transport=udp' \
		CONTACT_HOST=uas.example.test CONTACT_HOST_RE='uas\.example\.test' || why+=("SIPp UAS did not start")
	call maddr main --ruri "sip:bob@example.test:${SIPD_PORT[main]};x=1;maddr=127.0.0.1;transport=udp" \
		--expect 200 --max 5 || why+=("caller: $CALL_OUT")
	uas_wait || why+=("$UAS_WHY")
	dns_asked 'query\[SRV\] _sip\._udp\.example\.test' || why+=("no SRV question for _sip._udp.example.test")
	case_result "RFC 3261 16.4: sip:bob@example.test:<sipd's port>;x=1;maddr=127.0.0.1;transport=udp, whose maddr, port and transport are sipd's own and the ones the INVITE came by: sipd takes off the maddr and the port (not the default one) and processes the request as if they had never been there: it locates example.test (SRV, the transport being given) and the UAS gets the INVITE for sip:bob@example.test;x=1;transport=udp (UDP is the default and stays)" "${why[@]}"

	# maddr_next_hop NAME URI TEXT: an INVITE for URI, whose maddr (127.0.0.1, at the UAS's port) 16.4
	# leaves, reaches the UAS there with its Request-URI unchanged
	maddr_next_hop() {
		why=()
		uas "$1" "$UAS_LIVE" SIPD_PORT="${SIPD_PORT[main]}" RURI_RE="${2//./\\.}" \
			CONTACT_HOST=127.0.0.1 CONTACT_HOST_RE='127\.0\.0\.1' || why+=("SIPp UAS did not start")
		call "$1" main --ruri "$2" --expect 200 --max 5 || why+=("caller: $CALL_OUT")
		uas_wait || why+=("$UAS_WHY")
		case_result "$3" "${why[@]}"
	}
	maddr_next_hop maddr-other "sip:bob@failover.test:$UAS_LIVE;maddr=127.0.0.1" \
		"RFC 3261 16.4, 16.5: sip:bob@failover.test:<UAS port>;maddr=127.0.0.1: the maddr is sipd's address but the port is not the one the INVITE came to, so the URI stays as it is and its maddr is the next hop (RFC 3263 4: no DNS): the UAS at 127.0.0.1:<UAS port> gets the INVITE with the Request-URI unchanged"
	maddr_next_hop maddr-local "sip:bob@127.0.0.1:$UAS_LIVE;maddr=127.0.0.1" \
		"RFC 3261 16.5: sip:bob@127.0.0.1:<UAS port>;maddr=127.0.0.1, a user of sipd's own domain (bob, not registered) with a maddr that 16.4 leaves (another port): the Request-URI is the only target, no location lookup (which would give 480): the UAS at the maddr gets the INVITE with the Request-URI unchanged, alice being authenticated as for another domain"

	why=()
	out=$("${UA[@]}" request --port "${SIPD_PORT[main]}" --method OPTIONS \
		--ruri "sip:127.0.0.1:${SIPD_PORT[main]};maddr=192.0.2.1" --expect 407 2>&1) || why+=("maddr elsewhere: $out")
	out=$("${UA[@]}" request --port "${SIPD_PORT[main]}" --method OPTIONS \
		--ruri "sip:127.0.0.1:${SIPD_PORT[main]};maddr=127.0.0.1" --expect 200 --expect-header '^Allow: .*INVITE' 2>&1) ||
		why+=("maddr of sipd's: $out")
	case_result "RFC 3261 16.4, 16.5 for a request without a user part: OPTIONS sip:127.0.0.1:<sipd's port>;maddr=192.0.2.1 goes to the maddr, so it is relayed as for another domain (alice, of sipd's domain, is challenged: 407) rather than answered by sipd; with maddr=127.0.0.1 (sipd's own, taken off) sipd answers it itself: 200 with Allow" "${why[@]}"

	why=()
	long=$(printf 'x%.0s' {1..600})
	out=$("${UA[@]}" request --port "${SIPD_PORT[main]}" --method OPTIONS --ruri "sip:bob@example.test;p=$long" \
		--expect 414 2>&1) || why+=("$out")
	case_result "a Request-URI for another domain that [limits] max_request_uri_length (1024) lets in but a forwarded target cannot hold whole (over 511 bytes): 414 'Request-URI too long to forward', never sent on cut" "${why[@]}"

	# ---- SRV failover ----
	why=()
	uas live "$UAS_LIVE" SIPD_PORT="${SIPD_PORT[main]}" RURI_RE='sip:bob@failover\.test' \
		CONTACT_HOST=127.0.0.1 CONTACT_HOST_RE='127\.0\.0\.1' || why+=("SIPp UAS did not start")
	call failover main --ruri sip:bob@failover.test --expect 200 --max 3 || why+=("caller: $CALL_OUT")
	uas_wait || why+=("$UAS_WHY")
	dns_asked 'query\[NAPTR\] failover\.test' || why+=("no NAPTR question for failover.test")
	dns_asked 'query\[SRV\] _sip\._udp\.failover\.test' || why+=("no SRV question for _sip._udp.failover.test")
	grep -q 'next hop 1 of 2 answered 503.*trying the next (RFC 3263 4.3)' "$WORK/main.err" ||
		why+=("sipd did not log the failover from the dead target")
	case_result "RFC 3263 4.3 / RFC 2782: no NAPTR for failover.test, so SRV _sip._udp; the priority-10 target (a port where nothing listens) answers ICMP port unreachable, a transport error (503, 8.1.3.1), so the priority-20 target gets the INVITE as a new transaction and the call completes (${CALL_OUT#final })" "${why[@]}"

	# ---- RFC 3261 21.5.4: a next hop's 503 with Retry-After ----
	why=()
	rm -f "$WORK/busy.ready"
	"${DUA[@]}" busy --port "$BUSY_PORT" --ready "$WORK/busy.ready" --retry-after 6 --expect 2 --seconds 12 \
		>"$WORK/busy.out" 2>&1 &
	BUSY_PID=$!
	BG_PIDS+=($!)
	"${UA[@]}" bound --port "$BUSY_PORT" --wait 5 2>/dev/null || why+=("dnsua.py busy did not start")
	t_first=$(date +%s%N)
	for n in 1 2 3; do
		# the third call once the pause asked for (6 s from the first call's 503) is over
		[ "$n" = 3 ] && sleep "$(awk -v t="$t_first" -v now="$(date +%s%N)" 'BEGIN { s = 7.5 - (now - t) / 1e9; print (s > 0 ? s : 0) }')"
		uas "busy$n" "$UAS_LIVE" SIPD_PORT="${SIPD_PORT[main]}" RURI_RE='sip:bob@busy\.test' \
			CONTACT_HOST=127.0.0.1 CONTACT_HOST_RE='127\.0\.0\.1' || why+=("SIPp UAS $n did not start")
		call "busy$n" main --ruri sip:bob@busy.test --expect 200 --max 3 || why+=("call $n: $CALL_OUT")
		uas_wait || why+=("call $n: $UAS_WHY")
		if [ "$n" = 2 ]; then
			# paused.test has no other target: 500 at once, with what is left of the pause
			call paused main --ruri sip:bob@paused.test --expect 500 --max 1 \
				--expect-header '^Retry-After: [1-6]$' || why+=("paused.test: $CALL_OUT")
		fi
	done
	wait "$BUSY_PID" || why+=("$(cat "$WORK/busy.out")")
	grep -q "next hop UDP/127.0.0.1:$BUSY_PORT answered 503 with Retry-After; no new request goes to it for 6 s" \
		"$WORK/main.err" || why+=("sipd did not log the busy next hop's pause")
	grep -q "passing over next hop UDP/127.0.0.1:$BUSY_PORT: it answered 503" "$WORK/main.err" ||
		why+=("sipd did not log passing over the busy next hop")
	case_result "RFC 3261 21.5.4: _sip._udp.busy.test's priority-10 target answers 503 with Retry-After: 6; the call goes on to the priority-20 target (RFC 3263 4.3), and a second call right after goes there directly (no INVITE to the paused target), and a call to paused.test, whose only target it is, gets 500 at once with Retry-After: the seconds left; a third, 7.5 s after the first call began, tries the priority-10 target again first ($(cat "$WORK/busy.out"))" "${why[@]}"

	# ---- 18.1.1 for located next hops ----
	why=()
	uas_big big "$UAS_BIG" TCP SIPD_PORT="${SIPD_PORT[main]}" RURI_RE="sip:bob@big\.test:$UAS_BIG" ||
		why+=("SIPp UAS (TCP) did not start")
	"${UA[@]}" sink --host 127.0.0.1 --port "$UAS_BIG" --seconds 4 --ready "$WORK/bigsink.ready" \
		>"$WORK/bigsink.out" 2>&1 &
	SINK_PID=$!
	BG_PIDS+=($!)
	for ((i = 0; i < 50; i++)); do [ -s "$WORK/bigsink.ready" ] && break; sleep 0.1; done
	call big main --ruri "sip:bob@big.test:$UAS_BIG" --pad 30 --expect 486 --max 3 || why+=("caller: $CALL_OUT")
	uas_wait || why+=("$UAS_WHY")
	wait "$SINK_PID" || why+=("the UDP side of big.test:$UAS_BIG: $(head -1 "$WORK/bigsink.out")")
	dns_asked 'query\[A\] big\.test' || why+=("dnsmasq never saw an A question for big.test")
	dns_asked 'query\[(NAPTR|SRV)\] .*big\.test' &&
		why+=("NAPTR or SRV asked for big.test, though the URI has a port")
	case_result "RFC 3261 18.1.1 / RFC 3263 4.1: a large INVITE (over 1300 bytes) for sip:bob@big.test:<port> (a name with a port: A only, UDP by default, no transport named) goes over TCP to the located address: the SIPp UAS on TCP gets it whole (sipd's Via says TCP), its 486 is ACKed over TCP and relayed; the UDP side gets nothing" "${why[@]}"

	why=()
	uas_big big-udp "$UAS_BIG" UDP SIPD_PORT="${SIPD_PORT[main]}" RURI_RE="sip:bob@big\.test:$UAS_BIG" ||
		why+=("SIPp UAS (UDP) did not start")
	call big-udp main --ruri "sip:bob@big.test:$UAS_BIG" --pad 30 --expect 486 --max 3 || why+=("caller: $CALL_OUT")
	uas_wait || why+=("$UAS_WHY")
	grep -qE 'goes over UDP \(18\.1\.1\)|located next hop TCP/127\.0\.0\.1:'"$UAS_BIG"' failed' "$WORK/main.err" ||
		why+=("sipd did not log the refused TCP attempt")
	case_result "RFC 3261 18.1.1: the same large INVITE when big.test:<port> takes no TCP (the connection is refused): sipd sends it to the same address over UDP after all (sipd's Via says UDP), the 486 is relayed" "${why[@]}"

	why=()
	uas_big naptr-big "$UAS_NAPTR" UDP SIPD_PORT="${SIPD_PORT[main]}" RURI_RE='sip:bob@example\.test' ||
		why+=("SIPp UAS did not start")
	call naptr-big main --ruri sip:bob@example.test --pad 30 --expect 486 --max 3 || why+=("caller: $CALL_OUT")
	uas_wait || why+=("$UAS_WHY")
	case_result "RFC 3263 4.1: a large INVITE for sip:bob@example.test, whose NAPTR names SIP+D2U only, keeps UDP (the transport the domain published, as transport=udp would): the SIPp UAS on UDP gets it whole (sipd's Via says UDP) and its 486 is relayed" "${why[@]}"

	# ---- transport=tcp in the URI (4.1), SRV "." (RFC 2782), a NAPTR naming only SCTP ----
	why=()
	uas_big tcponly "$UAS_TCP" TCP SIPD_PORT="${SIPD_PORT[main]}" RURI_RE='sip:bob@tcponly\.test;transport=tcp' ||
		why+=("SIPp UAS (TCP) did not start")
	call tcponly main --ruri 'sip:bob@tcponly.test;transport=tcp' --pad 30 --expect 486 --max 3 ||
		why+=("caller: $CALL_OUT")
	uas_wait || why+=("$UAS_WHY")
	dns_asked 'query\[SRV\] _sip\._tcp\.tcponly\.test' || why+=("no SRV question for _sip._tcp.tcponly.test")
	dns_asked 'query\[NAPTR\] tcponly\.test' && why+=("a NAPTR question for tcponly.test, though the URI names its transport")
	dns_asked 'query\[SRV\] _sip\._udp\.tcponly\.test' && why+=("an SRV question for UDP, though the URI says TCP")
	case_result "RFC 3263 4.1: sip:bob@tcponly.test;transport=tcp (a name, no port, the transport given): no NAPTR question, SRV for _sip._tcp only, the INVITE goes over TCP to the SRV target's port (sipd's Via says TCP) and the UAS's 486 is relayed" "${why[@]}"

	why=()
	call nosip main --ruri sip:bob@nosip.test --expect 404 --reason 'Next hop not found in DNS' --max 3 ||
		why+=("$CALL_OUT")
	dns_asked 'query\[SRV\] _sip\._udp\.nosip\.test' || why+=("no SRV question for _sip._udp.nosip.test")
	dns_asked 'query\[SRV\] _sip\._tcp\.nosip\.test' || why+=("no SRV question for _sip._tcp.nosip.test: the \".\" of UDP says nothing of TCP")
	dns_asked 'query\[A\] nosip\.test' && why+=("an A question for nosip.test, though an SRV said the service is not offered")
	case_result "RFC 2782: the only SRV of _sip._udp.nosip.test has the target \".\" (that service is decidedly not offered there), TCP has none: 404 Next hop not found in DNS at once, after the TCP SRV question (4.1: one per transport) and without falling back to the domain's A record" "${why[@]}"

	why=()
	call sctp main --ruri sip:bob@sctp.test --expect 502 --reason 'No usable transport' --max 3 || why+=("$CALL_OUT")
	dns_asked 'query\[NAPTR\] sctp\.test' || why+=("no NAPTR question for sctp.test")
	dns_asked 'query\[SRV\] .*sctp\.test' && why+=("an SRV question for sctp.test, though its NAPTR names no transport sipd has")
	case_result "RFC 3263 4.1: the NAPTR of sctp.test names SIP+D2S (SCTP) only, which sipd does not do: 502 No usable transport to the next hop, no SRV question" "${why[@]}"

	# RFC 3261 19.1, RFC 3263 4.1: a numeric host does not make sips: or transport=tls/sctp plain UDP
	why=()
	for uri in 'sips:bob@127.0.0.3:5999' 'sip:bob@127.0.0.3:5999;transport=tls' 'sip:bob@127.0.0.3:5999;transport=sctp'; do
		call "numeric-${uri%%:*}" main --ruri "$uri" --expect 502 --reason 'No usable next hop' --max 3 ||
			why+=("$uri: $CALL_OUT")
	done
	case_result "RFC 3261 19.1 / RFC 3263 4.1: sips:bob@127.0.0.3:5999, ;transport=tls and ;transport=sctp (an address, no DNS): 502 No usable next hop, never sent in clear over UDP" "${why[@]}"

	# ---- a next hop sipd cannot send to at all ----
	why=()
	call nov6 main --ruri 'sip:bob@[2001:db8::5]:5060' --expect 500 --max 2 || why+=("$CALL_OUT")
	grep -q "proxy: branch to UDP failed: Address family not supported" "$WORK/main.err" ||
		why+=("no log line for the branch that could not leave")
	case_result "a next hop sipd cannot send to (sip:bob@[2001:db8::5], and sipd has no IPv6 listener): the send fails at once, a 503 of that branch (8.1.3.1), answered 500 (16.7 step 6)" "${why[@]}"

	# ---- NXDOMAIN ----
	why=()
	call nxdomain main --ruri sip:bob@nowhere.test --expect 404 --max 3 || why+=("$CALL_OUT")
	dns_asked 'query\[NAPTR\] nowhere\.test' || why+=("no NAPTR question for nowhere.test")
	case_result "a domain that does not exist (sip:bob@nowhere.test, NXDOMAIN): 404 Not Found at once" "${why[@]}"

	# ---- relaying ----
	why=()
	call relay main --ruri sip:bob@relay.test --frm mallory --from-host evil.test --no-auth --expect 403 --max 2 ||
		why+=("$CALL_OUT")
	dns_asked 'relay\.test' && why+=("dnsmasq was asked about relay.test")
	case_result "no open relay: From sip:mallory@evil.test (not sipd's user) to sip:bob@relay.test: 403 at once, no challenge, no DNS question" "${why[@]}"

	why=()
	call relay-as main --ruri sip:carol@example.test --frm bob --auth-user alice --expect 403 --max 2 ||
		why+=("$CALL_OUT")
	case_result "From sip:bob@sipd with alice's credentials to another domain: 403 (a user relays as themself only)" "${why[@]}"
fi

if start_sipd silent "${PORTS[1]}" <<EOF
[proxy]
outbound = users

[dns]
servers = 127.0.0.1:$SWALLOW_PORT
timeout = 1000
EOF
then
	why=()
	call timeout silent --ruri sip:bob@example.test --expect 504 --min 0.8 --max 4 || why+=("$CALL_OUT")
	case_result "a DNS server that never answers ([dns] timeout = 1000): 504 Server Time-out about 1 s after the INVITE (${CALL_OUT#final })" "${why[@]}"

	why=()
	call cancel silent --ruri sip:bob@failover.test --cancel-after 0.3 --expect 487 --max 0.9 || why+=("$CALL_OUT")
	case_result "CANCEL while the next hop is being located (DNS silent): 200 for the CANCEL, 487 for the INVITE at once, not after the DNS timeout (${CALL_OUT#final })" "${why[@]}"
fi

if start_sipd closed "${PORTS[2]}" <<EOF
[proxy]
outbound = none

[dns]
servers = 127.0.0.1:$DNS_PORT
EOF
then
	why=()
	call closed closed --ruri sip:bob@example.test --no-auth --expect 403 --max 2 || why+=("$CALL_OUT")
	case_result "[proxy] outbound = none: alice (sipd's user) to sip:bob@example.test: 403, no challenge" "${why[@]}"
fi

if [ "$HAVE_V6" = 1 ] && start_sipd v6 "${PORTS[3]}" <<EOF
[general]
listen = udp:[::1]:${PORTS[3]}

$MAIN_INI
EOF
then
	# v6_call "CALLEE OPTIONS" CALL OPTIONS...: the callee on udp:[::1]:UAS_V6 (127.0.0.1 with --family 4)
	# started, alice's call made;
	# why gets what failed on either side
	v6_call() {
		local opts=$1
		shift
		why=()
		rm -f "$WORK/v6.ready"
		# shellcheck disable=SC2086 # opts is a word list
		"${DUA[@]}" callee --port "$UAS_V6" --sipd-port "${PORTS[3]}" --ready "$WORK/v6.ready" $opts \
			>"$WORK/v6.out" 2>&1 &
		V6_PID=$!
		BG_PIDS+=($!)
		for ((i = 0; i < 50; i++)); do [ -s "$WORK/v6.ready" ] && break; sleep 0.1; done
		call v6 v6 "$@" --max 3 || why+=("caller: $CALL_OUT")
		wait "$V6_PID" || why+=("the callee: $(head -1 "$WORK/v6.out")")
	}
	why=()
	grep -q "running: 2 worker(s), udp:127.0.0.1:${PORTS[3]}, tcp:127.0.0.1:${PORTS[3]}, udp:\[::1\]:${PORTS[3]}\$" \
		"$WORK/v6.err" || why+=("start-up line: $(grep -m1 running "$WORK/v6.err")")
	case_result "sipd's start-up line names every listener (three here)" "${why[@]}"

	v6_call "" --ruri "sip:bob@v6.test:$UAS_V6" --expect 486
	dns_asked 'query\[AAAA\] v6\.test' || why+=("no AAAA question for v6.test")
	case_result "RFC 3263 4.2 over IPv6: sip:bob@v6.test:<port>, a name whose only address is ::1 (AAAA, no A): sipd, listening on [::1] too, sends the INVITE to udp:[::1]:<port>; the callee's 486 comes back, ACKed" "${why[@]}"

	v6_call "--answer 200" --ruri "sip:bob@v6.test:$UAS_V6" --expect 200 --expect-request INFO
	case_result "a call from IPv4 to IPv6 (AAAA only) answered: sipd's Via toward the callee names [::1] and its Record-Route is doubled, [::1] on top for the callee and 127.0.0.1 for the caller (RFC 5658); the caller's ACK and BYE and the callee's INFO cross sipd once each way, both Routes of sipd's taken off, each Via naming sipd's address of the next hop's family" "${why[@]}"

	v6_call "--answer 200 --register bob" --ruri "sip:bob@127.0.0.1:${PORTS[3]}" --expect 200 --expect-request INFO
	case_result "bob registered over IPv6 (Contact <sip:bob@[::1]:<port>>, sent to sipd at [::1]), called by alice over IPv4: Via and Record-Route as above, the ACK, the BYE and the INFO the same way" "${why[@]}"

	v6_call "--answer 200 --family 4" --v6 --ruri "sip:bob@big.test:$UAS_V6" --expect 200 --expect-request INFO
	case_result "the other way: alice calls over IPv6 (to sipd at [::1]) a name with only an A record (big.test): sipd's Via toward the callee names 127.0.0.1, its Record-Route 127.0.0.1 on top and [::1] below; ACK, BYE and the callee's INFO as above" "${why[@]}"
elif [ "$HAVE_V6" != 1 ]; then
	skip "RFC 3263 4.2 over IPv6 (AAAA only)" "::1 cannot be bound here"
fi

stop_all main silent closed v6
kill -TERM "$DNSMASQ_PID" "$SWALLOW_PID" 2>/dev/null
wait "$DNSMASQ_PID" "$SWALLOW_PID" 2>/dev/null
finish dns
