// The agent's end of the in-container runner (runner.ts): a socket in a root-owned VM directory,
// bound read-only into the container, that the runner connects to. Only the agent listens (not
// the ops CLI): one listener per VM.
import { chmodSync, mkdirSync, unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { StreamDemuxer } from '../docker/demux.js';
import { StreamInput } from './stream-input.js';
import type { ExecOutput, ExecResult } from './container-exec.js';
import { RUNNER_DIR } from './agent-create-body.js';
import { ERROR_FRAME, EXIT_FRAME, type RunnerRequest, type SpawnRequest } from './runner.js';
import type { ExecControl } from '../exec-control.js';

export const RUNNER_SOCKET = `${RUNNER_DIR}/agent.sock`;
/** The runner connects back for each run at once; longer means it is gone. */
const ATTACH_DEADLINE_MS = 10_000;

export class RunnerHub {
  private control: Socket | null = null;
  private waiting = new Map<number, (s: Socket) => void>();
  private nextId = 1;
  private server: Server;

  constructor(path = RUNNER_SOCKET) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
    try {
      unlinkSync(path);
    } catch {
      /* first start */
    }
    this.server = createServer({ allowHalfOpen: true }, (s) => this.accept(s));
    this.server.on('error', () => undefined);
    // vibe in the container connects: the socket is open to all, the directory root's.
    this.server.listen(path, () => chmodSync(path, 0o666));
  }

  close(): void {
    this.control?.destroy();
    this.server.close();
  }

  get ready(): boolean {
    return this.control !== null && !this.control.destroyed && !this.control.readableEnded;
  }

  private accept(s: Socket): void {
    s.on('error', () => undefined);
    let head = Buffer.alloc(0);
    const onData = (b: Buffer) => {
      head = Buffer.concat([head, b]);
      const nl = head.indexOf(10);
      if (nl < 0) {
        if (head.length > 64) s.destroy();
        return;
      }
      s.off('data', onData);
      s.pause();
      const line = head.subarray(0, nl).toString('utf8');
      const rest = head.subarray(nl + 1);
      if (line === 'control') {
        this.control?.destroy();
        this.control = s;
        s.on('close', () => {
          if (this.control === s) this.control = null;
        });
        // The server is half-open: a runner that died (its container removed by reset/commit)
        // only ends its side, and 'close' would never come. Without this a run after a reset was
        // sent to the dead runner and failed with "did not take the run".
        s.on('end', () => {
          if (this.control === s) this.control = null;
          s.destroy();
        });
        s.resume();
        return;
      }
      const m = /^data (\d+)$/.exec(line);
      const w = m ? this.waiting.get(Number(m[1])) : undefined;
      if (!w) return void s.destroy();
      this.waiting.delete(Number(m![1]));
      if (rest.length) s.unshift(rest);
      w(s);
    };
    s.on('data', onData);
  }

  send(r: RunnerRequest): void {
    this.control?.write(JSON.stringify(r) + '\n');
  }

  newExec(): RunnerExec {
    return new RunnerExec(this, this.nextId++);
  }

  attach(id: number): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error('the container runner did not take the run within 10 s'));
      }, ATTACH_DEADLINE_MS);
      this.waiting.set(id, (s) => {
        clearTimeout(t);
        resolve(s);
      });
    });
  }
}

/** One run through the runner: the same controls as a ContainerExec. */
export class RunnerExec implements ExecControl {
  private readonly input = new StreamInput();
  private size: { cols: number; rows: number } | null = null;
  private sent = false;

  constructor(
    private readonly hub: RunnerHub,
    private readonly id: number,
  ) {}

  async run(req: Omit<SpawnRequest, 't' | 'id'>, out: ExecOutput, onStarted?: () => void): Promise<ExecResult> {
    const attached = this.hub.attach(this.id);
    const pty = req.pty && this.size ? { ...req.pty, ...this.size } : req.pty;
    this.hub.send({ t: 'spawn', id: this.id, ...req, ...(pty ? { pty } : {}) });
    this.sent = true;
    const s = await attached;
    onStarted?.();
    let result: ExecResult | null = null;
    const demux = new StreamDemuxer(ERROR_FRAME);
    const done = new Promise<void>((resolve, reject) => {
      s.on('data', (b: Buffer) => {
        let frames;
        try {
          frames = demux.frames(b);
        } catch (e) {
          s.destroy(e as Error);
          return;
        }
        for (const f of frames) {
          if (f.type === 1) out.stdout(f.data);
          else if (f.type === 2) out.stderr(f.data);
          else if (f.type === EXIT_FRAME) {
            const x = JSON.parse(f.data.toString('utf8')) as { code: number | null; signal: string | null };
            result = { code: x.code ?? (x.signal ? 128 + signalNumber(x.signal) : 1) };
          } else if (f.type === ERROR_FRAME) {
            const x = JSON.parse(f.data.toString('utf8')) as { message: string; reason?: 'not_found' | 'not_executable' };
            result = x.reason ? { code: x.reason === 'not_found' ? 127 : 126, failed: { reason: x.reason, message: x.message } } : { code: 126, failed: { reason: 'not_executable', message: x.message } };
          }
        }
      });
      s.on('end', () => resolve());
      s.on('close', () => resolve());
      s.on('error', reject);
    });
    this.input.attach(s);
    this.input.flush();
    await done;
    if (!result) throw new Error('the container runner ended the run without an exit status');
    return result;
  }

  stdin(b: Buffer): void {
    this.input.write(b);
  }
  stdinEnd(): void {
    this.input.end();
  }
  resize(cols: number, rows: number): void {
    this.size = { cols, rows };
    if (this.sent) this.hub.send({ t: 'resize', id: this.id, cols, rows });
  }
  signal(sig: string): void {
    if (this.sent) this.hub.send({ t: 'signal', id: this.id, sig });
  }
  pause(): void {
    this.input.pause();
  }
  resume(): void {
    this.input.resume();
  }
}

const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGPIPE: 13, SIGTERM: 15 };
function signalNumber(sig: string): number {
  return SIGNALS[sig] ?? 0;
}
