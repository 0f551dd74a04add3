#!/usr/bin/env bash
# `make bench`: installs Postfix if missing (no system MTA is configured or
# started), then runs edge-relay and a private Postfix side by side on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v smtp-source >/dev/null && [ ! -x /usr/sbin/smtp-source ]; then
  echo "bench: installing postfix (No configuration) for smtp-source, smtp-sink and the comparison"
  export DEBIAN_FRONTEND=noninteractive
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends postfix >/dev/null
  if command -v systemctl >/dev/null; then systemctl stop postfix >/dev/null 2>&1 || true; fi
fi
export PATH="$PATH:/usr/sbin"
echo "bench: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -h | awk '/^Mem:/ {print $2}') RAM, $(. /etc/os-release && echo "$PRETTY_NAME"), kernel $(uname -r), Postfix $(postconf -d mail_version 2>/dev/null | cut -d' ' -f3), node $(node --version), load average $(cut -d' ' -f1-3 /proc/loadavg)"
# The single executable for this machine, measured beside bin/edge-relay; built
# the way mk/package.mk builds it, for this architecture only, when missing or older than the code
case "$(uname -m)" in x86_64) arch=x64 ;; aarch64 | arm64) arch=arm64 ;; *) arch= ;; esac
if [ -n "$arch" ]; then
  sea="dist/edge-relay-linux-$arch"
  if [ ! -x "$sea" ] || [ -n "$(find src package-lock.json scripts/build-binary.sh -newer "$sea" -print -quit)" ]; then
    bash scripts/build-binary.sh "$arch"
  fi
  export BENCH_SEA="$PWD/$sea"
fi
exec node --import tsx bench/bench.ts
