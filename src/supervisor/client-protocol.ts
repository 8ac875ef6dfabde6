// Client ↔ supervisor protocol over ws on run/<id12>/supervisor.sock. Text frames carry JSON
// control messages (validated on receipt); binary frames carry stdio: one kind byte, then bytes.
import * as z from 'zod';
import { ContainerOp, OpEvent, OpRequest, OpResult } from '../../guest/protocol.js';

export { DataKind } from './data-kind.js';

export const ClientMessage = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('exec'),
    /** Absent: the login shell of user vibe in /workspace. */
    argv: z.array(z.string()).min(1).optional(),
    tty: z.boolean(),
    cols: z.number().int().min(1).optional(),
    rows: z.number().int().min(1).optional(),
    term: z.string().optional(),
    env: z.record(z.string(), z.string()).optional(),
    cwd: z.string().optional(),
    user: z.enum(['vibe', 'root']).optional(),
    /** The project (real path) the client runs in: a supervisor refuses one that is not its own. */
    project: z.string().optional(),
    /** Run in the agent container; the supervisor adds the spec from the approved vibebox.toml. */
    container: ContainerOp.omit({ spec: true }).optional(),
  }),
  /**
   * A container operation as a typed request (guest protocol OpRequest): answered by op_event…,
   * then op_result or error. env: a kit's key and variables (kit_serve only).
   */
  z.strictObject({ type: z.literal('op'), request: OpRequest, env: z.record(z.string(), z.string()).optional(), project: z.string().optional() }),
  z.strictObject({ type: z.literal('resize'), cols: z.number().int().min(1), rows: z.number().int().min(1) }),
  z.strictObject({ type: z.literal('signal'), signal: z.string().regex(/^SIG[A-Z0-9]+$/) }),
  z.strictObject({ type: z.literal('stdin_end') }),
  z.strictObject({ type: z.literal('status') }),
  /** suspend: save the VM's state for a resume instead of shutting it down. */
  z.strictObject({ type: z.literal('stop'), suspend: z.boolean().optional() }),
  z.strictObject({ type: z.literal('reload') }),
  /** Forward host 127.0.0.1:host → guest port; close: stop forwarding host. Session-only. */
  z.strictObject({
    type: z.literal('port'),
    host: z.number().int().min(1).max(65535),
    guest: z.number().int().min(1).max(65535).optional(),
    container: z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/).optional(),
    origin: z.enum(['session', 'kit']).optional(),
    close: z.boolean().optional(),
  }),
]);
export type ClientMessage = z.infer<typeof ClientMessage>;

export const StatusSchema = z.strictObject({
  id: z.string(),
  project: z.string(),
  state: z.enum(['starting', 'running', 'stopping']),
  refs: z.number().int(),
  supervisorPid: z.number().int(),
  qemuPid: z.number().int().nullable(),
  accel: z.string(),
  bootMs: z.number().nullable(),
  /** Port forwards of the running session. */
  forwards: z
    .array(
      z.strictObject({
        host: z.number().int(),
        guest: z.number().int(),
        origin: z.enum(['config', 'session', 'kit']),
        container: z.string().optional(),
        state: z.enum(['pending', 'open', 'failed']),
        error: z.string().optional(),
      }),
    )
    .optional(),
});
export type Status = z.infer<typeof StatusSchema>;

export const SupervisorMessage = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('progress'), line: z.string() }),
  z.strictObject({ type: z.literal('started') }),
  z.strictObject({ type: z.literal('exit'), code: z.number().int().nullable(), signal: z.string().nullable() }),
  /** exitCode: a failed container op's own (2 bad input, 1 failure). */
  z.strictObject({ type: z.literal('error'), code: z.string(), message: z.string(), hint: z.string().optional(), exitCode: z.number().int().min(1).max(255).optional() }),
  /** A container op's progress and its one result, as the guest sent them (text shown escaped on the host). */
  z.strictObject({ type: z.literal('op_event'), event: OpEvent }),
  z.strictObject({ type: z.literal('op_result'), result: OpResult }),
  z.strictObject({ type: z.literal('status'), status: StatusSchema }),
  z.strictObject({ type: z.literal('ok') }),
  /** :exit from inside this client's shell: leave, the VM stays. */
  z.strictObject({ type: z.literal('detach') }),
  /** :new: this session is being replaced; `reattach` tells the client that asked to start the new one. */
  z.strictObject({ type: z.literal('reset'), reattach: z.boolean() }),
]);
export type SupervisorMessage = z.infer<typeof SupervisorMessage>;
