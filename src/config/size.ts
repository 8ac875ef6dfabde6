// Sizes in vibebox.toml: "2GiB", "512MiB", "20G", or a plain number of bytes.
const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024, kb: 1000, kib: 1024,
  m: 1024 ** 2, mb: 1000 ** 2, mib: 1024 ** 2,
  g: 1024 ** 3, gb: 1000 ** 3, gib: 1024 ** 3,
  t: 1024 ** 4, tb: 1000 ** 4, tib: 1024 ** 4,
};

/** Bytes, or null when the text is not a size. */
export function parseSize(text: string | number): number | null {
  if (typeof text === 'number') return Number.isSafeInteger(text) && text > 0 ? text : null;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  if (!m) return null;
  const unit = UNITS[(m[2] ?? '').toLowerCase()];
  if (unit === undefined) return null;
  const bytes = Math.round(Number(m[1]) * unit);
  return bytes > 0 && Number.isSafeInteger(bytes) ? bytes : null;
}

export function formatSize(bytes: number): string {
  for (const [u, f] of [['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]] as const) {
    if (bytes >= f && bytes % f === 0) return `${bytes / f}${u}`;
  }
  return String(bytes);
}

/** Node's timers hold at most 2^31-1 ms (about 24.8 days); a longer delay fires after 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * `auto_shutdown_ms` (vibebox.toml or VIBEBOX_AUTO_SHUTDOWN_MS): whole milliseconds up to
 * MAX_TIMER_MS, or "never" (Infinity: the VM stays up until `vibebox stop`). A string is the
 * error text.
 */
export function parseAutoShutdown(v: unknown): number | string {
  if (v === 'never') return Number.POSITIVE_INFINITY;
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) return `must be a whole number of milliseconds or "never", got ${JSON.stringify(v)}`;
  if (n > MAX_TIMER_MS) return `must be at most ${MAX_TIMER_MS} (about 24.8 days), got ${n}; write "never" to keep the VM up until \`vibebox stop\``;
  return n;
}

/** What a size in vibebox.toml may be: at least/most, and a multiple of `step` bytes. */
export interface SizeBounds {
  min: number;
  max: number;
  step: number;
}

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const TiB = 1024 ** 4;
// QEMU takes memory in whole MiB (it would drop the rest); below 256MiB the guest does not boot
// its services. 1TiB is far beyond a dev VM: a larger number is a typo.
export const VM_MEMORY: SizeBounds = { min: 256 * MiB, max: TiB, step: MiB };
// The image alone takes most of 1GiB; the disk is sparse, so the cap only catches typos.
export const VM_DISK: SizeBounds = { min: GiB, max: 16 * TiB, step: MiB };
// The container runtime refuses less than 6MiB.
export const CONTAINER_MEMORY: SizeBounds = { min: 6 * MiB, max: TiB, step: MiB };

/** Why `bytes` is out of `b` ("must be at least 256MiB"), or null. Fractions are fine when they
 *  come out whole ("1.5GiB"); "1.3GiB" does not. */
export function sizeProblem(bytes: number, b: SizeBounds): string | null {
  const show = (n: number) => (n % TiB === 0 ? `${n / TiB}TiB` : formatSize(n));
  if (bytes < b.min) return `must be at least ${show(b.min)}`;
  if (bytes > b.max) return `must be at most ${show(b.max)}`;
  if (bytes % b.step !== 0) return `must be a whole number of ${formatSize(b.step).replace(/^1/, '')}`;
  return null;
}
