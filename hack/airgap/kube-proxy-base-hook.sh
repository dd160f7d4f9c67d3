#!/bin/sh
# mmdebstrap customize hook for kube-proxy's rootfs: every iptables command
# goes through iptables-wrapper, which picks the node's backend.
#   kube-proxy-base-hook.sh ROOTFS
set -eu
root=$1
install -m 0755 "$(dirname "$0")/iptables-wrapper" "$root/usr/sbin/iptables-wrapper"
for name in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
  ln -sf iptables-wrapper "$root/usr/sbin/$name"
done
