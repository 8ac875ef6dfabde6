// The project lock: one vibebox at a time creates, starts, approves or deletes a project's
// session (two clients starting at once get one VM). A home lock (src/fs/home-lock.ts) that waits
// for minutes, not seconds.
import { createHash } from 'node:crypto';
import { VibeboxError } from '../errors.js';
import { homePaths } from '../paths.js';
import { mkdirPrivate } from '../../qemu/private-file.js';
import { withHomeLock } from '../fs/home-lock.js';

export async function withProjectLock<T>(project: string, fn: () => Promise<T>): Promise<T> {
  mkdirPrivate(homePaths().locksDir);
  const name = createHash('sha256').update(project).digest('hex').slice(0, 16);
  return withHomeLock(name, 'this project', fn, {
    stale: 15_000,
    update: 5_000,
    // Another vibebox may be building the image (minutes): wait for it rather than fail.
    retries: { retries: 600, factor: 1.3, minTimeout: 5, maxTimeout: 1000 },
    refused: (_path, _s, why) => new VibeboxError('E_LOCKED', `another vibebox is starting this project and did not finish (${why})`, 'wait for it, or check `vibebox list`'),
  });
}
