// `vibebox` (shell) and `vibebox exec`: attach to the running session, starting it if needed.
import { isAbsolute, resolve } from 'node:path';
import { realpathOr, runPaths } from '../paths.js';
import { readSessionText } from '../session/state.js';
import { attach, type AttachResult, type ContainerRequest } from './attach.js';
import { VibeboxError } from '../errors.js';
import { pollUntil } from '../../guest/poll.js';
import { checkEnv } from '../supervisor/env.js';
import { shown } from '../../guest/shown.js';


export interface RunOptions {
  project: string;
  argv?: string[];
  tty: boolean;
  user?: 'vibe' | 'root';
  env?: Record<string, string>;
  container?: ContainerRequest;
  /** Take the command's stdout (see AttachOptions.stdout). */
  stdout?: (chunk: Buffer) => void;
}

/** The session id from .vibebox/session.toml without a TOML parser (our own one-line format). */
export function quickSessionId(project: string): string | null {
  try {
    const m = /^id = "([0-9a-f-]{36})"$/m.exec(readSessionText(project) ?? '');
    return m?.[1] ?? null;
  } catch {
    return null;
  }
}

const isTTY = () => Boolean(process.stderr.isTTY);
// Boot progress quotes the guest (its console, its errors): escaped before the dim styling.
export const progress = (line: string) => process.stderr.write(isTTY() ? `\x1b[2m${shown(line)}\x1b[0m\n` : `${shown(line)}\n`);

/** A container exec other than `run` (stack logs) prints what a service wrote: the host escapes it. */
export const reviewOutput = (c: ContainerRequest | undefined): boolean => c !== undefined && c.op !== 'run';

/** `afterReset`: we are reattaching after a guest-requested :new, so never ask y/N here (see run). */
async function attachOnce(o: RunOptions, afterReset = false): Promise<AttachResult> {
  const opts = { tty: o.tty, progress, ...(reviewOutput(o.container) ? { shownOutput: true } : {}), ...(o.argv ? { argv: o.argv } : {}), ...(o.user ? { user: o.user } : {}), ...(o.env ? { env: o.env } : {}), ...(o.container ? { container: o.container } : {}), ...(o.stdout ? { stdout: o.stdout } : {}) };
  const id = quickSessionId(o.project);
  if (id) {
    // The id is read from a folder the index has not vouched for yet (a copy of a running
    // project carries its id): the supervisor checks the folder is its own, else the slow path
    // below does the full trust check.
    const r = await attach({ socket: runPaths(id).supervisorSock, project: realpathOr(o.project), ...opts });
    // ECONNREFUSED/ENOENT: no supervisor; E_SESSION_OTHER: another folder's; else a real answer.
    const noSupervisor = r.kind === 'error' && r.code === 'E_SUPERVISOR' && /ECONNREFUSED|ENOENT/.test(r.message);
    if (!noSupervisor && !(r.kind === 'error' && r.code === 'E_SESSION_OTHER')) return r;
  }
  // A bad knob is bad input, found before anything starts.
  checkEnv();
  const { ensureRunning } = await import('./start.js');
  const { resolveProject } = await import('../session/project.js');
  const project = resolveProject(o.project);
  const s = await ensureRunning(project, { progress, interactive: !afterReset && Boolean(process.stdin.isTTY && process.stderr.isTTY) });
  return attach({ socket: runPaths(s.id).supervisorSock, ...opts });
}

