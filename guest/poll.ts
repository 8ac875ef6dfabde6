// One way to wait for something that has no event to wait on (a socket appearing, a process
// exiting): poll with backoff, always against a deadline, and stop early on an abort signal.
// It lives in guest/, the lowest layer (like protocol.ts), so the guest agent, qemu/ and src/
// all use the same loop.

export class PollTimeout extends Error {
  constructor(what: string, ms: number) {
    super(`${what} did not happen within ${Math.round(ms / 100) / 10} s`);
    this.name = 'PollTimeout';
  }
}

export interface PollOptions {
  /** Absolute time (Date.now() ms) after which the wait fails with PollTimeout. */
  deadline: number;
  signal?: AbortSignal;
  /** First delay between checks; it doubles up to maxIntervalMs. */
  intervalMs?: number;
  maxIntervalMs?: number;
  /** What we wait for, for the timeout's message. */
  what?: string;
}

/**
 * Call `check` until it returns something other than undefined/false/null and return that. A
 * `check` that throws ends the wait with its error (e.g. "the process we wait for exited").
 */
export async function pollUntil<T>(check: () => T | undefined | null | false | Promise<T | undefined | null | false>, o: PollOptions): Promise<T> {
  const start = Date.now();
  let delay = Math.max(1, o.intervalMs ?? 5);
  const max = Math.max(delay, o.maxIntervalMs ?? 250);
  for (;;) {
    o.signal?.throwIfAborted();
    const v = await check();
    if (v !== undefined && v !== null && v !== false) return v;
    const left = o.deadline - Date.now();
    if (left <= 0) throw new PollTimeout(o.what ?? 'the condition', Date.now() - start);
    await sleep(Math.min(delay, left), o.signal);
    delay = Math.min(delay * 2, max);
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason instanceof Error ? signal!.reason : new Error('aborted'));
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Race a promise against a deadline (for one-shot operations such as a QMP command). */
export function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new PollTimeout(what, ms)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
