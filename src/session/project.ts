// Which directory is the project: the cwd or --project, never / or the home directory itself.
import { realpathSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { resolve } from 'node:path';
import { VibeboxError } from '../errors.js';

export function resolveProject(dir: string | undefined, home = homedir()): string {
  const abs = resolve(dir ?? process.cwd());
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
