#!/usr/bin/env bash
# Runs one command inside an arm64 root under qemu user-mode emulation, with
# /proc, /sys and /dev mounted for its lifetime. The mounts are removed on
# every way out (normal exit, failure, SIGINT/SIGTERM, which are passed on
# to the command first). Shares the host network: tests bind 127.0.0.1 only.
#
# Usage: scripts/image/chroot.sh <root> <command> [args...]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/scripts/image/lib.sh"

target=$(realpath "${1:?Usage: chroot.sh <root> <command> [args...]}")
shift
[ -x "$target/bin/sh" ] || die "Not a root file system: \"$target\""
ensure_binfmt

child=
cleanup() {
  local status=$?
  [ -n "$child" ] && kill -TERM "$child" 2>/dev/null && wait "$child" 2>/dev/null
  unmount_under "$target"
  exit "$status"
}
forward() { [ -n "$child" ] && kill -TERM "$child" 2>/dev/null; }
trap cleanup EXIT
trap forward INT TERM

mount -t proc proc "$target/proc"
mount -t sysfs sysfs "$target/sys"
mount --bind /dev "$target/dev"

# In the background so a signal reaches the trap while the command runs
chroot "$target" "$@" &
child=$!
status=0
while :; do
  wait "$child" && status=0 || status=$?
  # wait returns >128 when a trapped signal interrupts it: keep waiting for the exit
  kill -0 "$child" 2>/dev/null || break
done
child=
exit "$status"
