// A project's .vibebox/session.toml: id, created, image. Deleting .vibebox/ deletes the session.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import TOML from '@iarna/toml';
import { v7 as uuidv7 } from 'uuid';
import * as z from 'zod';
import { VibeboxError, isErrno } from '../errors.js';
import { projectPaths } from '../paths.js';

export const SessionFileSchema = z.strictObject({
  id: z.string().min(1),
  created: z.string().datetime({ offset: true }),
  image: z.strictObject({ name: z.string(), digest: z.string() }).optional(),
});
export type SessionFile = z.infer<typeof SessionFileSchema>;

export function readSessionFile(project: string): SessionFile | null {
  const p = projectPaths(project);
  let text: string;
  try {
    text = readFileSync(p.sessionFile, 'utf8');
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return null;
    throw e;
  }
  try {
    return SessionFileSchema.parse(TOML.parse(text));
  } catch {
    throw new VibeboxError('E_CONFIG_INVALID', `${p.sessionFile} is corrupted`, `delete ${p.stateDir} to start a fresh session (its disk is lost), or fix the file`);
  }
}

export function writeSessionFile(project: string, s: SessionFile): void {
  const p = projectPaths(project);
  const lines = [`id = ${JSON.stringify(s.id)}`, `created = ${JSON.stringify(s.created)}`];
  if (s.image) lines.push('', '[image]', `name = ${JSON.stringify(s.image.name)}`, `digest = ${JSON.stringify(s.image.digest)}`);
  const tmp = `${p.sessionFile}.tmp`;
  writeFileSync(tmp, lines.join('\n') + '\n');
  renameSync(tmp, p.sessionFile);
}

/** Create .vibebox/ with a fresh id. The caller holds the project lock. */
export function createSessionDir(project: string, now = new Date()): SessionFile {
  const p = projectPaths(project);
  mkdirSync(p.stateDir, { recursive: true });
  // Never committed by accident.
  writeFileSync(p.gitignore, '*\n');
  const s: SessionFile = { id: uuidv7(), created: now.toISOString() };
  writeSessionFile(project, s);
  return s;
}

export function removeSessionDir(project: string): void {
  const p = projectPaths(project);
  if (existsSync(p.stateDir)) rmSync(p.stateDir, { recursive: true, force: true });
}
