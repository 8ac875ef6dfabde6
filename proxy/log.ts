/**
 * The egress access log: one JSON object per line, appended synchronously (ordered, crash-safe).
 *
 * Bounded, because the guest decides how many lines it gets: the file is rotated at `maxBytes`
 * (one old file, `<file>.1`), identical denials within `repeatWindowMs` are written once and
 * counted (`repeated` on the line written when the window ends), and every string field is
 * stripped of control/format characters (hosts are guest-controlled) and capped in length.
 */
import { closeSync, constants, mkdirSync, openSync, renameSync, statSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

export type EgressRecord = {
  /** RFC 3339, UTC */
  ts: string;
  /** CONNECT, GET, POST, … ('' when the request could not be parsed) */
  method: string;
  /** normalised host ('' when unknown) */
  host: string;
  /** destination port (0 when unknown) */
  port: number;
  decision: 'allow' | 'deny';
  reason: string;
  /** the policy entry that matched */
  rule?: string;
  /** the IP address the proxy connected to */
  address?: string;
  /** HTTP status sent to the client (200 for an established tunnel) */
  status?: number;
  /** bytes client → destination (request body / tunnel upload) */
  bytes_up?: number;
  /** bytes destination → client (response body / tunnel download) */
  bytes_down?: number;
  duration_ms?: number;
  /** upstream failure code (ECONNREFUSED, ENOTFOUND, ETIMEDOUT, …) */
  error?: string;
  /** this line stands for this many identical denials (the others were not written); ts is the last */
  repeated?: number;
};

export type EgressLogOptions = {
  /** rotate when the file would grow beyond this; default 10 MiB */
  maxBytes?: number;
  /** identical denials within this window are written once; default 10 s */
  repeatWindowMs?: number;
  onError?: (err: Error) => void;
};

export const DEFAULT_LOG_MAX_BYTES = 10 * 1024 * 1024;
const DEFAULT_REPEAT_WINDOW_MS = 10_000;
/** distinct denials tracked for repetition; beyond it new ones are written (rotation bounds them) */
const MAX_TRACKED = 4096;
const MAX_FIELD = 300;

// C0/C1 controls, DEL, format characters (bidi overrides, zero-width), line/paragraph separators.
const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu;

/** A string safe for a log line or a terminal: no control or format characters, bounded length. */
export function printable(s: string, max = MAX_FIELD): string {
  const out = s.replace(UNPRINTABLE, '');
  return out.length > max ? `${out.slice(0, max)}…` : out;
}

function sanitize(rec: EgressRecord): EgressRecord {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(rec)) {
    if (v === undefined) continue;
    out[k] = typeof v === 'string' ? printable(v) : v;
  }
  return out as EgressRecord;
}

type Pending = { since: number; count: number; last: EgressRecord | null };

export class EgressLog {
  private dirReady = false;
  private size: number | null = null;
  private readonly maxBytes: number;
  private readonly windowMs: number;
  private readonly onError: (err: Error) => void;
  private readonly denials = new Map<string, Pending>();
  private sweeper: NodeJS.Timeout | null = null;

  constructor(
    private readonly file: string | undefined,
    opts: EgressLogOptions | ((err: Error) => void) = {},
  ) {
    const o = typeof opts === 'function' ? { onError: opts } : opts;
    this.maxBytes = o.maxBytes ?? DEFAULT_LOG_MAX_BYTES;
    this.windowMs = o.repeatWindowMs ?? DEFAULT_REPEAT_WINDOW_MS;
    this.onError = o.onError ?? (() => {});
  }

  write(record: EgressRecord): void {
    if (this.file === undefined) return;
    const rec = sanitize(record);
    if (rec.decision === 'deny' && !this.admitDenial(rec)) return;
    this.append(rec);
  }

  /** Write the counts of denials still held back (at shutdown). */
  close(): void {
    if (this.sweeper !== null) clearInterval(this.sweeper);
    this.sweeper = null;
    this.sweep(Number.POSITIVE_INFINITY);
    this.denials.clear();
  }

  /** True when this denial is to be written now; otherwise it is counted. */
  private admitDenial(rec: EgressRecord): boolean {
    const now = Date.now();
    const key = JSON.stringify([rec.method, rec.host, rec.port, rec.reason, rec.rule, rec.status, rec.address]);
    const p = this.denials.get(key);
    if (p !== undefined && now - p.since < this.windowMs) {
      p.count++;
      p.last = rec;
      this.startSweeper();
      return false;
    }
    if (p !== undefined) this.flush(key, p);
    if (this.denials.size >= MAX_TRACKED) this.sweep(now);
    if (this.denials.size < MAX_TRACKED) this.denials.set(key, { since: now, count: 0, last: null });
    return true;
  }

  private flush(key: string, p: Pending): void {
    this.denials.delete(key);
    if (p.count > 0 && p.last !== null) this.append({ ...p.last, repeated: p.count });
  }

  /** Write the counts of windows that ended before `now` and forget them. */
  private sweep(now: number): void {
    for (const [key, p] of this.denials) if (now === Number.POSITIVE_INFINITY || now - p.since >= this.windowMs) this.flush(key, p);
    if (this.denials.size === 0 && this.sweeper !== null) {
      clearInterval(this.sweeper);
      this.sweeper = null;
    }
  }

  private startSweeper(): void {
    if (this.sweeper !== null) return;
    this.sweeper = setInterval(() => this.sweep(Date.now()), this.windowMs);
    this.sweeper.unref();
  }

  private append(rec: EgressRecord): void {
    const file = this.file;
    if (file === undefined) return;
    try {
      if (!this.dirReady) {
        mkdirSync(dirname(file), { recursive: true });
        this.dirReady = true;
      }
      const line = `${JSON.stringify(rec)}\n`;
      const len = Buffer.byteLength(line);
      if (this.size === null) {
        try {
          this.size = statSync(file).size;
        } catch {
          this.size = 0;
        }
      }
      if (this.size > 0 && this.size + len > this.maxBytes) {
        renameSync(file, `${file}.1`); // replaces the previous old file: at most two files
        this.size = 0;
      }
      // 0600 and never through a link: the log is in the session's private folder (0700).
      const fd = openSync(file, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
      try {
        writeSync(fd, line);
      } finally {
        closeSync(fd);
      }
      this.size += len;
    } catch (err) {
      this.size = null; // measure again next time
      this.onError(err as Error);
    }
  }
}
