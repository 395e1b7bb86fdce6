#!/usr/bin/env bash
# run_sipp.sh SIPD: sipd's protocol behaviour against a live server, with SIPp scenarios
# (tests/sipp/scenarios/*.xml), raw messages sent by rawsip.py (tests/sipp/scenarios/*.sip) for what SIPp
# cannot express, and a sipsak smoke test.
#
# Starts four sipd instances, each with its own temporary config on free ports of 127.0.0.1:
#   main      the defaults, unrouted_delay_ms = 1000 (INVITEs ring 1 s before their 404: room for CANCEL)
#   limits    max_message_size = 2000, max_body_size = 100, accept_language = en, accept_encoding = gzip
#   overload  max_transactions = 2, unrouted_delay_ms = 5000
#   fault     SIPD_FAULT=txn_alloc
# The cases for users sipd does not have (404, 481, and the INVITEs that wait for it) send as
# sip:tester@client.example, a caller of another domain: one claiming sipd's own (its address) is asked
# for credentials (407) before its target is looked up (tests/scanner).
# Prints one PASS/FAIL line per case; at the end checks that every sipd is still alive, exits 0 on
# SIGTERM and printed no sanitizer report. Exits 1 if anything failed.
# KEEP=1 keeps the work directory (configs, sipd stderr, SIPp message logs) for a look afterwards.
set -u

SIPD=${1:?usage: run_sipp.sh /path/to/sipd}
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"
SCN=$HERE/scenarios
RAW=(python3 "$HERE/rawsip.py")

need_tools sipp sipsak python3
need_exec "$SIPD"
lib_init sipp

# ---- ports: 4 for sipd, the rest for SIPp's local UDP port ----
pick_ports 4 64 $((20000 + $$ % 10000)) "${RAW[@]}"

# ---- sipd instances: start_sipd NAME PORT [VAR=value...] < extra INI sections ----
SIPD_READY=("${RAW[@]}")
SIPD_LOG_LEVEL=warning
SIPD_ERR_LINES="head"

# ---- cases: sipp_case (lib.sh) and raw_case ----

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
	sipp_case "SUBSCRIBE NOTIFY MESSAGE INFO REFER UPDATE PRACK PUBLISH to sipd's own URI: 405 + Allow" main method_405_allow.xml
	raw_case "MESSAGE to sip:nobody@ (no such user): 404, as an INVITE gets (unrouted_code), not 405" main \
		raw_message_nobody.sip --expect 404
	# a user that does not exist: sipd is a proxy with an empty target set (16.3 checks, then 16.5's 404)
	raw_case "MESSAGE to sip:nobody@ with Require: foo and a gzip text/foo body: 404, no 420, no 415 (16.5, 8.2.2.1)" main \
		raw_nobody_uas_checks.sip --expect 404 --only
	raw_case "FOO to sip:nobody@: 404, not 501 (a proxy needs not know the method)" main \
		raw_nobody_unknown_method.sip --expect 404 --only
	raw_case "OPTIONS to sip:nobody@: 404, what an INVITE gets (RFC 3261 11), not 200" main \
		raw_nobody_options.sip --expect 404 --only
	raw_case "REGISTER whose To is isbn:2983792873: 400, no address of record (RFC 4475 3.3.4)" main \
		raw_register_to_isbn.sip --expect 400 --reason "To header field is not a SIP or SIPS URI" --only
	raw_case "INFO with a To tag to sip:nobody@: 481 (12.2.2)" main raw_nobody_in_dialog.sip --expect 481 --only
	raw_case "MESSAGE to sip:nobody@ with Proxy-Require: foo: 420 + Unsupported: foo (16.3 step 5 before 16.5)" main \
		raw_nobody_proxy_require.sip --expect 420 --header 'Unsupported~^foo$' --only
	sipp_case "unknown method FOO to sipd itself: 501" main unknown_501.xml
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
	sipp_case "OPTIONS to sipd with a text/plain body: 415 + Accept: application/sdp" main 415_accept.xml
	sipp_case "OPTIONS to sipd with Content-Encoding: gzip: 415 + Accept-Encoding: identity" main 415_accept_encoding.xml
	raw_case "received=127.0.0.1 and rport=<port> on the top Via (raw UDP, ;rport)" main raw_rport.sip \
		--expect 200 --header 'Via~^SIP/2\.0/UDP 192\.0\.2\.1:5062;' --header 'Via~;rport={lport}(;|$)' \
		--header 'Via~;received=127\.0\.0\.1(;|$)' --header 'Via~;branch=z9hG4bKraw'
	raw_case "no rport, a Via naming 192.0.2.1:<port2>: the answer goes to the source address at the sent-by port (18.2.2), received= added, no rport=" \
		main raw_norport.sip --second --expect 200 --header 'Via~^SIP/2\.0/UDP 192\.0\.2\.1:[0-9]+;branch=z9hG4bKraw[^;]*;received=127\.0\.0\.1$'
	raw_case "Via maddr=127.0.0.1 (with rport): the answer goes to maddr at the sent-by port, not to the source (18.2.2, RFC 3581 4)" \
		main raw_maddr.sip --second --expect 200 --header 'Via~;maddr=127\.0\.0\.1;' --header 'Via~;received=127\.0\.0\.1(;|$)'
	raw_case "TCP: the connection an INVITE came on is closed after its 100; the final 404 comes on a new connection to the received address at the Via's sent-by port (18.2.2)" \
		main raw_tcp_reconnect.sip --tcp --reconnect --timeout 4 --expect 404 --header 'Via~^SIP/2\.0/TCP 127\.0\.0\.1:'
	sipp_case "responses sent to sipd: no answer" main response_no_answer.xml
	sipp_case "ACKs matching nothing: no answer" main ack_no_answer.xml
	raw_case "unparseable start line: no answer (raw UDP)" main raw_garbage_start.sip --none --timeout 1
	# 7.3.1 and 18.3: a TCP stream is cut where the parser says a message ends
	raw_case "TCP: a folded Subject whose continuation line reads 'Content-Length: 0' frames nothing: one OPTIONS, one 200, its body (an OPTIONS) is never run" \
		main raw_tcp_folded_length.sip --tcp --expect 200 --header 'Call-ID~^raw' --only
	raw_case "TCP: two Content-Length fields: 400 naming them, then the connection is closed, the OPTIONS after them never run" \
		main raw_tcp_length_twice.sip --tcp --expect 400 --reason "Duplicate Content-Length header field" --header 'Call-ID~^raw' --closed
	raw_case "TCP: a Content-Length that is no number: 400 naming it, then the connection is closed, the OPTIONS after it never run" \
		main raw_tcp_length_junk.sip --tcp --expect 400 --reason "Malformed Content-Length header" --header 'Call-ID~^raw' --closed
	raw_case "TCP: no Content-Length, and a body that is an OPTIONS: 400 naming the defect, then the connection is closed, the OPTIONS in the body never run" \
		main raw_tcp_no_cl_smuggled.sip --tcp --expect 400 --reason "Missing Content-Length header field" --header 'Call-ID~^raw' --closed
	raw_case "420 whose Unsupported names a 1100-character unknown option tag whole (8.2.2.3; path is supported)" \
		main raw_require_long.sip --pad 1100 --expect 420 --header 'Unsupported~^x{1100}$'
	raw_case "MESSAGE to sipd with Require: foo, a text/plain body and Max-Forwards 0: 405 with Allow (8.2.1 first)" \
		main raw_method_first.sip --expect 405 --header 'Allow~^INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER$'
	raw_case "a text/plain body with Content-Disposition handling=optional: ignored, 200 (20.11)" main \
		raw_body_optional.sip --expect 200
	raw_case "an INVITE to sipd with a To tag (a dialog sipd does not have): 481 after its 100 (12.2.2)" main \
		raw_invite_in_dialog.sip --final --expect 481 --reason "Call/Transaction Does Not Exist"
