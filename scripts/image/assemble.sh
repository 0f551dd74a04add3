#!/usr/bin/env bash
# Assembles a disk image from a finished root without loop mounts:
# /boot/firmware becomes a FAT32 partition (mkfs.vfat + mcopy), the rest an
# ext4 partition (mkfs.ext4 -d), both put in place with dd behind an MBR
# written by sfdisk. The firmware dir stays in the ext4 as an empty mount point.
#
# Usage: scripts/image/assemble.sh <root> <work dir> <output .img>
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/scripts/image/lib.sh"
. "$ROOT/scripts/image/layout.sh"

stage=${1:?Usage: assemble.sh <root> <work> <out>}
work=${2:?Usage: assemble.sh <root> <work> <out>}
out=${3:?Usage: assemble.sh <root> <work> <out>}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || echo 0)}

log "boot partition"
firmware="$work/firmware"
rm -rf "$firmware"
mv "$stage/boot/firmware" "$firmware"
install -d -m 0755 "$stage/boot/firmware"
boot="$work/boot.vfat"
rm -f "$boot"
mkfs.vfat -C -F 32 -n "$BOOT_LABEL" -i "$DISK_ID" -h $((BOOT_START_MIB * 2048)) "$boot" $((BOOT_SIZE_MIB * 1024)) >/dev/null
mcopy -i "$boot" -s -p -m "$firmware"/* ::/

log "root partition"
used_mib=$(du -s --block-size=1M "$stage" | cut -f1)
# ext4 metadata (inode tables, journal) takes ~6%; the rest is room for mail
root_mib=$(( (used_mib * 107 / 100 + ROOT_FREE_MIB + 3) / 4 * 4 ))
rootfs="$work/root.ext4"
rm -f "$rootfs"
truncate -s "${root_mib}M" "$rootfs"
mkfs.ext4 -q -F -L "$ROOT_LABEL" -d "$stage" -E root_owner=0:0 "$rootfs"

log "disk image"
root_start_mib=$((BOOT_START_MIB + BOOT_SIZE_MIB))
total_mib=$((root_start_mib + root_mib))
tmp="$out.tmp"
rm -f "$tmp"
truncate -s "${total_mib}M" "$tmp"
sfdisk --quiet "$tmp" <<TABLE
label: dos
label-id: 0x$DISK_ID
unit: sectors

start=$((BOOT_START_MIB * 2048)), size=$((BOOT_SIZE_MIB * 2048)), type=c, bootable
start=$((root_start_mib * 2048)), size=$((root_mib * 2048)), type=83
TABLE
dd if="$boot" of="$tmp" bs=1M seek="$BOOT_START_MIB" conv=notrunc,sparse status=none
dd if="$rootfs" of="$tmp" bs=1M seek="$root_start_mib" conv=notrunc,sparse status=none
mv "$tmp" "$out"
rm -f "$boot" "$rootfs"
log "built $out ($total_mib MiB, $(du -m "$out" | cut -f1) MiB on disk)"
