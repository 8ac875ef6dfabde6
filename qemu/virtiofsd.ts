// One virtiofsd per mount, started by any user (root or not). The chain, each step exec'ing the next:
//   python3 launcher (listening socket as fd 3, seccomp filter: see virtiofsd-launcher.ts)
//   → unshare: a user namespace where the host user IS the guest user `vibe` and no other id is
//     mapped (guest root maps to nothing), plus a private mount namespace
//   → bash: host-side walls in that mount namespace (read-only binds, `.vibebox/` covered, git
//     config, hooks and pointers read-only: see git-walls.ts) — guest root cannot undo mounts on the host
//   → virtiofsd (QEMU's C one or the Rust one, told apart by --help).
import { existsSync, readdirSync, readFileSync, type Dirent } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { basename, join } from 'node:path';
import { launcherArgv } from './virtiofsd-launcher.js';
import type { GitWalls } from './git-walls.js';

export { gitWallsIn, NO_GIT_WALLS, type GitWalls } from './git-walls.js';

export type VirtiofsdFlavour = 'c' | 'rust';

export interface Virtiofsd {
  binary: string;
  flavour: VirtiofsdFlavour;
  /** The Rust virtiofsd has --readonly since 1.11; read-only is also a bind mount either way. */
  readonlyFlag: boolean;
}

/** Where distributions install it: the Rust virtiofsd (Debian 13, Ubuntu 24.04, Fedora; Arch in
 *  /usr/lib), QEMU's old C one (Debian 12). */
export const VIRTIOFSD_PATHS = ['/usr/libexec/virtiofsd', '/usr/lib/virtiofsd', '/usr/lib/qemu/virtiofsd', '/usr/bin/virtiofsd'];

/** Which virtiofsd prints this --help (pure). */
export function virtiofsdFlavour(help: string): { flavour: VirtiofsdFlavour; readonlyFlag: boolean } | null {
  if (/--shared-dir\b/.test(help)) return { flavour: 'rust', readonlyFlag: /--readonly\b/.test(help) };
  if (/-o source=/.test(help)) return { flavour: 'c', readonlyFlag: false };
  return null;
}

/** The virtiofsd to use, or null when none is installed (the caller refuses: no 9p passthrough). */
export function findVirtiofsd(): Virtiofsd | null {
  const env = process.env['VIBEBOX_VIRTIOFSD'];
  for (const p of env ? [env] : VIRTIOFSD_PATHS) {
    if (!existsSync(p)) continue;
    const r = spawnSync(p, ['--help'], { encoding: 'utf8', timeout: 5000 });
    // QEMU's C virtiofsd drops supplementary groups before it parses options, so as an ordinary
    // user even --help fails ("setgroups() failed"): its usage text is in the binary, though.
    const f = virtiofsdFlavour(`${r.stdout ?? ''}\n${r.stderr ?? ''}`) ?? virtiofsdFlavour(binaryText(p));
    if (f) return { binary: p, ...f };
  }
  return null;
}

function binaryText(p: string): string {
  try {
    return readFileSync(p, 'latin1');
  } catch {
    return '';
  }
}

/** The path of the virtiofsd findVirtiofsd picks (for `vibebox doctor`). */
export function virtiofsdBinary(): string | null {
  return findVirtiofsd()?.binary ?? null;
}

/** python3 for the launcher (on the README's apt line), or null. */
export function findPython(): string | null {
  for (const p of ['/usr/bin/python3', '/usr/local/bin/python3']) if (existsSync(p)) return p;
  const r = spawnSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8', timeout: 5000 });
  return r.status === 0 && r.stdout.trim() ? r.stdout.trim() : null;
}

export interface VirtiofsdSpec {
  virtiofsd: Virtiofsd;
  python: string;
  socket: string;
  shared: string;
  readonly: boolean;
  /** Directories (absolute, inside `shared`) to hide behind an empty tmpfs. */
  hide: string[];
  /** Git metadata to make read-only (see gitWallsIn); empty when writable_git_config is set. */
  git: GitWalls;
  /** For a single-file mount: an empty host directory to share, with the file bound inside. */
  stage?: string;
  /** The guest user's uid/gid: the host user is mapped to it. */
  guestUid: number;
  guestGid: number;
  /** FUSE tuning under measurement (parseTuning), normally none. */
  tuning?: readonly string[];
}

const shq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * FUSE tuning options a measurement may try (VIBEBOX_VIRTIOFSD_OPTS, comma-separated; the bench's
 * --fuse-options): only caching and readdir behaviour, never anything that moves the shared
 * directory or the walls. Returns the options, or the first one refused (pure).
 */
export const TUNING_OPTIONS: readonly RegExp[] = [/^cache=(auto|always|none)$/, /^timeout=\d+(\.\d+)?$/, /^(no_)?readdirplus$/, /^(no_)?writeback$/];
export function parseTuning(value: string | undefined): { ok: true; options: string[] } | { ok: false; refused: string } {
  const options = (value ?? '').split(',').map((o) => o.trim()).filter(Boolean);
  for (const o of options) if (!TUNING_OPTIONS.some((r) => r.test(o))) return { ok: false, refused: o };
  return { ok: true, options };
}

