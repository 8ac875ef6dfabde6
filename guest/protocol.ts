// The supervisor ↔ guest agent wire protocol over one virtio-serial port (docs/architecture.md, Channels).
// Frames: u32 BE length of (stream + kind + payload) | u32 BE stream id | u8 kind | payload.
// Kind CONTROL carries one JSON message (validated with zod on receipt); the data kinds carry raw
// bytes of one exec's stdio. Both ends import this module.
import * as z from 'zod';
import { MAX_CA_PEM_BYTES } from './ca-certs.js';

export const PROTOCOL_VERSION = 2;
export const AGENT_PORT_NAME = 'org.vibebox.agent.0';
/** Unix socket inside the guest where the :commands reach the agent. */
/** The egress proxy as the VM reaches it: QEMU's guestfwd carries this address to the host proxy
 *  (docs/architecture.md, Processes). The one place it is written (images/customize.sh repeats it
 *  in the guest's profile, being shell). */
export const EGRESS_HOST = '10.0.2.100';
export const EGRESS_PORT = 3128;
export const EGRESS_ADDR = `${EGRESS_HOST}:${EGRESS_PORT}`;
export const EGRESS_URL = `http://${EGRESS_ADDR}`;

export const GUEST_COMMAND_SOCKET = '/run/vibebox/agent.sock';

export const Kind = { control: 0, stdout: 1, stderr: 2, stdin: 3 } as const;
export type KindValue = (typeof Kind)[keyof typeof Kind];
const HEADER = 9;
/** Frames larger than this are a protocol error (a corrupted stream must not allocate gigabytes). */
export const MAX_FRAME = 4 * 1024 * 1024;

export function encodeFrame(stream: number, kind: KindValue, payload: Uint8Array | string): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  const buf = Buffer.allocUnsafe(HEADER + body.length);
  buf.writeUInt32BE(5 + body.length, 0);
  buf.writeUInt32BE(stream, 4);
  buf.writeUInt8(kind, 8);
  buf.set(body, HEADER);
  return buf;
}

export interface Frame {
  stream: number;
  kind: number;
  payload: Buffer;
}

/** Incremental decoder: feed chunks, get whole frames. */
export class FrameDecoder {
  private buf: Buffer = Buffer.alloc(0);
  push(chunk: Buffer): Frame[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: Frame[] = [];
    while (this.buf.length >= 4) {
      const len = this.buf.readUInt32BE(0);
      if (len < 5 || len > MAX_FRAME) throw new Error(`bad frame length ${len}`);
      if (this.buf.length < 4 + len) break;
      out.push({ stream: this.buf.readUInt32BE(4), kind: this.buf.readUInt8(8), payload: this.buf.subarray(HEADER, 4 + len) });
      this.buf = this.buf.subarray(4 + len);
    }
    return out;
  }
}

/**
 * A control frame's payload as both ends read it: JSON, then the schema of what that end accepts.
 * `raw` is kept (when it was JSON) so the supervisor can read a hello's protocol version before
 * the schema of a newer protocol refuses it.
 */
export type ControlRead<T> = { ok: true; raw: unknown; data: T } | { ok: false; raw?: unknown; error: string };

export function readControl<T>(payload: Buffer, schema: z.ZodType<T>): ControlRead<T> {
  let raw: unknown;
  try {
    raw = JSON.parse(payload.toString('utf8'));
  } catch {
    return { ok: false, error: 'control frame is not JSON' };
  }
  const r = schema.safeParse(raw);
  return r.success ? { ok: true, raw, data: r.data } : { ok: false, raw, error: `invalid message: ${r.error.issues[0]?.message ?? ''}` };
}

const id = z.number().int().min(1).max(0xffffffff);
const env = z.record(z.string(), z.string());
const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/);

/** vibebox.toml [image]: the project layer built FROM vibebox/agent:base. No FROM/ADD. */
export const ImageLayerSpec = z.strictObject({
  apt: z.array(z.string().regex(/^[a-z0-9][a-z0-9+.-]*(=[A-Za-z0-9.+:~-]+)?$/)).default([]),
  npm: z.array(z.string().regex(/^(@[a-z0-9._-]+\/)?[a-z0-9._-]+(@[A-Za-z0-9.^~<>=*|+ -]+)?$/)).default([]),
  run: z.array(z.string().min(1)).default([]),
});
export type ImageLayerSpec = z.output<typeof ImageLayerSpec>;

