#!/bin/sh
# mmdebstrap customize hook (runs outside the chroot, as root or as root of mmdebstrap's user
# namespace): turn the fresh Debian tree into the vibebox guest, stage what the initrd needs and
# write the ext4 root disk. Arguments:
#   $1 chroot dir   $2 payload dir   $3 stage dir   $4 vibe uid   $5 vibe gid
#   $6 ext4 image   $7 disk size     $8 initrd modules (space separated)
set -eu
ROOT=$1 PAYLOAD=$2 STAGE=$3 VUID=$4 VGID=$5 DISK=$6 SIZE=$7 MODULES=$8
step() { echo "vibebox-step: $*" >&2; }
# In unshare mode this hook is a subordinate uid on the host: whatever happens, hand what it
# wrote back to the user (who must read, convert and delete it).
handback() { find "$STAGE" -mindepth 1 -exec chmod a+rwX {} + 2>/dev/null || true; chmod a+rw "$DISK" 2>/dev/null || true; }
trap handback EXIT

step "configuring the guest"
# User vibe: host uid/gid (non-unique allowed: a host id may collide with a Debian system id).
if ! chroot "$ROOT" getent group vibe >/dev/null; then chroot "$ROOT" groupadd -o -g "$VGID" vibe; fi
chroot "$ROOT" useradd -o -u "$VUID" -g "$VGID" -G sudo,docker -m -d /home/vibe -s /bin/bash vibe
printf 'vibe ALL=(ALL:ALL) NOPASSWD:ALL\n' > "$ROOT/etc/sudoers.d/vibe"
chmod 0440 "$ROOT/etc/sudoers.d/vibe"
mkdir -p "$ROOT/workspace"
chown "$VUID:$VGID" "$ROOT/workspace"

# mmdebstrap copies the host's /etc/hostname, mode and all (0755 on some hosts): a plain file here.
printf 'vibebox\n' > "$ROOT/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tvibebox\n::1\tlocalhost ip6-localhost ip6-loopback\n' > "$ROOT/etc/hosts"
chmod 0644 "$ROOT/etc/hostname" "$ROOT/etc/hosts"
rm -f "$ROOT/etc/resolv.conf"
printf 'nameserver 10.0.2.3\n' > "$ROOT/etc/resolv.conf"
# The API filesystems the guest init mounts with one `mount -a` (one exec instead of one per mount).
cat > "$ROOT/etc/fstab" <<'FSTAB'
tmpfs   /run            tmpfs   nosuid,nodev,mode=0755                       0 0
tmpfs   /tmp            tmpfs   nosuid,nodev,mode=1777                       0 0
devpts  /dev/pts        devpts  nosuid,noexec,gid=5,mode=0620,ptmxmode=0666,X-mount.mkdir 0 0
tmpfs   /dev/shm        tmpfs   nosuid,nodev,mode=1777,X-mount.mkdir         0 0
cgroup2 /sys/fs/cgroup  cgroup2 nosuid,nodev,noexec,nsdelegate               0 0
FSTAB
# The only way out of the VM is the host's egress proxy (docs/architecture.md, Walls).
cat > "$ROOT/etc/profile.d/vibebox.sh" <<'PROFILE'
export HTTP_PROXY=http://10.0.2.100:3128 HTTPS_PROXY=http://10.0.2.100:3128
export http_proxy=$HTTP_PROXY https_proxy=$HTTPS_PROXY
export NO_PROXY=localhost,127.0.0.1,::1 no_proxy=localhost,127.0.0.1,::1
PROFILE
cat >> "$ROOT/etc/environment" <<'ENVIRON'
HTTP_PROXY=http://10.0.2.100:3128
HTTPS_PROXY=http://10.0.2.100:3128
http_proxy=http://10.0.2.100:3128
https_proxy=http://10.0.2.100:3128
NO_PROXY=localhost,127.0.0.1,::1
no_proxy=localhost,127.0.0.1,::1
NODE_EXTRA_CA_CERTS=/etc/vibebox/host-cas.pem
ENVIRON
# The host's extra CAs: the agent fills these at every boot (guest/agent/host-cas.ts). Empty
# until then, so Node (NODE_EXTRA_CA_CERTS) never warns about a missing file.
mkdir -p "$ROOT/etc/vibebox" "$ROOT/usr/local/share/ca-certificates/vibebox-host"
: > "$ROOT/etc/vibebox/host-cas.pem"
chmod 0644 "$ROOT/etc/vibebox/host-cas.pem"

