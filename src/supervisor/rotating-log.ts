// An append-only log with a size cap and one old file (<file>.1): what the guest can make the
// supervisor write never fills the disk. Created 0600 and never through a link
// (qemu/private-file.ts): a session's logs show what runs in it.
import { closeSync, fstatSync, renameSync, writeSync } from 'node:fs';
import { openPrivateAppend } from '../../qemu/private-file.js';

export class RotatingLog {
  private size: number;
  private fd: number | null = null;
  constructor(
    readonly file: string,
    private maxBytes = 8 * 1024 * 1024,
    o: { fresh?: boolean } = {},
  ) {
    this.size = 0;
    try {
      this.fd = openPrivateAppend(file);
      this.size = fstatSync(this.fd).size;
    } catch {
      /* a link or not a file: refused; written nowhere until it is replaced */
    }
    // fresh: a new run starts a new file (the previous run's becomes <file>.1, for post-mortems).
    if (this.size > maxBytes || (o.fresh && this.size > 0)) this.rotate();
  }

  write(line: string): void {
    this.append(line.endsWith('\n') ? line : `${line}\n`);
  }

  /** Raw text (a console stream: lines may arrive in pieces). */
  append(text: string): void {
    const b = Buffer.from(text, 'utf8');
    if (this.size + b.length > this.maxBytes) this.rotate();
    try {
      this.fd ??= openPrivateAppend(this.file);
      writeSync(this.fd, b);
      this.size += b.length;
    } catch {
      /* a full disk, or a link put in its place, must not end the supervisor */
    }
  }

  private rotate(): void {
    this.closeFd();
    try {
      renameSync(this.file, `${this.file}.1`);
    } catch {
      /* nothing to rotate */
    }
    this.size = 0;
  }

  private closeFd(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

