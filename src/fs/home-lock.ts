// Short host-side locks for read-modify-write edits (vibebox.toml by `allow`/`deny`, the approved
// grants): two commands at once must both land, not the last one win. The lock lives under
// ~/.vibebox/locks, never in the project, which the guest can write.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import lockfile from 'proper-lockfile';
import { VibeboxError } from '../errors.js';
import { homePaths } from '../paths.js';

/** How long a command waits for another one's edit before it gives up. */
export const LOCK_WAIT_MS = 15_000;

/** How a lock waits, and what its refusal says: short edits by default (see LOCK_WAIT_MS). */
export interface LockWait {
  stale: number;
  update: number;
  retries: { retries: number; factor: number; minTimeout: number; maxTimeout: number; maxRetryTime?: number };
  /** The error when the lock could not be taken in time. */
  refused: (path: string, seconds: string, why: string) => VibeboxError;
}

const EDIT = (what: string): LockWait => ({
  // An edit takes milliseconds; a lock not refreshed for 10 s was left by a killed process.
  stale: 10_000,
  update: 2_000,
  retries: { retries: 10_000, factor: 1.2, minTimeout: 5, maxTimeout: 100, maxRetryTime: LOCK_WAIT_MS },
  refused: (path, s, why) => new VibeboxError('E_LOCKED', `another vibebox command is editing ${what} and held its lock ${path} for ${s} s (${why})`, 'wait for it to finish and run again'),
});

/** Run `fn` holding the lock `name` (a file name under ~/.vibebox/locks); `what` names the edit in the error. */
export async function withHomeLock<T>(name: string, what: string, fn: () => T | Promise<T>, wait: LockWait = EDIT(what)): Promise<T> {
  const dir = homePaths().locksDir;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, `${name}.lock`);
  let release: () => Promise<void>;
  const started = Date.now();
  try {
    // proper-lockfile keys its in-process table by this first argument: one path per lock, or two
    // different locks held at once (the project's and a grant's) overwrite each other's entry and
    // its refresh timer crashes the process after the first release.
    release = await lockfile.lock(join(dir, name), { lockfilePath: path, realpath: false, stale: wait.stale, update: wait.update, retries: wait.retries });
  } catch (e) {
    throw wait.refused(path, ((Date.now() - started) / 1000).toFixed(0), (e as Error).message);
  }
  try {
    return await fn();
  } finally {
    await release().catch(() => undefined);
  }
}
