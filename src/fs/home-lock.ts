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

/** Run `fn` holding the lock `name` (a file name under ~/.vibebox/locks); `what` names the edit in the error. */
export async function withHomeLock<T>(name: string, what: string, fn: () => T | Promise<T>): Promise<T> {
  const dir = homePaths().locksDir;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, `${name}.lock`);
  let release: () => Promise<void>;
  const started = Date.now();
  try {
    release = await lockfile.lock(dir, {
      lockfilePath: path,
      realpath: false,
      // An edit takes milliseconds; a lock not refreshed for 10 s was left by a killed process.
      stale: 10_000,
      update: 2_000,
      retries: { retries: 10_000, factor: 1.2, minTimeout: 5, maxTimeout: 100, maxRetryTime: LOCK_WAIT_MS },
    });
  } catch (e) {
    const s = ((Date.now() - started) / 1000).toFixed(0);
    throw new VibeboxError('E_LOCKED', `another vibebox command is editing ${what} and held its lock ${path} for ${s} s (${(e as Error).message})`, 'wait for it to finish and run again');
  }
  try {
    return await fn();
  } finally {
    await release().catch(() => undefined);
  }
}
