#!/usr/bin/env bash
# run_live.sh: the live half of the torture suite. Starts sipd on a free loopback port with a
# throw-away config, sends every torture file over UDP (send.py checks each reply), then proves
# sipd survived (OPTIONS answered 200) and that it exits cleanly on SIGTERM.
# Usage: run_live.sh /path/to/sipd
set -u

SIPD=${1:?usage: run_live.sh /path/to/sipd}
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/sipd-torture.XXXXXX")
PID=""

cleanup() {
	if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
		kill -TERM "$PID" 2>/dev/null
		sleep 1
		kill -0 "$PID" 2>/dev/null && kill -KILL "$PID" 2>/dev/null
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

fail() {
	echo "run_live: FAIL: $*" >&2
	echo "---- last lines of the sipd log ($TMP/sipd.log) ----" >&2
	tail -n 40 "$TMP/sipd.log" >&2 2>/dev/null
	exit 1
}

[ -x "$SIPD" ] || fail "no sipd binary at $SIPD"
command -v python3 >/dev/null || fail "python3 is needed"

# A port free for both UDP and TCP on loopback, starting from 15000 + pid % 1000.
PORT=$(python3 - "$$" <<'PY'
import socket, sys
base = 15000 + int(sys.argv[1]) % 1000
for port in list(range(base, 16000)) + list(range(15000, base)):
    ok = True
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            ok = False
        finally:
            s.close()
    if ok:
        print(port)
        break
PY
)
[ -n "$PORT" ] || fail "no free port in 15000..15999"

cat > "$TMP/sipd.conf" <<CONF
[general]
listen = udp:127.0.0.1:$PORT, tcp:127.0.0.1:$PORT
workers = 2
log_level = warning

[database]
path = $TMP/sipd.db

[limits]
; below the UDP datagram limit so that invalid/513-*.sip can exceed it
max_message_size = 20000
CONF

"$SIPD" -c "$TMP/sipd.conf" >"$TMP/sipd.log" 2>&1 &
PID=$!

# Ready when it answers OPTIONS (10 s at most).
tries=0
until python3 "$HERE/send.py" --host 127.0.0.1 --port "$PORT" --ping >/dev/null 2>&1; do
	kill -0 "$PID" 2>/dev/null || fail "sipd exited during start-up"
	tries=$((tries + 1))
	[ "$tries" -ge 50 ] && fail "sipd does not answer OPTIONS on udp:127.0.0.1:$PORT"
	sleep 0.2
done
echo "run_live: sipd pid $PID on udp/tcp 127.0.0.1:$PORT"

python3 "$HERE/send.py" --host 127.0.0.1 --port "$PORT" "$HERE"
rc=$?

kill -0 "$PID" 2>/dev/null || fail "sipd died during the torture run"
python3 "$HERE/send.py" --host 127.0.0.1 --port "$PORT" --ping || fail "sipd no longer answers OPTIONS with 200"
[ "$rc" -eq 0 ] || fail "some torture messages got the wrong treatment (see FAIL lines above)"

# A clean exit on SIGTERM; a sanitizer report would make the exit status non-zero.
sigterm_wait "$PID" || fail "sipd still running 10 s after SIGTERM"
wait "$PID"
st=$?
PID=""
[ "$st" -eq 0 ] || fail "sipd exited with status $st after SIGTERM"
echo "run_live: PASS"
exit 0