/** What the project's agent container is made from: the approved vibebox.toml, sent by the supervisor. */
export const ContainerSpec = z.strictObject({
  image: ImageLayerSpec,
  /** [container] cpus (fractions allowed) and memory (bytes); absent = Docker's defaults inside the VM. */
  cpus: z.number().positive().max(64).optional(),
  memoryBytes: z.number().int().positive().optional(),
});
export type ContainerSpec = z.infer<typeof ContainerSpec>;

/**
 * An exec whose target is the project's agent container rather than the VM: the container
 * operations that are interactive commands. The exec's stdio, exit status, resize and signals
 * work as for a VM exec; progress goes to its stderr.
 *   run      argv in the container (a login shell when argv is empty; `agent` runs that agent with argv as its flags)
 *   stack    `logs <service> [-f]` of a stack service: a stream the user ends with ^C
 * Every other container operation is a typed request (OpRequest, below).
 */
export const ContainerOp = z.strictObject({
  op: z.enum(['run', 'stack']),
  agent: z.string().regex(/^[a-z][a-z0-9-]{0,31}$/).optional(),
  /** run with `agent`: the host's verified copy to run, `<agent>/<version>-<hash>` under the read-only agent store. */
  tree: z.string().regex(/^[a-z][a-z0-9-]{0,31}\/[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}-[0-9a-f]{16}$/).optional(),
  /** Run as root in the container (still cap_drop ALL, no-new-privileges): for apt installs. */
  root: z.boolean().optional(),
  /** Names of exec env entries that go into the container process (keys from ~/.vibebox/.env); never stored in the container's config. */
  pass: z.array(envName).max(256).optional(),
  spec: ContainerSpec,
});
export type ContainerOp = z.infer<typeof ContainerOp>;

// ---- container operations as frames (docs/architecture.md, Channels: container operations) ----
// The host sends one `op` with a typed request; the guest answers with `op_event`s (progress
// lines, shown escaped on the host) and one `op_result` or `op_error`. Everything the guest
// sends here is hostile input on the host: sizes are capped, names match what the guest may
// name, and free text is only ever printed through shown().

/** One progress line (a longer line is split by the sender). */
export const MAX_OP_LINE = 8 * 1024;
/** A text rendered in the VM for review (a diff, a summary): shown line by line on the host. */
export const MAX_OP_TEXT = 1024 * 1024;
const opLine = z.string().max(MAX_OP_LINE);
const opText = z.string().max(MAX_OP_TEXT);
const kitName = z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,62}$/);
const agentName = z.string().regex(/^[a-z][a-z0-9-]{0,31}$/);
/** The stack-controller's proposal identity (guest/stack/controller.ts proposalHash). */
export const ProposalHash = z.string().regex(/^[0-9a-f]{16}$/);
const stackImageName = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/);
const debName = z.string().regex(/^[a-z0-9][a-z0-9+.-]*(=[A-Za-z0-9.+:~-]+)?$/);

export const OpRequest = z.discriminatedUnion('op', [
  /** The known agents with their installed versions. */
  z.strictObject({ op: z.literal('agents') }),
  /** Reinstall an agent at its latest version. */
  z.strictObject({ op: z.literal('update'), agent: agentName }),
  /** The agent container's uncommitted changes. */
  z.strictObject({ op: z.literal('changes') }),
  z.strictObject({ op: z.literal('commit') }),
  z.strictObject({ op: z.literal('reset') }),
  z.strictObject({ op: z.literal('rebuild') }),
  /** Serve a built kit (its dist/ under /workspace); its key and variables come in the op's env. */
  z.strictObject({
    op: z.literal('kit_serve'),
    name: kitName,
    dir: z
      .string()
      .max(4096)
      .regex(/^\/workspace(\/|$)/)
      .refine((d) => !d.split('/').includes('..'), 'must not leave /workspace'),
  }),
  z.strictObject({ op: z.literal('kit_stop'), name: kitName }),
  z.strictObject({ op: z.literal('kit_ls') }),
  /** What apply would do: the proposal's diff and its identity. */
  z.strictObject({ op: z.literal('stack_plan') }),
  /** Apply the proposal the user saw: refused (`changed`) when the proposal is no longer `expect`. */
  z.strictObject({ op: z.literal('stack_apply'), expect: ProposalHash, dryRun: z.boolean() }),
  z.strictObject({ op: z.literal('stack_status') }),
  z.strictObject({ op: z.literal('stack_down') }),
  z.strictObject({ op: z.literal('stack_destroy') }),
  z.strictObject({ op: z.literal('stack_image'), name: stackImageName, apt: z.array(debName).max(256), run: z.array(z.string().min(1).max(4096)).max(64) }),
]);
export type OpRequest = z.infer<typeof OpRequest>;
export type OpName = OpRequest['op'];

