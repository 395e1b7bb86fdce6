# Thin wrapper over CMake/CTest; see README.md.
JOBS   ?= $(shell nproc 2>/dev/null || echo 2)
BUILD  ?= build
ASAN   ?= build-asan
FUZZ   ?= build-fuzz
FUZZ_SECONDS ?= 60
SIPD_ARGS ?=

.PHONY: all build run test fuzz bench check-valgrind clean

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
	mkdir -p $(FUZZ)/corpus
	./$(FUZZ)/fuzz_parser -max_total_time=$(FUZZ_SECONDS) -max_len=8192 \
		$(FUZZ)/corpus tests/fuzz/corpus

bench: build
	@tools/install-deps.sh bench
	bench/run.sh ./$(BUILD)/sipd
	python3 bench/calls.py ./$(BUILD)/sipd

check-valgrind:
	@tools/install-deps.sh test
	cmake -S . -B build-vg -DCMAKE_BUILD_TYPE=Debug >/dev/null
	cmake --build build-vg -j $(JOBS)
	cd build-vg && ctest -L unit -T memcheck --output-on-failure

clean:
	rm -rf $(BUILD) $(ASAN) $(FUZZ) build-vg
