# replfs — two commands do everything on a fresh Debian 12 machine, as root:
#   make demo    install what is needed, build, run the embedded demo
#   make test    install what is needed, build, run the whole suite (ends "N passed, N failed")
# Other targets: make setup | build | bench | clean
#   make test TESTS="journal frame"   runs only test files whose path contains a word
#   BENCH_QUICK=1 make bench          shortened benchmark run (smaller sizes)

SHELL := /bin/bash
NODE  ?= node
TESTS ?=

.PHONY: all setup build test demo bench clean install

all: build

# Runs scripts/setup.sh once; again only when it, the package files or the fuse-native patch change.
setup: .setup-stamp
.setup-stamp: scripts/setup.sh package.json package-lock.json scripts/patch-fuse-native.mjs
	bash scripts/setup.sh
	@touch $@

build: setup
	npx tsc -p .

test: build
	$(NODE) scripts/run-tests.mjs $(TESTS)

demo: build
	$(NODE) dist/cli.js demo

bench: build
	bash scripts/bench.sh

install: build
	chmod +x dist/cli.js
	ln -sf $(CURDIR)/dist/cli.js /usr/local/bin/replfs

clean:
	rm -rf dist .setup-stamp