export const OpEvent = z.discriminatedUnion('kind', [
  /** Progress, for the user's stderr. */
  z.strictObject({ kind: z.literal('line'), line: opLine }),
]);
export type OpEvent = z.infer<typeof OpEvent>;

const shortText = z.string().max(1024);
export const StackStatusResult = z.strictObject({
  live: z.boolean(),
  down: z.boolean(),
  services: z.array(z.strictObject({ name: shortText, image: shortText, state: shortText, health: shortText.nullable() })).max(256),
  last_apply: z.strictObject({ status: shortText, reason: opLine, time: shortText }).nullable(),
  proposed: z.strictObject({ time: shortText, hash: shortText }).nullable(),
});
export type StackStatusResult = z.infer<typeof StackStatusResult>;

export const StackApplyStatus = z.enum(['applied', 'dry_run', 'rejected', 'rolled_back', 'nothing', 'changed', 'error']);

export const OpResult = z.discriminatedUnion('kind', [
  /** The op did what it says (its progress lines said how). */
  z.strictObject({ kind: z.literal('done') }),
  z.strictObject({ kind: z.literal('agents'), rows: z.array(z.strictObject({ name: agentName, package: shortText, version: shortText.nullable() })).max(64) }),
  /** The summary of the container's changes as the VM renders it ('' when none matter). */
  z.strictObject({ kind: z.literal('changes'), text: opText }),
  z.strictObject({ kind: z.literal('kits'), kits: z.array(z.strictObject({ name: shortText, state: shortText })).max(1024) }),
  /** kit_stop: whether a kit of that name was running. */
  z.strictObject({ kind: z.literal('kit_stopped'), found: z.boolean() }),
  z.strictObject({ kind: z.literal('stack_plan'), proposed: z.boolean(), hash: ProposalHash.nullable(), diff: opText, empty: z.boolean() }),
  z.strictObject({ kind: z.literal('stack_status'), status: StackStatusResult }),
  z.strictObject({
    kind: z.literal('stack_apply'),
    status: StackApplyStatus,
    reason: opText.optional(),
    services: z.array(shortText).max(256).optional(),
    network: shortText.optional(),
    seconds: z.number().min(0).optional(),
    steps: z.number().int().min(0).optional(),
  }),
  /** stack_down, stack_destroy. */
  z.strictObject({ kind: z.literal('stack_changed'), ok: z.boolean(), reason: opText.optional() }),
  z.strictObject({ kind: z.literal('stack_image'), tag: z.string().regex(/^local\/[a-z0-9][a-z0-9._-]{0,62}:[0-9a-f]{16}$/) }),
]);
export type OpResult = z.infer<typeof OpResult>;

/** Why an op failed: one line as a VibeboxError prints it, and the exit code (2 bad input, 1 failure). */
export const OpFailure = z.strictObject({ code: z.string().regex(/^E_[A-Z_]{1,40}$/), message: opLine, hint: opLine.optional(), exitCode: z.number().int().min(1).max(255) });
export type OpFailure = z.infer<typeof OpFailure>;

