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
echo "bench: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -h | awk '/^Mem:/ {print $2}') RAM, $(postconf -d mail_version 2>/dev/null), node $(node --version)"
exec node --import tsx bench/bench.ts
