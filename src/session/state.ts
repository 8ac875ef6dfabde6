// A project's .vibebox/session.toml: id, created, the vibebox and guest protocol versions that
// created it, image. Deleting .vibebox/ deletes the session. A .vibebox/ is used only when the
// host's index (sessions.toml under VIBEBOX_HOME, which no project can write) knows its id for
// this very directory: a cloned repository can ship a .vibebox/ of its own.
import { lstatSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import TOML from '@iarna/toml';
import { v7 as uuidv7 } from 'uuid';
import * as z from 'zod';
import { VibeboxError, isErrno } from '../errors.js';
import { readUntrusted } from '../fs/read-untrusted.js';
import { PRIVATE_DIR, PRIVATE_FILE, tightenPrivateDir } from '../../qemu/private-file.js';
import { diskRecordFile, homePaths, isSessionId, projectPaths, vibeboxHome } from '../paths.js';
import { PROTOCOL_VERSION } from '../../guest/protocol.js';
import { isDigest } from '../../images/digest.js';
import { describeBad, TimeSchema, upsert } from './index-file.js';
import { presence, readIndexSync, unreadableEntries, updateIndex } from './index-store.js';
import { stringifyToml } from './toml-write.js';

declare const VIBEBOX_VERSION: string;
/** The version of this vibebox (set by the build; tests run from source). */
export const vibeboxVersion = (): string => (typeof VIBEBOX_VERSION === 'string' ? VIBEBOX_VERSION : '0.0.0-dev');

export const SessionFileSchema = z.strictObject({
  id: z.string().refine(isSessionId, 'must be a UUIDv7'),
  created: TimeSchema,
  /** Which vibebox created the session, and the guest protocol it spoke (absent in older files). */
  vibebox_version: z.string().min(1).max(64).optional(),
  guest_protocol: z.number().int().nonnegative().optional(),
  // Both become a path under images/: only the shapes the image store makes.
  image: z.strictObject({ name: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/), digest: z.string().refine(isDigest, 'must be an image digest') }).optional(),
});
export type SessionFile = z.infer<typeof SessionFileSchema>;

/** A path in a one-line message: JSON-quoted when it holds control characters. */
export function showPath(p: string): string {
  return /[\x00-\x1f\x7f]/.test(p) ? JSON.stringify(p) : p;
}

/** A path for a shell command line: '…', or bash's $'…' when it holds control characters. */
export function shellPath(p: string): string {
  if (!/[\x00-\x1f\x7f]/.test(p)) return `'${p.replace(/'/g, `'\\''`)}'`;
  return `$'${p.replace(/[\\']/g, (c) => `\\${c}`).replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)}'`;
}

/**
 * What to do about a .vibebox/ the index does not vouch for. `rm -r` only for one vibebox never
 * knew (a clone, a copy of a session that is still there): never for a disk the host has a trace
 * of (an index entry, readable or not, or a disk record), which a lost index entry would make
 * look foreign.
 */
function untrustedHint(project: string, id: string | null, home: string): string {
  const dir = projectPaths(project).stateDir;
  const index = readIndexSync(home);
  const unreadable = unreadableEntries(home);
  const fixIndex = unreadable.length ? `${homePaths(home).sessionsIndex} has an entry vibebox cannot read (${describeBad(unreadable[0]!)}): fix it, then retry` : null;
  if (id === null) {
    const mine = index.find((e) => e.directory === project);
    if (mine) return `the index has session ${mine.id} for this folder: restore its ${showPath(projectPaths(project).sessionFile)} (id = "${mine.id}")`;
    return fixIndex ?? `if it came with a clone or a copy, delete it to start a fresh session: rm -r ${shellPath(dir)}`;
  }
  const known = index.find((e) => e.id === id);
  if (known && presence(known) === 'missing') return `it looks moved from ${showPath(known.directory)}: run \`vibebox\` here to continue it (its disk is checked first)`;
  if (known) return `if it is a copy of that session, delete the copy to start a fresh session here: rm -r ${shellPath(dir)}`;
  if (fixIndex) return fixIndex;
  if (isSessionId(id) && existsSync(diskRecordFile(id, home))) return `vibebox made session ${id} on this machine but its index entry is gone: run \`vibebox\` here to take it back (its disk is checked first)`;
  return `if it came with a clone or a copy, delete it to start a fresh session: rm -r ${shellPath(dir)}`;
}

function untrusted(project: string, why: string, id: string | null = null, home: string = vibeboxHome()): VibeboxError {
  const dir = projectPaths(project).stateDir;
  let hint: string;
  try {
    hint = untrustedHint(project, id, home);
  } catch (e) {
    // An index vibebox cannot read cannot say whether it knew this folder: never suggest rm.
    if (!(e instanceof VibeboxError)) throw e;
    hint = `${e.message}; ${e.hint ?? 'fix it'}`;
  }
  return new VibeboxError('E_SESSION_UNTRUSTED', `${showPath(dir)} was not made by vibebox for this folder (${why}); vibebox will not use it`, hint);
}

/** What vibebox writes is a few hundred bytes. */
const MAX_SESSION_FILE_BYTES = 64 * 1024;

/**
 * The text of .vibebox/session.toml (null: none), read the way every file a project can write is
 * read (see readUntrusted: a FIFO or a link to /dev/zero there must not hang the host): anything
 * but a small regular file is a folder vibebox did not make.
 */
