// The container ops from a shell in the VM (as root), the same code the agent runs for an exec
// with `container`, or for a typed op:
//   node /opt/vibebox/guest-containers.js run|stack [--root] [--runner] [--agent NAME] [--pass NAME]… [--spec JSON] [-- ARGV…]
//   node /opt/vibebox/guest-containers.js op '<OpRequest JSON>' [--spec JSON]   progress on stderr, the result as JSON on stdout
// --runner makes this process the runner's listener for its runs (the agent's fast path; the
// socket is taken over from the agent until the agent's next start: tests and measurements only).
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { ContainerOp, ContainerSpec, GUEST_COMMAND_SOCKET, OpRequest } from '../protocol.js';
import { socketAnswers } from '../socket-answers.js';
import { DOCKER_SOCKET } from '../docker/engine.js';
import { startOp, stopRunnerHub, type ExecOpRequest } from './ops.js';
import { runOpRequest } from './op-requests.js';

export const OP_COMMANDS: readonly string[] = [...ContainerOp.shape.op.options, 'op'];

/** The vibe user's ids from the VM's passwd. */
export function vibeIds(): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('vibe:'));
  const f = line?.split(':') ?? [];
  return { uid: Number(f[2] ?? 1000), gid: Number(f[3] ?? 1000) };
}

/** From a shell: ask the agent to start dockerd, as the `docker` wrapper does. */
async function dockerdViaAgent(): Promise<void> {
  if (await socketAnswers(DOCKER_SOCKET)) return;
  const answer = await new Promise<string>((resolve, reject) => {
    const s = connect(GUEST_COMMAND_SOCKET);
    let buf = '';
    const t = setTimeout(() => s.destroy(new Error('the agent did not start dockerd within 150 s')), 150_000);
    s.on('connect', () => s.write('dockerd\n'));
    s.on('data', (b) => (buf += b.toString()));
    s.on('end', () => {
      clearTimeout(t);
      resolve(buf);
    });
    s.on('error', reject);
  });
  if (!answer.startsWith('0')) throw new Error(`could not start the docker engine: ${answer.slice(2).trim()}`);
}

/** `op '<json>' [--spec JSON]`: a typed op request. */
export function parseTypedArgs(args: string[]): { request: OpRequest; spec: ContainerSpec } {
  const [json, flag, specJson] = args;
  const request = OpRequest.parse(JSON.parse(json ?? ''));
  const spec = ContainerSpec.parse(flag === '--spec' ? JSON.parse(specJson ?? '{}') : { image: { apt: [], npm: [], run: [] } });
  return { request, spec };
}

function typedMain(args: string[]): Promise<number> {
  let p: ReturnType<typeof parseTypedArgs>;
  try {
    p = parseTypedArgs(args);
  } catch (e) {
    process.stderr.write(`vibebox: bad arguments: ${(e as Error).message.split('\n')[0]} (usage: guest-containers.js op '<request JSON>' [--spec JSON])\n`);
    return Promise.resolve(2);
  }
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  return new Promise((resolve) => {
    const op = runOpRequest(
      { ...p, env },
      {
        event: (e) => process.stderr.write(`${e.line}\n`),
        result: (r) => {
          process.stdout.write(`${JSON.stringify(r)}\n`);
          resolve(0);
        },
        error: (f) => {
          process.stderr.write(`vibebox: ${f.message}${f.hint ? ` (${f.hint})` : ''}\n`);
          resolve(f.exitCode);
        },
      },
      { dockerd: dockerdViaAgent, who: vibeIds() },
    );
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => op.signal(sig));
  });
}

export function parseCliArgs(args: string[]): ExecOpRequest & { runner: boolean } {
  const [opName, ...rest] = args;
  let root = false;
  let agent: string | undefined;
  let spec: unknown = { image: { apt: [], npm: [], run: [] } };
  const pass: string[] = [];
  let argv: string[] = [];
  let runner = false;
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    if (a === '--') {
      argv = rest.slice(i + 1);
      break;
    } else if (a === '--root') root = true;
    else if (a === '--runner') runner = true;
    else if (a === '--agent') agent = rest[++i];
    else if (a === '--pass') pass.push(rest[++i] ?? '');
    else if (a === '--spec') spec = JSON.parse(rest[++i] ?? '{}');
    else argv.push(a);
  }
  const op = ContainerOp.parse({ op: opName, ...(agent ? { agent } : {}), ...(root ? { root } : {}), ...(pass.length ? { pass } : {}), spec: ContainerSpec.parse(spec) });
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  const pty = process.stdin.isTTY && process.stdout.isTTY ? { cols: process.stdout.columns || 80, rows: process.stdout.rows || 24, term: process.env['TERM'] ?? 'xterm' } : undefined;
  return { op, argv, env, ...(pty ? { pty } : {}), runner };
}

/** Run one op with this process's stdio; resolves with the exit code. */
export function opMain(args: string[]): Promise<number> {
  if (args[0] === 'op') return typedMain(args.slice(1));
  let req: ExecOpRequest & { runner: boolean };
  try {
    req = parseCliArgs(args);
  } catch (e) {
    process.stderr.write(`vibebox: bad arguments: ${(e as Error).message.split('\n')[0]} (usage: guest-containers.js ${OP_COMMANDS.join('|')} [--root] [--runner] [--agent NAME] [--pass NAME] [--spec JSON] [-- ARGV…])\n`);
    return Promise.resolve(2);
  }
  return new Promise((resolve) => {
    const done = (code: number) => {
      stopRunnerHub();
      process.stdin.destroy();
      resolve(code);
    };
    const h = startOp(
      req,
      {
        started: () => undefined,
        stdout: (b) => process.stdout.write(b),
        stderr: (b) => process.stderr.write(b),
        exit: (code, signal) => done(code ?? (signal ? 128 : 1)),
        error: (message, reason) => {
          process.stderr.write(`${message}\n`);
          done(reason === 'not_found' ? 127 : 126);
        },
      },
      // --runner: runs go through the in-container runner as the agent's do (tests, measurements).
      { dockerd: dockerdViaAgent, who: vibeIds(), ...(req.runner ? { runner: 'wait' as const } : {}) },
    );
    process.stdin.on('data', (b: Buffer) => h.stdin(b));
    process.stdin.on('end', () => h.stdinEnd());
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => h.signal(sig));
    if (req.pty) process.stdout.on('resize', () => h.resize(process.stdout.columns, process.stdout.rows));
  });
}
