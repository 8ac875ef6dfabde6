// A small QMP client: JSON lines over a unix socket. Greeting, qmp_capabilities, then commands.
import { connect, type Socket } from 'node:net';
import { pollUntil, withDeadline } from '../guest/poll.js';

/** A QMP command that does not answer in this long is not going to (every wait has a deadline). */
const QMP_TIMEOUT_MS = 5_000;

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

export class QmpClient {
  private sock: Socket;
  private buf = '';
  private queue: Pending[] = [];
  private ready: Promise<void>;
  readonly events: { event: string; data?: unknown }[] = [];

  private constructor(path: string) {
    this.sock = connect(path);
    let greeted: () => void;
    let failed: (e: Error) => void;
    this.ready = new Promise((res, rej) => {
      greeted = res;
      failed = rej;
    });
    let gotGreeting = false;
    this.sock.on('error', (e) => {
      failed(e);
      for (const p of this.queue.splice(0)) p.reject(e);
    });
    this.sock.on('close', () => {
      for (const p of this.queue.splice(0)) p.reject(new Error('QMP connection closed'));
    });
    this.sock.on('data', (d) => {
      this.buf += d.toString('utf8');
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl).trim();
        this.buf = this.buf.slice(nl + 1);
        if (!line) continue;
        let msg: Record<string, unknown>;
        try {
          msg = JSON.parse(line) as Record<string, unknown>;
        } catch {
          continue;
        }
        if ('QMP' in msg && !gotGreeting) {
          gotGreeting = true;
          greeted();
        } else if ('event' in msg) {
          this.events.push({ event: String(msg['event']), data: msg['data'] });
        } else if ('return' in msg || 'error' in msg) {
          const p = this.queue.shift();
          if (!p) continue;
          if ('error' in msg) {
            const err = msg['error'] as { desc?: string };
            p.reject(new Error(`QMP: ${err.desc ?? 'error'}`));
          } else p.resolve(msg['return']);
        }
      }
    });
  }

  static async connect(path: string, timeoutMs = QMP_TIMEOUT_MS): Promise<QmpClient> {
    const c = new QmpClient(path);
    try {
      await withDeadline(c.ready, timeoutMs, 'the QMP greeting');
      await c.execute('qmp_capabilities', undefined, timeoutMs);
    } catch (e) {
      c.close();
      throw e;
    }
    return c;
  }

  execute(command: string, args?: Record<string, unknown>, timeoutMs = QMP_TIMEOUT_MS): Promise<unknown> {
    const answer = new Promise<unknown>((resolve, reject) => {
      this.queue.push({ resolve, reject });
      this.sock.write(JSON.stringify(args ? { execute: command, arguments: args } : { execute: command }) + '\n');
    });
    return withDeadline(answer, timeoutMs, `QMP ${command}`);
  }

  /** Resolves with the first event (seen before or after the call) that `match` accepts. */
  async waitEvent(match: (e: { event: string; data?: unknown }) => boolean, timeoutMs: number, what: string): Promise<{ event: string; data?: unknown }> {
    return pollUntil(
      () => {
        const e = this.events.find(match);
        if (e) return e;
        if (this.sock.destroyed) throw new Error(`QMP connection closed while waiting for ${what}`);
        return undefined;
      },
      { deadline: Date.now() + timeoutMs, intervalMs: 10, maxIntervalMs: 10, what },
    );
  }

  close(): void {
    this.sock.destroy();
  }
}
