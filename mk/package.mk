# Packaging: single executables, Debian packages (included by the Makefile).
# Each output is rebuilt only when its inputs changed, so `make binary` and
# `make deb` are no-ops on an unchanged tree.
.PHONY: binary deb

BINARIES := dist/edge-relay-linux-x64 dist/edge-relay-linux-arm64
DEBS := dist/edge-relay_$(PKG_VERSION)_amd64.deb dist/edge-relay_$(PKG_VERSION)_arm64.deb
BINARY_INPUTS := $(shell find src -type f) package.json package-lock.json scripts/build-binary.sh
DEB_INPUTS := scripts/build-deb.sh image/edge-relay.service image/config.json \
	$(wildcard image/debian/*) $(shell find docs -type f \( -name '*.md' -o -name '*.png' \))

binary: $(BINARIES)

# One run makes both: the bundle and the blob are shared by the architectures
$(BINARIES) &: $(BINARY_INPUTS) | $(NODE_MODULES)
	bash scripts/build-binary.sh

deb: $(DEBS)

dist/edge-relay_$(PKG_VERSION)_amd64.deb: dist/edge-relay-linux-x64 $(DEB_INPUTS)
	bash scripts/build-deb.sh x64

dist/edge-relay_$(PKG_VERSION)_arm64.deb: dist/edge-relay-linux-arm64 $(DEB_INPUTS)
	bash scripts/build-deb.sh arm64
