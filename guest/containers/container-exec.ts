// One process in the agent container through the Engine API (exec + hijacked stream): stdio,
// resize, signals and the exit status, as a VM exec has them, without a docker CLI process.
import { pollUntil } from '../poll.js';
import { StreamDemuxer } from '../docker/demux.js';
import { StreamInput } from './stream-input.js';
import { execCreate, execInspect, execResize, execStart, type ExecCreate } from '../docker/engine.js';
import type { ExecControl } from '../exec-control.js';

export interface ExecOutput {
  stdout(b: Buffer): void;
  stderr(b: Buffer): void;
}

export interface ExecResult {
  code: number;
  /** Why it did not run at all (the engine's 126/127), for the exec_error a VM exec would give. */
  failed?: { reason: 'not_found' | 'not_executable'; message: string };
}

/** How long the engine may take to report the exit status once the stream closed. */
const EXIT_DEADLINE_MS = 15_000;

/** Epoch marks of the steps of one exec (VIBEBOX_TIMING=1 in the op's env: the run prints them). */
export type Marks = [string, number][];

export class ContainerExec implements ExecControl {
  readonly marks: Marks = [];
  private readonly input = new StreamInput();
  private execId: string | null = null;
  private pidP: Promise<number> | null = null;
  private size: { cols: number; rows: number } | null = null;

  /** Start the process; resolves with its exit once its output is drained. */
  async run(container: string, o: ExecCreate, out: ExecOutput, onStarted?: () => void): Promise<ExecResult> {
    if (o.Tty && this.size) o = { ...o, ConsoleSize: [this.size.rows, this.size.cols] };
    const id = await execCreate(container, o);
    this.marks.push(['created', Date.now()]);
    this.execId = id;
    const { socket, head } = await execStart(id, o.Tty);
    this.marks.push(['attached', Date.now()]);
    onStarted?.();
    const errText: Buffer[] = [];
    const done = new Promise<void>((resolve, reject) => {
      const demux = o.Tty ? null : new StreamDemuxer();
      const feed = (b: Buffer) => {
        if (b.length === 0) return;
        if (!demux) return out.stdout(b);
        for (const f of demux.push(b)) {
          if (f.stream === 'stderr') out.stderr(f.data);
          else out.stdout(f.data);
          // The engine writes its own start failure into the stream: kept for the 126/127 message.
          if (errText.length < 4) errText.push(f.data);
        }
      };
      try {
        feed(head);
      } catch (e) {
        reject(e as Error);
      }
      socket.on('data', (b: Buffer) => {
        try {
          feed(b);
        } catch (e) {
          socket.destroy(e as Error);
        }
      });
      socket.on('end', () => resolve());
      socket.on('close', () => resolve());
      socket.on('error', reject);
    });
    this.input.attach(socket);
    if (this.input.holding) {
      // Input that came before the process: hold it until the process runs. Under load the
      // engine was seen to lose an end of input sent right after the upgrade (`cat` waited forever).
      await pollUntil(
        async () => {
          const s = await execInspect(id);
          return s.Running || s.ExitCode !== null;
        },
        { deadline: Date.now() + 60_000, intervalMs: 5, maxIntervalMs: 200, what: 'the container exec starting' },
      ).catch(() => undefined);
    }
    this.input.flush();
    await done;
    this.marks.push(['stream-closed', Date.now()]);
    const st = await pollUntil(
      async () => {
        const s = await execInspect(id);
        return s.Running ? null : s;
      },
      { deadline: Date.now() + EXIT_DEADLINE_MS, intervalMs: 5, maxIntervalMs: 200, what: 'the exit status of the container exec' },
    );
    this.marks.push(['exit-status', Date.now()]);
    const code = st.ExitCode ?? 1;
    // 126/127 with no process ever started (Pid 0): the engine could not exec the command.
    // (The engine says 126 for both; its message, already in the output, tells which.)
    if ((code === 126 || code === 127) && st.Pid === 0) {
      const text = Buffer.concat(errText).toString('utf8');
      const notFound = code === 127 || /executable file not found|no such file or directory/i.test(text);
      return { code: notFound ? 127 : 126, failed: { reason: notFound ? 'not_found' : 'not_executable', message: `${o.Cmd[0] ?? ''}: ${notFound ? 'command not found' : 'permission denied'}` } };
    }
    return { code };
  }

  stdin(b: Buffer): void {
    this.input.write(b);
  }

  /** End of input: half-close the hijacked connection, the engine closes the process's stdin. */
  stdinEnd(): void {
    this.input.end();
  }

  resize(cols: number, rows: number): void {
    this.size = { cols, rows };
    if (this.execId) void execResize(this.execId, cols, rows).catch(() => undefined);
  }

  /** Signals go straight to the process (the agent is root in the VM): the engine has no exec kill. */
  signal(sig: string): void {
    const id = this.execId;
    if (!id) return;
    this.pidP ??= execInspect(id).then((s) => s.Pid);
    void this.pidP.then(
      (pid) => {
        if (pid > 0) process.kill(pid, sig as NodeJS.Signals);
      },
      () => undefined,
    ).catch(() => undefined);
  }

  pause(): void {
    this.input.pause();
  }

  resume(): void {
    this.input.resume();
  }
}
