# edge-relay — see README.md
SHELL := /bin/bash
NODE_MODULES := node_modules/.package-lock.json
TEST_FILES = $(sort $(wildcard test/unit/*.test.ts) $(wildcard test/e2e/*.test.ts))

.PHONY: all build run test test-deps bench binary clean

all: build

$(NODE_MODULES): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

build: $(NODE_MODULES)
	npx tsc -p tsconfig.json

# make run keeps what the admin page saves in a config file of its own (git-ignored, like data/)
RUN_CONFIG := data/config.json

run: build
	@test -f $(RUN_CONFIG) || { mkdir -p data && (umask 077 && echo '{}' > $(RUN_CONFIG)) && echo "Created $(RUN_CONFIG): settings saved on the admin page are kept there"; }
	bin/edge-relay serve --config $(RUN_CONFIG)

test-deps:
	@bash scripts/test-deps.sh

test: build test-deps binary deb
	npx tsc -p tsconfig.test.json
	node --import tsx --test --test-concurrency=2 --test-timeout=240000 --test-force-exit --test-reporter=spec $(TEST_FILES)

# Packaging, benchmarks and soak targets live in their own files
-include mk/*.mk

clean:
	rm -rf build dist
