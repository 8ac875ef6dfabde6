// An append-only log with a size cap and one old file (<file>.1): what the guest can make the
// supervisor write never fills the disk.
import { appendFileSync, existsSync, renameSync, statSync } from 'node:fs';

export class RotatingLog {
  private size: number;
  constructor(
    readonly file: string,
    private maxBytes = 8 * 1024 * 1024,
  ) {
    this.size = existsSync(file) ? statSync(file).size : 0;
    if (this.size > maxBytes) this.rotate();
  }

  write(line: string): void {
    const b = Buffer.from(line.endsWith('\n') ? line : `${line}\n`, 'utf8');
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
