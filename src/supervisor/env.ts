// Environment knobs of the supervisor, parsed strictly: a value that is not a number is bad input
// (one line, exit 2), never a silent NaN that times out at once.
import { readFileSync } from 'node:fs';
import { VibeboxError } from '../errors.js';
import { parseTestUpstreams, TEST_UPSTREAM_CA_VAR, TEST_UPSTREAMS_VAR, TestOverrideRefused, testOverrideAllowed } from '../../proxy/test-upstream.js';

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

/**
 * The proxy's test-only upstream override (proxy/test-upstream.ts): the fake provider's names and
 * ports, and the test CA its certificates chain to. Absent: undefined. Set outside a test run of
 * vibebox itself: refused (bad input), never quietly ignored nor quietly used.
 */
export function testUpstreams(env: NodeJS.ProcessEnv = process.env): { ports: Record<string, number>; ca: string | undefined } | undefined {
  const raw = env[TEST_UPSTREAMS_VAR];
  if (raw === undefined || raw === '') return undefined;
  if (!testOverrideAllowed(env)) throw new VibeboxError('E_USAGE', new TestOverrideRefused().message, `unset ${TEST_UPSTREAMS_VAR}`);
  const ports = parseTestUpstreams(raw);
  if (ports === null) throw new VibeboxError('E_USAGE', `${TEST_UPSTREAMS_VAR} must be host=port[,host=port…]`, `fix or unset ${TEST_UPSTREAMS_VAR}`);
  const caFile = env[TEST_UPSTREAM_CA_VAR];
  return { ports, ca: caFile ? readFileSync(caFile, 'utf8') : undefined };
}

/** Every knob, checked at once by the client before it spawns a supervisor. */
export function checkEnv(env: NodeJS.ProcessEnv = process.env): void {
  bootTimeoutMs(env);
  testUpstreams(env);
}
