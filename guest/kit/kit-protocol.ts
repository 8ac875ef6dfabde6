// The kit's wire protocol: the only contract between the kit server (in the VM) and the client
// SDK (on the host). Every frame is one JSON text message, validated with zod on receipt by
// whichever side reads it. Raw bytes never ride a message except as an `inline` FileRef.
import * as z from 'zod';

export const KIT_PROTOCOL_VERSION = 1;

/** Prompt and slot ids are chosen by the client; bounded so a hostile id cannot bloat state. */
const Id = z.string().min(1).max(128);

// A file name as it lands in /input or comes out of /output: a relative path, no escapes.
export const FileName = z
  .string()
  .min(1)
  .max(255)
  .refine((n) => !n.includes('\0') && !n.includes('\\') && !n.startsWith('/'), 'must be a relative path')
  .refine((n) => n.split('/').every((p) => p !== '' && p !== '.' && p !== '..'), 'must not contain empty, . or .. parts');

const Mime = z.string().max(255).optional();

export const InlineRef = z.object({
  kind: z.literal('inline'),
  data: z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'must be base64'),
  mime: Mime,
  size: z.number().int().nonnegative().optional(),
});
export const UrlRef = z.object({
  kind: z.literal('url'),
  url: z.url({ protocol: /^https?$/ }),
  headers: z.record(z.string(), z.string()).optional(),
  mime: Mime,
});
export const ServerRef = z.object({
  kind: z.literal('server'),
  id: z.string().regex(/^[A-Za-z0-9-]{1,64}$/),
  url: z.url({ protocol: /^https?$/ }),
  mime: Mime,
  size: z.number().int().nonnegative().optional(),
  expires_at: z.number().int().optional(),
});
export const S3Ref = z.object({
  kind: z.literal('s3'),
  bucket: z.string().min(1).max(255),
  key: z.string().min(1).max(1024),
  region: z.string().max(64).optional(),
  mime: Mime,
  size: z.number().int().nonnegative().optional(),
});
export const FileRef = z.discriminatedUnion('kind', [InlineRef, UrlRef, ServerRef, S3Ref]);
export type FileRef = z.infer<typeof FileRef>;
export type FileRefKind = FileRef['kind'];

/** Human sizes as the policy DSL takes them: bytes as a number, or "512B", "256KB", "1MB", "2GB". */
export const SizeSpec = z.union([z.number().int().nonnegative(), z.string().regex(/^\s*\d+(\.\d+)?\s*(B|KB|MB|GB)\s*$/i, 'bad size (use e.g. 512B, 256KB, 1MB, 2GB)')]);
export type SizeSpec = z.infer<typeof SizeSpec>;

const Bounds = {
  below: SizeSpec.optional(),
  above: SizeSpec.optional(),
  /** Marks a rule terminal even if bounded (it still only matches inside its bounds). */
  always: z.boolean().optional(),
};
/** Durations: seconds as a number, or "30s", "15m", "1h", "7d". */
export const DurationSpec = z.union([z.number().positive(), z.string().regex(/^\s*\d+(\.\d+)?\s*(ms|s|m|h|d)\s*$/, 'bad duration (use e.g. 30s, 15m, 1h, 7d)')]);

export const StorageRule = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('inline'), ...Bounds }).strict(),
  z.object({ kind: z.literal('url'), ...Bounds }).strict(),
  z.object({ kind: z.literal('localServer'), ttl: DurationSpec.optional(), ...Bounds }).strict(),
  z
    .object({
      kind: z.literal('s3'),
      bucket: z.string().min(1),
      region: z.string().optional(),
      prefix: z.string().optional(),
      ...Bounds,
    })
    .strict(),
]);
export type StorageRule = z.infer<typeof StorageRule>;
export const StoragePolicy = z.object({ rules: z.array(StorageRule).min(1).max(32) }).strict();
export type StoragePolicy = z.infer<typeof StoragePolicy>;

// ---- client → server
export const PromptMsg = z
  .object({
    type: z.literal('prompt'),
    id: Id,
    text: z.string().max(1_000_000),
    inputs: z.record(FileName, FileRef).optional(),
    outputs_policy: StoragePolicy.optional(),
  })
  .strict();
