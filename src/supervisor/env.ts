// Environment knobs of the supervisor, parsed strictly: a value that is not a number is bad input
// (one line, exit 2), never a silent NaN that times out at once.
import { VibeboxError } from '../errors.js';

function envMs(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw.trim()) || Number(raw) <= 0) {
    throw new VibeboxError('E_USAGE', `${name}=${JSON.stringify(raw).slice(1, -1).slice(0, 40)} is not a number of milliseconds`, `set it to a whole number such as ${fallback}, or unset it`);
  }
  return Number(raw);
}

// A boot takes ~10 s under TCG and ~1 s under KVM; two minutes means it is not coming.
export const bootTimeoutMs = (env: NodeJS.ProcessEnv = process.env): number => envMs(env, 'VIBEBOX_BOOT_TIMEOUT_MS', 120_000);

/** Every knob, checked at once by the client before it spawns a supervisor. */
export function checkEnv(env: NodeJS.ProcessEnv = process.env): void {
  bootTimeoutMs(env);
}
