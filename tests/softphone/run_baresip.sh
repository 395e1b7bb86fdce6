#!/usr/bin/env bash
# run_baresip.sh SIPD: real softphones through sipd. Four baresip instances (Debian package baresip-core,
# driven through its ctrl_tcp module by phones.py) register with MD5 digest, over UDP (alice, bob, dave)
# and TCP (carol), and call each other through sipd's proxy: answered calls with media flowing between the
# phones, hang-up from either side, hold and resume, a blind transfer, CANCEL while ringing, 486 from the
# callee, OPTIONS to a phone, TCP to UDP and back, 480
# for a user with no binding, 404 for no such user, a wrong password, and unregistering on quit. What was
# stored is read with sipctl; the call records from sipd's log.
#
# Two sipd instances on free ports of 127.0.0.1, both with the default auth_calls = yes (INVITEs from
# sipd's users are challenged with 407) and record_route = yes:
#   main  [auth] algorithms = MD5 (libre, baresip's SIP stack, takes every challenge of a realm as its own
#         and knows MD5 only: two challenges, whatever their order, fail it), min_expires 10 (ivan's
#         phone registers for 20 s and refreshes); users alice, bob, carol, dave, erin, ivan (password secret)
#   dual  the default algorithms (SHA-256, MD5); users frank and grace, whose phones fail on the two
#         challenges, ask again (libre retries after 30 to 60 s) and get MD5 alone from then on
# Prints one PASS/FAIL line per case; at the end checks that sipd is still alive, exits 0 on SIGTERM and
# printed no sanitizer report. Exits 1 if anything failed.
# KEEP=1 keeps the work directory (config, database, sipd stderr, each phone's SIP trace) for a look afterwards.
set -u

SIPD=${1:?usage: run_baresip.sh /path/to/sipd}
SIPCTL=$(dirname "$SIPD")/sipctl
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"
RC=(python3 "$HERE/../registrar/regclient.py")

need_tools baresip python3
need_exec "$SIPD"
need_exec "$SIPCTL" "build the sipctl target"
lib_init softphone

# ---- ports: the first and the last for sipd, two per phone (SIP, control); baresip also binds SIP + 1
# for TLS ----
pick_ports 1 40 $((20000 + $$ % 10000)) "${RC[@]}"
PHONE_PORTS=()
for ((i = 1; i + 3 < NPORTS; i += 4)); do
	# SIP port, control port; skip the next SIP port + 1 (TLS) by taking ports 4 apart
	PHONE_PORTS+=("${PORTS[$i]}" "${PORTS[$((i + 2))]}")
done

SIPD_READY=("${RC[@]}")
SIPD_ROLE=" for softphones"
SIPD_INI_PRE=$'[auth]\nalgorithms = MD5\n\n[registrar]\nmin_expires = 10\n\n'
T0=$(date +%s)

if start_sipd main "${PORTS[0]}" <<'EOF2'
[proxy]
record_route = yes

[user alice]
password = secret

[user bob]
password = secret

[user carol]
password = secret

[user dave]
password = secret

[user erin]
password = secret

[user ivan]
password = secret
EOF2
then
	SIPD_INI_PRE=
	start_sipd dual "${PORTS[$((NPORTS - 1))]}" <<'EOF2'
[user frank]
password = secret

[user grace]
password = secret
EOF2
fi
if [ -n "${SIPD_PID[main]:-}" ] && [ -n "${SIPD_PID[dual]:-}" ]; then
	while IFS= read -r line; do
		case $line in
		"PASS "*) pass "${line#PASS }" ;;
		"FAIL "*)
			name=${line#FAIL }
			fail "${name%%: *}" "${name#*: }"
			;;
		*) echo "$line" ;;
		esac
	done < <(timeout 300 python3 "$HERE/phones.py" run --port "${PORTS[0]}" --sipctl "$SIPCTL" \
		--config "$WORK/main.ini" --log "$WORK/main.err" --work "$WORK" \
		--ports "$(IFS=,; echo "${PHONE_PORTS[*]}")" \
		--dual-port "${PORTS[$((NPORTS - 1))]}" --dual-config "$WORK/dual.ini" --dual-log "$WORK/dual.err" 2>&1)
fi

stop_all main dual
finish softphone
