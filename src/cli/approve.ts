import { VibeboxError } from '../errors.js';
import { resolveProject } from '../session/project.js';
import { createSessionDir, readSessionFile } from '../session/state.js';
import { loadConfig } from '../config/load.js';
import { checkApproval } from '../approval/check.js';
import { isInteractive } from './io.js';
import { reloadIfRunning } from './network.js';

export async function approve(o: { project?: string; yes?: boolean }): Promise<void> {
  const project = resolveProject(o.project);
  if (!o.yes && !isInteractive()) throw new VibeboxError('E_NOT_CONFIRMED', 'approving needs a terminal', 'run it on a terminal, or pass --yes after reviewing vibebox.toml');
  let s = readSessionFile(project);
  const created = !s;
  if (!s) {
    // Approving before the first start (a script setting up a project with extra mounts): the
    // grant belongs to a session, so create it now, as the first `vibebox` would.
    loadConfig(project); // a broken vibebox.toml creates nothing
    const { withProjectLock } = await import('../session/lock.js');
    s = await withProjectLock(project, async () => readSessionFile(project) ?? createSessionDir(project));
  }
  let approved: string[];
  try {
    approved = await checkApproval(project, s.id, { interactive: true, ...(o.yes ? { yes: true } : {}) });
  } catch (e) {
    // Answered no: the session made a moment ago for this approval goes too, so nothing changed.
    if (created && e instanceof VibeboxError && e.code === 'E_DECLINED') {
      const { removeSession } = await import('../session/remove.js');
      await removeSession(project, s.id);
    }
    throw e;
  }
  const live = await reloadIfRunning(s.id);
  if (approved.length === 0) {
    process.stdout.write('vibebox.toml asks for nothing beyond what you approved: no change\n');
    return;
  }
  process.stdout.write(`approved${live ? ' (applied to the running session)' : ''}:\n  ${approved.join('\n  ')}\n`);
}
