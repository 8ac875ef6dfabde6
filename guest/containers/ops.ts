// The container ops that are interactive commands (protocol ContainerOp: run, stack logs) as one
// exec each: output, exit status, stdin, resize and signals as a VM exec has them; progress on
// stderr. The other ops are typed requests (op-requests.ts).
import { existsSync, lstatSync } from 'node:fs';
import type { ContainerOp } from '../protocol.js';
import { VibeboxError } from '../errors.js';
import { STATE_HOME, findAgent, installCommand, packageOf, storeEntry, unknownAgentLine, type AgentDef } from './agents.js';
import { changesSummary } from './changes.js';
import { changesOf, ensureContainer, execCollect, type Who } from './container.js';
import { ContainerExec, type ExecOutput } from './container-exec.js';
import { STATE_VOLUME } from './agent-create-body.js';
import { PROXY_ENV } from '../docker/names.js';
import { type ContainerInfo } from '../docker/engine.js';
import { RunnerExec, RunnerHub } from './runner-hub.js';
import { pollUntil } from '../poll.js';
import { stackLogs } from '../stack/host-op.js';
import type { ExecControl } from '../exec-control.js';

export interface ExecOpRequest {
  op: ContainerOp;
  argv: string[];
  /** The exec's environment (the agent's setup env and the client's): only `pass` names go in. */
  env: Record<string, string>;
  pty?: { cols: number; rows: number; term: string };
}

export interface OpSink extends ExecOutput {
  started(pid: number): void;
  exit(code: number | null, signal: string | null): void;
  error(message: string, reason?: 'not_found' | 'not_executable'): void;
}

export interface OpDeps {
  /** Start dockerd if it is not running (the agent's on-demand start). */
  dockerd(): Promise<void>;
  who: Who;
  /**
   * The agent: listen for the in-container runner (one listener per VM), the fast path of runs.
   * 'wait' (the ops CLI's --runner, for tests and measurements): take the socket over and wait
   * for the runner to connect.
   */
  runner?: boolean | 'wait';
}

let hub: RunnerHub | null = null;

/** Listen for the runner before any op (the agent's warm-up at boot), so the first run finds it connected. */
export function listenForRunner(): void {
  hub ??= new RunnerHub();
}

/** Stop listening for the runner (the ops CLI, when its op is done: the process may then exit). */
export function stopRunnerHub(): void {
  hub?.close();
  hub = null;
}

/** What the handle forwards to: an engine exec or a runner run. */

/** The handle the agent keeps for the exec: same shape as a VM exec's. */
export interface OpHandle extends ExecControl {
  readonly pid: number | null;
}

class Usage extends Error {}

export function startOp(req: ExecOpRequest, sink: OpSink, deps: OpDeps): OpHandle {
  if (deps.runner && !hub) hub = new RunnerHub();
  const h = new Handle();
  const line = (s: string) => sink.stderr(Buffer.from(s.endsWith('\n') ? s : s + '\n'));
  let startedSent = false;
  const started = () => {
    if (!startedSent) sink.started(0);
    startedSent = true;
  };
  void (async () => {
    try {
      const code = await dispatch(req, sink, deps, h, line, started);
      started();
      if (typeof code === 'number') sink.exit(code, null);
      else sink.error(code.message, code.reason);
    } catch (e) {
      started();
      if (e instanceof Usage) {
        line(e.message);
        sink.exit(2, null);
      } else if (e instanceof VibeboxError) {
        line(e.toLine());
        sink.exit(e.exitCode, null);
      } else {
        line(`vibebox: ${(e as Error).message}`);
        sink.exit(1, null);
      }
    }
  })();
  return h;
}

type Outcome = number | { message: string; reason: 'not_found' | 'not_executable' };

/** The handle forwards to whichever exec is current (an install, then the command). */
class Handle implements OpHandle {
  current: ExecControl | null = null;
  private input: Buffer[] = [];
  private ended = false;
  private size: { cols: number; rows: number } | null = null;
  private paused = false;
  cancelled: string | null = null;
  readonly pid = null;

