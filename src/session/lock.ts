// The project lock: one vibebox at a time creates, starts, approves or deletes a project's
// session (two clients starting at once get one VM).
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import lockfile from 'proper-lockfile';
import { VibeboxError } from '../errors.js';
import { homePaths } from '../paths.js';
import { mkdirPrivate } from '../../qemu/private-file.js';

export async function withProjectLock<T>(project: string, fn: () => Promise<T>): Promise<T> {
  const dir = homePaths().locksDir;
  mkdirPrivate(dir);
  const name = createHash('sha256').update(project).digest('hex').slice(0, 16);
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(dir, {
      lockfilePath: join(dir, `${name}.lock`),
      realpath: false,
      stale: 15_000,
      update: 5_000,
      // Another vibebox may be building the image (minutes): wait for it rather than fail.
      retries: { retries: 600, factor: 1.3, minTimeout: 5, maxTimeout: 1000 },
    });
  } catch (e) {
    throw new VibeboxError('E_LOCKED', `another vibebox is starting this project and did not finish (${(e as Error).message})`, 'wait for it, or check `vibebox list`');
  }
  try {
    return await fn();
  } finally {
    await release().catch(() => undefined);
  }
}
