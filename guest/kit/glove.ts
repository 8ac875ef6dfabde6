// The kit face of a Glove agent: `export default wrap(runnable, config)`. glove-core is the
// author's peer dependency: nothing here imports it; these are the few members of its
// IGloveRunnable and DisplayManagerAdapter the kit drives, typed structurally so any 4.x runnable fits.
import type { StoragePolicy } from './kit-protocol.js';

/** A display slot as glove-core's display manager keeps it. */
export interface GloveSlot {
  id: string;
  renderer: string;
  input: unknown;
}

export interface GloveDisplayManager {
  stack: GloveSlot[];
  subscribe(listener: (stack: GloveSlot[]) => Promise<void>): () => void;
  resolve(slotId: string, value: unknown): void;
  reject(slotId: string, error: unknown): void;
}

export interface GloveSkillContext {
  name: string;
  parsedText: string;
  args?: string;
  source: 'user' | 'agent';
}

export interface GloveHookContext {
  name: string;
  rawText: string;
  parsedText: string;
  signal?: AbortSignal;
}

export interface GloveHookResult {
  rewriteText?: string;
  shortCircuit?: { message: { sender: 'agent'; text: string } };
}

export interface GloveRunnableLike {
  processRequest(request: string, signal?: AbortSignal): Promise<unknown>;
  defineSkill(args: { name: string; description?: string; exposeToAgent?: boolean; handler: (ctx: GloveSkillContext) => Promise<string> }): unknown;
  defineHook(name: string, handler: (ctx: GloveHookContext) => Promise<GloveHookResult | void>): unknown;
  addSubscriber(subscriber: { record(eventType: string, data: unknown): Promise<void> }): unknown;
  setSystemPrompt(prompt: string): void;
  getSystemPrompt(): string;
  readonly displayManager: GloveDisplayManager;
}

/**
 * The wrap config: the same fields as a `kit` declaration. `vibebox kit build` reads it from the
 * module's source (it must be a literal in the wrap call); at run time the kit uses the manifest
 * the build wrote, never this object, so what the host read is what the kit does.
 */
export interface WrapConfig {
  name?: string;
  version?: string;
  base?: string;
  packages?: { apt?: string[]; npm?: string[] };
  env?: Record<string, { required?: boolean; secret?: boolean; default?: string; description?: string }>;
  storage?: { inputs?: StoragePolicy; outputs?: StoragePolicy };
  limits?: Partial<Record<'maxInputBytes' | 'maxTotalInputBytes' | 'maxInputFiles' | 'maxOutputFiles' | 'maxFrameBytes' | 'promptTimeoutMs', number>>;
}

/** Global symbol: the SDK copy bundled into the kit and the launcher's copy must agree. */
export const GLOVE_KIT = Symbol.for('vibebox.kit.glove');

export interface GloveKit {
  readonly [GLOVE_KIT]: true;
  readonly runnable: GloveRunnableLike;
  readonly config: WrapConfig;
}

/** Wrap a built Glove runnable as a kit: `export default wrap(agent, { name: 'x', … })`. */
export function wrap(runnable: GloveRunnableLike, config: WrapConfig = {}): GloveKit {
  return { [GLOVE_KIT]: true, runnable, config };
}

export function isGloveKit(v: unknown): v is GloveKit {
  return typeof v === 'object' && v !== null && (v as Record<symbol, unknown>)[GLOVE_KIT] === true;
}
