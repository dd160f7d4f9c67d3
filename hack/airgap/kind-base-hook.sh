#!/bin/sh
# mmdebstrap customize hook for the kind base rootfs: adds kind's base-image
# files and repeats the set-up of kind's base Dockerfile (images/base in the
# kind module) on a Debian rootfs whose containerd, runc and CNI plugins come
# from Debian packages.
#   kind-base-hook.sh ROOTFS KIND_BASE_FILES
set -eu
root=$1 files=$2

# kind's files: scripts 0755, the rest 0644 (as kind's Dockerfile COPYs them)
(cd "$files" && find . -type f) | while read -r f; do
  case "$f" in
    ./usr/local/bin/* | ./kind/bin/*) mode=0755 ;;
    *) mode=0644 ;;
  esac
  install -D -m "$mode" "$files/$f" "$root/$f"
done
chmod 0755 "$root/kind" "$root/kind/bin"

# kind's unit starts /usr/local/bin/containerd; Debian installs /usr/bin/containerd.
ln -sf /usr/bin/containerd "$root/usr/local/bin/containerd"
# Debian's CNI plugins live in /usr/lib/cni; containerd looks in /opt/cni/bin.
mkdir -p "$root/opt/cni/bin"
for p in "$root"/usr/lib/cni/*; do ln -sf "/usr/lib/cni/${p##*/}" "$root/opt/cni/bin/"; done

chroot "$root" sh -euc '
  find /lib/systemd/system/sysinit.target.wants/ -name systemd-tmpfiles-setup.service -delete
  rm -f /lib/systemd/system/multi-user.target.wants/* /etc/systemd/system/*.wants/* \
    /lib/systemd/system/local-fs.target.wants/* /lib/systemd/system/sockets.target.wants/*udev* \
    /lib/systemd/system/sockets.target.wants/*initctl* /lib/systemd/system/basic.target.wants/*
  echo ReadKMsg=no >>/etc/systemd/journald.conf
  ln -sf /usr/lib/systemd/systemd /sbin/init
  systemctl enable kubelet.service containerd.service undo-mount-hacks.service
  systemctl mask systemd-binfmt.service
  mkdir -p /etc/kubernetes/manifests
  ctr oci spec | jq ".hooks.createContainer += [{path: \"/kind/bin/mount-product-files.sh\"}] | del(.process.rlimits)" \
    >/etc/containerd/cri-base.json
'
