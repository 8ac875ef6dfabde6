// Which directory is the project: the cwd or --project, never / or the home directory itself.
import { realpathSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import { VibeboxError } from '../errors.js';

/** process.cwd(), or one line when the directory we are in was deleted or moved away. */
export function currentDir(): string {
  try {
    return process.cwd();
  } catch {
    throw new VibeboxError('E_PROJECT_FORBIDDEN', 'the current directory was deleted or moved away', 'cd into a project directory again, or pass --project DIR');
  }
}

export function resolveProject(dir: string | undefined, home = homedir()): string {
  const abs = dir !== undefined && isAbsolute(dir) ? resolve(dir) : resolve(currentDir(), dir ?? '.');
  let real: string;
  try {
    real = realpathSync(abs);
  } catch {
    throw new VibeboxError('E_PROJECT_FORBIDDEN', `project directory ${abs} does not exist`, 'cd into a project directory or pass --project DIR');
  }
  if (!statSync(real).isDirectory()) throw new VibeboxError('E_PROJECT_FORBIDDEN', `${real} is not a directory`, 'pass a project directory');
  let realHome = home;
  try {
    realHome = realpathSync(home);
  } catch {
    /* a missing home cannot be the project */
  }
  if (real === '/' || real === realHome) {
    throw new VibeboxError('E_PROJECT_FORBIDDEN', `refusing to use ${real} as a project: it would expose everything the VM protects`, 'cd into a project directory, e.g. ~/code/my-app');
  }
  return real;
}
