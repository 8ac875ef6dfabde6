// A session's live state, derived from its supervisor's pid and socket (never stored).
import { runPaths } from '../paths.js';
import { aliveAs, readPid } from '../supervisor/pidfile.js';
import { request } from '../client/attach.js';
import type { Status } from '../supervisor/client-protocol.js';

export interface LiveState {
  state: 'running' | 'starting' | 'stopping' | 'stopped';
  refs: number;
  status: Status | null;
}

export async function liveState(id: string): Promise<LiveState> {
  const rp = runPaths(id);
  if (!aliveAs(readPid(rp.supervisorPid), '__supervise')) return { state: 'stopped', refs: 0, status: null };
  try {
    const m = await request(rp.supervisorSock, { type: 'status' }, 3000);
    if (m.type === 'status') return { state: m.status.state, refs: m.status.refs, status: m.status };
  } catch {
    /* not answering: treat as stopped (stale) */
  }
  return { state: 'stopped', refs: 0, status: null };
}

/** Ask a running supervisor to stop and wait until it has exited. */
export async function stopSession(id: string, timeoutMs = 60_000, suspend = false): Promise<boolean> {
  const rp = runPaths(id);
  const pid = readPid(rp.supervisorPid);
  if (!aliveAs(pid, '__supervise')) return false;
  try {
    await request(rp.supervisorSock, suspend ? { type: 'stop', suspend: true } : { type: 'stop' }, 5000);
  } catch {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      /* gone */
    }
  }
  const deadline = Date.now() + timeoutMs;
  for (let d = 10; aliveAs(pid, '__supervise'); d = Math.min(d * 2, 200)) {
    if (Date.now() > deadline) {
      process.kill(pid, 'SIGKILL');
      break;
    }
    await new Promise((r) => setTimeout(r, d));
  }
  return true;
}
