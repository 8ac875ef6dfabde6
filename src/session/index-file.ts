// The global session index (~/.vibebox/sessions.toml): pure parse, serialise and edits.
import TOML from '@iarna/toml';
import * as z from 'zod';
import { VibeboxError } from '../errors.js';
import { isSessionId } from '../paths.js';
import { stringifyToml } from './toml-write.js';
import { shown, shownQuoted } from '../../guest/shown.js';

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

/** An entry vibebox cannot read: skipped (with a warning), never dropped from the file. */
export interface BadEntry {
  /** 1-based position among the file's sessions. */
  n: number;
  /** 1-based line of its `[[session]]` header, when the file is written that way. */
  line: number | null;
  /** Its text from the header up to the next one: what a rewrite keeps as written (null: not splittable). */
  text: string | null;
  /** Its id as written, when it has a string one. */
  id: string | null;
  /** What is wrong with it. */
  why: string;
}

export interface ParsedIndex {
  entries: Index;
  bad: BadEntry[];
}

/** Our own note above a kept entry: dropped when the entry is re-kept, so notes never pile up. */
const KEPT_NOTE = '# vibebox cannot read the entry below';
const HEADER = /^[ \t]*\[\[[ \t]*session[ \t]*\]\][ \t]*(#.*)?$/;

/** The file's text split at its `[[session]]` headers (null when that does not give one piece per entry). */
function segments(text: string, count: number): { line: number; text: string }[] | null {
  const lines = text.split('\n');
  const starts = lines.flatMap((l, i) => (HEADER.test(l) ? [i] : []));
  if (starts.length !== count) return null;
  return starts.map((start, k) => {
    const piece = lines.slice(start, starts[k + 1] ?? lines.length);
    while (piece.length > 1 && (piece[piece.length - 1]!.trim() === '' || piece[piece.length - 1]!.startsWith(KEPT_NOTE))) piece.pop();
    return { line: start + 1, text: piece.join('\n') };
  });
}

const oneLine = (s: string): string => s.replace(/\s+/g, ' ').trim();

/**
 * Parse the index text, entry by entry: a bad entry is reported in `bad` and the others stay
 * usable. Throws E_INDEX_CORRUPT only when the file as a whole cannot be read (not TOML, or not a
 * list of sessions).
 */
export function parseIndexEntries(text: string): ParsedIndex {
  let raw: unknown;
  try {
    raw = TOML.parse(text);
  } catch (e) {
    const line = typeof (e as { line?: unknown }).line === 'number' ? ` at line ${(e as { line: number }).line + 1}` : '';
    throw new VibeboxError('E_INDEX_CORRUPT', `sessions.toml is not valid TOML${line}`);
  }
  const top = z.strictObject({ session: z.array(z.unknown()).default([]) }).safeParse(raw);
  if (!top.success) {
    const i = top.error.issues[0]!;
    throw new VibeboxError('E_INDEX_CORRUPT', `sessions.toml: ${i.path.join('.') || 'the file'}: ${oneLine(i.message)}`);
  }
  const items = top.data.session;
  const pieces = segments(text, items.length);
  const entries: Index = [];
  const bad: BadEntry[] = [];
  const ids = new Set<string>();
  items.forEach((item, k) => {
    const r = IndexEntrySchema.safeParse(item);
    let reason: string | null = null;
    if (!r.success) {
      const i = r.error.issues[0]!;
      reason = `${i.path.join('.') || 'entry'}: ${oneLine(i.message)}`;
    } else if (ids.has(r.data.id)) {
      reason = `session ${r.data.id} appears twice`;
    }
    if (reason !== null || !r.success) {
      const id = (item as { id?: unknown } | null)?.id;
      bad.push({ n: k + 1, line: pieces?.[k]?.line ?? null, text: pieces?.[k]?.text ?? null, id: typeof id === 'string' ? id : null, why: reason ?? 'unreadable' });
      return;
    }
    ids.add(r.data.id);
    entries.push(r.data);
  });
  return { entries, bad };
}

/** Parse the index text strictly; throws E_INDEX_CORRUPT at the first bad entry. */
export function parseIndex(text: string): Index {
  const { entries, bad } = parseIndexEntries(text);
  const b = bad[0];
  if (b) throw new VibeboxError('E_INDEX_CORRUPT', `sessions.toml: ${describeBad(b)}`);
  return entries;
}

/** Which entry and what is wrong, for a one-line message: `session 2 (line 7, id "…"): directory: …`. */
export function describeBad(b: BadEntry): string {
  const where = [...(b.line !== null ? [`line ${b.line}`] : []), ...(b.id !== null ? [`id ${shownQuoted(b.id.slice(0, 64))}`] : [])];
  return `session ${b.n}${where.length ? ` (${where.join(', ')})` : ''}: ${shown(b.why)}`;
}

export function serializeIndex(index: Index, kept: readonly BadEntry[] = []): string {
  // The TOML library writes the strings: a directory name may hold any byte but NUL, and control
  // characters (DEL, newlines) must be escaped the TOML way, which JSON.stringify does not do.
  const session = [...index].sort((a, b) => a.id.localeCompare(b.id)).map((s) => ({ id: s.id, directory: s.directory, last_active: s.last_active }));
  const body = session.length ? stringifyToml({ session }) : '';
  // Entries vibebox cannot read stay as the user wrote them, after the others: a rewrite never
  // loses one (they are still skipped, with a warning, until fixed).
  const tail = kept
    .filter((b) => b.text !== null)
    .map((b) => `\n${KEPT_NOTE} (${b.why}): kept as written; fix or remove it\n${b.text!.trimEnd()}\n`)
    .join('');
  return `# vibebox session index — managed by vibebox; edits are kept but must stay valid.\n\n${body}${tail}`;
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