  /** The exec that gets the user's stdin and terminal (the command itself, not an install). */
  attach(x: ExecControl): void {
    this.current = x;
    if (this.size) x.resize(this.size.cols, this.size.rows);
    for (const b of this.input) x.stdin(b);
    this.input = [];
    if (this.ended) x.stdinEnd();
    if (this.paused) x.pause();
  }
  stdin(b: Buffer): void {
    if (this.current) this.current.stdin(b);
    else this.input.push(b);
  }
  stdinEnd(): void {
    this.ended = true;
    this.current?.stdinEnd();
  }
  resize(cols: number, rows: number): void {
    this.size = { cols, rows };
    this.current?.resize(cols, rows);
  }
  signal(sig: string): void {
    if (this.current) this.current.signal(sig);
    else this.cancelled = sig;
  }
  pause(): void {
    this.paused = true;
    this.current?.pause();
  }
  resume(): void {
    this.paused = false;
    this.current?.resume();
  }
}

function passEnv(req: ExecOpRequest, root: boolean): Record<string, string> {
  const env: Record<string, string> = { ...PROXY_ENV };
  for (const name of req.op.pass ?? []) {
    const v = req.env[name];
    if (v !== undefined) env[name] = v;
  }
  const term = req.pty?.term ?? req.env['TERM'];
  if (term) env['TERM'] = term;
  if (root) env['HOME'] = '/root';
  return env;
}

export function userOf(who: Who, root: boolean): string {
  return root ? '0:0' : `${who.uid}:${who.gid}`;
}

/** Where the state volume is mounted in the VM (to see whether an agent is installed without an exec). */
function stateDir(c: ContainerInfo): string | null {
  const m = c.Mounts?.find((x) => x.Name === STATE_VOLUME);
  return m?.Source ?? null;
}

function isInstalled(c: ContainerInfo, a: AgentDef): boolean {
  const dir = stateDir(c);
  if (!dir) return false;
  try {
    lstatSync(`${dir}/.local/bin/${a.bin}`);
    return true;
  } catch {
    return false;
  }
}

/** The agent's program in the shared store (mounted read-only at the same path in VM and container), or null. */
function storeProgram(a: AgentDef, tree: string, line: (s: string) => void): string | null {
  const p = storeEntry(a, tree, process.arch);
  if (existsSync(p)) return p;
  line(`vibebox: the host's copy of ${a.name} is not visible in this VM (restart it with vibebox stop); installing it in the container`);
  return null;
}

/**
 * Install (or update) an agent into the state volume. Its output is progress (`out`); `track`
 * is told the installer's exec, so a signal reaches it.
 */
export async function install(c: ContainerInfo, a: AgentDef, who: Who, line: (s: string) => void, out: (b: Buffer) => void, track: (x: ExecControl | null) => void = () => undefined): Promise<void> {
  const user = userOf(who, false);
  if (a.install.kind === 'pip') {
    // Only when the egress proxy lets the Python index through; otherwise say which hosts to allow.
    const probe = await execCollect(c.Id, ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '30', `https://${a.install.hosts[0]}/simple/${a.install.pkg}/`], user);
    if (probe.stdout.trim() !== '200') {
      throw new VibeboxError('E_NOT_APPROVED', `installing ${a.name} needs the Python package index`, `run vibebox allow ${a.install.hosts.join(' ')}`);
    }
  }
  line(`vibebox: installing ${a.name} (${packageOf(a)}) into ${STATE_HOME}/.local`);
  const x = new ContainerExec();
  x.stdinEnd();
  track(x);
  // The installer's output is progress: stdout stays the command's.
  const r = await x.run(c.Id, { Cmd: installCommand(a), User: user, WorkingDir: STATE_HOME, Env: Object.entries(PROXY_ENV).map(([k, v]) => `${k}=${v}`), Tty: false }, { stdout: out, stderr: out });
  track(null);
  if (r.code !== 0) throw new VibeboxError('E_CONTAINER', `installing ${a.name} failed (exit ${r.code})`, 'see the output above; vibebox update ' + a.name + ' retries');
}

