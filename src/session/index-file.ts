// The global session index (~/.vibebox/sessions.toml): pure parse, serialise and edits.
import TOML from '@iarna/toml';
import * as z from 'zod';
import { VibeboxError } from '../errors.js';
import { isSessionId } from '../paths.js';
import { stringifyToml } from './toml-write.js';

/** An RFC 3339 time as vibebox writes it (a string), or a TOML datetime a person typed. */
export const TimeSchema = z.preprocess((v) => (v instanceof Date && !Number.isNaN(v.getTime()) ? v.toISOString() : v), z.string().datetime({ offset: true }));

export const IndexEntrySchema = z.strictObject({
  id: z.string().refine(isSessionId, 'must be a UUIDv7'),
  directory: z.string().regex(/^\//, 'must be an absolute path'),
  last_active: TimeSchema,
});
export const IndexSchema = z.strictObject({ session: z.array(IndexEntrySchema).default([]) });

export type IndexEntry = z.infer<typeof IndexEntrySchema>;
export type Index = IndexEntry[];

export function isUuidV7(s: string): boolean {
  return isSessionId(s);
}

/** Parse the index text; throws E_INDEX_CORRUPT (the caller keeps a backup). */
export function parseIndex(text: string): Index {
  let raw: unknown;
  try {
    raw = TOML.parse(text);
  } catch (e) {
    const line = typeof (e as { line?: unknown }).line === 'number' ? ` at line ${(e as { line: number }).line + 1}` : '';
    throw new VibeboxError('E_INDEX_CORRUPT', `sessions.toml is not valid TOML${line}`);
  }
  const r = IndexSchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new VibeboxError('E_INDEX_CORRUPT', `sessions.toml: ${i.path.join('.')}: ${i.message}`);
  }
  const ids = new Set<string>();
  for (const s of r.data.session) {
    if (ids.has(s.id)) throw new VibeboxError('E_INDEX_CORRUPT', `sessions.toml: session ${s.id} appears twice`);
    ids.add(s.id);
  }
  return r.data.session;
}

export function serializeIndex(index: Index): string {
  // The TOML library writes the strings: a directory name may hold any byte but NUL, and control
  // characters (DEL, newlines) must be escaped the TOML way, which JSON.stringify does not do.
  const session = [...index].sort((a, b) => a.id.localeCompare(b.id)).map((s) => ({ id: s.id, directory: s.directory, last_active: s.last_active }));
  const body = session.length ? stringifyToml({ session }) : '';
  return `# vibebox session index — managed by vibebox; edits are kept but must stay valid.\n\n${body}`;
}

/** Add or replace the entry for a directory (one directory has at most one session). */
export function upsert(index: Index, entry: IndexEntry): Index {
  return [...index.filter((s) => s.id !== entry.id && s.directory !== entry.directory), entry];
}

export function remove(index: Index, id: string): Index {
  return index.filter((s) => s.id !== id);
}

export function touch(index: Index, id: string, when: Date): Index {
  return index.map((s) => (s.id === id ? { ...s, last_active: when.toISOString() } : s));
}

/** Find a session by full id or a unique prefix (like git). Dashes in the prefix are optional. */
export function matchId(index: Index, prefix: string): IndexEntry {
  const p = prefix.trim().toLowerCase().replace(/-/g, '');
  if (p.length === 0 || !/^[0-9a-f]+$/.test(p)) {
    throw new VibeboxError('E_SESSION_UNKNOWN', `"${prefix}" is not a session id`, 'run `vibebox list` to see the ids');
  }
  const hits = index.filter((s) => s.id.replace(/-/g, '').startsWith(p));
  if (hits.length === 0) throw new VibeboxError('E_SESSION_UNKNOWN', `no session with id ${prefix}`, 'run `vibebox list` to see the ids');
  if (hits.length > 1) {
    throw new VibeboxError('E_SESSION_AMBIGUOUS', `session id ${prefix} is ambiguous: it matches ${hits.length} sessions`, 'type more characters of the id');
  }
  return hits[0]!;
}
