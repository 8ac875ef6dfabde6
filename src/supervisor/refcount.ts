// The session's reference count and its grace timer: the VM stays up while a client is attached,
// and for `graceMs` after the last one leaves. Pure logic with injectable timers (unit-tested with
// fake ones).

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface RefCountOptions {
  /** Read at each scheduling: a reload may change it. */
  graceMs: () => number;
  onIdle: () => void;
  log?: (line: string) => void;
  timers?: Timers;
}

export class RefCount {
  private n = 0;
  private timer: unknown = null;
  private disarmed = false;
  private readonly timers: Timers;

  constructor(private o: RefCountOptions) {
    this.timers = o.timers ?? realTimers;
  }

  get count(): number {
    return this.n;
  }

  get idleScheduled(): boolean {
    return this.timer !== null;
  }

  acquire(): void {
    this.n++;
    if (this.timer !== null) {
      this.timers.clearTimeout(this.timer);
      this.timer = null;
      this.o.log?.('client arrived; shutdown cancelled');
    }
  }

  release(): void {
    if (this.n === 0) return;
    this.n--;
    if (this.n === 0) this.arm();
  }

  /** Start the grace timer if nobody is attached (also at start-up: the client that started us may have died). */
  arm(): void {
    if (this.n > 0 || this.timer !== null || this.disarmed) return;
    const ms = this.o.graceMs();
    if (!Number.isFinite(ms)) {
      // auto_shutdown_ms = "never": up until `vibebox stop`
      this.o.log?.('no clients; auto shutdown is never: staying up');
      return;
    }
    this.o.log?.(`no clients; shutting down in ${ms} ms unless one arrives`);
    this.timer = this.timers.setTimeout(() => {
      this.timer = null;
      this.o.onIdle();
    }, ms);
  }

  /** The session is stopping: never fire again. */
  disarm(): void {
    this.disarmed = true;
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
  }
}
