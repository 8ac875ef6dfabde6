// Hosts a wrapped Glove agent as the kit's runnable: one processRequest per prompt, the
// runnable's subscriber events 1:1 as kit events, its display manager bridged onto the
// display_* frames, abort through the request's signal. Glove's prompt machine is not safe to
// run concurrently, so turns run one at a time across every connection of the kit.
import { KitError } from './errors.js';
import { applyInjections } from './glove-injections.js';
import type { GloveKit, GloveSlot } from './glove.js';
import type { EnvironmentInfo } from './kit-protocol.js';
import type { KitEvent, KitPrompt, RunContext, RunFn } from './runnable.js';

export interface GloveHostOptions {
  environment: EnvironmentInfo;
  fs: { input: string; output: string; work: string };
  /** How long an aborted turn may keep the agent busy before the next turn starts anyway. */
  abortedTurnGraceMs?: number;
}

interface Turn {
  ctx: RunContext;
  queue: KitEvent[];
  wake: () => void;
  /** Slots this turn pushed to the client, by the display manager's slot id. */
  shown: Set<string>;
}

/** The final assistant text of what processRequest returned (a Message, or a ModelPromptResult). */
export function finalText(r: unknown): string {
  if (typeof r !== 'object' || r === null) return '';
  const o = r as { text?: unknown; messages?: unknown };
  if (typeof o.text === 'string') return o.text;
  if (Array.isArray(o.messages))
    for (let i = o.messages.length - 1; i >= 0; i--) {
      const m = o.messages[i] as { sender?: unknown; text?: unknown } | undefined;
      if (m?.sender === 'agent' && typeof m.text === 'string') return m.text;
    }
  return '';
}

export function hostGlove(kit: GloveKit, o: GloveHostOptions): RunFn {
  const agent = kit.runnable;
  const dm = agent.displayManager;
  if (typeof agent.processRequest !== 'function' || typeof agent.defineSkill !== 'function' || !dm || typeof dm.subscribe !== 'function')
    throw new KitError('E_RUNNABLE_INVALID', 'wrap() was given something that is not a built Glove runnable (processRequest, defineSkill, displayManager.subscribe)');
  const grace = o.abortedTurnGraceMs ?? 10_000;
  let current: Turn | undefined;
  let lock: Promise<void> = Promise.resolve();

  applyInjections(agent, {
    environment: o.environment,
    fs: o.fs,
    tag: (path) => {
      if (!current) throw new KitError('E_OUTPUT_FAILED', '/output outside a request');
      current.ctx.tagOutput(path);
    },
  });
  agent.addSubscriber({
    record: async (eventType, data) => {
      const t = current;
      if (!t) return;
      t.queue.push({ event_type: eventType, data });
      t.wake();
    },
  });
  // The display manager stays the author's (its renderers, its ids): the bridge watches its stack.
  dm.subscribe(async (stack: GloveSlot[]) => {
    const t = current;
    if (!t) return;
    const live = new Set(stack.map((s) => s.id));
    for (const s of stack) {
      if (t.shown.has(s.id)) continue;
      t.shown.add(s.id);
      t.ctx.display.push({ id: s.id, renderer: s.renderer, data: s.input }).then(
        (v) => {
          t.shown.delete(s.id); // settled by the client: no display_clear for it
          dm.resolve(s.id, v);
        },
        (e: unknown) => {
          t.shown.delete(s.id);
          dm.reject(s.id, e);
        },
      );
    }
    for (const id of [...t.shown]) {
      if (live.has(id)) continue;
      t.shown.delete(id);
      t.ctx.display.clear(id);
    }
  });

  return async function* run(prompt: KitPrompt, ctx: RunContext): AsyncGenerator<KitEvent, string> {
    let release!: () => void;
    const prev = lock;
    lock = new Promise<void>((r) => (release = r));
    const waitedOut = new Promise<void>((_, reject) => {
      if (ctx.signal.aborted) reject(ctx.signal.reason);
      ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true });
    });
    waitedOut.catch(() => undefined);
    let turnDone: Promise<unknown> = Promise.resolve();
    try {
      await Promise.race([prev, waitedOut]);
    } catch (e) {
      // Aborted while queued: hand the lock on once the turn before ends.
      void prev.then(release);
      throw e;
    }
    const turn: Turn = { ctx, queue: [], wake: () => undefined, shown: new Set() };
    current = turn;
    let outcome: { ok: true; value: unknown } | { ok: false; error: unknown } | undefined;
    turnDone = agent.processRequest(prompt.text, ctx.signal).then(
      (value) => (outcome = { ok: true, value }),
      (error: unknown) => (outcome = { ok: false, error }),
    );
    void turnDone.then(() => turn.wake());
    try {
      for (;;) {
        const ev = turn.queue.shift();
        if (ev) {
          yield ev;
          continue;
        }
        if (outcome) break;
        await new Promise<void>((r) => (turn.wake = r));
      }
      if (!outcome.ok) throw outcome.error instanceof KitError ? outcome.error : new KitError('E_RUN_FAILED', outcome.error instanceof Error ? outcome.error.message : String(outcome.error));
      return finalText(outcome.value);
    } finally {
      // An aborted turn may still be unwinding inside the agent: the next one waits for it, up to a deadline.
      const ended = Promise.race([turnDone, new Promise((r) => setTimeout(r, grace).unref())]);
      void ended.then(() => {
        if (current === turn) current = undefined;
        release();
      });
    }
  };
}
