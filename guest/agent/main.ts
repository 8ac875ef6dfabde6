// The guest agent: the supervisor's hands inside the VM. Started by the guest init as early as
// possible; its `hello` on the virtio-serial port is the VM's readiness signal.
import { createReadStream, createWriteStream, openSync, mkdirSync, readdirSync, readFileSync, unlinkSync, chmodSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { execFile, execFileSync } from 'node:child_process';
import { release } from 'node:os';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { existsSync } from 'node:fs';
import { AGENT_PORT_NAME, type MountSpec, AgentMessage, FrameDecoder, GUEST_COMMAND_SOCKET, HostMessage, Kind, PROTOCOL_VERSION, controlFrame, encodeFrame, readControl } from '../protocol.js';
import { waitForPort } from './port.js';
import { Exec, type ExecSink, type Identity } from '../process-exec.js';
import type * as Containers from '../containers/cli.js';
import { dockerdOnDemand } from '../docker/dockerd.js';
import { execOf, peerPid } from './peer.js';
import { installHostCas } from './host-cas.js';
import { mountLocalDirs } from './local-dirs.js';
import { retrying, setClock, unmountForSuspend } from './suspend.js';
import { Forwards } from './forward.js';
import { stackSummary } from '../stack/summary.js';
import { VM_STATE_FILE } from '../stack/vm-paths.js';

declare const VIBEBOX_VERSION: string;

/** A VM exec, or an exec in the agent container (same controls). */
type ExecHandle = Pick<Exec, 'pid' | 'stdin' | 'stdinEnd' | 'resize' | 'signal' | 'pause' | 'resume'>;
const execs = new Map<number, ExecHandle>();
/** Typed container ops running: a signal for one (the client's ^C or its leaving) reaches it. */
const ops = new Map<number, { signal(sig: string): void }>();

// The container code is a separate bundle, loaded on the first exec that targets the container:
// the agent's start-up (the VM's readiness) does not parse it.
const CONTAINERS_BUNDLE = '/opt/vibebox/guest-containers.js';
let containers: typeof Containers | null = null;
function loadContainers(): typeof Containers {
  return (containers ??= createRequire(__filename)(CONTAINERS_BUNDLE) as typeof Containers);
}
let setupEnv: Record<string, string> = {};

let vibe: Identity | null = null;
function identity(user: 'vibe' | 'root'): Identity {
  if (user === 'root') return { uid: 0, gid: 0, home: '/root', name: 'root' };
  return (vibe ??= readVibe());
}
function readVibe(): Identity {
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('vibe:'));
  const f = line?.split(':') ?? [];
  return { uid: Number(f[2] ?? 1000), gid: Number(f[3] ?? 1000), home: f[5] ?? '/home/vibe', name: 'vibe' };
}

function log(level: 'info' | 'warn' | 'error', message: string): void {
  send({ type: 'log', level, message });
}

let out: NodeJS.WritableStream;
function send(msg: AgentMessage): void {
  out.write(controlFrame(msg));
}
// When the host stops reading (a client that does not read), the port's buffer fills: stop
// reading the commands' output until it drains, so neither side buffers without bound.
let blocked = false;
function sendData(id: number, kind: typeof Kind.stdout | typeof Kind.stderr, b: Buffer): void {
  if (out.write(encodeFrame(id, kind, b))) return;
  if (blocked) {
    execs.get(id)?.pause();
    return;
  }
  blocked = true;
  for (const e of execs.values()) e.pause();
  out.once('drain', () => {
    blocked = false;
    for (const e of execs.values()) e.resume();
  });
}

// Requests from the :commands, waiting for the supervisor's reply.
let nextReq = 1;
const pending = new Map<number, Socket>();
const explainReqs = new Set<number>();

