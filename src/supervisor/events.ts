// Start-up events (like Lima's host agent events): the supervisor appends one JSON line per state
// change to a host-only file beside the run directory; a client that spawned it learns why it
// failed from here, never by scraping supervisor.log (which carries text the guest wrote).
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as z from 'zod';
import { homePaths, shortId } from '../paths.js';

export const StartupEvent = z.strictObject({
  time: z.string(),
  state: z.enum(['starting', 'listening', 'running', 'failed', 'stopped']),
  error: z.strictObject({ code: z.string().regex(/^E_[A-Z_]+$/), message: z.string(), hint: z.string().optional() }).optional(),
});
export type StartupEvent = z.infer<typeof StartupEvent>;

export function eventsFile(id: string, home?: string): string {
  return join(homePaths(home).runDir, `${shortId(id)}.events.jsonl`);
}

export class EventWriter {
  constructor(private file: string) {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    // One start per file: the previous run's events are of no use to the next client.
    writeFileSync(file, '', { mode: 0o600 });
  }

  emit(state: StartupEvent['state'], error?: StartupEvent['error']): void {
    const e: StartupEvent = { time: new Date().toISOString(), state, ...(error ? { error } : {}) };
    try {
      appendFileSync(this.file, JSON.stringify(e) + '\n');
    } catch {
      /* the client then reports a failure without a reason */
    }
  }
}

/** The events of the last start, oldest first; lines that do not parse are skipped. */
export function readEvents(file: string): StartupEvent[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const out: StartupEvent[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const r = StartupEvent.safeParse(JSON.parse(line));
      if (r.success) out.push(r.data);
    } catch {
      /* a torn last line */
    }
  }
  return out;
}

/** The error of the last `failed` event, if the start failed. */
export function startupFailure(file: string): NonNullable<StartupEvent['error']> | null {
  const last = readEvents(file).filter((e) => e.state === 'failed').pop();
  return last?.error ?? null;
}
