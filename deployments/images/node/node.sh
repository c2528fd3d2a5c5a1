#!/bin/bash
# Owns a site's network namespace and idles until stopped (PID 1 must
# handle TERM itself). With NODE_VIP_INTERFACE and NODE_LAN_ADDRESS set it
# first checks that the client network landed on the interface drwatch's
# vip.interface names: Docker numbers interfaces in attach order.
set -euo pipefail
if [ -n "${NODE_VIP_INTERFACE:-}" ] && [ -n "${NODE_LAN_ADDRESS:-}" ]; then
	if ! ip -o -4 addr show dev "$NODE_VIP_INTERFACE" 2>/dev/null | grep -qw "inet ${NODE_LAN_ADDRESS}"; then
		echo "drwatch-node: $NODE_LAN_ADDRESS is not on $NODE_VIP_INTERFACE, so vip.interface would be wrong; interfaces:" >&2
		ip -o -4 addr >&2
		exit 1
	fi
fi
trap 'exit 0' TERM INT
sleep infinity &
wait
