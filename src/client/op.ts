// A container operation as a typed request (docs/architecture.md, Channels: container
// operations): one ws connection to the supervisor, one `op` message, then progress events and
// one result or error. Starts the session as `vibebox run` does. The guest's text in events and
// results is hostile: printed only through shown(), here and by the commands that render results.
import WebSocket from 'ws';
import type { OpRequest, OpResult } from '../../guest/protocol.js';
import { shown } from '../../guest/shown.js';
import { VibeboxError, type ErrorCode } from '../errors.js';
import { realpathOr, runPaths } from '../paths.js';
import { SupervisorMessage, type ClientMessage } from '../supervisor/client-protocol.js';
import { connect } from './attach.js';
import { progress, quickSessionId, waitForStop } from './run.js';

export interface OpOptions {
  project: string;
  request: OpRequest;
  /** kit_serve: the kit's key and variables. */
  env?: Record<string, string>;
  /** A progress line from the guest (default: escaped, to stderr). */
  onLine?: (line: string) => void;
  /** How long the op may take before the client gives up (image builds are long under emulation). */
  timeoutMs?: number;
}

export interface OpFailureInfo {
  code: string;
  message: string;
  hint?: string;
  exitCode: number;
}

export type OpOutcome = { ok: true; result: OpResult } | { ok: false; failure: OpFailureInfo };

/** A failure the guest reported for an op: printed as any VibeboxError, with the guest's exit code. */
export class GuestOpError extends VibeboxError {
  constructor(private readonly f: OpFailureInfo) {
    super(f.code as ErrorCode, f.message, f.hint);
  }
  override get exitCode(): number {
    return this.f.exitCode;
  }
}

export const printLine = (line: string): void => void process.stderr.write(`${shown(line)}\n`);

const DEFAULT_TIMEOUT_MS = 2 * 3600_000;

type Once = OpOutcome | { lost: true } | { noSupervisor: true } | { stopping: true } | { other: true };

function opOnce(socket: string, msg: ClientMessage, o: OpOptions): Promise<Once> {
  return new Promise((resolve) => {
    const ws = connect(socket);
    const onLine = o.onLine ?? printLine;
    let settled = false;
    const timer = setTimeout(() => {
      settle({ ok: false, failure: { code: 'E_SUPERVISOR', message: `the ${o.request.op} operation did not answer within ${Math.round((o.timeoutMs ?? DEFAULT_TIMEOUT_MS) / 60_000)} min`, hint: 'see .vibebox/supervisor.log', exitCode: 1 } });
    }, o.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    const settle = (r: Once) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      ws.removeAllListeners('close');
      ws.close();
      resolve(r);
    };
    ws.on('open', () => ws.send(JSON.stringify(msg)));
    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      let raw: unknown;
      try {
        raw = JSON.parse((data as Buffer).toString('utf8'));
      } catch {
        return;
      }
      const r = SupervisorMessage.safeParse(raw);
      if (!r.success) return;
      const m = r.data;
      switch (m.type) {
        case 'progress':
          progress(m.line);
          return;
        case 'op_event':
          onLine(m.event.line);
          return;
        case 'op_result':
          settle({ ok: true, result: m.result });
          return;
        case 'error':
          if (m.code === 'E_SESSION_OTHER') settle({ other: true });
          else if (m.code === 'E_STOPPING') settle({ stopping: true });
          else settle({ ok: false, failure: { code: m.code, message: m.message, ...(m.hint !== undefined ? { hint: m.hint } : {}), exitCode: m.exitCode ?? 1 } });
          return;
        case 'reset':
        case 'detach':
          settle({ lost: true });
          return;
        default:
          return;
      }
    });
    ws.on('close', () => settle({ lost: true }));
    ws.on('error', (e: Error & { code?: string }) => {
      if (/ECONNREFUSED|ENOENT/.test(e.message) || e.code === 'ECONNREFUSED' || e.code === 'ENOENT') settle({ noSupervisor: true });
      else settle({ ok: false, failure: { code: 'E_SUPERVISOR', message: `cannot reach the session's supervisor: ${e.message}`, exitCode: 1 } });
    });
  });
}

/** Send one op to the project's session (started if needed); its outcome, never thrown. */
export async function requestOp(o: OpOptions): Promise<OpOutcome> {
  const msg = (project?: string): ClientMessage => ({ type: 'op', request: o.request, ...(o.env ? { env: o.env } : {}), ...(project ? { project } : {}) });
  for (let attempt = 0; ; attempt++) {
    let r: Once | null = null;
    const id = quickSessionId(o.project);
    // As `vibebox run`: the id is from a folder the index has not vouched for yet; the supervisor
    // checks the folder is its own, else the slow path below does the full trust check.
    if (id) r = await opOnce(runPaths(id).supervisorSock, msg(realpathOr(o.project)), o);
    if (r === null || 'noSupervisor' in r || 'other' in r) {
      const { checkEnv } = await import('../supervisor/env.js');
      checkEnv();
      const { ensureRunning } = await import('./start.js');
      const { resolveProject } = await import('../session/project.js');
      const s = await ensureRunning(resolveProject(o.project), { progress, interactive: Boolean(process.stdin.isTTY && process.stderr.isTTY) });
      r = await opOnce(runPaths(s.id).supervisorSock, msg(), o);
    }
    if ('stopping' in r && attempt < 3) {
      await waitForStop(o.project);
      continue;
    }
    if ('ok' in r) return r;
    if ('lost' in r) throw new VibeboxError('E_SESSION_LOST', 'lost the connection to the session (its supervisor stopped)', 'run the command again: it restarts the session from its disk; see .vibebox/supervisor.log');
    throw new VibeboxError('E_SUPERVISOR', "the session's supervisor refused the operation", 'see .vibebox/supervisor.log');
  }
}

/** The op's result, or its failure thrown (printed and exited with by the CLI's one reporter). */
export async function runOp(o: OpOptions): Promise<OpResult> {
  const r = await requestOp(o);
  if (!r.ok) throw new GuestOpError(r.failure);
  return r.result;
}