async function dispatch(req: ExecOpRequest, sink: OpSink, deps: OpDeps, h: Handle, line: (s: string) => void, started: () => void): Promise<Outcome> {
  const { op } = req;
  const agent = op.agent === undefined ? undefined : findAgent(op.agent);
  if (op.agent !== undefined && !agent) throw new Usage(unknownAgentLine(op.agent));
  await deps.dockerd();
  if (h.cancelled) return 130;
  switch (op.op) {
    case 'run':
      return run(req, sink, deps, h, line, agent, started);
    case 'stack':
      return stack(req, sink, h, line);
  }
}

/** `stack logs`: a signal (the user's ^C) ends the stream. */
async function stack(req: ExecOpRequest, sink: OpSink, h: Handle, line: (s: string) => void): Promise<number> {
  let onSignal: (() => void) | null = null;
  h.attach({
    stdin: () => undefined,
    stdinEnd: () => undefined,
    resize: () => undefined,
    signal: () => onSignal?.(),
    pause: () => undefined,
    resume: () => undefined,
  });
  return stackLogs(req.argv, { stdout: (b) => sink.stdout(b), line, onSignal: (f) => (onSignal = f) });
}

async function run(req: ExecOpRequest, sink: OpSink, deps: OpDeps, h: Handle, line: (s: string) => void, agent: AgentDef | undefined, started: () => void): Promise<Outcome> {
  const root = req.op.root === true;
  const t0 = Date.now();
  const c = await ensureContainer(req.op.spec, deps.who, line);
  const t1 = Date.now();
  // The host's verified copy when it named one and the VM sees it; else the container's own install.
  const fromStore = agent && req.op.tree ? storeProgram(agent, req.op.tree, line) : null;
  if (agent && !fromStore && !isInstalled(c, agent)) await install(c, agent, deps.who, line, (b) => sink.stderr(b), (x) => (h.current = x));
  if (h.cancelled) return 130;
  const cmd = agent ? [fromStore ?? agent.bin, ...req.argv] : req.argv.length ? req.argv : ['bash', '-l'];
  const env = { ...(agent?.env ?? {}), ...passEnv(req, root) };
  // Warm path: the runner in the container (no runc exec); root, or no runner yet: the engine's exec.
  if (!root && hub && !hub.ready && deps.runner === 'wait') {
    await pollUntil(() => hub!.ready, { deadline: Date.now() + 15_000, intervalMs: 20, maxIntervalMs: 200, what: 'the container runner connecting' }).catch(() => undefined);
  }
  const viaRunner = !root && hub?.ready === true;
  const x = viaRunner ? hub!.newExec() : new ContainerExec();
  h.attach(x);
  const r =
    x instanceof RunnerExec
      ? await x.run({ argv: cmd, env, cwd: '/workspace', ...(req.pty ? { pty: req.pty } : {}) }, sink, started)
      : await x.run(c.Id, { Cmd: cmd, User: userOf(deps.who, root), WorkingDir: '/workspace', Env: Object.entries(env).map(([k, v]) => `${k}=${v}`), Tty: req.pty !== undefined }, sink, started);
  // Leaving the run: say what would be lost by a reset (and kept by a commit).
  const summary = changesSummary(await changesOf(c));
  if (summary) line(summary);
  if (req.env['VIBEBOX_TIMING'] === '1') {
    const marks = [['ensured', t1], ...(x instanceof ContainerExec ? x.marks : [['runner', t1] as [string, number]]), ['changes', Date.now()]] as const;
    line(`vibebox-timing: ${marks.map(([k, v]) => `${k}+${v - t0}`).join(' ')}`);
  }
  return r.failed ? r.failed : r.code;
}
