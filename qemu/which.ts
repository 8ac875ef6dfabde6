// Where an executable is on PATH (like `command -v`), or null.
import { accessSync, constants } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';

export function which(cmd: string, path: string = process.env['PATH'] ?? '/usr/bin:/bin'): string | null {
  const candidates = isAbsolute(cmd) ? [cmd] : path.split(delimiter).filter(Boolean).map((d) => join(d, cmd));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      /* next */
    }
  }
  return null;
}
