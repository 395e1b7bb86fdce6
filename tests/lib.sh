# shellcheck shell=bash disable=SC2317 # functions called by traps and runners
# lib.sh: the harness the live test runners (tests/*/run_*.sh) share. Sourced, never run:
#   . "$(dirname "$0")/../lib.sh"
# Not a test itself (CTest picks up tests/*/run_*.sh only).
#
#   need_tools TOOL...          FAIL setup + exit 1 unless every TOOL is on PATH
#   need_exec FILE [HINT]       FAIL setup + exit 1 unless FILE is executable
#   render_template SRC OUT KEY=VALUE...   SRC with each @KEY@ filled in, into OUT (fails on one left)
#   lib_init SUITE              WORK=$TMPDIR/sipd-SUITE.XXXXXX, sanitizer options, counters, EXIT trap
#                               (kills BG_PIDS and every SIPD_PID, calls cleanup_extra if defined,
#                               removes WORK unless KEEP=1)
#   pass NAME / fail NAME [WHY] / skip NAME [WHY]
#   pick_ports NRESERVED COUNT START FREEPORT-CMD...
#                               PORTS[0..COUNT-1]; the first NRESERVED for sipd, client_port hands out
#                               the others in turn (in CPORT)
#   start_sipd NAME PORT [VAR=value...] < extra INI sections
#   stop_sipd NAME              alive after the tests, exit 0 on SIGTERM, no sanitizer report on stderr
#   stop_all NAME...            stop_sipd for every NAME still started
#   sigterm_wait PID            SIGTERM, then up to 10 s for PID to go; 1 if it is still running
#   sanitizer_report FILE       0 if FILE holds a sanitizer report
#   sipp_case NAME INSTANCE SCENARIO [sipp options...]   one SIPp run against INSTANCE, scenario in $SCN
#   finish SUITE                the summary line; exits 1 if anything failed, else 0
#
# Set by the runner where it differs (before the calls that use it):
#   SIPD_READY=(cmd...)   readiness probe, called as "${SIPD_READY[@]}" ready --port P --wait 15
#   SIPD_LOG_LEVEL        log_level of the generated INI (info)
#   SIPD_ROLE             words in the start PASS line: "sipd starts$SIPD_ROLE and answers ..."
#   SIPD_INI_PRE          INI text between [general] and [database]
#   SIPD_INI_POST         INI text after [database], before the runner's own sections
#   SIPD_ERR_LINES        head or tail: which 40 lines of a failed sipd's stderr stop_sipd shows (tail)
#   SHOW_SKIPPED=1        the summary line counts skipped cases too

SANITIZER_RE='ERROR: AddressSanitizer|LeakSanitizer|runtime error:|WARNING: ThreadSanitizer'

need_tools() {
	local tool
	for tool in "$@"; do
		if ! command -v "$tool" >/dev/null; then
			echo "FAIL setup: $tool is not installed (tools/install-deps.sh test)"
			exit 1
		fi
	done
}

