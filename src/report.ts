// The one place a failure becomes output and an exit code (ARCHITECTURE §12).
import { VibeboxError } from './errors.js';

export function reportAndExit(e: unknown): never {
  if (e instanceof VibeboxError) {
    process.stderr.write(`${e.toLine()}\n`);
    if (process.env['VIBEBOX_DEBUG'] === '1') process.stderr.write(`${e.stack}\n`);
    process.exit(e.exitCode);
  }
  const err = e as Error;
  process.stderr.write(`vibebox: ${err?.message ?? String(e)} (set VIBEBOX_DEBUG=1 for details)\n`);
  if (process.env['VIBEBOX_DEBUG'] === '1') process.stderr.write(`${err?.stack}\n`);
  process.exit(1);
}
