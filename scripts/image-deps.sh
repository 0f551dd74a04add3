#!/usr/bin/env bash
# Installs the tools `make image`, `make image-test` and `make image-boot-test`
# need, only when missing.
# Non-interactive; everything comes from Debian's package mirror.
set -euo pipefail
need=()
command -v debootstrap >/dev/null || [ -x /usr/sbin/debootstrap ] || need+=(debootstrap)
command -v qemu-aarch64-static >/dev/null || need+=(qemu-user-static)
command -v update-binfmts >/dev/null || [ -x /usr/sbin/update-binfmts ] || need+=(binfmt-support)
command -v mcopy >/dev/null || need+=(mtools)
command -v mkfs.vfat >/dev/null || [ -x /usr/sbin/mkfs.vfat ] || need+=(dosfstools)
command -v mkfs.ext4 >/dev/null || [ -x /usr/sbin/mkfs.ext4 ] || need+=(e2fsprogs)
command -v sfdisk >/dev/null || [ -x /usr/sbin/sfdisk ] || need+=(fdisk)
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v dpkg-deb >/dev/null || need+=(dpkg)
command -v flock >/dev/null || need+=(util-linux)
# The boot test runs the image under full system emulation
command -v qemu-system-aarch64 >/dev/null || need+=(qemu-system-arm)
command -v cpio >/dev/null || need+=(cpio)
# debootstrap checks the Release file signature with Debian's keys
[ -e /usr/share/keyrings/debian-archive-keyring.gpg ] || need+=(debian-archive-keyring)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
echo "Installing image tools: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
