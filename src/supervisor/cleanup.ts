// The supervisor's stop as one ordered list of named steps (like Lima's host agent's cleanup
// funcs): registered as the parts are set up, run once, in reverse order of registration. A step
// that throws or overruns its deadline is logged and the next step still runs, so one stuck part
// never leaves the others running (docs/architecture.md, Processes).

export interface CleanupStepOptions {
  /** How long the step may take before the next one runs anyway; null: it is bounded by its own deadlines. */
  deadlineMs?: number | null;
}

interface Step<C> {
  name: string;
  run: (ctx: C) => unknown;
  deadlineMs: number | null;
}

export const CLEANUP_DEADLINE_MS = 30_000;

export class Cleanup<C> {
  private readonly steps: Step<C>[] = [];
  private running: Promise<void> | null = null;

  constructor(private readonly log: (line: string) => void) {}

  /** A step runs before every step added earlier. */
  add(name: string, run: (ctx: C) => unknown, o: CleanupStepOptions = {}): void {
    this.steps.push({ name, run, deadlineMs: o.deadlineMs === undefined ? CLEANUP_DEADLINE_MS : o.deadlineMs });
  }

  get started(): boolean {
    return this.running !== null;
  }

  /** Run every step once, the last added first; later calls get the same promise. */
  run(ctx: C): Promise<void> {
    this.running ??= this.runAll(ctx);
    return this.running;
  }

  private async runAll(ctx: C): Promise<void> {
    // The first step runs synchronously, inside run(): the caller sees its effect at once.
    for (const s of [...this.steps].reverse()) {
      try {
        const r = s.run(ctx);
        if (!(r instanceof Promise)) continue;
        if (s.deadlineMs === null) await r;
        else if (!(await finishesWithin(r, s.deadlineMs))) this.log(`stop step "${s.name}" did not finish within ${s.deadlineMs} ms; going on`);
      } catch (e) {
        this.log(`stop step "${s.name}" failed: ${(e as Error).message}`);
      }
    }
  }
}

/** true when `p` settles within `ms` (a rejection is thrown), false when the deadline comes first. */
async function finishesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<false>((r) => (timer = setTimeout(() => r(false), ms)));
  try {
    return await Promise.race([p.then(() => true as const), deadline]);
  } finally {
    clearTimeout(timer);
  }
}