export function readSessionText(project: string): string | null {
  try {
    return readUntrusted(projectPaths(project).sessionFile, { maxBytes: MAX_SESSION_FILE_BYTES, what: 'session file' })?.text ?? null;
  } catch (e) {
    if (e instanceof VibeboxError) throw untrusted(project, 'its session.toml is not a small regular file');
    throw e;
  }
}

/**
 * session.toml as written, validated, without asking the index (null: no session.toml). Only for
 * code that then proves the folder is vibebox's by other means (adopt.ts).
 */
export function parseSessionFile(project: string): SessionFile | null {
  const p = projectPaths(project);
  const text = readSessionText(project);
  if (text === null) return null;
  try {
    return SessionFileSchema.parse(TOML.parse(text));
  } catch {
    throw new VibeboxError('E_CONFIG_INVALID', `${showPath(p.sessionFile)} is corrupted`, 'fix the file (id = "<session id>", created = "<time>"), or restore it from a backup');
  }
}

/**
 * The project's session, or null when it has none (no .vibebox/, or an empty one). Throws
 * E_SESSION_UNTRUSTED for a .vibebox/ the host's index does not know for this directory, and
 * touches nothing in it.
 */
export function readSessionFile(project: string, home: string = vibeboxHome()): SessionFile | null {
  const p = projectPaths(project);
  let st;
  try {
    st = lstatSync(p.stateDir);
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return null;
    throw e;
  }
  if (!st.isDirectory()) throw untrusted(project, st.isSymbolicLink() ? 'it is a symbolic link' : 'it is not a directory', null, home);
  let s: SessionFile | null;
  try {
    s = parseSessionFile(project);
  } catch (e) {
    // A broken session.toml of a folder the index knows is a corrupted session; any other is
    // one vibebox never wrote.
    if (e instanceof VibeboxError && e.code === 'E_CONFIG_INVALID') {
      const mine = readIndexSync(home).find((x) => x.directory === project);
      if (!mine) throw untrusted(project, 'its session.toml is not one vibebox wrote', null, home);
      // The index knew this folder's session: its disk is still good; the hint says how to mend the file.
      throw new VibeboxError('E_CONFIG_INVALID', e.message, `fix it: the index has session ${mine.id} for this folder (id = "${mine.id}"); the disk is untouched`);
    }
    throw e;
  }
  if (!s) {
    if (readdirSync(p.stateDir).length === 0) return null;
    throw untrusted(project, 'it holds files but no session.toml', null, home);
  }
  const known = readIndexSync(home).find((e) => e.id === s.id);
  if (!known) {
    // Its entry is there but unreadable: the index did know it; say which line to mend.
    const bad = unreadableEntries(home).find((b) => b.id === s.id);
    if (bad) throw new VibeboxError('E_INDEX_CORRUPT', `the index entry of this folder's session cannot be read: ${describeBad(bad)}`, `fix it in ${showPath(homePaths(home).sessionsIndex)}, then retry; nothing was changed`);
    throw untrusted(project, `its session ${s.id} is not in ${showPath(homePaths(home).sessionsIndex)}`, s.id, home);
  }
  if (known.directory !== project) throw untrusted(project, `its session ${s.id} belongs to ${showPath(known.directory)}`, s.id, home);
  return s;
}

export function writeSessionFile(project: string, s: SessionFile): void {
  const p = projectPaths(project);
  // Keys in a fixed order, undefined ones left out; TOML escaping by the library.
  const doc: TOML.JsonMap = { id: s.id, created: s.created };
  if (s.vibebox_version !== undefined) doc['vibebox_version'] = s.vibebox_version;
  if (s.guest_protocol !== undefined) doc['guest_protocol'] = s.guest_protocol;
  if (s.image) doc['image'] = { name: s.image.name, digest: s.image.digest };
  const tmp = `${p.sessionFile}.tmp`;
  rmSync(tmp, { force: true });
  writeFileSync(tmp, stringifyToml(doc), { flag: 'wx', mode: PRIVATE_FILE });
  renameSync(tmp, p.sessionFile);
}

/**
 * Create .vibebox/ with a fresh id and register it in the index (the index is what makes it
 * trusted). The caller holds the project lock.
 */
export async function createSessionDir(project: string, now = new Date(), home: string = vibeboxHome()): Promise<SessionFile> {
  const p = projectPaths(project);
  try {
    // 0700: the disk, the saved RAM and the logs inside are this user's alone.
    mkdirSync(p.stateDir, { mode: PRIVATE_DIR });
  } catch (e) {
    if (!isErrno(e, 'EEXIST')) throw e;
    // Only an empty directory is taken over: never write into files vibebox did not make.
    if (!lstatSync(p.stateDir).isDirectory() || readdirSync(p.stateDir).length > 0) throw untrusted(project, 'it holds files but no session.toml', null, home);
  }
  tightenPrivateDir(p.stateDir);
  // Never committed by accident.
  writeFileSync(p.gitignore, '*\n', { flag: 'wx', mode: PRIVATE_FILE });
  const s: SessionFile = { id: uuidv7(), created: now.toISOString(), vibebox_version: vibeboxVersion(), guest_protocol: PROTOCOL_VERSION };
  writeSessionFile(project, s);
  await updateIndex((idx) => upsert(idx, { id: s.id, directory: project, last_active: now.toISOString() }), home);
  return s;
}

export function removeSessionDir(project: string): void {
  const p = projectPaths(project);
  if (existsSync(p.stateDir)) rmSync(p.stateDir, { recursive: true, force: true });
}
