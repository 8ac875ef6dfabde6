// The session's stop, one ordered list (cleanup.ts): agent shutdown → ACPI power-down → kill (the
// driver's steps), or a suspend; then every part closed; then the session reset or its index
// entry touched; then the `stopped` event that ends the supervisor.
import { rmSync } from 'node:fs';
import type { VmDriver } from '../../qemu/driver.js';
import { carryGrant } from '../approval/store.js';
import { removeSession } from '../session/remove.js';
import { Cleanup, type CleanupStepOptions } from './cleanup.js';
import type { ClientsHub } from './clients-hub.js';
import { eventsFile, type EventWriter } from './events.js';
import type { RefCount } from './refcount.js';
import type { Session } from './session.js';

export interface StopContext {
  reason: string;
  /** Delete the session after the stop (`:new`). */
  resetAfter: boolean;
  /** Save the VM for a resume instead of shutting it down. */
  suspend: boolean;
  /** The session ran when the stop began: only then is there a VM worth saving. */
  wasRunning: boolean;
  /** The VM ended by itself (or was saved): the disk needs no check at the next start. */
  clean: boolean;
}

export type StopFn = (reason: string, resetAfter?: boolean, suspend?: boolean) => Promise<void>;

export interface StopDeps {
  session: Session;
  driver: VmDriver;
  hub: Pick<ClientsHub, 'closeAll' | 'close'>;
  refs: Pick<RefCount, 'disarm'>;
  events: Pick<EventWriter, 'emit'>;
  /** Save the VM; false: shut it down instead. */
  suspendVm(): Promise<boolean>;
  touchIndex(force?: boolean): Promise<unknown>;
  /** The timer that keeps last_active fresh while clients are attached. */
  activeTimer: NodeJS.Timeout;
}

type StepList = [name: string, run: (ctx: StopContext) => unknown, o?: CleanupStepOptions][];

/** The stop steps, run top to bottom (added last-first: a part added later stops before them). */
export function stopSteps(d: StopDeps): Cleanup<StopContext> {
  const s = d.session;
  const { driver, hub, events } = d;
  const log = s.log;
  const steps: StepList = [
    [
      'mark stopping',
      (ctx) => {
        s.state = 'stopping';
        d.refs.disarm();
        log(`stopping: ${ctx.reason}`);
        s.readyReject(new Error(`the session stopped (${ctx.reason})`));
      },
    ],
    [
      'stop the VM',
      async (ctx) => {
        // A saved state was used up (or dropped) when this VM started; a suspend writes a new one.
        // A start-up that failed before that keeps it for the next start.
        const suspended = ctx.suspend && ctx.wasRunning && (await d.suspendVm());
        const { clean } = suspended ? { clean: true } : await driver.stop({ askGuest: () => s.agent?.send({ type: 'shutdown' }) });
        ctx.clean = clean;
      },
      // Bounded by its own deadlines (the guest's 60 s to unmount, the driver's steps).
      { deadlineMs: null },
    ],
    [
      'dirty marker',
      (ctx) => {
        if (ctx.clean) rmSync(s.dirtyMarker, { force: true });
      },
    ],
    ['tell clients', () => hub.closeAll({ type: 'error', code: 'E_SUPERVISOR', message: 'the session stopped' })],
    ['driver helpers', () => driver.close()],
    ['agent channel', () => s.agent?.close()],
    ['agent socket', () => s.agentServer?.close()],
    ['clients socket', () => hub.close()],
    ['egress proxy', () => s.proxy?.close().catch(() => undefined)],
    ['index timer', () => clearInterval(d.activeTimer)],
    ['run directory', () => rmSync(s.run.dir, { recursive: true, force: true })],
    [
      'reset or touch the index',
      async (ctx) => {
        if (ctx.resetAfter) {
          carryGrant(s.project, s.id);
          await removeSession(s.project, s.id).catch((e: Error) => log(`reset failed: ${e.message}`));
          rmSync(eventsFile(s.id), { force: true });
        } else await d.touchIndex(true);
      },
      // Deleting the disk must finish before the supervisor exits.
      { deadlineMs: null },
    ],
    [
      'stopped',
      () => {
        log('stopped');
        events.emit('stopped');
        s.finished();
      },
    ],
  ];
  const cleanup = new Cleanup<StopContext>(log);
  for (const [name, run, o] of steps.reverse()) cleanup.add(name, run, o);
  return cleanup;
}

/** stop(): runs the steps once; a second call waits for the first. */
export function stopper(s: Session, steps: Cleanup<StopContext>): StopFn {
  return (reason, resetAfter = false, suspend = false) => {
    if (s.stopping) return s.stopping;
    const wasRunning = s.state === 'running';
    s.stopping = steps.run({ reason, resetAfter, suspend, wasRunning, clean: false });
    return s.stopping;
  };
}
