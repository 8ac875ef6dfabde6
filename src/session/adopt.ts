// A project folder moved with `mv` (same file system) keeps its .vibebox/disk.qcow2 as the same
// file: same device, inode and birth time. The host's record of the disk it created (under
// VIBEBOX_HOME) proves that vibebox made this folder, so the session continues under its new
// directory. A clone or a `cp -r` copy has a different file and stays refused.
import { dirname } from 'node:path';
import { findImage } from '../../images/build.js';
import { readRecord, verifyOverlay, writeRecord } from '../../qemu/disk.js';
import { readGrant, writeGrant } from '../approval/store.js';
import { WORKSPACE } from '../config/load.js';
import { diskRecordFile, projectPaths, vibeboxHome } from '../paths.js';
import { upsert, type IndexEntry } from './index-file.js';
import { presence, readIndexSync, updateIndex } from './index-store.js';
import { parseSessionFile, type SessionFile } from './state.js';

/** The session of a folder vibebox made and the user moved here, now indexed; else null. */
export async function adoptMovedSession(project: string, home: string = vibeboxHome()): Promise<SessionFile | null> {
  let s: SessionFile | null;
  try {
    s = parseSessionFile(project);
  } catch {
    return null;
  }
  if (!s?.image) return null;
  // Still indexed for a folder that is there: this is a copy of it, never a move. An entry whose
  // directory is missing is what a move leaves behind.
  const here = (e: IndexEntry): boolean => e.id === s.id && presence(e) !== 'missing';
  if (readIndexSync(home).some(here)) return null;
  const image = await findImage(s.image.name, s.image.digest, home);
  if (!image) return null;
  try {
    if ((await verifyOverlay({ disk: projectPaths(project).disk, backing: image.rootfs, recordFile: diskRecordFile(s.id, home) })) !== 'recorded') return null;
  } catch {
    return null;
  }
  const session = s;
  // The approved /workspace mount was the project at its old place: it is the project here (what
  // a fresh session here would get without asking); any other mount keeps its approval as it was.
  const recordFile = diskRecordFile(s.id, home);
  const rec = readRecord(recordFile);
  const grant = readGrant(s.id);
  if (rec && grant) {
    const was = dirname(dirname(rec.disk));
    writeGrant(s.id, { ...grant, mounts: grant.mounts.map((m) => (m.guest === WORKSPACE && m.host === was ? { ...m, host: project } : m)) });
  }
  if (rec) writeRecord(recordFile, { ...rec, disk: projectPaths(project).disk });
  await updateIndex((idx) => (idx.some((e) => e.id === session.id && presence(e) !== 'missing') ? idx : upsert(idx, { id: session.id, directory: project, last_active: new Date().toISOString() })), home);
  return readIndexSync(home).some((e) => e.id === session.id && e.directory === project) ? session : null;
}
