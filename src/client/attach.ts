// A client's one channel to the supervisor: run a command (or the login shell) and stream its
// stdio. Kept light: it is the warm path of every `vibebox exec`.
import type { ContainerOp } from '../../guest/protocol.js';
import WebSocket from 'ws';
import { DataKind } from '../supervisor/data-kind.js';
import type { ClientMessage, SupervisorMessage } from '../supervisor/client-protocol.js';
import { conforms, type JsonSchema } from '../supervisor/json-check.js';
import { ShownLines } from './shown-stream.js';

// Every message is validated on receipt against the protocol's schema. The bundle carries it as
// JSON Schema generated from the zod definition at build time (build.mjs), so the warm path does
// not load zod; run from source, it is generated on first use.
declare const SUPERVISOR_MESSAGE_SCHEMA: JsonSchema | undefined;
let schema: JsonSchema | null = typeof SUPERVISOR_MESSAGE_SCHEMA === 'undefined' ? null : SUPERVISOR_MESSAGE_SCHEMA;
async function loadSchemas(): Promise<{ SupervisorMessage: { safeParse(v: unknown): { success: true; data: SupervisorMessage } | { success: false } } }> {
  if (!schema) schema = (await import('../supervisor/protocol-json.js')).supervisorMessageJsonSchema();
  const s = schema;
  return { SupervisorMessage: { safeParse: (v: unknown) => (conforms(s, v) ? { success: true, data: v as SupervisorMessage } : { success: false }) } };
}

export interface AttachOptions {
  socket: string;
  argv?: string[];
  tty: boolean;
  user?: 'vibe' | 'root';
  cwd?: string;
  /** The project's real path: the supervisor refuses a client from another folder (a copy). */
  project?: string;
  /** Print boot progress (stderr) while the VM starts. */
  progress?: (line: string) => void;
  /** Extra environment for the command (API keys for a container run). */
  env?: Record<string, string>;
  /** Run in the project's agent container. */
  container?: ContainerRequest;
  /** Review output rendered in the VM, not a user's command: every line shown() here (shown-stream.ts). */
  shownOutput?: boolean;
  /** Take the command's stdout instead of writing it to ours (a caller that shows it escaped). */
  stdout?: (chunk: Buffer) => void;
}

export type ContainerRequest = Omit<ContainerOp, 'spec'>;

export type AttachResult =
  | { kind: 'exit'; code: number }
  | { kind: 'detach' }
  | { kind: 'reset'; reattach: boolean }
  | { kind: 'error'; code: string; message: string; hint?: string }
  | { kind: 'lost' };

const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15, SIGPIPE: 13, SIGABRT: 6, SIGSEGV: 11 };

export function connect(socket: string): WebSocket {
  return new WebSocket(`ws+unix://${socket}:/`, { perMessageDeflate: false });
}

/** `VIBEBOX_TIMING=1`: epoch marks (ms) of one exec, printed to stderr for `npm run bench -- --explain`. */
const TIMING = process.env['VIBEBOX_TIMING'] === '1';
const now = () => performance.timeOrigin + performance.now();

