#!/usr/bin/env bash
# The cached base root: a minimal Debian 12 arm64 system with the kernel and
# the Raspberry Pi firmware, made by debootstrap (second stage under qemu
# user-mode emulation). Only Debian's mirror is contacted.
#
# Usage: scripts/image/rootfs.sh   -> prints the cached root dir
# The cache key is a hash of this script (suite, mirror, package list), so
# editing any of them builds a fresh root; an unchanged one is reused.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/scripts/image/lib.sh"
. "$ROOT/scripts/image/layout.sh"

SUITE=bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# raspi-firmware lives in non-free-firmware; the rest is a bootable minimal
# system with DHCP networking, a network clock (the Pi has no RTC, and TLS
# to the upstream needs the right time), D-Bus (timedatectl, logind), sfdisk
# to grow the root partition and compressed swap in RAM for 1 GB boards
COMPONENTS=main,non-free-firmware
PACKAGES=systemd-sysv,udev,kmod,ifupdown,isc-dhcp-client,iproute2,iputils-ping,netbase,systemd-timesyncd,dbus,fdisk,systemd-zram-generator,procps,less,nano,libstdc++6
# Installed afterwards with update-initramfs diverted: inside debootstrap the
# initrd is made twice (kernel hook, then a trigger), ~18 min each under emulation
BOOT_PACKAGES="linux-image-arm64 raspi-firmware"

# The file systems (fstab) are part of the initrd, so the layout is in the key
key=$( { cat "$0" "$ROOT/scripts/image/layout.sh"; echo "$MIRROR"; } | sha256sum | cut -c1-16)
cache="$ROOT/.cache/image/rootfs-$key"
if [ -e "$cache/.complete" ]; then
  echo "$cache"
  exit 0
fi

ensure_binfmt
rm -rf "$cache" "$cache.partial"
mkdir -p "$(dirname "$cache")"
log "debootstrap $SUITE arm64 into $cache (a few minutes)"
# debootstrap mounts proc/sys itself for the second stage; a failure may leave them
trap 'unmount_under "$cache.partial"' EXIT
debootstrap --arch=arm64 --variant=minbase --components="$COMPONENTS" \
  --include="$PACKAGES" "$SUITE" "$cache.partial" "$MIRROR" >&2 ||
  die "debootstrap failed: see $cache.partial/debootstrap/debootstrap.log"
unmount_under "$cache.partial"
in_root() { bash "$ROOT/scripts/image/chroot.sh" "$cache.partial" "$@"; }
# Security fixes and point-release updates, at build time and for
# `apt update && apt upgrade` on the box
cat >"$cache.partial/etc/apt/sources.list" <<SOURCES
deb $MIRROR $SUITE main non-free-firmware
deb $MIRROR $SUITE-updates main non-free-firmware
deb http://security.debian.org/debian-security $SUITE-security main non-free-firmware
SOURCES
# The final file systems before the initrd is made: its fsck hook includes
# fsck, e2fsck and logsave only for the root named here (pass 1), so the root
# is checked (and repaired, fsck.repair=yes) at every boot before it is mounted
write_fstab "$cache.partial/etc/fstab"
# FSTYPE: for the root the fsck hook ignores fstab's type and probes the
# device, which a chroot does not have ("fsck not present" at every boot).
# gzip: the default zstd -19 is much slower under emulation, for ~30% less
mkdir -p "$cache.partial/etc/initramfs-tools/conf.d"
printf 'FSTYPE=ext4\nCOMPRESS=gzip\n' >"$cache.partial/etc/initramfs-tools/conf.d/edge-relay.conf"
log "kernel and firmware"
in_root dpkg-divert --quiet --local --rename --add /usr/sbin/update-initramfs
ln -s /bin/true "$cache.partial/usr/sbin/update-initramfs"
DEBIAN_FRONTEND=noninteractive in_root apt-get -qq update >&2
DEBIAN_FRONTEND=noninteractive in_root apt-get -qq upgrade -y >&2
DEBIAN_FRONTEND=noninteractive in_root apt-get -qq install -y --no-install-recommends $BOOT_PACKAGES >&2
rm "$cache.partial/usr/sbin/update-initramfs"
in_root dpkg-divert --quiet --local --rename --remove /usr/sbin/update-initramfs
log "initrd (a few minutes under emulation)"
kernel=$(basename "$(ls "$cache.partial"/boot/vmlinuz-* | sort -V | tail -n 1)")
in_root update-initramfs -c -k "${kernel#vmlinuz-}" >&2
[ -s "$cache.partial/boot/initrd.img-${kernel#vmlinuz-}" ] || die "No initrd made for ${kernel#vmlinuz-}"
gzip -dc "$cache.partial/boot/initrd.img-${kernel#vmlinuz-}" | cpio -it --quiet | grep -qx 'usr/sbin/e2fsck' || die "The initrd has no e2fsck: the root would go unchecked"
# Downloaded .debs are not needed in the image
rm -rf "$cache.partial"/var/cache/apt/archives/*.deb "$cache.partial"/var/lib/apt/lists/*_Packages
mv "$cache.partial" "$cache"
touch "$cache/.complete"
# Older roots (other keys) are dead weight
find "$ROOT/.cache/image" -maxdepth 1 -name 'rootfs-*' ! -name "rootfs-$key" -exec rm -rf {} +
echo "$cache"