step "installing the guest agent"
mkdir -p "$ROOT/opt/vibebox/node_modules"
cp "$PAYLOAD/guest-agent.js" "$ROOT/opt/vibebox/guest-agent.js"
cp "$PAYLOAD/guest-containers.js" "$ROOT/opt/vibebox/guest-containers.js"
# The agent base: gzipped with its sha256, for the guest's fallback import (guest/docker/base-image.ts).
cp "$PAYLOAD/agent-base.tar.gz" "$ROOT/opt/vibebox/agent-base.tar.gz"
cp "$PAYLOAD/agent-base.tar.sha256" "$ROOT/opt/vibebox/agent-base.tar.sha256"
# The agent bundle is CommonJS (build.mjs); the package scope says so.
printf '{"name":"vibebox-guest","private":true,"type":"commonjs"}\n' > "$ROOT/opt/vibebox/package.json"
if [ -d "$PAYLOAD/node-pty" ]; then cp -R "$PAYLOAD/node-pty" "$ROOT/opt/vibebox/node_modules/node-pty"; fi
cp "$PAYLOAD/init" "$ROOT/opt/vibebox/init"
# vibebox-stack: bind-mounted onto the agent container's PATH.
# Debian's node in the agent container (the agents' own Node comes first on its PATH).
printf '#!/bin/sh\nexec /usr/bin/node /opt/vibebox/guest-containers.js stack-cli "$@"\n' > "$ROOT/opt/vibebox/vibebox-stack"
chown -R 0:0 "$ROOT/opt/vibebox"
chmod 0755 "$ROOT/opt/vibebox/init" "$ROOT/opt/vibebox/vibebox-stack"
if [ -d "$PAYLOAD/commands" ]; then
  for f in "$PAYLOAD/commands"/* "$PAYLOAD/commands"/.[!.]*; do
    [ -f "$f" ] || continue
    cp "$f" "$ROOT/usr/local/bin/"
    b=$(basename "$f")
    chown 0:0 "$ROOT/usr/local/bin/$b"
    chmod 0755 "$ROOT/usr/local/bin/$b"
  done
fi

step "writing the agent base into the guest's Docker store"
# vibebox/agent:base as dockerd finds it on disk (images/docker-store.ts made the metadata): the
# first container of a project starts without an import. Owners as in the tarball (numeric ids:
# the host's user names mean nothing here); the store's own files are root's, in Docker's modes.
D="$ROOT/var/lib/docker"
mkdir -p "$D"
cp -R "$PAYLOAD/docker/." "$D/"
chown -R -h 0:0 "$D"
chmod 0710 "$D"
while read -r mode path; do chmod "$mode" "$D/$path"; done < "$PAYLOAD/docker-modes"
read -r LAYER_DIFF LAYER_SIZE < "$PAYLOAD/docker-layer"
tar -xpf "$PAYLOAD/agent-base.tar" -C "$D/$LAYER_DIFF" --numeric-owner --same-owner
# The layer's size as Docker counts it (regular files, each inode once); no newline.
find "$D/$LAYER_DIFF" -type f -printf '%i %s\n' | sort -u -n | awk '{ s += $2 } END { printf "%d", s }' > "$D/$LAYER_SIZE"
chmod 0644 "$D/$LAYER_SIZE"

step "staging kernel and initrd modules"
KV=$(ls "$ROOT/lib/modules" | head -n 1)
[ -n "$KV" ] || { echo "no kernel modules in the image" >&2; exit 1; }
mkdir -p "$STAGE/modules"
cp "$ROOT/boot/vmlinuz-$KV" "$STAGE/vmlinuz"
printf '%s\n' "$KV" > "$STAGE/kernel-version"
cp "$ROOT/bin/busybox" "$STAGE/busybox"
MD="$ROOT/lib/modules/$KV"
: > "$STAGE/modules/load-order"
# Trixie's kernel ships its modules xz-compressed (.ko.xz): the initrd gets them decompressed
# (busybox insmod takes plain ELF, and under TCG decompressing at boot costs more than the bytes).
add() {
  b=$(basename "$1")
  case "$b" in
    *.ko.xz) u=${b%.xz} ;;
    *) u=$b ;;
  esac
  if ! grep -qxF "$u" "$STAGE/modules/load-order"; then
    case "$b" in
      *.ko.xz) "$STAGE/busybox" unxz -c "$MD/$1" > "$STAGE/modules/$u" ;;
      *) cp "$MD/$1" "$STAGE/modules/$u" ;;
    esac
    printf '%s\n' "$u" >> "$STAGE/modules/load-order"
  fi
}
for m in $MODULES; do
  line=$(grep -E "(^|/)$m\.ko(\.[a-z]+)?:" "$MD/modules.dep" || true)
  if [ -z "$line" ]; then
    if grep -qE "(^|/)$m\.ko" "$MD/modules.builtin"; then continue; fi
    echo "kernel module $m not found in $KV" >&2
    exit 1
  fi
  rev=""
  for d in ${line#*:}; do rev="$d $rev"; done
  for d in $rev; do add "$d"; done
  add "${line%%:*}"
done
chroot "$ROOT" dpkg --purge busybox-static >/dev/null

step "slimming the root filesystem"
# update-initramfs was diverted to a no-op during the build; put the real one back.
rm -f "$ROOT/usr/sbin/update-initramfs"
chroot "$ROOT" dpkg-divert --quiet --local --rename --remove /usr/sbin/update-initramfs
rm -rf "$ROOT"/boot/* "$ROOT"/usr/share/doc/* "$ROOT"/usr/share/man/* "$ROOT"/usr/share/info/* \
  "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/lib/apt/lists/* \
  "$ROOT"/var/log/apt/* "$ROOT"/var/log/dpkg.log "$ROOT"/tmp/*
mkdir -p "$ROOT/var/lib/apt/lists/partial"

step "writing the ext4 root disk"

# mmdebstrap keeps /proc, /sys, /dev mounted in the chroot while hooks run: a non-recursive
# bind mount shows the tree without them.
FLAT=$STAGE/flat
mkdir -p "$FLAT" "$STAGE/aptconf"
# mmdebstrap's own apt/dpkg settings stay out of the image (it removes them itself afterwards).
for f in "$ROOT"/etc/apt/apt.conf.d/*mmdebstrap "$ROOT"/etc/dpkg/dpkg.cfg.d/*mmdebstrap; do
  [ -e "$f" ] && mv "$f" "$STAGE/aptconf/$(basename "$(dirname "$f")")__$(basename "$f")"
done
mount --bind "$ROOT" "$FLAT"
trap 'umount "$FLAT" 2>/dev/null || true; handback' EXIT
mkfs.ext4 -q -F -L vibebox-root -m 0 -E root_owner=0:0,nodiscard -d "$FLAT" "$DISK" "$SIZE"
umount "$FLAT"
trap handback EXIT
rmdir "$FLAT"
for f in "$STAGE"/aptconf/*; do
  [ -e "$f" ] || continue
  b=$(basename "$f")
  case "$b" in
    apt.conf.d__*) mv "$f" "$ROOT/etc/apt/apt.conf.d/${b#apt.conf.d__}" ;;
    dpkg.cfg.d__*) mv "$f" "$ROOT/etc/dpkg/dpkg.cfg.d/${b#dpkg.cfg.d__}" ;;
  esac
done
