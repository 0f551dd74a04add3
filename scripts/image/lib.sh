# Shared helpers for the image scripts (sourced, not run).

log() { echo "image: $*" >&2; }
die() { echo "image: $*" >&2; exit 1; }

# arm64 programs run through qemu-user-static; the kernel needs the
# binfmt_misc file system and the registered (and enabled) qemu handler
ensure_binfmt() {
  if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || die "Cannot mount binfmt_misc (need root)"
  fi
  if [ "$(head -1 /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null)" != enabled ]; then
    update-binfmts --enable qemu-aarch64 >/dev/null || die "Cannot enable the qemu-aarch64 binfmt handler"
  fi
}

# Unmounts everything mounted at or below a dir, deepest first (safe to repeat)
unmount_under() {
  local dir
  dir=$(realpath -m "$1")
  findmnt -rn -o TARGET | awk -v d="$dir" '$0 == d || index($0, d "/") == 1' | sort -r |
    while read -r target; do umount -l "$target" 2>/dev/null || true; done
}
