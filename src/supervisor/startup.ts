// The client's side of a supervisor's start: wait (with a deadline) until it answers on its
// socket; if it exits first, say why from its start-up events (never from supervisor.log, which
// carries text the guest wrote).
import type { ChildProcess } from 'node:child_process';
import { VibeboxError, type ErrorCode } from '../errors.js';
import { socketAnswers } from '../net/socket-answers.js';
import { pollUntil, PollTimeout } from '../../guest/poll.js';
import { eventsFile, startupFailure } from './events.js';

/** A supervisor answers within milliseconds of its spawn; this long means it hangs. */
const SPAWN_DEADLINE_MS = 60_000;

export async function waitForSupervisor(child: ChildProcess, id: string, socket: string, logFile: string, deadlineMs = SPAWN_DEADLINE_MS, events = eventsFile(id)): Promise<void> {
  let exited = child.exitCode !== null;
  child.once('exit', () => (exited = true));
  try {
    await pollUntil(
      async () => {
        if (await socketAnswers(socket)) return true;
        if (exited) throw failure(events, logFile);
        return false;
      },
      { deadline: Date.now() + deadlineMs, intervalMs: 2, maxIntervalMs: 50, what: "the session's supervisor answering" },
    );
  } catch (e) {
    if (e instanceof PollTimeout) throw new VibeboxError('E_SUPERVISOR', `the session's supervisor did not answer within ${deadlineMs / 1000} s`, `see ${logFile}`);
    throw e;
  }
}

function failure(events: string, logFile: string): VibeboxError {
  const f = startupFailure(events);
  if (!f) return new VibeboxError('E_SUPERVISOR', "the session's supervisor exited before it was ready", `see ${logFile}`);
  // The code travels as data: keep it only if it is one of ours.
  return new VibeboxError(f.code as ErrorCode, `the session's supervisor failed to start: ${f.message}`, f.hint ?? `see ${logFile}`);
}