export const MountSpec = z.strictObject({
  tag: z.string().regex(/^[a-z0-9_-]{1,36}$/),
  guest: z.string().regex(/^\//),
  ro: z.boolean(),
  fs: z.enum(['virtiofs', '9p']),
  /** A single-file mount: the share holds this one file, bind-mounted onto `guest`. */
  file: z.string().regex(/^[^/]+$/).optional(),
});
export type MountSpec = z.infer<typeof MountSpec>;

/** Supervisor → agent. */
export const HostMessage = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('exec'),
    id,
    argv: z.array(z.string()),
    env,
    cwd: z.string(),
    user: z.enum(['vibe', 'root']),
    pty: z.strictObject({ cols: z.number().int().min(1), rows: z.number().int().min(1), term: z.string() }).optional(),
    /** Present: the exec runs in the agent container (argv may then be empty). */
    container: ContainerOp.optional(),
  }).refine((m) => m.argv.length > 0 || m.container !== undefined, 'an exec in the VM needs a command'),
  /** A container operation that is not an interactive command: answered by op_event…, then op_result or op_error. */
  z.strictObject({ type: z.literal('op'), id, request: OpRequest, spec: ContainerSpec, env }),
  z.strictObject({ type: z.literal('stdin_end'), id }),
  z.strictObject({ type: z.literal('resize'), id, cols: z.number().int().min(1), rows: z.number().int().min(1) }),
  z.strictObject({ type: z.literal('signal'), id, signal: z.string().regex(/^SIG[A-Z0-9]+$/) }),
  /** cas: the host's CA certificates, PEM (guest/ca-certs.ts; checked again on receipt). local: [workspace] local dirs. */
  z.strictObject({ type: z.literal('setup'), mounts: z.array(MountSpec), env, cas: z.string().max(MAX_CA_PEM_BYTES).optional(), local: z.array(z.string()).optional() }),
  z.strictObject({ type: z.literal('reply'), reqId: id, ok: z.boolean(), output: z.string(), exitCode: z.number().int() }),
  z.strictObject({ type: z.literal('shutdown') }),
  /** Before a save: flush, unmount every share (shares block migration), drop caches. */
  z.strictObject({ type: z.literal('suspend') }),
  /** After a resume: say hello again (a clock and a setup follow). */
  z.strictObject({ type: z.literal('resume') }),
  /** The host's time (epoch ms) when sent: the guest sets its clock (after a resume it is behind). */
  z.strictObject({ type: z.literal('clock'), epochMs: z.number().int().positive() }),
  /**
   * Port forwarding: open a relay in the VM for guest port `guest` (the host side is
   * QEMU's hostfwd onto the relay's port). Without `container`, each connection goes to
   * 127.0.0.1:guest in the VM or, when nothing listens there, to the agent container; with it,
   * to that container only (a kit).
   * Opening an id that is open answers with its port again (after a resume).
   */
  z.strictObject({ type: z.literal('forward_open'), fwdId: id, guest: z.number().int().min(1).max(65535), container: z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/).optional() }),
  z.strictObject({ type: z.literal('forward_close'), fwdId: id }),
]);
export type HostMessage = z.infer<typeof HostMessage>;

export const GuestCommand = z.enum(['explain', 'new', 'exit', 'help']);
export type GuestCommand = z.infer<typeof GuestCommand>;

/** Agent → supervisor. */
export const AgentMessage = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('hello'),
    protocol: z.number().int(),
    version: z.string(),
    kernel: z.string(),
    uptimeMs: z.number(),
    /** Guest uptime when the agent's process started: init's share of the boot, and Node's. */
    agentStartMs: z.number(),
    node: z.string(),
  }),
  z.strictObject({ type: z.literal('started'), id, pid: z.number().int() }),
  z.strictObject({ type: z.literal('op_event'), id, event: OpEvent }),
  z.strictObject({ type: z.literal('op_result'), id, result: OpResult }),
  z.strictObject({ type: z.literal('op_error'), id, error: OpFailure }),
  z.strictObject({ type: z.literal('exit'), id, code: z.number().int().nullable(), signal: z.string().nullable() }),
  z.strictObject({
    type: z.literal('exec_error'),
    id,
    message: z.string(),
    /** Why the command did not start, for exit codes 127 and 126 (as ssh and docker exec). */
    reason: z.enum(['not_found', 'not_executable']).optional(),
  }),
  z.strictObject({ type: z.literal('setup_done'), ok: z.boolean(), error: z.string().optional() }),
  z.strictObject({ type: z.literal('request'), reqId: id, command: GuestCommand, execId: z.number().int().nullable(), args: z.array(z.string()) }),
  z.strictObject({ type: z.literal('log'), level: z.enum(['info', 'warn', 'error']), message: z.string() }),
  /** The answer to `suspend`: ok when no share is mounted any more; lazy: mounts detached while in use. */
  z.strictObject({ type: z.literal('suspend_done'), ok: z.boolean(), lazy: z.array(z.string()), error: z.string().optional() }),
  /** The answer to forward_open: the relay's port in the VM, or why it could not listen. */
  z.strictObject({ type: z.literal('forward_ready'), fwdId: id, port: z.number().int().min(1).max(65535).optional(), error: z.string().optional() }),
]);
export type AgentMessage = z.infer<typeof AgentMessage>;

export function controlFrame(msg: HostMessage | AgentMessage): Buffer {
  return encodeFrame(0, Kind.control, JSON.stringify(msg));
}
