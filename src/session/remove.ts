// Deleting a session: its .vibebox/ folder and its index entry (the VM must be stopped first).
import { removeSessionDir } from './state.js';
import { updateIndex } from './index-store.js';
import { remove } from './index-file.js';
import { dropGrant } from '../approval/store.js';

export async function removeSession(project: string, id: string): Promise<void> {
  removeSessionDir(project);
  await updateIndex((idx) => remove(idx, id));
  dropGrant(id);
}