function mount(m: MountSpec): void {
  const at = m.file ? `/run/vibebox/mounts/${m.tag}` : m.guest;
  mkdirSync(at, { recursive: true });
  const opts = m.fs === '9p' ? ['-o', `trans=virtio,version=9p2000.L,msize=524288${m.ro ? ',ro' : ''}`] : m.ro ? ['-o', 'ro'] : [];
  // A share that does not answer must fail the setup, not hang the agent: bounded in time.
  execFileSync('mount', ['-t', m.fs, ...opts, m.tag, at], { stdio: 'pipe', timeout: 60_000 });
  if (m.file) {
    // A file mount: the share is a directory holding just that file; bind it into place.
    mkdirSync(dirname(m.guest), { recursive: true });
    if (!existsSync(m.guest)) writeFileSync(m.guest, '');
    execFileSync('mount', ['--bind', `${at}/${m.file}`, m.guest], { stdio: 'pipe' });
  }
}

const forwards = new Forwards((line) => log('warn', line));
let stackBooted = false;

function readStackState(): string | null {
  try {
    return readFileSync(VM_STATE_FILE, 'utf8');
  } catch {
    return null;
  }
}

/** Whether this VM's disk holds containers (a project that has run its agent container). */
function hasContainers(): boolean {
  try {
    return readdirSync('/var/lib/docker/containers').length > 0;
  } catch {
    return false;
  }
}

/**
 * Where the project uses containers, they come back at every boot, in the background after the
 * setup: dockerd, then the relay, the stack-controller and the agent container (warmContainers),
 * so the first run after a boot does not wait for them. An applied stack's controller reconciles.
 * The start waits a moment past the setup so a plain exec arriving with it runs first (a run
 * starts dockerd itself and waits for the same start). A VM that never ran a container: nothing,
 * dockerd stays on demand.
 */
function bootContainers(): void {
  stackBooted = true;
  const stack = existsSync(VM_STATE_FILE);
  if (!stack && !hasContainers()) return;
  setTimeout(() => {
    void (async () => {
      await dockerdOnDemand(setupEnv);
      const c = loadContainers();
      c.listenForRunner();
      if (stack) await c.ensureController(() => undefined);
      const v = identity('vibe');
      await c.warmContainers({ uid: v.uid, gid: v.gid }, () => undefined);
    })().catch((e: Error) => send({ type: 'log', level: 'warn', message: `the containers did not come back: ${e.message}` }));
  }, stack ? 0 : BOOT_CONTAINERS_DELAY_MS);
}
const BOOT_CONTAINERS_DELAY_MS = 1500;

