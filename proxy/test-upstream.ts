/**
 * The test-only upstream override: vibebox's own tests play a model provider with a TLS server on
 * host loopback (the real one is out of reach there), and the names it plays then lead to
 * 127.0.0.1:<port> past the loopback wall, for those names only.
 *
 * Only the environment of the host process turns it on, and only three settings together:
 * NODE_ENV=test, VIBEBOX_TEST_UPSTREAM=1 and a VIBEBOX_HOME inside the OS temp dir (a test's
 * throwaway home, never a user's ~/.vibebox). None of them comes from a file a project or the
 * guest writes: vibebox.toml is parsed into a strict schema of its own settings, ~/.vibebox/.env
 * goes to runs and to this proxy's key table, never into process.env. Set outside a test, the
 * override is refused with an error rather than ignored (docs/architecture.md, Keys).
 */
import { realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { sep } from 'node:path';

export const TEST_UPSTREAMS_VAR = 'VIBEBOX_TEST_UPSTREAM_PORTS';
export const TEST_UPSTREAM_CA_VAR = 'VIBEBOX_TEST_UPSTREAM_CA';

function inside(dir: string, parent: string): boolean {
  try {
    const d = realpathSync(dir);
    const p = realpathSync(parent);
    return d !== p && d.startsWith(p.endsWith(sep) ? p : p + sep);
  } catch {
    return false;
  }
}

/** Whether this process runs as a test of vibebox itself (see above). */
export function testOverrideAllowed(env: NodeJS.ProcessEnv = process.env): boolean {
  const home = env['VIBEBOX_HOME'];
  return env['NODE_ENV'] === 'test' && env['VIBEBOX_TEST_UPSTREAM'] === '1' && home !== undefined && home !== '' && inside(home, tmpdir());
}

/** `host=port,host=port` (pure); null when a pair is malformed. */
export function parseTestUpstreams(text: string): Record<string, number> | null {
  const out: Record<string, number> = {};
  for (const pair of text.split(',')) {
    const m = /^([a-z0-9.-]+)=(\d{1,5})$/.exec(pair.trim());
    if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) return null;
    out[m[1]!] = Number(m[2]);
  }
  return out;
}

export class TestOverrideRefused extends Error {
  readonly code = 'E_TEST_ONLY';
  constructor() {
    super(`${TEST_UPSTREAMS_VAR} is for vibebox's own tests only (it needs NODE_ENV=test, VIBEBOX_TEST_UPSTREAM=1 and a VIBEBOX_HOME in the temp dir)`);
  }
}