/** virtiofsd's own argv, serving the socket the launcher passes as fd 3 (pure). */
export function virtiofsdCommand(v: Virtiofsd, source: string, readonly: boolean, tuning: readonly string[] = []): string[] {
  if (v.flavour === 'rust') {
    // Inside our namespace it is not uid 0, so its namespace sandbox maps just that uid again.
    // (Tuning options are the C virtiofsd's: the Rust one is not measured here.)
    return [v.binary, '--fd=3', `--shared-dir=${source}`, '--cache=auto', '--sandbox=namespace', '--thread-pool-size=0', ...(readonly && v.readonlyFlag ? ['--readonly'] : [])];
  }
  // With --fd the C virtiofsd neither binds a socket nor takes its lock in /var/run/virtiofsd
  // (which an ordinary user cannot create). Later -o options override earlier ones.
  return [v.binary, '--fd=3', '-o', `source=${source}`, '-o', 'cache=auto', '-o', 'no_xattr', '--thread-pool-size=0', ...tuning.flatMap((o) => ['-o', o])];
}

/** The whole chain: launcher → unshare → sh (walls) → virtiofsd (pure). */
export function virtiofsdArgv(s: VirtiofsdSpec): string[] {
  // The C virtiofsd of QEMU 7.2 has no read-only flag, so read-only shares are bind-mounted
  // read-only in the private namespace: the kernel then refuses every write.
  const steps: string[] = ['set -e'];
  let source = s.shared;
  if (s.stage) {
    // virtiofs shares directories: share a stage directory that holds only this file.
    const target = `${s.stage}/${basename(s.shared)}`;
    steps.push(`mount -t tmpfs -o size=4k,mode=0755 vibebox-stage ${shq(s.stage)}`, `touch ${shq(target)}`, `mount --bind ${shq(s.shared)} ${shq(target)}`);
    if (s.readonly) steps.push(`mount -o remount,bind,ro ${shq(target)}`);
    source = s.stage;
  } else if (s.readonly) {
    steps.push(`mount --bind ${shq(s.shared)} ${shq(s.shared)}`, `mount -o remount,bind,ro ${shq(s.shared)}`);
  }
  if (!s.readonly) steps.push(...gitWallSteps(s.git));
  for (const h of s.hide) steps.push(`mount -t tmpfs -o ro,size=4k,mode=0555 vibebox-hidden ${shq(h)}`);
  // argv[0] names the socket, so the orphan clean-up (by run-dir command line) finds virtiofsd
  // and the server it forks: with --fd nothing else on its command line names the run dir.
  steps.push(`exec -a ${shq(`virtiofsd@${s.socket}`)} ${virtiofsdCommand(s.virtiofsd, source, s.readonly, s.tuning).map(shq).join(' ')}`);
  // The user namespace maps the host user to the guest user (vibe) and nothing else: files vibe
  // creates are the host user's, the host user's files are vibe's, and guest root (or any other
  // guest id) has no host id, so it can neither create nor chown files as anyone on the host.
  // --keep-caps gives virtiofsd the capabilities it needs inside that namespace only.
  const unshare = ['unshare', '--user', `--map-user=${s.guestUid}`, `--map-group=${s.guestGid}`, '--keep-caps', '--mount', '--propagation', 'private', 'bash', '-c', steps.join('; ')];
  return launcherArgv(s.python, s.socket, unshare);
}

/** The shell steps that put up the walls in the private mount namespace (pure). */
export function gitWallSteps(g: GitWalls): string[] {
  const out: string[] = [];
  // mkdir and touch run as the guest user, which is the host user: what they make is the user's.
  for (const h of g.missingHooks) out.push(`mkdir -p ${shq(h)}`);
  for (const f of g.missingFiles) out.push(`touch ${shq(f)}`);
  // Sorted, a directory comes before what is below it: binding a parent after a child would hide
  // the child's mount. Pinned directories and gitdirs are bound onto themselves (a mount point
  // cannot be renamed, removed or replaced); walls are bound read-only too.
  const ro = new Set(g.readonly);
  const empty = new Set(g.empty);
  for (const p of [...new Set([...g.gitDirs, ...g.pinned, ...g.readonly, ...g.empty])].sort()) {
    if (empty.has(p)) out.push(`mount -t tmpfs -o ro,size=4k,mode=0555 vibebox-hidden ${shq(p)}`);
    else {
      out.push(`mount --bind ${shq(p)} ${shq(p)}`);
      if (ro.has(p)) out.push(`mount -o remount,bind,ro ${shq(p)}`);
    }
  }
  return out;
}

/**
 * The session folders a share would expose: its own `.vibebox/` and those of projects one level
 * down (a mount of ~/code must not show every project's VM disk and logs). Deeper ones are not
 * searched: walking a whole tree at every start would cost more than it protects.
 */
export function statefulDirsIn(shared: string): string[] {
  const out: string[] = [];
  const own = join(shared, '.vibebox');
  if (existsSync(own)) out.push(own);
  let entries: Dirent[] = [];
  try {
    entries = readdirSync(shared, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!e.isDirectory() || e.name === '.vibebox') continue;
    const d = join(shared, e.name, '.vibebox');
    if (existsSync(d)) out.push(d);
  }
  return out;
}
