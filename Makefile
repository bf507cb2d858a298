# replfs — two commands do everything on a fresh Debian 12 machine, as root:
#   make demo    install what is needed, build, run the embedded demo
#   make test    install what is needed, build, run the whole suite (ends "N passed, N failed")
# Other targets: make setup | build | native | test-asan | bench | faults | fuzz | clean
#   make test TESTS="journal frame"   runs only test files whose path contains a word
#   BENCH_QUICK=1 make bench          shortened benchmark run (smaller sizes)

SHELL := /bin/bash
NODE  ?= node
TESTS ?=
NATIVE_DIR := src/native
NATIVE_SRC := $(wildcard $(NATIVE_DIR)/*.c $(NATIVE_DIR)/*.h) $(NATIVE_DIR)/binding.gyp
NODE_GYP   := $(NODE) $(dir $(shell readlink -f $$(command -v npm)))../node_modules/node-gyp/bin/node-gyp.js
GYP_FLAGS  := --nodedir=/usr --directory=$(NATIVE_DIR)
ASAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer

.PHONY: all setup build native native-asan test test-asan conformance demo bench clean install faults fuzz

all: build

# Runs scripts/setup.sh once; again only when it or the package files change.
setup: .setup-stamp
.setup-stamp: scripts/setup.sh package.json package-lock.json
	bash scripts/setup.sh
	@touch $@

# The native core: a Node addon (node-gyp) at src/native/build/Release/replfs_core.node.
native: $(NATIVE_DIR)/build/Release/replfs_core.node
$(NATIVE_DIR)/build/Release/replfs_core.node: $(NATIVE_SRC) | setup
	$(NODE_GYP) configure $(GYP_FLAGS) >/dev/null
	$(NODE_GYP) build $(GYP_FLAGS) -j 2 >/dev/null
	@touch $@

# The same core built with AddressSanitizer and UBSan, beside the normal one.
native-asan: $(NATIVE_DIR)/build-asan/replfs_core.node
$(NATIVE_DIR)/build-asan/replfs_core.node: $(NATIVE_SRC) | setup
	cp -r $(NATIVE_DIR) /tmp/replfs-native-asan.$$$$ && \
	  d=/tmp/replfs-native-asan.$$$$ && rm -rf $$d/build && \
	  REPLFS_NATIVE_FLAGS="$(ASAN_FLAGS)" $(NODE_GYP) rebuild --nodedir=/usr --directory=$$d -j 2 >/dev/null && \
	  mkdir -p $(NATIVE_DIR)/build-asan && cp $$d/build/Release/replfs_core.node $@ && rm -rf $$d

build: setup native
	npx tsc -p .

test: build
	$(NODE) scripts/run-tests.mjs $(TESTS)

# The filesystem, crash and native tests against the ASan/UBSan build of the core, preloaded
# into node. Leak checking is off here (node itself is not instrumented and keeps what it
# allocates): leaks are checked on the standalone harnesses, which run the same C code.
test-asan: build native-asan
	REPLFS_NATIVE=$(CURDIR)/$(NATIVE_DIR)/build-asan/replfs_core.node \
	  LD_PRELOAD="$$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libubsan.so)" \
	  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  $(NODE) scripts/run-tests.mjs fs/ native

# The seeded fault campaign (scripts/faults.mjs): FAULT_SEED=S reproduces, FAULT_RUNS=N, SOAK=1.
faults: build
	$(NODE) scripts/faults.mjs

# The seeded network fuzzer against a live `serve` (scripts/fuzz.mjs): FUZZ_SEED=S reproduces,
# FUZZ_FRAMES=N frames (default 20000).
fuzz: build
	$(NODE) scripts/fuzz.mjs

# All of pjdfstest on a plain mount and on a replicating primary (the suite runs a part of it).
conformance: build
	PJDFSTEST_FULL=1 PJDFSTEST_PAIR=1 $(NODE) scripts/run-tests.mjs --timeout 7200 conformance

demo: build
	$(NODE) dist/cli.js demo

bench: build
	bash scripts/bench.sh

install: build
	chmod +x dist/cli.js
	ln -sf $(CURDIR)/dist/cli.js /usr/local/bin/replfs

clean:
	rm -rf dist .setup-stamp $(NATIVE_DIR)/build $(NATIVE_DIR)/build-asan
