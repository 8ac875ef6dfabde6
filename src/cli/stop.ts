import { VibeboxError } from '../errors.js';
import { readSessionFile } from '../session/state.js';
import { resolveProject } from '../session/project.js';
import { stopSession } from '../session/status.js';

export async function stop(o: { project?: string }): Promise<void> {
  const project = resolveProject(o.project);
  const s = readSessionFile(project);
  if (!s) throw new VibeboxError('E_SESSION_NONE', `no session in ${project}`, 'run `vibebox` there first');
  const was = await stopSession(s.id);
  process.stdout.write(was ? `stopped session ${s.id}\n` : `session ${s.id} was not running\n`);
}
