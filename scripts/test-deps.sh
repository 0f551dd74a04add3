#!/usr/bin/env bash
# Installs the real clients and servers the tests talk to, only when missing.
# Non-interactive; postfix is preseeded to "No configuration" so no system MTA starts.
set -euo pipefail
need=()
command -v swaks >/dev/null || need+=(swaks)
perl -MNet::SSLeay -e1 2>/dev/null || need+=(libnet-ssleay-perl libio-socket-ssl-perl)
command -v fetchmail >/dev/null || need+=(fetchmail)
command -v curl >/dev/null || need+=(curl)
command -v openssl >/dev/null || need+=(openssl)
command -v smtp-sink >/dev/null || [ -x /usr/sbin/smtp-sink ] || need+=(postfix)
command -v chromium >/dev/null || need+=(chromium)
command -v qemu-aarch64-static >/dev/null || need+=(qemu-user-static)
[ -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ] || need+=(libc6-arm64-cross)
[ -e /usr/aarch64-linux-gnu/lib/libstdc++.so.6 ] || need+=(libstdc++6-arm64-cross)
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v dpkg-deb >/dev/null || need+=(dpkg)
command -v flock >/dev/null || need+=(util-linux)
# The power-cut test's filesystem layer (test/support/powercut-fs.py) runs on Debian's python, not a pyenv one
/usr/bin/python3 -c 'import fusepy' 2>/dev/null || need+=(python3-fusepy)
command -v fusermount3 >/dev/null || need+=(fuse3)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
echo "Installing test tools: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
echo "postfix postfix/mailname string edge-relay-test.invalid" | debconf-set-selections
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# postfix must not run as a system MTA on a test machine
if command -v systemctl >/dev/null; then systemctl stop postfix >/dev/null 2>&1 || true; fi
