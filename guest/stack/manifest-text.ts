// YAML text → a validated manifest. The only module of the stack that knows YAML, so the rules in
// manifest.ts stay testable on plain values. The parser is strict: YAML 1.2 core schema (no
// `yes`-is-true surprises), duplicate keys and multiple documents rejected, aliases capped.
import { LineCounter, parseAllDocuments } from 'yaml';
import { DEFAULT_POLICY, validateManifest, type ManifestError, type StackPolicy, type ValidationResult } from './manifest.js';

/** A manifest is a handful of services: anything bigger is a mistake or an attack on the parser. */
export const MAX_MANIFEST_BYTES = 64 * 1024;

/** A valid manifest nests 6 levels at most; the validator walks the value recursively. */
const MAX_DEPTH = 16;
const MAX_YAML_ERRORS = 10;

function depth(root: unknown): number {
  let max = 0;
  const stack: [unknown, number][] = [[root, 0]];
  while (stack.length > 0) {
    const [v, d] = stack.pop() as [unknown, number];
    max = Math.max(max, d);
    if (d > MAX_DEPTH) break;
    if (v !== null && typeof v === 'object') for (const x of Object.values(v)) stack.push([x, d + 1]);
  }
  return max;
}

const HINT = 'write the manifest as YAML: version: 1, then services: with one map per service';

export type ParseResult = { ok: true; value: unknown } | { ok: false; errors: ManifestError[] };

export function parseManifestText(text: string): ParseResult {
  if (Buffer.byteLength(text, 'utf8') > MAX_MANIFEST_BYTES) {
    return { ok: false, errors: [{ code: 'manifest_too_large', path: '', message: `the manifest is larger than ${MAX_MANIFEST_BYTES / 1024} KiB`, hint_for_agent: 'keep the manifest to its services; it does not carry files' }] };
  }
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { schema: 'core', uniqueKeys: true, prettyErrors: false, lineCounter });
  const list = Array.isArray(docs) ? docs : [];
  const errors: ManifestError[] = [];
  const where = (offset: number | undefined) => {
    if (offset === undefined) return '';
    const { line, col } = lineCounter.linePos(offset);
    return ` at line ${line}, column ${col}`;
  };
  if (list.length > 1) {
    errors.push({ code: 'yaml_invalid', path: '', message: `the manifest has ${list.length} YAML documents${where(list[1]?.range[0])}`, hint_for_agent: 'send one document: remove the --- separators' });
  }
  for (const doc of list) {
    for (const e of [...doc.errors, ...doc.warnings]) {
      errors.push({ code: 'yaml_invalid', path: '', message: `YAML: ${e.message.split('\n')[0]}${where(e.pos[0])}`, hint_for_agent: HINT });
    }
  }
  // A pathological text yields one error per token; the first few say what is wrong.
  if (errors.length > MAX_YAML_ERRORS) errors.splice(MAX_YAML_ERRORS);
  if (errors.length > 0) return { ok: false, errors };
  const doc = list[0];
  if (doc === undefined) return { ok: false, errors: [{ code: 'yaml_invalid', path: '', message: 'the manifest is empty', hint_for_agent: HINT }] };
  try {
    const value = doc.toJS({ maxAliasCount: 100 }) as unknown;
    if (depth(value) > MAX_DEPTH) {
      return { ok: false, errors: [{ code: 'yaml_invalid', path: '', message: `the manifest nests deeper than ${MAX_DEPTH} levels`, hint_for_agent: HINT }] };
    }
    return { ok: true, value };
  } catch (e) {
    return { ok: false, errors: [{ code: 'yaml_invalid', path: '', message: `YAML: ${(e as Error).message.split('\n')[0]}`, hint_for_agent: HINT }] };
  }
}

export function validateManifestText(text: string, policy: StackPolicy = DEFAULT_POLICY): ValidationResult {
  const parsed = parseManifestText(text);
  return parsed.ok ? validateManifest(parsed.value, policy) : parsed;
}
