#!/usr/bin/env bash
# Builds one self-contained executable per architecture with Node's own
# single-executable format (SEA), offline apart from the npm registry:
#   1. esbuild bundles src/main.ts and every dependency into one CommonJS file
#   2. a Node of the pinned version turns it into a SEA blob
#   3. postject injects the blob into a copy of that Node binary per architecture
# The Node binaries come from the registry packages node-linux-<arch>, fetched
# with `npm pack` (npm install refuses a foreign CPU) and checked against the
# pinned integrity, so the build is reproducible.
#
# Usage: scripts/build-binary.sh [x64] [arm64]     (default: both)
#        scripts/build-binary.sh --host-node        prints the pinned Node for this
#        machine (fetched once), which `make e2e` runs the tests on
set -euo pipefail

NODE_VERSION=24.21.0
declare -A NODE_INTEGRITY=(
  [x64]='sha512-3nULszZ5X0fciYpG0t6TrdApJzAn8+FlINP6OiMX7V8HrvpATPN936U1LlReOJriLRa4e8yEqQBYCnLyPNAs7Q=='
  [arm64]='sha512-FpJRPEz2OvvTLfjIOlNGFY9JLPMKgl5m+d4oGYBLg24kJ1mmvN1Zl/HPJgF4HDaJ51ISev1l1cRZ/DM+keXW5g=='
)
# Node's SEA sentinel: postject flips it so the binary knows a blob is inside
SEA_FUSE=NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE="$ROOT/.cache/node-bin"
WORK="$ROOT/dist/.sea"
cd "$ROOT"

die() { echo "build-binary: $*" >&2; exit 1; }

# Runs a command, showing its output only when it fails (postject prints
# dozens of harmless "Can't find string offset" warnings on Node's ELF notes)
quietly() {
  local log="$WORK/last-step.log"
  "$@" >"$log" 2>&1 || { cat "$log" >&2; die "Failed: $*"; }
}

host_arch() {
  case "$(uname -m)" in
    x86_64) echo x64 ;;
    aarch64 | arm64) echo arm64 ;;
    *) die "Unsupported build machine \"$(uname -m)\"" ;;
  esac
}

# Prints the path of the pinned Node binary for $1, fetching it once
node_binary() {
  local arch=$1 dir="$CACHE/$NODE_VERSION-$1"
  local tgz="$CACHE/node-linux-$arch-$NODE_VERSION.tgz"
  if [ ! -x "$dir/node" ]; then
    mkdir -p "$CACHE"
    [ -f "$tgz" ] || (cd "$CACHE" && npm pack --silent "node-linux-$arch@$NODE_VERSION" >/dev/null) ||
      die "Cannot fetch \"node-linux-$arch@$NODE_VERSION\" from the npm registry"
    local got
    got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
    if [ "$got" != "${NODE_INTEGRITY[$arch]}" ]; then
      rm -f "$tgz"
      die "Integrity mismatch for \"$tgz\": got \"$got\""
    fi
    rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
    tar -xzf "$tgz" -C "$dir.tmp" --strip-components=2 package/bin/node
    rm -rf "$dir" && mv "$dir.tmp" "$dir"
  fi
  echo "$dir/node"
}

bundle() {
  # CommonJS leaves import.meta empty; node-cron's ESM build reads
  # import.meta.url, so define it as the executable's own file URL.
  # The executable has no package.json beside it: its version is written in.
  local version
  version=$(node -p 'JSON.stringify(require("./package.json").version)')
  npx --no-install esbuild src/main.ts --bundle --platform=node --format=cjs \
    --target=node24 --outfile="$WORK/edge-relay.cjs" --log-level=warning --minify-whitespace --minify-syntax \
    --define:EDGE_RELAY_VERSION="$version" \
    --define:import.meta.url=__edge_relay_import_meta_url \
    --banner:js='const __edge_relay_import_meta_url = require("node:url").pathToFileURL(__filename).href;'
  one_byte_source "$WORK/edge-relay.cjs"
}

# V8 keeps the executable's whole script in memory as one string, and one
# character above U+00FF makes all of it two bytes a character: 2 MB more,
# idle or busy. esbuild escapes such characters in strings but not in
# template literals (their raw text would change), so the web views write
# HTML entities (&rarr;, &hellip;) instead, and this keeps it so.
one_byte_source() {
  local wide
  wide=$(node -e '
    const text = require("node:fs").readFileSync(process.argv[1], "utf8");
    const found = [...new Set(text.match(/[^\u0000-\u00ff]/gu) ?? [])];
    process.stdout.write(found.map((c) => `U+${c.codePointAt(0).toString(16).toUpperCase()} "${c}"`).join(", "));
  ' "$1")
  [ -z "$wide" ] || die "The bundle holds characters above U+00FF ($wide), which double the script's memory in the executable: write them as HTML entities or \\u escapes in the source"
}

# The blob must be made by the same Node version that will run it; without a
# code cache or snapshot it is the same for every CPU, so one blob serves both.
# execArgv: the executable runs with the V8 flag of image/edge-relay.service
# even when started by hand (docs/performance.md); NODE_OPTIONS still applies.
make_blob() {
  cat >"$WORK/sea-config.json" <<EOF
{
  "main": "$WORK/edge-relay.cjs",
  "output": "$WORK/edge-relay.blob",
  "disableExperimentalSEAWarning": true,
  "useCodeCache": false,
  "useSnapshot": false,
  "execArgv": ["--max-semi-space-size=2"]
}
EOF
  quietly "$(node_binary "$(host_arch)")" --experimental-sea-config "$WORK/sea-config.json"
}

inject() {
  local arch=$1 out="dist/edge-relay-linux-$1"
  cp "$(node_binary "$arch")" "$out.tmp"
  chmod u+w "$out.tmp"
  quietly npx --no-install postject "$out.tmp" NODE_SEA_BLOB "$WORK/edge-relay.blob" \
    --sentinel-fuse "$SEA_FUSE"
  chmod 0755 "$out.tmp"
  mv "$out.tmp" "$out"
  echo "built $out ($(du -m "$out" | cut -f1) MB)"
}

main() {
  if [ "${1:-}" = --host-node ]; then
    node_binary "$(host_arch)"
    return
  fi
  local arches=("$@")
  [ ${#arches[@]} -gt 0 ] || arches=(x64 arm64)
  for arch in "${arches[@]}"; do
    [ -n "${NODE_INTEGRITY[$arch]:-}" ] || die "Unknown architecture \"$arch\" (x64 or arm64)"
  done
  mkdir -p "$WORK"
  bundle
  make_blob
  for arch in "${arches[@]}"; do inject "$arch"; done
}

main "$@"
