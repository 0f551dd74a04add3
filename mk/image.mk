# Raspberry Pi appliance image (included by the Makefile). Slow (about 25
# minutes cold, root needed), so not part of `make test`; .ci/run runs it
# before `make test`. The debootstrap root is cached in .cache/image/.
# `make image-boot-test` boots a copy under qemu-system-aarch64 (full
# emulation, several boots) and prints what it measured.
.PHONY: image image-test image-boot-test image-deps

IMAGE := dist/edge-relay-arm64.img
IMAGE_DEB := dist/edge-relay_$(PKG_VERSION)_arm64.deb
IMAGE_INPUTS := scripts/build-image.sh scripts/image-deps.sh $(wildcard scripts/image/*.sh) \
	$(wildcard image/firstboot/*)

image-deps:
	@bash scripts/image-deps.sh

image: $(IMAGE)

$(IMAGE): $(IMAGE_DEB) $(IMAGE_INPUTS)
	bash scripts/build-image.sh

image-test: $(IMAGE) test-deps image-deps
	node --import tsx --test --test-concurrency=1 --test-timeout=600000 --test-force-exit --test-reporter=spec $(sort $(wildcard test/image/*.test.ts))

image-boot-test: $(IMAGE) test-deps image-deps
	node --import tsx --test --test-concurrency=1 --test-timeout=3600000 --test-force-exit --test-reporter=spec test/image-boot/boot.test.ts
