#!/usr/bin/env bash
# Builds the Debian package for one architecture from the single executable
# (scripts/build-binary.sh) and the files in image/:
#   /usr/bin/edge-relay                       the executable
#   /lib/systemd/system/edge-relay.service    the hardened unit
#   /etc/edge-relay/config.json               appliance config (a conffile)
#   /usr/share/doc/edge-relay/                copyright and the pages of docs/ (the
#                                             unit's Documentation= names install.md)
#
# Usage: scripts/build-deb.sh x64|arm64    -> dist/edge-relay_<version>_<amd64|arm64>.deb
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

die() { echo "build-deb: $*" >&2; exit 1; }

arch=${1:-}
case "$arch" in
  x64) deb_arch=amd64 ;;
  arm64) deb_arch=arm64 ;;
  *) die "Unknown architecture \"$arch\" (x64 or arm64)" ;;
esac
binary="dist/edge-relay-linux-$arch"
[ -x "$binary" ] || die "Missing \"$binary\": run make binary first"
version=$(node -p 'require("./package.json").version')
out="dist/edge-relay_${version}_${deb_arch}.deb"
stage="dist/.deb/$deb_arch"

rm -rf "$stage"
install -D -m 0755 "$binary" "$stage/usr/bin/edge-relay"
install -D -m 0644 image/edge-relay.service "$stage/lib/systemd/system/edge-relay.service"
install -D -m 0644 image/config.json "$stage/etc/edge-relay/config.json"
install -D -m 0644 image/debian/copyright "$stage/usr/share/doc/edge-relay/copyright"
# The docs are copied from docs/, their one source, keeping their layout so
# links between the pages still work
(cd docs && find . -type f \( -name '*.md' -o -name '*.png' \) -printf '%P\0') |
  xargs -0 -I{} install -D -m 0644 "docs/{}" "$stage/usr/share/doc/edge-relay/{}"

install -d "$stage/DEBIAN"
install -m 0755 image/debian/postinst image/debian/prerm image/debian/postrm "$stage/DEBIAN/"
install -m 0644 image/debian/conffiles "$stage/DEBIAN/"
size_kib=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$deb_arch/" -e "s/@SIZE@/$size_kib/" \
  image/debian/control.in >"$stage/DEBIAN/control"
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z |
  xargs -0 md5sum >DEBIAN/md5sums)

# gzip: any dpkg reads it (also Debian 11 and older Raspberry Pi OS), and it
# compresses the 120 MB executable in ~12 s where xz -6 needs minutes.
# Fixed timestamps and root ownership make the package reproducible
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
find "$stage" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
dpkg-deb --root-owner-group -Zgzip -z6 --build "$stage" "$out.tmp" >/dev/null
mv "$out.tmp" "$out"
echo "built $out ($(du -m "$out" | cut -f1) MB)"
