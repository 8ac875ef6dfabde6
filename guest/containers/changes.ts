// The container's uncommitted changes as a user wants to read them: what was installed or edited
// outside /workspace and the state volume, without the noise every run leaves (caches, logs, tmp).
import type { Change } from '../docker/engine.js';
import { shown } from '../shown.js';

/** Prefixes whose changes never count (mounts, caches, scratch, per-run files). */
const NOISE_PREFIXES = [
  '/workspace',
  '/home/vibe',
  '/tmp',
  '/var/tmp',
  '/run',
  '/var/run',
  '/var/cache',
  '/var/log',
  // The package manager's bookkeeping: an install shows as the files it added.
  '/var/lib/apt',
  '/var/lib/dpkg',
  '/root/.npm',
  '/root/.cache',
  '/root/.config',
  '/root/.local/state',
  '/dev',
  '/proc',
  '/sys',
  '/etc/vibebox',
];
/** Files whose changes never count, wherever they are. */
const NOISE_NAMES = new Set(['.bash_history', '.python_history', '.node_repl_history', '.lesshst', '.viminfo', '.wget-hsts', 'ld.so.cache', 'aux-cache']);
/** Mount points Docker manages (bind-mounted per container, docker-init with Init: never the user's change). */
const NOISE_PATHS = new Set([
  '/sbin/docker-init', '/usr/sbin/docker-init', '/etc/hostname', '/etc/hosts', '/etc/resolv.conf', '/etc/ssl/certs/ca-certificates.crt', '/etc/mtab', '/.dockerenv', '/root']);

function isUnder(path: string, prefix: string): boolean {
  return path === prefix || path.startsWith(prefix + '/');
}

/** A directory above a noise prefix (/home above /home/vibe): its contents need a closer look. */
export function holdsNoise(path: string): boolean {
  return NOISE_PREFIXES.some((p) => p.startsWith(path + '/'));
}

export function isNoise(path: string): boolean {
  if (NOISE_PATHS.has(path)) return true;
  if (NOISE_PREFIXES.some((p) => isUnder(path, p))) return true;
  const base = path.slice(path.lastIndexOf('/') + 1);
  if (NOISE_NAMES.has(base)) return true;
  // Python bytecode caches appear wherever a script ran.
  return base === '__pycache__' || path.includes('/__pycache__/');
}

/**
 * The changes that matter: noise dropped, and a directory reported as "changed" only because
 * something inside it changed is left out (Docker lists every parent of a change).
 */
export function meaningfulChanges(all: readonly Change[]): Change[] {
  const kept = all.filter((c) => !isNoise(c.path));
  // Parents of every change, noise included: a directory changed only by its noise is no change.
  const parents = new Set<string>();
  for (const { path: p } of all) {
    for (let i = p.lastIndexOf('/'); i > 0; i = p.lastIndexOf('/', i - 1)) parents.add(p.slice(0, i));
  }
  // An added directory with added children: report only the directory (one line, not its tree).
  const addedDirs = kept.filter((c) => c.kind === 'added' && parents.has(c.path)).map((c) => c.path);
  return kept
    .filter((c) => !(c.kind === 'changed' && parents.has(c.path)))
    .filter((c) => !addedDirs.some((d) => c.path !== d && isUnder(c.path, d)))
    .sort((a, b) => ORDER[a.kind] - ORDER[b.kind] || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** Additions first (what was installed), then deletions, then edits. */
const ORDER: Record<Change['kind'], number> = { added: 0, deleted: 1, changed: 2 };

const SIGN: Record<Change['kind'], string> = { added: '+', changed: '~', deleted: '-' };

/** The summary printed after a run (empty when nothing matters). */
export function changesSummary(all: readonly Change[], max = 8): string {
  const c = meaningfulChanges(all);
  if (c.length === 0) return '';
  const counts = (['added', 'changed', 'deleted'] as const).map((k) => [k, c.filter((x) => x.kind === k).length] as const).filter(([, n]) => n > 0);
  const lines = [`vibebox: the container has uncommitted changes outside /workspace (${counts.map(([k, n]) => `${n} ${k}`).join(', ')}):`];
  // File names are the container's: after a run this goes out with the run's own output, which
  // the host cannot filter, so they are escaped here.
  for (const x of c.slice(0, max)) lines.push(`  ${SIGN[x.kind]} ${shown(x.path)}`);
  if (c.length > max) lines.push(`  …and ${c.length - max} more`);
  lines.push('  keep them for good: vibebox commit; discard them: vibebox reset; or leave them as they are');
  return lines.join('\n') + '\n';
}
