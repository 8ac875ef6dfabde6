// The storage policy DSL and its resolution: pure logic, no I/O.
// rule.* builds rules, composite() combines them; rules are tried in order and the first whose
// size bounds admit the file wins. `below` is exclusive (size < below), `above` is exclusive
// (size > above), so `inline({below: '1MB'})` then `localServer()` sends exactly 1 MiB to the server.
import { KitError } from '../errors.js';
import { StoragePolicy, type SizeSpec, type StorageRule } from '../kit-protocol.js';

const UNITS: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 };

export function parseSize(s: SizeSpec): number {
  if (typeof s === 'number') return s;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB)\s*$/i.exec(s);
  if (!m) throw new KitError('E_POLICY_INVALID', `bad size "${s}" (use e.g. 512B, 256KB, 1MB, 2GB)`);
  return Math.floor(Number(m[1]) * (UNITS[m[2]!.toUpperCase()] ?? 1));
}

const DUR: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
/** Duration in milliseconds; a bare number means seconds. */
export function parseDuration(s: number | string): number {
  if (typeof s === 'number') return s * 1000;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/.exec(s);
  if (!m) throw new KitError('E_POLICY_INVALID', `bad duration "${s}" (use e.g. 30s, 15m, 1h, 7d)`);
  return Math.floor(Number(m[1]) * (DUR[m[2]!] ?? 1));
}

type Bounds = { below?: SizeSpec; above?: SizeSpec; always?: boolean };
export const rule = {
  inline: (b: Bounds = {}): StorageRule => ({ kind: 'inline', ...b }),
  url: (b: Bounds = {}): StorageRule => ({ kind: 'url', ...b }),
  localServer: (o: Bounds & { ttl?: number | string } = {}): StorageRule => ({ kind: 'localServer', ...o }),
  s3: (o: Bounds & { bucket: string; region?: string; prefix?: string }): StorageRule => ({ kind: 's3', ...o }),
};
export function composite(rules: StorageRule[]): StoragePolicy {
  return { rules };
}

/** Default policies: url then inline for inputs; inline under 1 MB then localServer (1 h) for outputs. */
export const DEFAULT_INPUTS = composite([rule.url(), rule.inline()]);
export const DEFAULT_OUTPUTS = composite([rule.inline({ below: '1MB' }), rule.localServer({ ttl: '1h' })]);

export function ruleMatches(r: StorageRule, size: number): boolean {
  if (r.below !== undefined && !(size < parseSize(r.below))) return false;
  if (r.above !== undefined && !(size > parseSize(r.above))) return false;
  return true;
}

export function isTerminal(r: StorageRule): boolean {
  return r.always === true || (r.below === undefined && r.above === undefined);
}

/** First matching rule, or undefined (validation makes that impossible for a validated policy). */
export function pickRule(policy: StoragePolicy, size: number): StorageRule | undefined {
  return policy.rules.find((r) => ruleMatches(r, size));
}

export interface AdapterInfo {
  writable: boolean;
}

/**
 * Boot-time check of an outputs policy against the adapter registry. Throws one KitError naming
 * every problem, so a misconfigured kit fails before it listens rather than at the first big file.
 */
export function validateOutputsPolicy(input: unknown, registry: Readonly<Record<string, AdapterInfo>>): StoragePolicy {
  const parsed = StoragePolicy.safeParse(input);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw new KitError('E_POLICY_INVALID', `outputs policy: ${i ? `${i.path.join('.')}: ${i.message}` : 'invalid'}`);
  }
  const policy = parsed.data;
  const problems: string[] = [];
  policy.rules.forEach((r, i) => {
    try {
      if (r.below !== undefined) parseSize(r.below);
      if (r.above !== undefined) parseSize(r.above);
      if (r.kind === 'localServer' && r.ttl !== undefined) parseDuration(r.ttl);
    } catch (e) {
      problems.push(`rule ${i} (${r.kind}): ${(e as Error).message}`);
    }
    if (r.kind === 'url') problems.push(`rule ${i}: the url adapter is read-only and cannot store outputs`);
    else if (!registry[r.kind]) problems.push(`rule ${i}: no "${r.kind}" adapter is registered`);
    else if (!registry[r.kind]!.writable) problems.push(`rule ${i}: the "${r.kind}" adapter is read-only`);
  });
  if (!policy.rules.some(isTerminal))
    problems.push('no terminal rule (add one without below/above, or with always: true, so every size has a home)');
  if (problems.length) throw new KitError('E_POLICY_INVALID', `outputs policy: ${problems.join('; ')}`);
  return policy;
}

/** Inputs policy: which FileRef kinds a prompt may carry. Every rule must name a registered adapter. */
export function validateInputsPolicy(input: unknown, registry: Readonly<Record<string, AdapterInfo>>): StoragePolicy {
  const parsed = StoragePolicy.safeParse(input);
  if (!parsed.success) throw new KitError('E_POLICY_INVALID', `inputs policy: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  const missing = parsed.data.rules.filter((r) => !registry[r.kind]).map((r) => r.kind);
  if (missing.length) throw new KitError('E_POLICY_INVALID', `inputs policy: no adapter registered for ${missing.join(', ')}`);
  return parsed.data;
}

/** The adapter name a FileRef kind is read through. */
export function adapterForRef(kind: 'inline' | 'url' | 'server' | 's3'): StorageRule['kind'] {
  return kind === 'server' ? 'localServer' : kind;
}
