import { VibeboxError } from '../errors.js';
import { resolveProject } from '../session/project.js';
import { readSessionFile } from '../session/state.js';
import { checkApproval } from '../approval/check.js';
import { isInteractive } from './io.js';
import { reloadIfRunning } from './network.js';

export async function approve(o: { project?: string; yes?: boolean }): Promise<void> {
  const project = resolveProject(o.project);
  const s = readSessionFile(project);
  if (!s) throw new VibeboxError('E_SESSION_NONE', `no session in ${project}`, 'run `vibebox` there first; it asks for approval itself');
  if (!o.yes && !isInteractive()) throw new VibeboxError('E_NOT_CONFIRMED', 'approving needs a terminal', 'run it on a terminal, or pass --yes after reviewing vibebox.toml');
  await checkApproval(project, s.id, { interactive: true, ...(o.yes ? { yes: true } : {}) });
  await reloadIfRunning(s.id);
  process.stdout.write('approved\n');
}
