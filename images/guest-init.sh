#!/bin/sh
# vibebox guest init, run by tini (PID 1, reaps orphans). Mounts the API filesystems, loads the
# modules the agent needs, brings up the network in the background and execs the guest agent.
# No systemd, no udev, no dockerd here: the agent starts dockerd when the container layer needs it.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8

# The initrd moved /proc, /sys and /dev here already. Every exec costs tens of milliseconds
# under emulation, so the critical path is one `mount -a` (the image's /etc/fstab) and then
# Node; everything else runs beside Node's start-up. The agent waits for its virtio port itself.
mount -a
(
  mkdir -p /run/lock /run/user /dev/virtio-ports
  ln -sf /proc/self/fd /dev/fd
  ln -sf /proc/self/fd/0 /dev/stdin
  ln -sf /proc/self/fd/1 /dev/stdout
  ln -sf /proc/self/fd/2 /dev/stderr
  [ -e /dev/ptmx ] || ln -sf pts/ptmx /dev/ptmx
  hostname vibebox
  modprobe -q virtio_console
  # Without udev nobody makes the /dev/virtio-ports/<name> links: make them for humans and tools.
  n=0
  while [ "$n" -lt 100 ]; do
    missing=0
    for p in /sys/class/virtio-ports/vport*; do
      [ -r "$p/name" ] || continue
      read -r pname < "$p/name" || pname=
      if [ -z "$pname" ]; then missing=1; continue; fi
      [ -e "/dev/virtio-ports/$pname" ] || ln -s "../${p##*/}" "/dev/virtio-ports/$pname"
    done
    [ "$missing" = 0 ] && [ -n "$(ls /dev/virtio-ports)" ] && break
    n=$((n + 1))
    sleep 0.05
  done
) </dev/null >/dev/null 2>&1 &

# Network and the rest: off the critical path.
(
  ip link set lo up
  modprobe -q virtio_net
  ip addr add 10.0.2.15/24 dev eth0 2>/dev/null
  ip link set eth0 up 2>/dev/null
  ip route add default via 10.0.2.2 2>/dev/null
  modprobe -q -a virtiofs 9pnet_virtio 9p overlay br_netfilter virtio_balloon 2>/dev/null
) </dev/null >/dev/null 2>&1 &

echo "vibebox-init: agent starting" > /dev/console
cd /
exec node /opt/vibebox/guest-agent.js
