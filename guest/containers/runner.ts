// The agent container's main process (as vibe, under tini): it spawns the runs the agent asks
// for, inside the container, without a `runc exec` each (three Go programs starting: seconds under
// emulation, the whole cost of a warm `vibebox run`). It connects OUT to the agent's socket (bound
// read-only into the container), so nothing in the container can make the agent connect anywhere.
//   control connection: "control\n", then JSON lines from the agent (spawn, resize, signal)
//   one data connection per run: "data <id>\n", then stdin from the agent, framed output back
//   (demux.ts: 1 stdout, 2 stderr, 3 exit {code, signal}, 4 error {message, reason})
// It can only start processes as itself (the container has no capabilities): root runs keep
// going through the engine's exec.
import { connect, type Socket } from 'node:net';
import { Exec } from '../process-exec.js';
import { muxFrame } from '../docker/demux.js';

/** The agent's socket as the container sees it. */
export const RUNNER_SOCKET_IN_CONTAINER = '/run/vibebox-runner/agent.sock';

export interface SpawnRequest {
  t: 'spawn';
  id: number;
  argv: string[];
  env: Record<string, string>;
  cwd: string;
  pty?: { cols: number; rows: number; term: string };
}
export type RunnerRequest = SpawnRequest | { t: 'resize'; id: number; cols: number; rows: number } | { t: 'signal'; id: number; sig: string };

export const EXIT_FRAME = 3;
export const ERROR_FRAME = 4;

/** Connect and serve until `stop` (tests) or forever (the container's main process). */
export function runnerMain(path = RUNNER_SOCKET_IN_CONTAINER): { stop(): void } {
  let stopped = false;
  let control: Socket | null = null;
  const runs = new Map<number, Exec>();
  let delay = 200;
  const spawnRun = (r: SpawnRequest) => {
    // Half-open: the agent's end of stdin must not end our output.
    const data = connect({ path, allowHalfOpen: true });
    data.on('error', () => undefined);
    data.once('connect', () => {
      data.write(`data ${r.id}\n`);
      const env: Record<string, string> = {};
      for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
      Object.assign(env, r.env);
      // uid 0 here means "do not switch users" (Exec's rule): the runner is already vibe, and
      // without capabilities could not switch anyway. HOME etc. come from env.
      const e = new Exec(
        { type: 'exec', id: r.id, argv: r.argv, env, cwd: r.cwd, user: 'vibe', ...(r.pty ? { pty: r.pty } : {}) },
        { uid: 0, gid: 0, home: env['HOME'] ?? '/home/vibe', name: env['USER'] ?? 'vibe' },
        {
          started: () => undefined,
          stdout: (b) => write(data, muxFrame(1, b), e),
          stderr: (b) => write(data, muxFrame(2, b), e),
          exit: (code, signal) => {
            runs.delete(r.id);
            data.end(muxFrame(EXIT_FRAME, JSON.stringify({ code, signal })));
          },
          error: (message, reason) => {
            runs.delete(r.id);
            data.end(muxFrame(ERROR_FRAME, JSON.stringify({ message, ...(reason ? { reason } : {}) })));
          },
        },
      );
      runs.set(r.id, e);
      data.on('data', (b: Buffer) => e.stdin(b));
      data.on('end', () => e.stdinEnd());
      data.on('drain', () => e.resume());
    });
  };
  const onLine = (line: string) => {
    let r: RunnerRequest;
    try {
      r = JSON.parse(line) as RunnerRequest;
    } catch {
      return;
    }
    if (r.t === 'spawn') spawnRun(r);
    else if (r.t === 'resize') runs.get(r.id)?.resize(r.cols, r.rows);
    else if (r.t === 'signal') runs.get(r.id)?.signal(r.sig);
  };
  const connectControl = () => {
    if (stopped) return;
    const c = connect(path);
    control = c;
    let buf = '';
    c.once('connect', () => {
      delay = 200;
      c.write('control\n');
    });
    c.on('data', (b: Buffer) => {
      buf += b.toString('utf8');
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        onLine(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
    });
    c.on('error', () => undefined);
    // The agent is not listening (yet, or any more): try again, backing off to every 5 s.
    c.on('close', () => {
      setTimeout(connectControl, delay);
      delay = Math.min(delay * 2, 5000);
    });
  };
  connectControl();
  return {
    stop() {
      stopped = true;
      control?.destroy();
    },
  };
}

/** Output faster than the agent reads: stop reading the process until the socket drains. */
function write(s: Socket, b: Buffer, e: Exec): void {
  if (!s.write(b)) e.pause();
}
