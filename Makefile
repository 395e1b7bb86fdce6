# Thin wrapper over CMake/CTest; see README.md.
JOBS   ?= $(shell nproc 2>/dev/null || echo 2)
BUILD  ?= build
ASAN   ?= build-asan
FUZZ   ?= build-fuzz
PGO    ?= build-pgo
FUZZ_SECONDS ?= 60
SIPD_ARGS ?=

.PHONY: all build run test fuzz pgo bench check-valgrind check-tsan check-soak check-coverage clean

all: build

build:
	@tools/install-deps.sh build
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DSIPD_TESTS=OFF >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

run: build
	./$(BUILD)/sipd $(SIPD_ARGS)

# The release build first: it is what `make run` uses, and -O2 sees warnings -O0 does not.
test: build
	@tools/install-deps.sh test
	cmake -S . -B $(ASAN) -DCMAKE_BUILD_TYPE=Debug -DSIPD_SANITIZE=ON >/dev/null
	cmake --build $(ASAN) -j $(JOBS)
	cd $(ASAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --output-on-failure -j 1

fuzz:
	@tools/install-deps.sh fuzz
	CC=clang cmake -S . -B $(FUZZ) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSIPD_FUZZ=ON >/dev/null
	cmake --build $(FUZZ) -j $(JOBS)
	mkdir -p $(FUZZ)/corpus $(FUZZ)/corpus-digest $(FUZZ)/corpus-core $(FUZZ)/corpus-core-tcp \
		$(FUZZ)/corpus-core-auth
	./$(FUZZ)/fuzz_parser -max_total_time=$(FUZZ_SECONDS) -max_len=8192 \
		$(FUZZ)/corpus tests/fuzz/corpus
	./$(FUZZ)/fuzz_digest -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
		$(FUZZ)/corpus-digest tests/fuzz/corpus-digest
	./$(FUZZ)/fuzz_core -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
		$(FUZZ)/corpus-core tests/fuzz/corpus-core tests/torture/valid tests/torture/invalid
	./$(FUZZ)/fuzz_core_tcp -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
		$(FUZZ)/corpus-core-tcp tests/fuzz/corpus-core tests/torture/valid tests/torture/invalid
	./$(FUZZ)/fuzz_core_auth -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
		$(FUZZ)/corpus-core-auth tests/fuzz/corpus-core tests/torture/valid tests/torture/invalid

# The profile-guided build (tools/pgo.sh): the release build, trained on the benchmark's traffic.
pgo: build
	PGO_BUILD=$(PGO) JOBS=$(JOBS) tools/pgo.sh

bench: pgo
	bench/run.sh ./$(PGO)/sipd
	python3 bench/calls.py ./$(PGO)/sipd

check-valgrind:
	@tools/install-deps.sh test
	cmake -S . -B build-vg -DCMAKE_BUILD_TYPE=Debug >/dev/null
	cmake --build build-vg -j $(JOBS)
	cd build-vg && ctest -L unit -T memcheck --output-on-failure

# Every test (unit and live) against a ThreadSanitizer build: a data race fails the unit test that
# shows it (halt_on_error), and a live suite whose sipd printed one (tests/lib.sh).
check-tsan:
	@tools/install-deps.sh test
	cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSIPD_TSAN=ON >/dev/null
	cmake --build build-tsan -j $(JOBS)
	cd build-tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 ctest -L unit --output-on-failure
	cd build-tsan && TSAN_OPTIONS=second_deadlock_stack=1 ctest -LE unit --output-on-failure -j 1

# Which lines and branches the whole suite (unit and live) runs: a gcov build, every test, then
# gcovr's table per file of src/ and an HTML report in build-cov/coverage/. Live suites stop sipd
# with SIGTERM, so its counters reach the .gcda files; the kill -9 of the restart test loses only
# that process's.
check-coverage:
	@tools/install-deps.sh coverage
	cmake -S . -B build-cov -DCMAKE_BUILD_TYPE=Debug -DSIPD_COVERAGE=ON >/dev/null
	cmake --build build-cov -j $(JOBS)
	find build-cov -name '*.gcda' -delete
	cd build-cov && ctest --output-on-failure -j 1
	mkdir -p build-cov/coverage
	gcovr -r . --object-directory build-cov --filter src/ --exclude-unreachable-branches \
		--html-details build-cov/coverage/index.html --txt build-cov/coverage/summary.txt \
		--print-summary >/dev/null
	cat build-cov/coverage/summary.txt

# Hours of service in minutes: tests/soak/soak.py runs honest and hostile traffic at once against the
# release build (memory must stay flat after the warm-up), then against the sanitizer build (no report,
# no leak at exit), at half the rates. See docs/testing.md.
SOAK_SECONDS ?= 600
SOAK_ASAN_SECONDS ?= 300
check-soak: build
	@tools/install-deps.sh test
	cmake -S . -B $(ASAN) -DCMAKE_BUILD_TYPE=Debug -DSIPD_SANITIZE=ON >/dev/null
	cmake --build $(ASAN) -j $(JOBS) --target sipd
	python3 tests/soak/soak.py ./$(BUILD)/sipd --seconds $(SOAK_SECONDS)
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
		python3 tests/soak/soak.py ./$(ASAN)/sipd --seconds $(SOAK_ASAN_SECONDS) --scale 0.5

clean:
	rm -rf $(BUILD) $(ASAN) $(FUZZ) build-vg build-tsan build-cov
