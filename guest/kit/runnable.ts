// What the kit hosts: a "runnable", a JS module exporting `async function* run(prompt, ctx)` that
// yields events and may return the final assistant message.
import { pathToFileURL } from 'node:url';
import { KitError } from './errors.js';
import type { DisplaySlot } from './kit-protocol.js';

export interface KitPrompt {
  id: string;
  text: string;
  /** Names of the files that landed in ctx.inputDir for this prompt. */
  inputs: string[];
}

export interface RunContext {
  /** Aborted when the client sends `abort`, the prompt times out, or the connection closes. */
  signal: AbortSignal;
  inputDir: string;
  outputDir: string;
  workDir: string;
  display: {
    /** Push a slot to the client; settles when the client resolves or rejects it. */
    push(slot: Omit<DisplaySlot, 'id'> & { id?: string }): Promise<unknown>;
    clear(slotId: string): void;
  };
}

export interface KitEvent {
  event_type: string;
  data?: unknown;
}

export type RunFn = (prompt: KitPrompt, ctx: RunContext) => AsyncIterator<KitEvent, string | void | undefined>;

/** Import a runnable module; fails with a clear error if it exports no `run` function. */
export async function loadRunnable(modulePath: string): Promise<RunFn> {
  const mod = (await import(pathToFileURL(modulePath).href)) as Record<string, unknown>;
  const run = mod['run'] ?? (mod['default'] as Record<string, unknown> | undefined)?.['run'];
  if (typeof run !== 'function') throw new KitError('E_RUNNABLE_INVALID', `${modulePath} exports no run(prompt, ctx) function`);
  return run as RunFn;
}
