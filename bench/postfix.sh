#!/usr/bin/env bash
# A private Postfix instance for the benchmark: its own config_directory and
# queue_directory under $1, smtpd on 127.0.0.1:$2, relaying everything to
# [127.0.0.1]:$3 (the sink). Never touches the system instance.
# Usage: postfix.sh DIR SMTP_PORT SINK_PORT start|stop
set -euo pipefail
dir="$1"; port="$2"; sink="$3"; action="$4"
conf="$dir/conf"
if [ "$action" = stop ]; then
  postfix -c "$conf" stop >/dev/null 2>&1 || true
  exit 0
fi
mkdir -p "$conf" "$dir/queue" "$dir/data"
# Postfix's daemons run as the postfix user and must reach these
chmod 755 "$dir"
chown postfix "$dir/data"
cat > "$conf/main.cf" <<CF
compatibility_level = 3.6
queue_directory = $dir/queue
data_directory = $dir/data
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix-bench.local
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:$sink
smtpd_relay_restrictions = permit_mynetworks, reject
message_size_limit = 104857600
maillog_file_prefixes = $dir
maillog_file = $dir/maillog
smtp_tls_security_level = none
smtpd_tls_security_level = none
biff = no
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
default_process_limit = 100
# bench/card.ts models a slow card with LD_PRELOAD=slowsync.so: the daemons must inherit it
import_environment = MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ XAUTHORITY DISPLAY LANG=C POSTLOG_SERVICE POSTLOG_HOSTNAME LD_PRELOAD SLOWSYNC_US SLOWSYNC_LOCK SLOWSYNC_COUNT
CF
# The stock master.cf with chroot off (no chroot jail in a temp dir) and smtpd on our port
awk -v port="$port" '
  /^#/ || /^[ \t]/ || NF < 8 { print; next }
  $1 == "smtp" && $2 == "inet" { $1 = "127.0.0.1:" port }
  { $5 = "n"; print }
' /etc/postfix/master.cf > "$conf/master.cf"
postfix -c "$conf" check
postfix -c "$conf" start
