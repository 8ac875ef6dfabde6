// A small validator for the JSON Schema subset that zod's toJSONSchema emits for our protocol.
// The client's hot path validates supervisor messages with it against a schema generated from the
// zod definition at build time, so the protocol stays defined once (in zod) while the zod
// library stays off the warm exec path (~30 ms of module loading).

export interface JsonSchema {
  type?: string | string[];
  const?: unknown;
  enum?: unknown[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean;
  oneOf?: JsonSchema[];
  anyOf?: JsonSchema[];
  items?: JsonSchema;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  pattern?: string;
  $schema?: string;
}

const SUPPORTED = new Set(['type', 'const', 'enum', 'properties', 'required', 'additionalProperties', 'oneOf', 'anyOf', 'items', 'minimum', 'maximum', 'minLength', 'maxLength', 'minItems', 'maxItems', 'pattern', '$schema']);

/** Keywords the checker does not understand (it must refuse to generate a lax validator). */
export function unsupportedKeywords(s: JsonSchema, at = '#'): string[] {
  const out: string[] = [];
  for (const k of Object.keys(s)) if (!SUPPORTED.has(k)) out.push(`${at}/${k}`);
  for (const [k, v] of Object.entries(s.properties ?? {})) out.push(...unsupportedKeywords(v, `${at}/properties/${k}`));
  for (const [i, v] of [...(s.oneOf ?? []), ...(s.anyOf ?? [])].entries()) out.push(...unsupportedKeywords(v, `${at}/of/${i}`));
  if (s.items) out.push(...unsupportedKeywords(s.items, `${at}/items`));
  return out;
}

function typeOk(t: string, v: unknown): boolean {
  switch (t) {
    case 'string': return typeof v === 'string';
    case 'number': return typeof v === 'number' && Number.isFinite(v);
    case 'integer': return typeof v === 'number' && Number.isInteger(v);
    case 'boolean': return typeof v === 'boolean';
    case 'null': return v === null;
    case 'array': return Array.isArray(v);
    case 'object': return typeof v === 'object' && v !== null && !Array.isArray(v);
    default: return false;
  }
}

export function conforms(s: JsonSchema, v: unknown): boolean {
  if (s.type !== undefined && !(Array.isArray(s.type) ? s.type : [s.type]).some((t) => typeOk(t, v))) return false;
  if ('const' in s && v !== s.const) return false;
  if (s.enum && !s.enum.includes(v)) return false;
  if (s.oneOf && s.oneOf.filter((x) => conforms(x, v)).length !== 1) return false;
  if (s.anyOf && !s.anyOf.some((x) => conforms(x, v))) return false;
  if (typeof v === 'number') {
    if (s.minimum !== undefined && v < s.minimum) return false;
    if (s.maximum !== undefined && v > s.maximum) return false;
  }
  if (typeof v === 'string') {
    if (s.minLength !== undefined && v.length < s.minLength) return false;
    if (s.maxLength !== undefined && v.length > s.maxLength) return false;
    if (s.pattern !== undefined && !new RegExp(s.pattern, 'u').test(v)) return false;
  }
  if (Array.isArray(v)) {
    if (s.minItems !== undefined && v.length < s.minItems) return false;
    if (s.maxItems !== undefined && v.length > s.maxItems) return false;
    if (s.items && !v.every((x) => conforms(s.items!, x))) return false;
  }
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    for (const r of s.required ?? []) if (!(r in o)) return false;
    for (const [k, x] of Object.entries(o)) {
      const p = s.properties?.[k];
      if (p) {
        if (!conforms(p, x)) return false;
      } else if (s.additionalProperties === false) return false;
    }
  }
  return true;
}
