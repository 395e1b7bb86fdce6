#!/bin/sh
# pgo.sh: the profile-guided release build of sipd and sipctl (make pgo), in $PGO_BUILD (build-pgo).
#
# 1. A release build (-O2, LTO) instrumented with -fprofile-generate.
# 2. That sipd runs the benchmark's traffic once, over loopback: REGISTER with digest credentials
#    and refreshes, OPTIONS (bench/run.sh --train), then proxied calls (bench/calls.py, one round,
#    sipd only). Each run ends with SIGTERM, on which sipd writes its profile (.gcda files).
# 3. The same build again with -fprofile-use: GCC lays out the hot paths together and predicts their
#    branches from the profile. -fprofile-partial-training optimizes what the training never ran as
#    it would without a profile, not for size.
#
# About 2 minutes. Needs SIPp (installed as for make bench). make bench measures this binary.
set -eu
cd "$(dirname "$0")/.."
B=${PGO_BUILD:-build-pgo}
J=${JOBS:-$(nproc 2>/dev/null || echo 2)}
case $B in /*) bin=$B/sipd ;; *) bin=./$B/sipd ;; esac

tools/install-deps.sh bench
rm -rf "$B"
cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=Release -DSIPD_TESTS=OFF \
	-DCMAKE_C_FLAGS="-fprofile-generate -fprofile-update=atomic" >/dev/null
cmake --build "$B" -j "$J" --target sipd sipctl

scratch=$(mktemp -d "${TMPDIR:-/tmp}/sipd-pgo.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
BENCH_RESULTS="$scratch" bench/run.sh --train "$bin"
CALLS_ROUNDS=1 CALLS_LADDER="" CALLS_SERVERS=sipd CALLS_MEM_MODES="" CALLS_RESULTS="$scratch" \
	python3 bench/calls.py "$bin"
n=$(find "$B" -name '*.gcda' | wc -l)
if [ "$n" -eq 0 ]; then
	echo "pgo: the training wrote no profile" >&2
	exit 1
fi
echo "pgo: $n profile files; building with them" >&2

cmake -S . -B "$B" -DCMAKE_C_FLAGS="-fprofile-use -fprofile-partial-training -Wno-missing-profile" >/dev/null
cmake --build "$B" -j "$J" --target sipd sipctl
echo "pgo: $bin" >&2
