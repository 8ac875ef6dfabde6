// Reading a file that a project or a guest can write (vibebox.toml, kit.json, a kit key, a
// manifest): the guest can put a FIFO there (an open would block forever), a symlink to
// /dev/zero or to a host secret, or a file of gigabytes. So: never follow a link, never block on
// open, only a regular file, only up to a size cap. See docs/architecture.md, "Hostile files".
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { VibeboxError } from '../errors.js';
import { shown } from '../../guest/shown.js';

export interface UntrustedRead {
  /** The file's text (UTF-8). */
  text: string;
  /** Its mode bits and owner, from the descriptor that was read (no second lookup by name). */
  mode: number;
  uid: number;
}

const FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY;

/**
 * The file at `path`, or null when there is none. A symlink, a directory, a FIFO, a socket or a
 * device, or a file larger than `maxBytes`, is refused with one line (E_CONFIG_INVALID unless
 * `code` says otherwise). Only the last component is protected from links: the directories above
 * it are the user's choice (the project path) or checked by the caller.
 */
export function readUntrusted(path: string, o: { maxBytes: number; what: string; code?: 'E_CONFIG_INVALID' | 'E_KIT' | 'E_USAGE' }): UntrustedRead | null {
  const code = o.code ?? 'E_CONFIG_INVALID';
  let fd: number;
  try {
    fd = openSync(path, FLAGS);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') return null;
    if (err.code === 'ELOOP' || err.code === 'EMLINK') throw new VibeboxError(code, `${o.what} ${shown(path)} is a symbolic link`, 'vibebox reads it only as a regular file: replace the link with the file itself');
    if (err.code === 'EISDIR') throw new VibeboxError(code, `${o.what} ${shown(path)} is a directory`, 'it must be a regular file: move the directory away');
    throw new VibeboxError(code, `cannot read ${o.what} ${shown(path)}: ${err.code ?? err.message}`, 'check that the file exists and that you can read it');
  }
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) throw new VibeboxError(code, `${o.what} ${shown(path)} is a directory`, 'it must be a regular file: move the directory away');
    if (!st.isFile()) throw new VibeboxError(code, `${o.what} ${shown(path)} is not a regular file (a FIFO, socket or device)`, 'replace it with a regular file');
    if (st.size > o.maxBytes) throw new VibeboxError(code, `${o.what} ${shown(path)} is ${st.size} bytes, more than the ${o.maxBytes} vibebox reads`, 'make it smaller');
    // Read at most maxBytes + 1: a file that grows while it is read is still capped.
    const buf = Buffer.alloc(o.maxBytes + 1);
    let n = 0;
    for (;;) {
      const r = readSync(fd, buf, n, buf.length - n, null);
      if (r === 0) break;
      n += r;
      if (n > o.maxBytes) throw new VibeboxError(code, `${o.what} ${shown(path)} is more than the ${o.maxBytes} bytes vibebox reads`, 'make it smaller');
    }
    return { text: buf.subarray(0, n).toString('utf8'), mode: st.mode, uid: st.uid };
  } finally {
    closeSync(fd);
  }
}