# render_template SRC OUT KEY=VALUE...: SRC with every @KEY@ replaced by VALUE, in the order given (a
# VALUE may hold a later @KEY@), into OUT; fails when a @NAME@ is left over
render_template() {
	local src=$1 out=$2 text kv
	shift 2
	text=$(<"$src")
	for kv in "$@"; do
		text=${text//"@${kv%%=*}@"/"${kv#*=}"}
	done
	if [[ $text =~ @[A-Z_]+@ ]]; then
		echo "render: ${src##*/} still holds ${BASH_REMATCH[0]}" >&2
		return 1
	fi
	printf '%s\n' "$text" >"$out"
}

need_exec() {
	[ -x "$1" ] || { echo "FAIL setup: $1 is not an executable${2:+ ($2)}"; exit 1; }
}

lib_init() {
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/sipd-$1.XXXXXX")
	export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
	export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
	export TSAN_OPTIONS=${TSAN_OPTIONS:-second_deadlock_stack=1}
	declare -gA SIPD_PID=() SIPD_PORT=()
	NPASS=0
	NSKIP=0
	NCASE=0
	FAILED=()
	BG_PIDS=()
	trap lib_cleanup EXIT
	trap 'exit 130' INT TERM
}

# shellcheck disable=SC2317 # called by the EXIT trap
lib_cleanup() {
	local name pid
	for pid in "${BG_PIDS[@]}"; do
		kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
	done
	for name in "${!SIPD_PID[@]}"; do
		pid=${SIPD_PID[$name]}
		kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
	done
	declare -F cleanup_extra >/dev/null && cleanup_extra
	if [ "${KEEP:-0}" = 1 ]; then
		echo "work directory kept: $WORK"
	else
		rm -rf "$WORK"
	fi
}

pass() {
	NPASS=$((NPASS + 1))
	printf 'PASS %s\n' "$1"
}

fail() {
	FAILED+=("$1")
	printf 'FAIL %s%s\n' "$1" "${2:+: $2}"
}

skip() {
	NSKIP=$((NSKIP + 1))
	printf 'SKIP %s%s\n' "$1" "${2:+: $2}"
}

# pick_ports NRESERVED COUNT START FREEPORT-CMD...: one client port per run, so that a late
# retransmission from sipd to an earlier run never lands in a later one
pick_ports() {
	local count=$2 start=$3
	NRESERVED=$1
	NPORTS=$count
	shift 3
	mapfile -t PORTS < <("$@" freeport --count "$count" --start "$start")
	if [ "${#PORTS[@]}" -lt "$count" ]; then
		echo "FAIL setup: not enough free ports"
		exit 1
	fi
	NEXT_PORT=$NRESERVED
}

client_port() {
	CPORT=${PORTS[$NEXT_PORT]}
	NEXT_PORT=$(((NEXT_PORT + 1 - NRESERVED) % (NPORTS - NRESERVED) + NRESERVED))
}

sigterm_wait() {
	local i
	kill -TERM "$1"
	for ((i = 0; i < 100; i++)); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	! kill -0 "$1" 2>/dev/null
}

sanitizer_report() {
	grep -qE "$SANITIZER_RE" "$1"
}

# start_sipd NAME PORT [VAR=value...] < extra INI sections ([general] and [database] come from here)
start_sipd() {
	local name=$1 port=$2 ini=$WORK/$1.ini
	shift 2
	{
		printf '[general]\nlisten = udp:127.0.0.1:%s, tcp:127.0.0.1:%s\nworkers = 2\nlog_level = %s\n\n' \
			"$port" "$port" "${SIPD_LOG_LEVEL:-info}"
		printf '%s' "${SIPD_INI_PRE:-}"
		printf '[database]\npath = %s/%s.db\n\n' "$WORK" "$name"
		printf '%s' "${SIPD_INI_POST:-}"
		cat
	} >"$ini"
	env "$@" "$SIPD" -c "$ini" >"$WORK/$name.out" 2>"$WORK/$name.err" &
	SIPD_PID[$name]=$!
	SIPD_PORT[$name]=$port
	if "${SIPD_READY[@]}" ready --port "$port" --wait 15 2>>"$WORK/$name.ready"; then
		pass "$name: sipd starts${SIPD_ROLE:-} and answers on udp/tcp 127.0.0.1:$port"
		return 0
	fi
	fail "$name: sipd did not start" "$(tail -5 "$WORK/$name.err" "$WORK/$name.ready" 2>/dev/null | tr '\n' ' ')"
	return 1
}

stop_sipd() {
	local name=$1 pid=${SIPD_PID[$1]} rc show=${SIPD_ERR_LINES:-tail}
	if ! kill -0 "$pid" 2>/dev/null; then
		wait "$pid"
		rc=$?
		fail "$name: sipd is still running after the tests" "it exited with status $rc"
		sed 's/^/    /' "$WORK/$name.err" | "$show" -40
		unset "SIPD_PID[$name]"
		return
	fi
	if ! sigterm_wait "$pid"; then
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
		sed 's/^/    /' "$WORK/$name.err" | "$show" -40
	elif sanitizer_report "$WORK/$name.err"; then
		fail "$name: no sanitizer report" "see below"
		sed 's/^/    /' "$WORK/$name.err" | head -60
	else
		pass "$name: sipd alive after the tests, exits 0 on SIGTERM, no sanitizer report"
	fi
}

stop_all() {
	local name
	for name in "$@"; do
		[ -n "${SIPD_PID[$name]:-}" ] && stop_sipd "$name"
	done
}

# sipp_case NAME INSTANCE SCENARIO [sipp options...]; CPORT is SIPp's local port afterwards
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
		return 0
	fi
	fail "$name" "sipp exit status $rc ($scn)"
	{
		grep -v 'Failed to delete FD from epoll' "$log.errors" 2>/dev/null | head -30
		[ -s "$log.errors" ] || tail -5 "$log.out"
		echo "--- messages:"
		tail -60 "$log.messages" 2>/dev/null
	} | sed 's/^/    /'
	return 1
}

finish() {
	local skipped=
	[ "${SHOW_SKIPPED:-0}" = 1 ] && skipped=", $NSKIP skipped"
	echo "$1 suite: $NPASS passed, ${#FAILED[@]} failed$skipped, $(($(date +%s) - T0)) s"
	if [ "${#FAILED[@]}" -ne 0 ]; then
		printf '  failed: %s\n' "${FAILED[@]}"
		exit 1
	fi
	exit 0
}
