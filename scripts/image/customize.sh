#!/usr/bin/env bash
# Turns a copy of the base root into the appliance: our arm64 package, the
# hostname, DHCP on the wired port, the Pi boot files for the root partition,
# the first-boot units (welcome, grow-root, boot-settings), the clock before
# the relay, a card-friendly journal, zram swap and the console login rules.
#
# Usage: scripts/image/customize.sh <root> <edge-relay arm64 .deb>
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/scripts/image/lib.sh"
. "$ROOT/scripts/image/layout.sh"

stage=${1:?Usage: customize.sh <root> <deb>}
deb=${2:?Usage: customize.sh <root> <deb>}
in_root() { bash "$ROOT/scripts/image/chroot.sh" "$stage" "$@"; }

log "installing $(basename "$deb")"
cp "$deb" "$stage/tmp/edge-relay.deb"
in_root dpkg -i /tmp/edge-relay.deb >&2
rm "$stage/tmp/edge-relay.deb"

echo "$HOSTNAME_" >"$stage/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' "$HOSTNAME_" >"$stage/etc/hosts"

# The kernel command line says net.ifnames=0, so the wired port is eth0
cat >"$stage/etc/network/interfaces.d/eth0" <<NET
auto eth0
allow-hotplug eth0
iface eth0 inet dhcp
iface eth0 inet6 auto
NET
# debootstrap copied the build machine's resolver; DHCP writes the box's own
rm -f "$stage/etc/resolv.conf"
touch "$stage/etc/resolv.conf"


# raspi-firmware writes config.txt and cmdline.txt from these settings and
# copies the kernel, initrd and device trees; its kernel hook runs again here
# (it acts only when told "configure"). Root by partition id, so the card
# boots in any slot or USB adapter; the screen (tty0) is the last console, so
# boot messages and the welcome text show there as well as on the serial
# port; no cma= (Debian warns it can stop a Pi 4 from booting)
cat >>"$stage/etc/default/raspi-firmware" <<FIRMWARE

# edge-relay appliance image
ROOTPART=PARTUUID=$ROOT_PARTUUID
CONSOLES="ttyS1,115200 tty0"
CMA=0
FIRMWARE
in_root /usr/bin/env DEB_MAINT_PARAMS=configure /etc/kernel/postinst.d/z50-raspi-firmware >&2
grep -q "root=PARTUUID=$ROOT_PARTUUID " "$stage/boot/firmware/cmdline.txt" || die "cmdline.txt does not name the root partition"

# The welcome text, the root file system grown to the card, and the
# settings file on the boot partition (see each unit)
for job in welcome grow-root boot-settings; do
  install -D -m 0755 "$ROOT/image/firstboot/$job" "$stage/usr/lib/edge-relay/$job"
  install -D -m 0644 "$ROOT/image/firstboot/edge-relay-$job.service" "$stage/lib/systemd/system/edge-relay-$job.service"
  in_root systemctl enable "edge-relay-$job.service" >&2
done
install -m 0644 "$ROOT/image/firstboot/edge-relay.txt" "$stage/boot/firmware/edge-relay.txt"

# The clock before TLS: the relay is ordered after time-sync.target, which
# waits for the first NTP answer, but not for ever (a LAN may block NTP: the
# relay still takes mail in, and retries deliveries once the time is right)
in_root systemctl enable systemd-time-wait-sync.service >&2
install -d "$stage/etc/systemd/system/systemd-time-wait-sync.service.d"
printf '[Service]\nTimeoutStartSec=%s\n' 30s >"$stage/etc/systemd/system/systemd-time-wait-sync.service.d/edge-relay.conf"

# A card wears out: the journal is kept but capped, and flushed every 5 min
install -d "$stage/etc/systemd/journald.conf.d"
cat >"$stage/etc/systemd/journald.conf.d/edge-relay.conf" <<JOURNAL
[Journal]
Storage=persistent
SystemMaxUse=32M
RuntimeMaxUse=16M
SyncIntervalSec=5m
JOURNAL
# Compressed swap in RAM (half of it at most) for 1 GB boards: no card writes
cat >"$stage/etc/systemd/zram-generator.conf" <<ZRAM
[zram0]
zram-size = ram / 2
ZRAM

# Console login as root without a password until one is set (as Debian's own
# Raspberry Pi images do): only someone at the screen and keyboard gets in.
# login asks every other terminal (the serial console on the Pi's GPIO pins,
# which enable_uart=1 turns on, or a virtual machine's console) for a real
# password: pam_unix without nullok, and its verdict is final there
in_root passwd -d root >&2
sed -i 's|^@include common-auth$|# edge-relay: an empty password counts on tty1..tty63 (the screen) only\
auth [success=1 default=ignore] pam_succeed_if.so quiet tty =~ ^(/dev/)?tty[0-9]+$\
auth [success=done default=die] pam_unix.so\
&|' "$stage/etc/pam.d/login"
grep -q '^auth \[success=done default=die\] pam_unix.so$' "$stage/etc/pam.d/login" || die "login's PAM stack was not changed"

# Unique per box: systemd makes a machine id on first boot when the file is empty
: >"$stage/etc/machine-id"
rm -f "$stage/var/lib/dbus/machine-id"
rm -rf "$stage"/var/cache/apt/*.bin "$stage"/var/log/*.log "$stage"/tmp/* "$stage"/var/tmp/*
