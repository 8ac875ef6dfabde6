// A failure as the supervisor reports it: any error is wrapped as a VibeboxError (a code the
// client can act on, a message, maybe a hint), then sent to a client or written as an event.
import { VibeboxError, type ErrorCode } from '../errors.js';
import type { SupervisorMessage } from './client-protocol.js';

/** `e` itself when it is a VibeboxError, else its message under `code` (and `hint`). */
export function asVibeboxError(e: unknown, code: ErrorCode, hint?: string): VibeboxError {
  return e instanceof VibeboxError ? e : new VibeboxError(code, (e as Error).message, hint);
}

/** The fields of an error reply or a `failed` event; `fallbackHint` when the error has none. */
export function errorBody(err: VibeboxError, fallbackHint?: string): { code: string; message: string; hint?: string } {
  const hint = err.hint ?? fallbackHint;
  return { code: err.code, message: err.message, ...(hint ? { hint } : {}) };
}

/** Wrap `e` (under `code` when it is not a VibeboxError), then send it as an error reply. */
export function sendError(c: { send(m: SupervisorMessage): void }, e: unknown, code: ErrorCode, fallbackHint?: string): void {
  c.send({ type: 'error', ...errorBody(asVibeboxError(e, code), fallbackHint) });
}