export function attach(o: AttachOptions): Promise<AttachResult> {
  return new Promise((resolve) => {
    const marks: Record<string, number> = TIMING ? { start: performance.timeOrigin, attach: now() } : {};
    const mark = (k: string) => {
      if (TIMING && marks[k] === undefined) marks[k] = now();
    };
    const ws = connect(o.socket);
    const stdin = process.stdin;
    const raw = o.tty && stdin.isTTY;
    let settled = false;
    const cleanups: (() => void)[] = [];
    const filters = o.shownOutput ? { [DataKind.stdout]: new ShownLines(), [DataKind.stderr]: new ShownLines() } : null;
    const finish = (r: AttachResult) => {
      if (settled) return;
      settled = true;
      if (filters) {
        process.stdout.write(filters[DataKind.stdout].end());
        process.stderr.write(filters[DataKind.stderr].end());
      }
      if (TIMING) {
        mark('exit');
        process.stderr.write(`vibebox-timing client ${JSON.stringify(marks)}\n`);
      }
      for (const c of cleanups) c();
      resolve(r);
    };
    const send = (m: ClientMessage) => {
      if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(m));
    };

    ws.on('open', () => {
      mark('open');
      const size = o.tty && process.stdout.isTTY ? { cols: process.stdout.columns, rows: process.stdout.rows } : {};
      send({
        type: 'exec',
        tty: o.tty,
        ...(o.argv ? { argv: o.argv } : {}),
        ...size,
        ...(o.tty ? { term: process.env['TERM'] ?? 'xterm-256color' } : {}),
        ...(o.user ? { user: o.user } : {}),
        ...(o.cwd ? { cwd: o.cwd } : {}),
        ...(o.project ? { project: o.project } : {}),
        ...(o.env ? { env: o.env } : {}),
        ...(o.container ? { container: o.container } : {}),
      });
      if (raw) {
        stdin.setRawMode(true);
        cleanups.push(() => stdin.setRawMode(false));
      }
      const onData = (b: Buffer) => {
        const out = Buffer.allocUnsafe(b.length + 1);
        out[0] = DataKind.stdin;
        b.copy(out, 1);
        if (ws.readyState === ws.OPEN) ws.send(out);
      };
      const onEnd = () => send({ type: 'stdin_end' });
      stdin.on('data', onData);
      stdin.on('end', onEnd);
      // A reattach (after :new) finds stdin paused and unref'd by the last attach's cleanup.
      stdin.ref?.();
      stdin.resume();
      cleanups.push(() => {
        stdin.off('data', onData);
        stdin.off('end', onEnd);
        stdin.pause();
        stdin.unref?.();
      });
      if (o.tty && process.stdout.isTTY) {
        const onResize = () => send({ type: 'resize', cols: process.stdout.columns, rows: process.stdout.rows });
        process.stdout.on('resize', onResize);
        cleanups.push(() => process.stdout.off('resize', onResize));
      }
      if (!raw) {
        // Without a terminal, ^C reaches us, not the remote: pass it on.
        const fwd = (sig: NodeJS.Signals) => () => send({ type: 'signal', signal: sig });
        const handlers = (['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((s) => [s, fwd(s)] as const);
        for (const [s, h] of handlers) process.on(s, h);
        cleanups.push(() => {
          for (const [s, h] of handlers) process.off(s, h);
        });
      }
    });

    let paused = false;
    // Messages are handled strictly in order, even while the schemas are still loading.
    let chain: Promise<void> = Promise.resolve();
    ws.on('message', (data, isBinary) => {
      mark('first');
      chain = chain.then(() => onMessage(data as Buffer, isBinary));
    });
    const onMessage = async (buf: Buffer, isBinary: boolean): Promise<void> => {
      if (isBinary) {
        const kind = buf[0];
        if (kind === DataKind.stdout && o.stdout) {
          o.stdout(buf.subarray(1));
          return;
        }
        const out = kind === DataKind.stdout ? process.stdout : kind === DataKind.stderr ? process.stderr : null;
        const filter = filters && (kind === DataKind.stdout || kind === DataKind.stderr) ? filters[kind] : null;
        const data = filter ? Buffer.from(filter.push(buf.subarray(1))) : buf.subarray(1);
        // A reader slower than the guest (a pipe, a terminal): stop reading the socket until it
        // catches up, so the supervisor and then the guest wait instead of anyone buffering.
        if (out && data.length > 0 && !out.write(data) && !paused) {
          paused = true;
          ws.pause();
          out.once('drain', () => {
            paused = false;
            ws.resume();
          });
        }
        return;
      }
      const { SupervisorMessage } = await loadSchemas();
      let parsed;
      try {
        parsed = SupervisorMessage.safeParse(JSON.parse(buf.toString('utf8')));
      } catch {
        return;
      }
      if (!parsed.success) return;
      const m = parsed.data;
      switch (m.type) {
        case 'progress':
          o.progress?.(m.line);
          return;
        case 'exit':
          finish({ kind: 'exit', code: m.code ?? 128 + (SIGNALS[m.signal ?? ''] ?? 1) });
          return;
        case 'error':
          finish({ kind: 'error', code: m.code, message: m.message, ...(m.hint ? { hint: m.hint } : {}) });
          return;
        case 'detach':
          finish({ kind: 'detach' });
          return;
        case 'reset':
          finish({ kind: 'reset', reattach: m.reattach });
          return;
        default:
          return;
      }
    };
    ws.on('close', () => void chain.then(() => finish({ kind: 'lost' })));
    ws.on('error', (e) => finish({ kind: 'error', code: 'E_SUPERVISOR', message: `cannot reach the session's supervisor: ${e.message}` }));
  });
}

/** One request/response exchange (status, stop, reload) with the supervisor. */
export function request(socket: string, msg: ClientMessage, timeoutMs = 10_000): Promise<SupervisorMessage> {
  return new Promise((resolve, reject) => {
    const ws = connect(socket);
    const t = setTimeout(() => {
      ws.terminate();
      reject(new Error('the supervisor did not answer'));
    }, timeoutMs);
    ws.on('open', () => ws.send(JSON.stringify(msg)));
    ws.on('message', async (data, isBinary) => {
      if (isBinary) return;
      const { SupervisorMessage } = await loadSchemas();
      const r = SupervisorMessage.safeParse(JSON.parse((data as Buffer).toString('utf8')));
      if (!r.success) return;
      clearTimeout(t);
      ws.close();
      resolve(r.data);
    });
    ws.on('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
  });
}
