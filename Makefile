# edge-relay — see README.md
SHELL := /bin/bash
NODE_MODULES := node_modules/.package-lock.json
# package.json holds the version; the packages, the image and the executable take it from there
PKG_VERSION := $(shell node -p 'require("./package.json").version' 2>/dev/null)
UNIT_TESTS = $(sort $(wildcard test/unit/*.test.ts))
E2E_TESTS = $(sort $(wildcard test/e2e/*.test.ts))
NODE_TEST := node --import tsx --test --test-timeout=240000 --test-force-exit --test-reporter=spec

.PHONY: all build run check typecheck lint format format-check unit e2e e2e-deps test test-deps bench binary clean

all: build

$(NODE_MODULES): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

# Incremental: the build info lives in build/, so `make clean` also forgets it
build: $(NODE_MODULES)
	npx tsc -p tsconfig.json --incremental --tsBuildInfoFile build/.tsbuildinfo

# make run keeps what the admin page saves in a config file of its own (git-ignored, like data/)
RUN_CONFIG := data/config.json

run: build
	@test -f $(RUN_CONFIG) || { mkdir -p data && (umask 077 && echo '{}' > $(RUN_CONFIG)) && echo "Created $(RUN_CONFIG): settings saved on the admin page are kept there"; }
	bin/edge-relay serve --config $(RUN_CONFIG)

test-deps:
	@bash scripts/test-deps.sh

# The quick gate (under two minutes): types, lint, layout, unit tests, two at a time
check:
	@$(MAKE) --no-print-directory -j2 --output-sync=target typecheck lint format-check unit

typecheck: build
	npx tsc -p tsconfig.test.json --incremental --tsBuildInfoFile .cache/tsc-test.tsbuildinfo

lint: $(NODE_MODULES)
	npx eslint .

format-check: $(NODE_MODULES)
	npx prettier --check --log-level warn .

format: $(NODE_MODULES)
	npx prettier --write --log-level warn .

unit: build
	$(NODE_TEST) --test-concurrency=2 $(UNIT_TESTS)

# The end-to-end tests run on the Node the single executable ships (pinned in
# scripts/build-binary.sh), and so do the relays they start (process.execPath)
SHIPPED_NODE = $$(bash scripts/build-binary.sh --host-node) || { echo "make: the pinned Node for the tests is missing and could not be fetched from the npm registry (see scripts/build-binary.sh)" >&2; exit 1; }
define on_shipped_node
	node=$(SHIPPED_NODE); echo "Tests on $$node"; PATH="$$(dirname "$$node"):$$PATH" $(1)
endef

e2e-deps: build test-deps binary deb

e2e: e2e-deps
	$(call on_shipped_node,$(NODE_TEST) --test-concurrency=2 $(E2E_TESTS))

# Everything: the static checks, then unit and e2e tests in one run, so the
# run ends with one summary that counts every test
test: typecheck lint format-check e2e-deps
	$(call on_shipped_node,$(NODE_TEST) --test-concurrency=2 $(UNIT_TESTS) $(E2E_TESTS))

# Packaging, benchmarks and soak targets live in their own files
-include mk/*.mk

clean:
	rm -rf build dist .cache/tsc-test.tsbuildinfo
