#!/bin/sh
# vibebox initrd /init (busybox): load the modules that mount the root disk, mount it, and hand
# over to the real root with tini as PID 1. No udev, no waiting unless the disk is late.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

# The benchmark's floor: the same kernel and initrd, powering off as soon as init runs.
case " $(cat /proc/cmdline) " in *" vibebox.floor "*) echo o > /proc/sysrq-trigger; sleep 10 ;; esac

root=/dev/vda
rootfstype=ext4
rootflags=
mode=rw
init=/opt/vibebox/init
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    root=*) root=${arg#root=} ;;
    rootfstype=*) rootfstype=${arg#rootfstype=} ;;
    rootflags=*) rootflags=${arg#rootflags=} ;;
    ro) mode=ro ;;
    rw) mode=rw ;;
    vibebox.init=*) init=${arg#vibebox.init=} ;;
  esac
done

# Dependencies first (the build wrote them in load order). A module the CPU cannot use
# (crc32c-intel without SSE4.2 under TCG) fails harmlessly.
while read -r m; do
  insmod "/lib/modules/$m" 2>/dev/null
done < /lib/modules/load-order

opts=$mode
[ -n "$rootflags" ] && opts="$opts,$rootflags"
n=0
until mount -t "$rootfstype" -o "$opts" "$root" /newroot 2>/dev/null; do
  n=$((n + 1))
  if [ "$n" -gt 500 ]; then
    echo "vibebox-initrd: cannot mount $root ($rootfstype) on /newroot; powering off" > /dev/console
    # Power off rather than wait in a shell nobody can reach: the supervisor then reports the
    # failed boot at once instead of after its boot timeout.
    echo o > /proc/sysrq-trigger
    exec sleep 60
  fi
  sleep 0.01
done

mount --move /dev /newroot/dev
mount --move /sys /newroot/sys
mount --move /proc /newroot/proc
exec switch_root /newroot /usr/bin/tini -- "$init"
