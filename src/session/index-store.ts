// Index I/O: every write is read-modify-write under a lock, then temp file + rename. The index
// never loses a session by itself: an entry whose directory is missing (an unmounted drive, a
// renamed parent) is kept and shown as missing; an entry vibebox cannot read is skipped with a
// warning and written back as it was.
import { mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import lockfile from 'proper-lockfile';
import { VibeboxError, isErrno } from '../errors.js';
import { homePaths } from '../paths.js';
import { describeBad, parseIndexEntries, serializeIndex, type BadEntry, type Index, type IndexEntry } from './index-file.js';

/**
 * Where an indexed session stands on disk. `deleted`: its directory is there without .vibebox/
 * (the user deleted the session by hand, README "Files on disk"). `missing`: the directory itself
 * cannot be reached; the session may come back, so it stays in the index.
 */
export type Presence = 'present' | 'deleted' | 'missing';

export function presence(e: IndexEntry): Presence {
  try {
    statSync(join(e.directory, '.vibebox'));
    return 'present';
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) return 'missing';
  }
  try {
    return statSync(e.directory).isDirectory() ? 'deleted' : 'missing';
  } catch {
    return 'missing';
  }
}

interface Loaded {
  entries: Index;
  bad: BadEntry[];
}

/** Warned about once per process (a command reads the index several times). */
const warned = new Set<string>();

function warn(file: string, bad: readonly BadEntry[]): void {
  for (const b of bad) {
    const line = `vibebox: warning: ${file}: ${describeBad(b)}; skipped (fix or remove it by hand: ${b.text !== null ? 'vibebox keeps it as written' : 'vibebox cannot update the index until then'})`;
    const key = `${file}\0${b.text ?? b.n}\0${b.why}`;
    if (warned.has(key)) continue;
    warned.add(key);
    process.stderr.write(`${line}\n`);
  }
}

/** One copy per content: a file that stays broken is not copied again on every run. */
function keepCopy(file: string, text: string): string {
  const dir = dirname(file);
  const prefix = `${basename(file)}.corrupt-`;
  for (const name of readdirSync(dir).filter((n) => n.startsWith(prefix)).sort()) {
    try {
      if (readFileSync(join(dir, name), 'utf8') === text) return join(dir, name);
    } catch {
      /* unreadable copy: not ours to judge */
    }
  }
  const copy = `${file}.corrupt-${new Date().toISOString().replace(/[:.]/g, '')}`;
  writeFileSync(copy, text, { flag: 'wx', mode: 0o600 });
  return copy;
}

function load(file: string): Loaded {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return { entries: [], bad: [] };
    if (isErrno(e, 'EISDIR')) throw new VibeboxError('E_INDEX_CORRUPT', `${file} is a directory, not the session index`, `move it away; vibebox then starts an empty index`);
    if (isErrno(e, 'ENOTDIR')) throw homeNotDir(dirname(file));
    if (isErrno(e, 'EACCES')) throw new VibeboxError('E_INDEX_CORRUPT', `cannot read ${file}: permission denied`, 'it must be yours and readable (chmod u+rw)');
    throw e;
  }
  let parsed: Loaded;
  try {
    parsed = parseIndexEntries(text);
  } catch (e) {
    if (e instanceof VibeboxError && e.code === 'E_INDEX_CORRUPT') {
      // Never wipe it: keep a copy the user can inspect, and stop.
      const copy = keepCopy(file, text);
      throw new VibeboxError('E_INDEX_CORRUPT', `${file} is corrupted: ${e.message.replace(/^sessions\.toml:? ?/, '')}`, `a copy was kept at ${copy}; fix or delete ${file}, then retry`);
    }
    throw e;
  }
  warn(file, parsed.bad);
  return parsed;
}

function homeNotDir(home: string): VibeboxError {
  return new VibeboxError('E_USAGE', `VIBEBOX_HOME ${home} is not a directory`, 'point VIBEBOX_HOME at a directory, or unset it for ~/.vibebox');
}

/** Sessions deleted by hand leave the index; missing ones stay. */
function pruned(index: Index): Index {
  return index.filter((s) => presence(s) !== 'deleted');
}

function writeAtomic(file: string, index: Index, kept: readonly BadEntry[]): void {
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  writeFileSync(tmp, serializeIndex(index, kept), { mode: 0o644 });
  renameSync(tmp, file);
}

async function withLock<T>(home: string, fn: () => T): Promise<T> {
  try {
    mkdirSync(home, { recursive: true });
  } catch (e) {
    if (isErrno(e, 'EEXIST') || isErrno(e, 'ENOTDIR')) throw homeNotDir(home);
    throw e;
  }
  const release = await lockfile.lock(home, {
    lockfilePath: join(home, 'sessions.toml.lock'),
    realpath: false,
    stale: 10_000,
    retries: { retries: 200, factor: 1.2, minTimeout: 5, maxTimeout: 100 },
  });
  try {
    return fn();
  } finally {
    await release();
  }
}

/** Read the index, dropping sessions deleted by hand (and persisting that if anything was dropped). */
export async function readIndex(home = homePaths().home): Promise<Index> {
  const file = homePaths(home).sessionsIndex;
  const all = load(file).entries;
  const kept = pruned(all);
  if (kept.length === all.length) return kept;
  return updateIndex((idx) => idx, home);
}

/** The index as it is on disk, without the lock (writes are atomic renames): for look-ups. */
export function readIndexSync(home = homePaths().home): Index {
  return pruned(load(homePaths(home).sessionsIndex).entries);
}

/** The entries vibebox cannot read (each already warned about once): a look-up that misses may be one of them. */
export function unreadableEntries(home = homePaths().home): BadEntry[] {
  return load(homePaths(home).sessionsIndex).bad;
}

/** Read-modify-write under the lock. Sessions deleted by hand are dropped on the way; unreadable entries are kept as written. */
export async function updateIndex(edit: (index: Index) => Index, home = homePaths().home): Promise<Index> {
  const file = homePaths(home).sessionsIndex;
  return withLock(home, () => {
    const { entries, bad } = load(file);
    const lost = bad.find((b) => b.text === null);
    if (lost) throw new VibeboxError('E_INDEX_CORRUPT', `will not rewrite ${file}: its ${describeBad(lost)} could not be kept as written`, 'fix or remove that entry by hand, then retry');
    const next = edit(pruned(entries));
    writeAtomic(file, next, bad);
    return next;
  });
}
