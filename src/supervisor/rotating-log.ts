// An append-only log with a size cap and one old file (<file>.1): what the guest can make the
// supervisor write never fills the disk.
import { appendFileSync, existsSync, renameSync, statSync } from 'node:fs';

export class RotatingLog {
  private size: number;
  constructor(
    readonly file: string,
    private maxBytes = 8 * 1024 * 1024,
    o: { fresh?: boolean } = {},
  ) {
    this.size = existsSync(file) ? statSync(file).size : 0;
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
      appendFileSync(this.file, b);
      this.size += b.length;
    } catch {
      /* a full disk must not end the supervisor */
    }
  }

  private rotate(): void {
    try {
      renameSync(this.file, `${this.file}.1`);
    } catch {
      /* nothing to rotate */
    }
    this.size = 0;
  }
}
