#!/bin/bash
# Starts sshd as an arbiter. Environment:
#   ARBITER_USER (drwatch)            the account the sites log in to
#   ARBITER_PASSWORD                  its password (optional; keys preferred)
#   ARBITER_AUTHORIZED_KEYS           file of public keys allowed to log in
#   ARBITER_HOST_KEY                  ed25519 host key file (made if absent)
#   ARBITER_CLIENT_ALIVE_INTERVAL (2) seconds between keepalives to a client
#   ARBITER_CLIENT_ALIVE_COUNT_MAX (3) unanswered keepalives before dropping it
# The last two bound how long this arbiter keeps listing the session of a
# site that died or was cut off (interval x count, 6 s by default): the
# standby cannot see the active site gone from an arbiter sooner.
set -euo pipefail
user=${ARBITER_USER:-drwatch}
id "$user" >/dev/null 2>&1 || useradd -m -s /bin/bash "$user"
# A locked account ("!") is refused even with a key when PAM is off.
if [ -n "${ARBITER_PASSWORD:-}" ]; then echo "$user:$ARBITER_PASSWORD" | chpasswd; else usermod -p "*" "$user"; fi
home=$(getent passwd "$user" | cut -d: -f6)
mkdir -p "$home/.ssh"
if [ -n "${ARBITER_AUTHORIZED_KEYS:-}" ]; then cp "$ARBITER_AUTHORIZED_KEYS" "$home/.ssh/authorized_keys"; fi
chown -R "$user:" "$home/.ssh"; chmod 700 "$home/.ssh"; chmod 600 "$home/.ssh/authorized_keys" 2>/dev/null || true
mkdir -p /run/sshd /etc/ssh/sshd_config.d
key=/etc/ssh/ssh_host_ed25519_key
if [ -n "${ARBITER_HOST_KEY:-}" ]; then
	install -m 600 "$ARBITER_HOST_KEY" "$key"
elif [ ! -f "$key" ]; then
	ssh-keygen -q -t ed25519 -N '' -f "$key"
fi
cat >/etc/ssh/sshd_config.d/drwatch.conf <<CONF
HostKey $key
PasswordAuthentication ${ARBITER_PASSWORD:+yes}${ARBITER_PASSWORD:-no}
KbdInteractiveAuthentication no
UsePAM no
ClientAliveInterval ${ARBITER_CLIENT_ALIVE_INTERVAL:-2}
ClientAliveCountMax ${ARBITER_CLIENT_ALIVE_COUNT_MAX:-3}
MaxStartups 100:30:200
UseDNS no
CONF
touch /var/run/utmp /var/log/wtmp /var/log/lastlog
exec /usr/sbin/sshd -D -e
