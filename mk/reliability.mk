# Reliability: `make soak` (long fuzz / fault / load runs) and `make bench`
# (figures side by side with Postfix). Both are bounded and loopback-only.
.PHONY: soak

soak: build test-deps
	@bash test/soak/run.sh

bench: build
	@bash bench/run.sh
