// One virtiofsd per mount. Read-only is enforced here on the host; `.vibebox/` is covered by an
// empty directory inside virtiofsd's own mount namespace, so guest root cannot uncover it.
import { existsSync, readdirSync, type Dirent } from 'node:fs';
import { basename, join } from 'node:path';

export function virtiofsdBinary(): string | null {
  for (const p of [process.env['VIBEBOX_VIRTIOFSD'], '/usr/lib/qemu/virtiofsd', '/usr/libexec/virtiofsd', '/usr/bin/virtiofsd']) {
    if (p && existsSync(p)) return p;
  }
  return null;
}

export interface VirtiofsdSpec {
  binary: string;
  socket: string;
  shared: string;
  readonly: boolean;
  /** Directories (absolute, inside `shared`) to hide behind an empty tmpfs. */
  hide: string[];
  /** For a single-file mount: an empty host directory to share, with the file bound inside. */
  stage?: string;
  /** The guest user's uid/gid: the host user is mapped to it (see virtiofsdArgv). */
  guestUid: number;
  guestGid: number;
}

const shq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** argv for `unshare -m sh -c '<hide>; exec virtiofsd …'` (pure). */
export function virtiofsdArgv(s: VirtiofsdSpec): string[] {
  // The C virtiofsd of QEMU 7.2 takes -o options; it has no read-only flag, so read-only shares
  // are bind-mounted read-only in the private namespace: the kernel then refuses every write.
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
  for (const h of s.hide) {
    if (existsSync(h)) steps.push(`mount -t tmpfs -o ro,size=4k,mode=0555 vibebox-hidden ${shq(h)}`);
  }
  steps.push(`exec ${shq(s.binary)} --socket-path=${shq(s.socket)} -o source=${shq(source)} -o cache=auto -o no_xattr --thread-pool-size=0`);
  // virtiofsd runs in a user namespace where the host user IS the guest user (vibe): files vibe
  // creates belong to the host user on the host, the host user's files are vibe's in the guest.
  // No other uid is mapped, so guest root cannot create or chown files as root on the host.
  // --keep-caps gives virtiofsd the capabilities it needs inside that namespace only.
  return ['unshare', '--user', `--map-user=${s.guestUid}`, `--map-group=${s.guestGid}`, '--keep-caps', '--mount', '--propagation', 'private', 'sh', '-c', steps.join('; ')];
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
