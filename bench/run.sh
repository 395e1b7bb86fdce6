#!/bin/bash
# sipd benchmark: SIPp over UDP against sipd, Kamailio and a trivial UDP
# responder (SIPp's ceiling). See docs/benchmark.md.
#
#   bench/run.sh [./build/sipd]              OPTIONS, then REGISTER (make bench)
#   bench/run.sh --options [./build/sipd]    OPTIONS: max rate + CPU µs/request
#   bench/run.sh --register [./build/sipd]   REGISTER with digest auth vs Kamailio
#                                            (memory and auth_db/SQLite set-ups),
#                                            + sipd's memory with 100 000 bindings
#   bench/run.sh --callgrind [./build/sipd]  instructions per OPTIONS under callgrind
#   bench/run.sh --register-callgrind [./build/sipd]
#                                            instructions per registration under
#                                            callgrind, sipd vs Kamailio's fastest set-up
#                                            (BENCH_REG_CG_REFRESH=1: refreshes of every
#                                            user's binding in random order)
#   bench/run.sh --train ./build-pgo/sipd    REGISTER and OPTIONS traffic once, to train a
#                                            -fprofile-generate build (tools/pgo.sh)
#
# Results: Markdown on stdout and in bench/results/latest.md (OPTIONS),
# register.md (REGISTER), callgrind.md, register-callgrind.md,
# register-refresh-callgrind.md.
# Tunables (environment): BENCH_ROUNDS, BENCH_WORKERS, BENCH_LADDER,
# BENCH_STEP_SECONDS, BENCH_CPU_RATE, BENCH_CPU_SECONDS, BENCH_RECV_TIMEOUT_MS,
# BENCH_SERVERS, BENCH_REG_ROUNDS, BENCH_REG_USERS, BENCH_REG_LADDER,
# BENCH_REG_STEP_SECONDS, BENCH_REG_CPU_RATE, BENCH_REG_CPU_SECONDS,
# BENCH_REG_SERVERS, BENCH_REG_SYNC, BENCH_MEM_BINDINGS, BENCH_MEM_RATE,
# BENCH_CG_CALLS, BENCH_CG_RATE, BENCH_CG_SERVERS, BENCH_REG_CG_CALLS,
# BENCH_REG_CG_RATE, BENCH_REG_CG_SERVERS, BENCH_REG_CG_REFRESH, BENCH_KEEP.
set -u
here=$(cd "$(dirname "$0")" && pwd)

BENCH_WORK=$(mktemp -d "${TMPDIR:-/tmp}/sipd-bench.XXXXXX") || exit 1
export BENCH_WORK
py_pid=

cleanup() {
	trap - EXIT INT TERM HUP
	# bench.py kills what it started; this catches the case where it was
	# killed itself. Only the process groups it recorded are touched.
	[ -n "$py_pid" ] && kill -TERM "$py_pid" 2>/dev/null && wait "$py_pid" 2>/dev/null
	if [ -f "$BENCH_WORK/pids" ]; then
		while read -r pgid; do
			[ -n "$pgid" ] && kill -KILL -- "-$pgid" 2>/dev/null
		done < "$BENCH_WORK/pids"
	fi
	if [ -n "${BENCH_KEEP:-}" ]; then
		echo "bench: logs kept in $BENCH_WORK" >&2
	else
		rm -rf "$BENCH_WORK"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

python3 "$here/bench.py" "$@" &
py_pid=$!
wait "$py_pid"
rc=$?
py_pid=
exit "$rc"