export async function run(o: RunOptions): Promise<number> {
  // After :new the terminal was the guest's a moment ago: what the user types next may be an
  // answer to a fake prompt the guest printed, so a widened config is refused with "run
  // `vibebox approve`" instead of a y/N question there.
  let afterReset = false;
  for (let attempt = 0; ; attempt++) {
    const r = await attachOnce(o, afterReset);
    switch (r.kind) {
      case 'exit':
        return r.code;
      case 'detach':
        return 0;
      case 'reset':
        if (r.reattach && o.argv) {
          // `exec -- … :new …`: the command ran on the old session; do not run it again.
          await waitForReset(o.project);
          process.stderr.write('vibebox: this session was replaced by a fresh one (run vibebox to enter it)\n');
          return 0;
        }
        if (!r.reattach) {
          process.stderr.write('vibebox: this session was replaced by :new in another terminal (run vibebox again to join the new one)\n');
          return 1;
        }
        // Wait for the old supervisor to finish deleting, then start the fresh session.
        await waitForReset(o.project);
        afterReset = true;
        continue;
      case 'lost':
        // Never re-run a command that may have started: report and let the user decide.
        throw new VibeboxError('E_SESSION_LOST', 'lost the connection to the session (its supervisor stopped)', 'run the command again: it restarts the session from its disk; see .vibebox/supervisor.log');
      case 'error':
        // As ssh and docker exec: 127 when the command is not found, 126 when it cannot run.
        if (r.code === 'E_EXEC_NOT_FOUND' || r.code === 'E_EXEC_NOT_EXECUTABLE') {
          process.stderr.write(`vibebox: ${shown(r.message)}\n`);
          return r.code === 'E_EXEC_NOT_FOUND' ? 127 : 126;
        }
        if (r.code === 'E_STOPPING' && attempt < 3) {
          // The session is shutting down right now: wait for it to finish, then start it again.
          await waitForStop(o.project);
          continue;
        }
        throw new VibeboxError(r.code === 'E_VM_START' ? 'E_VM_START' : 'E_SUPERVISOR', r.message, r.hint);
    }
  }
}

export async function waitForStop(project: string): Promise<void> {
  const id = quickSessionId(project);
  if (!id) return;
  const { socketAnswers } = await import('../net/socket-answers.js');
  const sock = runPaths(id).supervisorSock;
  await pollUntil(async () => !(await socketAnswers(sock)), { deadline: Date.now() + 60_000, intervalMs: 20, what: 'the stopping session ending' }).catch((e: Error) => {
    throw new VibeboxError('E_SUPERVISOR', `${e.message}`, 'see .vibebox/supervisor.log; `vibebox stop` it');
  });
}

async function waitForReset(project: string): Promise<void> {
  await pollUntil(() => quickSessionId(project) === null, { deadline: Date.now() + 120_000, intervalMs: 20, what: 'the old session being removed after :new' }).catch(() => {
    throw new VibeboxError('E_SUPERVISOR', 'the old session was not removed after :new', 'see .vibebox/supervisor.log; `vibebox delete` it by hand');
  });
}

/**
 * Parse `vibebox [exec [-t] [-u root] [--] cmd…]` and `vibebox run [-t] [--root] -- cmd…` without
 * the CLI framework; null = not ours (the full CLI answers).
 */
export async function fastPath(args: string[]): Promise<number | null> {
  const { currentDir } = await import('../session/project.js');
  // The current directory only when no absolute --project names the project (it may be gone).
  let project: string | undefined;
  const where = (): string => (project !== undefined && isAbsolute(project) ? resolve(project) : resolve(currentDir(), project ?? '.'));
  if (args.length === 0) return run({ project: where(), tty: Boolean(process.stdin.isTTY) });
  const inContainer = args[0] === 'run';
  const { parseFast, EXEC_FLAGS, RUN_FLAGS } = await import('../cli/exec-grammar.js');
  const parsed = parseFast(args.slice(1), inContainer ? RUN_FLAGS : EXEC_FLAGS, inContainer);
  if (!parsed) return null;
  const { argv } = parsed;
  const tty = parsed.opts.tty === true;
  const root = parsed.opts.root === true;
  const user = parsed.opts.user as 'vibe' | 'root' | undefined;
  project = parsed.opts.project;
  if (inContainer) {
    // Keys from ~/.vibebox/.env go with every container run, by name; covered ones only as placeholders (see cli/container.ts).
    const { env, pass } = (await import('../keys/inject.js')).runKeysForGuest();
    return run({ project: where(), argv, tty, env, container: { op: 'run', ...(root ? { root } : {}), ...(pass.length ? { pass } : {}) } });
  }
  return run({ project: where(), argv, tty, ...(user ? { user } : {}) });
}
