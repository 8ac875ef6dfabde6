// Deleting a session: its .vibebox/ folder, its index entry, and what the host kept about it
// (approved grant, disk record). The VM must be stopped first.
import { removeSessionDir } from './state.js';
import { updateIndex } from './index-store.js';
import { remove } from './index-file.js';
import { dropGrant } from '../approval/store.js';
import { forgetSessionDisk } from './disk.js';
import { rmSync } from 'node:fs';
import { savedStateRecordFile } from '../paths.js';

export async function removeSession(project: string, id: string): Promise<void> {
  removeSessionDir(project);
  await updateIndex((idx) => remove(idx, id));
  dropGrant(id);
  forgetSessionDisk(id);
  rmSync(savedStateRecordFile(id), { force: true });
}
