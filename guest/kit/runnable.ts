// What the kit hosts: a "runnable", a JS module exporting `async function* run(prompt, ctx)` that
// yields events and may return the final assistant message, or a Glove agent given to
// `wrap(runnable, config)` as the default export (glove-host.ts turns that into a run function).
import { pathToFileURL } from 'node:url';
import { KitError } from './errors.js';
import { isGloveKit, type GloveKit } from './glove.js';
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
  /**
   * Return a file of the input or work dir with this request's outputs too (named `input/…` or
   * `work/…`). Checked here (an absolute path inside those dirs) and again when the turn
   * completes (a regular file, no link out); a bad path throws a KitError.
   */
  tagOutput(path: string): void;
}

export interface KitEvent {
  event_type: string;
  data?: unknown;
}

export type RunFn = (prompt: KitPrompt, ctx: RunContext) => AsyncIterator<KitEvent, string | void | undefined>;

/** Import a runnable module; fails with a clear error if it exports neither `run` nor a wrapped Glove agent. */
export async function loadRunnable(modulePath: string): Promise<RunFn | GloveKit> {
  const mod = (await import(pathToFileURL(modulePath).href)) as Record<string, unknown>;
  if (isGloveKit(mod['default'])) return mod['default'];
  const run = mod['run'] ?? (mod['default'] as Record<string, unknown> | undefined)?.['run'];
  if (typeof run !== 'function') throw new KitError('E_RUNNABLE_INVALID', `${modulePath} exports no run(prompt, ctx) function and no wrap(runnable, config) default`);
  return run as RunFn;
}