function handle(msg: HostMessage): void {
  switch (msg.type) {
    case 'forward_open': {
      const fwdId = msg.fwdId;
      forwards.start(fwdId, { guest: msg.guest, container: msg.container ?? 'vibebox-agent', vmFirst: msg.container === undefined }).then(
        (port) => send({ type: 'forward_ready', fwdId, port }),
        (e: Error) => send({ type: 'forward_ready', fwdId, error: e.message }),
      );
      return;
    }
    case 'forward_close':
      forwards.stop(msg.fwdId);
      return;
    case 'exec': {
      const id = msg.id;
      if (msg.argv.length === 0 && !msg.container) {
        send({ type: 'exec_error', id, message: 'no command given' });
        return;
      }
      const sink: ExecSink = {
        started: (pid) => send({ type: 'started', id, pid }),
        stdout: (b) => sendData(id, Kind.stdout, b),
        stderr: (b) => sendData(id, Kind.stderr, b),
        exit: (code, signal) => {
          execs.delete(id);
          send({ type: 'exit', id, code, signal });
        },
        error: (message, reason) => {
          execs.delete(id);
          send({ type: 'exec_error', id, message, ...(reason ? { reason } : {}) });
        },
      };
      const env = { ...setupEnv, ...msg.env };
      if (msg.container) {
        let c: typeof Containers;
        try {
          c = loadContainers();
        } catch (e) {
          send({ type: 'exec_error', id, message: `the container runtime is not in this guest image (${(e as Error).message.split('\n')[0]})` });
          return;
        }
        const v = identity('vibe');
        execs.set(id, c.startOp({ op: msg.container, argv: msg.argv, env, ...(msg.pty ? { pty: msg.pty } : {}) }, sink, { dockerd: () => dockerdOnDemand(setupEnv), who: { uid: v.uid, gid: v.gid }, runner: true }));
        return;
      }
      execs.set(id, new Exec({ ...msg, env }, identity(msg.user), sink));
      return;
    }
    case 'op': {
      // A typed container op: progress events, then one result or error (containers/op-requests.ts).
      const id = msg.id;
      let c: typeof Containers;
      try {
        c = loadContainers();
      } catch (e) {
        send({ type: 'op_error', id, error: { code: 'E_CONTAINER', message: `the container runtime is not in this guest image (${(e as Error).message.split('\n')[0]})`.slice(0, 8192), exitCode: 1 } });
        return;
      }
      const v = identity('vibe');
      const op = c.runOpRequest(
        { request: msg.request, spec: msg.spec, env: msg.env },
        { event: (event) => send({ type: 'op_event', id, event }), result: (result) => send({ type: 'op_result', id, result }), error: (error) => send({ type: 'op_error', id, error }) },
        { dockerd: () => dockerdOnDemand(setupEnv), who: { uid: v.uid, gid: v.gid } },
      );
      ops.set(id, op);
      void op.done.finally(() => ops.delete(id));
      return;
    }
    case 'stdin_end':
      execs.get(msg.id)?.stdinEnd();
      return;
    case 'resize':
      execs.get(msg.id)?.resize(msg.cols, msg.rows);
      return;
    case 'signal':
      (execs.get(msg.id) ?? ops.get(msg.id))?.signal(msg.signal);
      return;
    case 'setup': {
      try {
        // After a resume the share devices are being plugged in again: wait for each tag.
        for (const m of msg.mounts) resumed ? retrying(() => mount(m), 20_000) : mount(m);
        mountedShares = msg.mounts;
        resumed = false;
        if (msg.local) mountLocalDirs('/workspace', msg.local, identity('vibe'));
        setupEnv = { ...msg.env, ...installHostCas(msg.cas) };
        // Login shells and sudo see the proxy settings too.
        writeFileSync('/etc/profile.d/vibebox-env.sh', Object.entries(setupEnv).map(([k, v]) => `export ${k}=${JSON.stringify(v)}`).join('\n') + '\n');
        // After a resume, commands start only once the clock is right.
        void clockSet.then(() => send({ type: 'setup_done', ok: true }));
        if (!stackBooted) bootContainers();
      } catch (e) {
        const err = e as { stderr?: Buffer; message: string };
        send({ type: 'setup_done', ok: false, error: err.stderr?.toString().trim() || err.message });
      }
      return;
    }
    case 'reply': {
      const s = pending.get(msg.reqId);
      pending.delete(msg.reqId);
      // :explain (text) also shows the stack, whose state only the VM has.
      const extra = explainReqs.delete(msg.reqId) && msg.ok ? stackSummary(readStackState()) : '';
      if (s) s.end(`${msg.exitCode}\n${msg.output}${extra}`);
      return;
    }
    case 'shutdown':
      shutdown();
      return;
    case 'suspend':
      try {
        const roots = [...mountedShares.map((m) => m.guest), '/run/vibebox/mounts'];
        send({ type: 'suspend_done', ok: true, lazy: unmountForSuspend(roots) });
      } catch (e) {
        const err = e as { stderr?: Buffer; message: string };
        send({ type: 'suspend_done', ok: false, lazy: [], error: err.stderr?.toString().trim() || err.message });
      }
      return;
    case 'resume':
      resumed = true;
      sayHello();
      return;
    case 'clock':
      clockSet = setClock(msg.epochMs, performance.now()).then((err) => {
        if (err) log('warn', `could not set the clock: ${err}`);
      });
      return;
  }
}

// The shares the last setup mounted (unmounted before a save), and whether a resume
// happened since (its setup waits for the re-plugged share devices).
let mountedShares: MountSpec[] = [];
let resumed = false;
let clockSet: Promise<void> = Promise.resolve();

