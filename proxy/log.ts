/** The egress access log: one JSON object per line, appended synchronously (ordered, crash-safe). */
import { appendFileSync, mkdirSync } from 'node:fs';
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
};

export class EgressLog {
  private dirReady = false;

  constructor(
    private readonly file: string | undefined,
    private readonly onError: (err: Error) => void = () => {},
  ) {}

  write(record: EgressRecord): void {
    if (this.file === undefined) return;
    try {
      if (!this.dirReady) {
        mkdirSync(dirname(this.file), { recursive: true });
        this.dirReady = true;
      }
      appendFileSync(this.file, `${JSON.stringify(record)}\n`, { mode: 0o600 });
    } catch (err) {
      this.onError(err as Error);
    }
  }
}