export const AbortMsg = z.object({ type: z.literal('abort'), id: Id }).strict();
export const DisplayResolveMsg = z.object({ type: z.literal('display_resolve'), slot_id: Id, value: z.unknown() }).strict();
export const DisplayRejectMsg = z.object({ type: z.literal('display_reject'), slot_id: Id, error: z.unknown() }).strict();
export const PingMsg = z.object({ type: z.literal('ping'), ts: z.number().optional() }).strict();
export const ClientMessage = z.discriminatedUnion('type', [PromptMsg, AbortMsg, DisplayResolveMsg, DisplayRejectMsg, PingMsg]);
export type ClientMessage = z.infer<typeof ClientMessage>;
export type PromptMsg = z.infer<typeof PromptMsg>;

// ---- server → client
export const DisplaySlot = z.object({ id: Id, renderer: z.string().max(128).optional(), data: z.unknown().optional() }).loose();
export type DisplaySlot = z.infer<typeof DisplaySlot>;
export const EventMsg = z.object({ type: z.literal('event'), id: Id, event_type: z.string().min(1).max(128), data: z.unknown() });
export const DisplayPushMsg = z.object({ type: z.literal('display_push'), id: Id, slot: DisplaySlot });
export const DisplayClearMsg = z.object({ type: z.literal('display_clear'), id: Id, slot_id: Id });
export const CompleteMsg = z.object({
  type: z.literal('complete'),
  id: Id,
  message: z.string(),
  outputs: z.record(FileName, FileRef),
});
export const KitErrorCode = z.enum([
  'E_BAD_FRAME',
  'E_DUPLICATE_ID',
  'E_ABORTED',
  'E_INPUT_REJECTED',
  'E_INPUT_TOO_LARGE',
  'E_POLICY_INVALID',
  'E_RUN_FAILED',
  'E_OUTPUT_FAILED',
]);
export type KitErrorCode = z.infer<typeof KitErrorCode>;
/** `id` is null when a malformed frame carried no usable prompt id. */
export const ErrorMsg = z.object({
  type: z.literal('error'),
  id: Id.nullable(),
  error: z.object({ code: z.string(), message: z.string() }),
});
export const PongMsg = z.object({ type: z.literal('pong'), ts: z.number().optional() });
export const ServerMessage = z.discriminatedUnion('type', [EventMsg, DisplayPushMsg, DisplayClearMsg, CompleteMsg, ErrorMsg, PongMsg]);
export type ServerMessage = z.infer<typeof ServerMessage>;
export type EventMsg = z.infer<typeof EventMsg>;
export type CompleteMsg = z.infer<typeof CompleteMsg>;
export type ErrorMsg = z.infer<typeof ErrorMsg>;
export type DisplayPushMsg = z.infer<typeof DisplayPushMsg>;
export type DisplayClearMsg = z.infer<typeof DisplayClearMsg>;

/** GET /environment body. */
export const EnvironmentInfo = z.object({
  name: z.string(),
  version: z.string(),
  base: z.string(),
  fs: z.record(z.string(), z.object({ path: z.string(), writable: z.boolean() })),
  packages: z.record(z.string(), z.array(z.string())),
  limits: z.record(z.string(), z.union([z.string(), z.number()])),
  protocol_version: z.number().int(),
});
export type EnvironmentInfo = z.infer<typeof EnvironmentInfo>;
export const HealthInfo = z.object({ ok: z.literal(true), name: z.string(), version: z.string() });

/** Parse one inbound text frame; never throws. */
export function parseFrame<T extends z.ZodType>(schema: T, raw: string): { ok: true; value: z.infer<T> } | { ok: false; message: string; id: string | null } {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    return { ok: false, message: 'frame is not JSON', id: null };
  }
  const r = schema.safeParse(json);
  if (r.success) return { ok: true, value: r.data };
  const maybeId = typeof json === 'object' && json !== null ? (json as Record<string, unknown>)['id'] : undefined;
  const id = typeof maybeId === 'string' && Id.safeParse(maybeId).success ? maybeId : null;
  const issue = r.error.issues[0];
  return { ok: false, message: issue ? `${issue.path.join('.') || 'frame'}: ${issue.message}` : 'invalid frame', id };
}
