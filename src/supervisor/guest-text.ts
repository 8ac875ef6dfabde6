// Text the guest wrote (agent log frames, error messages, its console) is untrusted: before it
// reaches a log file or a terminal, escape sequences and control characters go, lengths are
// capped and the rate of log lines is limited.

// CSI/OSC/other ESC sequences first (so their parameters do not remain as text), then any other
// C0 control (except tab, and newline where lines are kept), DEL and C1 controls.
const ESCAPES = /\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_]|.?)/g;
const CONTROLS_ONE_LINE = /[\x00-\x08\x0a-\x1f\x7f-\x9f]/g;
const CONTROLS_KEEP_NL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/g;

/** One line of guest text, safe for a log or a terminal. */
export function cleanLine(s: string, max = 2000): string {
  const c = s.replace(ESCAPES, '').replace(CONTROLS_ONE_LINE, '?');
  return c.length > max ? `${c.slice(0, max)}… (${c.length - max} more characters)` : c;
}

/** A block of guest text whose newlines stay (a log file's contents); carriage returns go. */
export function cleanText(s: string): string {
  return s.replace(ESCAPES, '').replace(/\r/g, '').replace(CONTROLS_KEEP_NL, '?');
}

/**
 * Guest text arriving in chunks (the serial console): cleaned a whole line at a time, so an
 * escape sequence split across two chunks cannot leave its parameters behind as text. A line
 * longer than `maxLine` is cleaned and passed on in pieces.
 */
export class CleanLines {
  private rest = '';
  constructor(private maxLine = 8192) {}
  push(chunk: string): string {
    const text = this.rest + chunk;
    const nl = text.lastIndexOf('\n');
    if (nl < 0) {
      this.rest = text;
      if (this.rest.length <= this.maxLine) return '';
      this.rest = '';
      return cleanText(text);
    }
    this.rest = text.slice(nl + 1);
    return cleanText(text.slice(0, nl + 1));
  }
  /** What is left at the end (a last line without a newline). */
  flush(): string {
    const r = this.rest;
    this.rest = '';
    return cleanText(r);
  }
}

/** Token bucket: `burst` lines at once, then `perSecond`; counts what it dropped. */
export class RateLimit {
  private tokens: number;
  private last: number;
  dropped = 0;
  constructor(
    private perSecond: number,
    private burst: number,
    private now: () => number = Date.now,
  ) {
    this.tokens = burst;
    this.last = now();
  }

  take(): boolean {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) / 1000) * this.perSecond);
    this.last = t;
    if (this.tokens >= 1) {
      this.tokens--;
      return true;
    }
    this.dropped++;
    return false;
  }

  /** Dropped since the last call (to report once allowed again). */
  takeDropped(): number {
    const d = this.dropped;
    this.dropped = 0;
    return d;
  }
}

/** The agent's `log` frames into the supervisor's log: cleaned, capped at `maxChars`, rate-limited. */
export class GuestLog {
  private readonly limit: RateLimit;
  constructor(
    private sink: (line: string) => void,
    o: { perSecond?: number; burst?: number; maxChars?: number; now?: () => number } = {},
  ) {
    this.limit = new RateLimit(o.perSecond ?? 20, o.burst ?? 200, o.now);
    this.maxChars = o.maxChars ?? 1000;
  }
  private readonly maxChars: number;

  frame(level: string, message: string): void {
    if (!this.limit.take()) return;
    const dropped = this.limit.takeDropped();
    if (dropped) this.sink(`agent: ${dropped} log lines dropped (rate limit)`);
    this.sink(`agent ${cleanLine(level, 8)}: ${cleanLine(message, this.maxChars)}`);
  }
}
