#!/usr/bin/env bash
# Builds the Raspberry Pi appliance image dist/edge-relay-arm64.img:
#   1. scripts/image/rootfs.sh     minimal Debian 12 arm64 root, kernel, Pi firmware (cached)
#   2. scripts/image/customize.sh  a copy with our package, hostname, network, first-boot unit
#   3. scripts/image/assemble.sh   boot (FAT) + root (ext4) partitions and an MBR, no loop mounts
# Needs root (debootstrap, chroot) and the tools from scripts/image-deps.sh.
# Only Debian's package mirror is contacted.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
. scripts/image/lib.sh

[ "$(id -u)" = 0 ] || die "Must run as root (debootstrap and chroot)"
version=$(node -p 'require("./package.json").version')
deb="dist/edge-relay_${version}_arm64.deb"
[ -f "$deb" ] || die "Missing \"$deb\": run make deb first"

bash scripts/image-deps.sh
ensure_binfmt
work=dist/.image
stage="$work/root"
unmount_under "$stage"
rm -rf "$work"
mkdir -p "$work"

base=$(bash scripts/image/rootfs.sh)
log "copying the base root"
cp -a "$base/." "$stage"
rm -f "$stage/.complete"
bash scripts/image/customize.sh "$stage" "$deb"
bash scripts/image/assemble.sh "$stage" "$work" dist/edge-relay-arm64.img
# The staged root (~850 MB) is in the image now; on failure it stays for a look
rm -rf "$work"