fi

# ==== limits: small messages and bodies, a language ====
if start_sipd limits "${PORTS[1]}" <<'EOF'
[limits]
max_message_size = 2000
max_body_size = 100
[sip]
accept_language = en
accept_encoding = gzip
via_maddr = no
force_rport = nat
EOF
then
	sipp_case "513 to a 3000-byte UDP request (max_message_size 2000)" limits 513_udp.xml \
		-key pad "$(printf 'p%.0s' $(seq 2800))"
	raw_case "513 to a 3000-byte TCP request, then the connection closed" limits raw_tcp_513.sip --tcp \
		--pad 2900 --expect 513 --reason "Message Too Large" --header 'Server~^sipd/0\.1\.0$' --closed
	raw_case "513 to a TCP request whose header block has not ended when sipd stops reading it (a 200 kB field: no end in sipd's 64 kB reads), from the fields that arrived whole; then the connection closed" \
		limits raw_tcp_513_head.sip --tcp --pad 200000 --expect 513 --reason "Message Too Large" --closed
	raw_case "TCP: 413 to a 200-byte body (max_body_size 100), then the connection is closed (21.4.11, the seed)" \
		limits raw_tcp_413.sip --tcp --pad 200 --expect 413 --closed
	sipp_case "413 to a 200-byte body (max_body_size 100)" limits 413_body.xml
	sipp_case "OPTIONS to sipd with Content-Language: fr: 415 + Accept-Language: en" limits 415_accept_language.xml
	raw_case "415 naming all three causes: Accept, Accept-Encoding and Accept-Language (text/plain, br, fr)" \
		limits raw_415_all.sip --expect 415 --header 'Accept~^application/sdp$' \
		--header 'Accept-Encoding~^gzip$' --header 'Accept-Language~^en$'
	raw_case "Content-Encoding: IDENTITY where accept_encoding = gzip: no coding at all, always taken (RFC 9110 12.5.3): 200" \
		limits raw_identity_coding.sip --expect 200
	raw_case "Content-Language en-US where accept_language = en: the range takes the tag (20.3), 200" limits \
		raw_language_range.sip --expect 200
	raw_case "an ACK over max_message_size: no 513, nothing (UDP)" limits raw_ack_oversize.sip --pad 2900 --none \
		--timeout 1
	raw_case "[sip] via_maddr = no: a Via's maddr=127.0.0.1 is not followed, the answer goes to the source (rport)" \
		limits raw_maddr.sip --second-silent --expect 200 --header 'Via~;received=127\.0\.0\.1(;|$)'
	raw_case "[sip] force_rport = nat: no rport, a Via naming 192.0.2.1 (behind a NAT): answered at the source port, as if it had asked, the Via saying rport=<port> and received=" \
		limits raw_norport.sip --second-silent --expect 200 --header 'Via~;rport={lport};received=127\.0\.0\.1$'
	raw_case "[sip] force_rport = nat: no rport, a Via naming the source address at another port (no NAT): the sent-by port (18.2.2)" \
		limits raw_norport_here.sip --second --expect 200 --header 'Via~^SIP/2\.0/UDP 127\.0\.0\.1:[0-9]+;branch=z9hG4bKraw[^;]*$'
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

stop_all main limits overload fault
finish sipp
