// The one place a failure becomes output and an exit code (docs/architecture.md, Errors and output).
import { VibeboxError } from './errors.js';
import { shown } from '../guest/shown.js';

const ERRNO_TEXT: Record<string, string> = {
  ENOENT: 'no such file or directory',
  ENOTDIR: 'a part of this path is a file, not a directory',
  EISDIR: 'is a directory, not a file',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EEXIST: 'already exists',
  ELOOP: 'too many levels of symbolic links',
  ENAMETOOLONG: 'the name is too long',
  EROFS: 'on a read-only file system',
};

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
  // A file-system error on a path is said in words, with the path, not as Node's "ENOTDIR: …, scandir".
  const syscall = (err as { syscall?: string } | undefined)?.syscall;
  const why = err?.code === 'EEXIST' && syscall === 'mkdir' ? 'a file is in the way of this directory' : err?.code !== undefined ? ERRNO_TEXT[err.code] : undefined;
  if (why && err.path) {
    process.stderr.write(`vibebox: ${shown(err.path)}: ${why} (check that path; set VIBEBOX_DEBUG=1 for details)\n`);
    if (process.env['VIBEBOX_DEBUG'] === '1') process.stderr.write(`${err?.stack}\n`);
    process.exit(1);
  }
  process.stderr.write(`vibebox: ${shown(err?.message ?? String(e))} (set VIBEBOX_DEBUG=1 for details)\n`);
  if (process.env['VIBEBOX_DEBUG'] === '1') process.stderr.write(`${err?.stack}\n`);
  process.exit(1);
}
