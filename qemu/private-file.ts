// Session files hold the guest's disk, its RAM (keys included) and its logs: only this user may
// read them, from their first byte. A mode set after the fact is too late (a reader who opened the
// file meanwhile keeps it), and the umask is the user's (often 022): so every file is created
// 0600 by vibebox itself, before any tool (qemu-img, QEMU, zstd) writes into it, and every
// directory 0700. Links are never followed. See README.md, "Security model".
import { chmodSync, closeSync, constants as fsc, fchmodSync, fstatSync, mkdirSync, openSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

export const PRIVATE_FILE = 0o600;
export const PRIVATE_DIR = 0o700;

/**
 * A new file only this user can read, open for writing (O_EXCL: never one someone else made or
 * linked there). The caller closes the descriptor.
 */
export function createPrivateFile(path: string): number {
  const fd = openSync(path, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, PRIVATE_FILE);
  try {
    // The umask can only take bits away; this makes the mode exact whatever it is.
    fchmodSync(fd, PRIVATE_FILE);
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  return fd;
}

/** Create `path` empty and private (for a tool that opens it by name and truncates it). */
export function touchPrivateFile(path: string): void {
  closeSync(createPrivateFile(path));
}

/**
 * A log opened for appending, created 0600 if missing, tightened to 0600 if it is an older,
 * wider one; a link or anything but a regular file is refused (ELOOP / an Error).
 */
export function openPrivateAppend(path: string): number {
  const fd = openSync(path, fsc.O_WRONLY | fsc.O_APPEND | fsc.O_CREAT | fsc.O_NOFOLLOW | fsc.O_NONBLOCK, PRIVATE_FILE);
  try {
    if (!fstatSync(fd).isFile()) throw new Error(`${path} is not a regular file`);
    fchmodSync(fd, PRIVATE_FILE);
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  return fd;
}

/** mkdir -p with every directory it makes 0700, and `dir` itself 0700 even when it was there. */
export function mkdirPrivate(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR });
  tightenDir(dir);
}

/**
 * `dir` (ours) to 0700. A link to a directory is followed: VIBEBOX_HOME may be one (the user's
 * choice); a project's `.vibebox/` never is (readSessionFile refuses a linked one first).
 */
function tightenDir(dir: string): void {
  const st = statSync(dir);
  if (!st.isDirectory()) throw new Error(`${dir} is not a directory`);
  if (st.uid === process.getuid?.() && (st.mode & 0o777) !== PRIVATE_DIR) chmodSync(dir, PRIVATE_DIR);
}

/**
 * A session folder made by an older vibebox (0755, files 0644) tightened: the folder 0700, each
 * regular file in it 0600. Links, FIFOs and the like are left alone (never followed or opened
 * blocking). Returns the names it tightened.
 */
export function tightenPrivateDir(dir: string): string[] {
  tightenDir(dir);
  const changed: string[] = [];
  for (const name of readdirSync(dir)) {
    let fd: number;
    try {
      fd = openSync(join(dir, name), fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK | fsc.O_NOCTTY);
    } catch {
      continue; // a link (ELOOP), or gone
    }
    try {
      const st = fstatSync(fd);
      if (st.isFile() && (st.mode & 0o777) !== PRIVATE_FILE && st.uid === process.getuid?.()) {
        fchmodSync(fd, PRIVATE_FILE);
        changed.push(name);
      }
    } finally {
      closeSync(fd);
    }
  }
  return changed;
}
