// The one place a failure becomes output and an exit code (ARCHITECTURE §12).
import { VibeboxError } from './errors.js';
import { shown } from '../guest/shown.js';

export function reportAndExit(e: unknown): never {
  if (e instanceof VibeboxError) {
    // A message may quote the guest, a project file or a path: escaped at the one place it prints.
    process.stderr.write(`${shown(e.toLine())}\n`);
    if (process.env['VIBEBOX_DEBUG'] === '1') process.stderr.write(`${e.stack}\n`);
    process.exit(e.exitCode);
  }
  const err = e as Error & { code?: string; path?: string };
  if (err?.code === 'ENOSPC' || err?.code === 'EDQUOT') {
    // A full disk is the user's to fix, and nothing was half-written: every write is temp + rename.
    // A failure of the machine, not bad input: exit 1 (like E_NO_SPACE).
    process.stderr.write(`vibebox: no space left on the disk${err.path ? ` writing ${err.path}` : ''} (free some space, then run the command again)\n`);
    process.exit(1);
  }
  process.stderr.write(`vibebox: ${shown(err?.message ?? String(e))} (set VIBEBOX_DEBUG=1 for details)\n`);
  if (process.env['VIBEBOX_DEBUG'] === '1') process.stderr.write(`${err?.stack}\n`);
  process.exit(1);
}
