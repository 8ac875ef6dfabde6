// Index I/O: every write is read-modify-write under a lock, then temp file + rename.
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import lockfile from 'proper-lockfile';
import { VibeboxError, isErrno } from '../errors.js';
import { homePaths } from '../paths.js';
import { parseIndex, serializeIndex, type Index } from './index-file.js';

function readRaw(file: string): Index {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return [];
    throw e;
  }
  try {
    return parseIndex(text);
  } catch (e) {
    if (e instanceof VibeboxError && e.code === 'E_INDEX_CORRUPT') {
      // Never wipe it: keep a copy the user can inspect, and stop.
      const backup = `${file}.corrupt-${new Date().toISOString().replace(/[:.]/g, '')}`;
      copyFileSync(file, backup);
      throw new VibeboxError('E_INDEX_CORRUPT', `${file} is corrupted: ${e.message.replace(/^sessions\.toml:? ?/, '')}`, `a copy was kept at ${backup}; fix or delete ${file}, then retry`);
    }
    throw e;
  }
}

/** Entries whose <directory>/.vibebox/ is gone are dead: the session was deleted by hand. */
function live(index: Index): Index {
  return index.filter((s) => existsSync(join(s.directory, '.vibebox')));
}

function writeAtomic(file: string, index: Index): void {
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  writeFileSync(tmp, serializeIndex(index), { mode: 0o644 });
  renameSync(tmp, file);
}

async function withLock<T>(home: string, fn: () => T): Promise<T> {
  mkdirSync(home, { recursive: true });
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

/** Read the index, dropping dead entries (and persisting that if anything was dropped). */
export async function readIndex(home = homePaths().home): Promise<Index> {
  const file = homePaths(home).sessionsIndex;
  const all = readRaw(file);
  const alive = live(all);
  if (alive.length === all.length) return alive;
  return updateIndex((idx) => idx, home);
}

/** The index as it is on disk, without the lock (writes are atomic renames): for look-ups. */
export function readIndexSync(home = homePaths().home): Index {
  return live(readRaw(homePaths(home).sessionsIndex));
}

/** Read-modify-write under the lock. Dead entries are dropped on the way. */
export async function updateIndex(edit: (index: Index) => Index, home = homePaths().home): Promise<Index> {
  const file = homePaths(home).sessionsIndex;
  return withLock(home, () => {
    const next = edit(live(readRaw(file)));
    writeAtomic(file, next);
    return next;
  });
}
