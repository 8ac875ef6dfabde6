// The controller's record of a stack, as written to disk and read back at every start (reconcile):
// the applied (live) manifest, the pending proposal, and how the last apply ended. Validated on
// read like any message across a boundary. The manifest is stored normalized, not re-validated from
// its text: a policy narrowed later must not make reconcile drop a stack the user already approved.
import * as z from 'zod';
import type { Manifest, ManifestError, ManifestErrorCode } from './manifest.js';

const ImageRefSchema = z.strictObject({
  ref: z.string().min(1),
  repository: z.string().min(1),
  tag: z.string().nullable(),
  digest: z.string().nullable(),
  local: z.boolean(),
});

const HealthcheckSchema = z.strictObject({
  test: z.array(z.string()).min(2),
  intervalMs: z.number().int().positive(),
  timeoutMs: z.number().int().positive(),
  retries: z.number().int().positive(),
  startPeriodMs: z.number().int().nonnegative(),
  source: z.enum(['manifest', 'default']),
});

const ServiceSpecSchema = z.strictObject({
  name: z.string().regex(/^[a-z](?:[a-z0-9-]{0,30}[a-z0-9])?$/),
  image: ImageRefSchema,
  command: z.array(z.string()).nullable(),
  env: z.record(z.string(), z.string()),
  volumes: z.array(z.strictObject({ name: z.string().min(1), target: z.string().startsWith('/'), readOnly: z.boolean() })),
  healthcheck: HealthcheckSchema.nullable(),
  cpus: z.number().positive(),
  memoryBytes: z.number().int().positive(),
  capAdd: z.array(z.string()),
});

export const ManifestSchema: z.ZodType<Manifest> = z.strictObject({
  version: z.literal(1),
  services: z.array(ServiceSpecSchema).min(1).max(16),
});

export const ManifestErrorSchema: z.ZodType<ManifestError> = z.strictObject({
  code: z.string().regex(/^[a-z]+(_[a-z]+)*$/) as z.ZodType<ManifestErrorCode>,
  path: z.string(),
  message: z.string(),
  hint_for_agent: z.string(),
});

const time = z.iso.datetime();

export const LastApplySchema = z.strictObject({
  status: z.enum(['applied', 'rejected', 'rolled_back']),
  /** Why it was rejected or rolled back ('' when applied). */
  reason: z.string(),
  time,
  /** For rejected: the validation errors, for the agent to fix. */
  errors: z.array(ManifestErrorSchema).optional(),
});

export const StackStateSchema = z.strictObject({
  version: z.literal(1),
  /** What the user approved and Docker should hold; null before the first apply or after destroy. */
  live: ManifestSchema.nullable(),
  /** The agent's latest valid proposal, awaiting the user; text kept for the user to read as written. */
  proposed: z.strictObject({ manifest: ManifestSchema, text: z.string(), time }).nullable(),
  last_apply: LastApplySchema.nullable(),
  /** After `down`: reconcile leaves the stack stopped until the next apply. */
  down: z.boolean(),
});

export type LastApply = z.infer<typeof LastApplySchema>;
export type StackState = z.infer<typeof StackStateSchema>;

export const EMPTY_STATE: StackState = { version: 1, live: null, proposed: null, last_apply: null, down: false };

/** What `vibebox-stack wait` reports for a proposal made at `since` (ISO time). */
export type WaitOutcome = { state: 'pending' } | { state: 'applied' } | { state: 'rejected' | 'rolled_back'; reason: string; errors: ManifestError[] };

/**
 * The wait answer, so an agent learns "rejected"/"rolled_back" and why instead of timing out: an
 * apply at or after the proposal decides; before it, the proposal is still waiting for the user.
 */
export function waitOutcome(state: StackState, since: string): WaitOutcome {
  const last = state.last_apply;
  if (last === null || Date.parse(last.time) < Date.parse(since)) return { state: 'pending' };
  if (last.status === 'applied') return { state: 'applied' };
  return { state: last.status, reason: last.reason, errors: last.errors ?? [] };
}

/** Read a state file's JSON: a corrupt or foreign file is an error, never a silent empty stack. */
export function parseStackState(json: string): { ok: true; state: StackState } | { ok: false; message: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (e) {
    return { ok: false, message: `stack state is not JSON: ${(e as Error).message}` };
  }
  const r = StackStateSchema.safeParse(raw);
  if (!r.success) return { ok: false, message: `stack state is invalid: ${r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}` };
  return { ok: true, state: r.data };
}