function shutdown(): void {
  for (const e of execs.values()) e.signal('SIGTERM');
  // Flush the disk, make the root read-only, then power off: no init system to ask.
  execFile('sh', ['-c', 'sync; mount -o remount,ro / 2>/dev/null; sync; echo o > /proc/sysrq-trigger'], () => undefined);
}

async function requesterExec(sock: Socket): Promise<number | null> {
  // The accepted socket's descriptor (Node keeps it on the handle), matched in ss's listing.
  const fd = (sock as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return null;
  const roots = new Map<number, number>();
  for (const [id, e] of execs) if (e.pid !== null) roots.set(id, e.pid);
  return execOf(await peerPid(fd), roots);
}

/** The :commands talk to us on a unix socket: one line `<command> <execId> [args…]`, answer `<exit code>\n<output>`. */
function serveCommands(): void {
  mkdirSync('/run/vibebox', { recursive: true });
  try {
    unlinkSync(GUEST_COMMAND_SOCKET);
  } catch {
    /* first start */
  }
  const srv = createServer({ allowHalfOpen: true }, (sock) => {
    let line = '';
    sock.on('error', () => undefined);
    sock.on('data', (b) => {
      line += b.toString();
      const nl = line.indexOf('\n');
      if (nl < 0) return;
      const [cmd = '', execId = '', ...args] = line.slice(0, nl).trim().split(/\s+/);
      if (cmd === 'dockerd') {
        // Handled here: the `docker` wrapper asks for the engine the first time it is used.
        dockerdOnDemand(setupEnv).then(
          () => sock.end('0\n'),
          (e: Error) => sock.end(`1\n${e.message}\n`),
        );
        return;
      }
      void (async () => {
        // The exec is the one the requesting process really runs in; the id it names is only a claim.
        const claimed = /^\d+$/.test(execId) ? Number(execId) : null;
        const real = claimed === null ? null : await requesterExec(sock);
        if (claimed !== null && real !== claimed) log('warn', `a :${cmd.slice(0, 20)} request named exec ${claimed} but came from ${real ?? 'no exec'}`);
        const parsed = AgentMessage.safeParse({ type: 'request', reqId: nextReq, command: cmd, execId: real, args });
        if (!parsed.success) {
          sock.end(`2\nunknown vibebox command :${cmd}\n`);
          return;
        }
        if (cmd === 'explain' && !args.includes('--json')) explainReqs.add(nextReq);
        pending.set(nextReq++, sock);
        send(parsed.data);
      })();
    });
  });
  srv.listen(GUEST_COMMAND_SOCKET, () => chmodSync(GUEST_COMMAND_SOCKET, 0o666));
}

async function main(): Promise<void> {
  const path = await waitForPort(AGENT_PORT_NAME, 30_000);
  // A virtio port opens once (a second open is EBUSY): one fd, read and written.
  const fd = openSync(path, 'r+');
  out = createWriteStream('', { fd, autoClose: false });
  const input = createReadStream('', { fd, autoClose: false, highWaterMark: 256 * 1024 });
  const dec = new FrameDecoder();
  input.on('data', (chunk) => {
    for (const f of dec.push(chunk as Buffer)) {
      if (f.kind === Kind.stdin) {
        execs.get(f.stream)?.stdin(f.payload);
      } else if (f.kind === Kind.control) {
        const r = readControl(f.payload, HostMessage);
        if (r.ok) handle(r.data);
        else log('warn', `dropped a control frame: ${r.error}`);
      }
    }
  });
  input.on('error', (e) => process.stderr.write(`vibebox-agent: port read error: ${e.message}\n`));
  sayHello();
  serveCommands();
}

function sayHello(): void {
  const uptimeNow = Math.round(Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * 1000);
  send({
    type: 'hello',
    protocol: PROTOCOL_VERSION,
    version: VIBEBOX_VERSION,
    kernel: release(),
    uptimeMs: uptimeNow,
    agentStartMs: Math.round(uptimeNow - process.uptime() * 1000),
    node: process.version,
  });
}

main().catch((e: Error) => {
  process.stderr.write(`vibebox-agent: ${e.message}\n`);
  process.exit(1);
});
