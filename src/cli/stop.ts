import { existsSync } from 'node:fs';
import { VibeboxError } from '../errors.js';
import { readSessionFile } from '../session/state.js';
import { resolveProject } from '../session/project.js';
import { stopSession } from '../session/status.js';
import { projectPaths, savedStateRecordFile } from '../paths.js';
import { dropSavedState } from '../../qemu/saved-state.js';

export async function stop(o: { project?: string; suspend?: boolean }): Promise<void> {
  const project = resolveProject(o.project);
  const s = readSessionFile(project);
  if (!s) throw new VibeboxError('E_SESSION_NONE', `no session in ${project}`, 'run `vibebox` there first');
  const state = projectPaths(project).savedState;
  const was = await stopSession(s.id, 120_000, o.suspend === true);
  if (o.suspend) {
    // The supervisor falls back to a clean shutdown when the save fails (its log says why).
    const saved = existsSync(state);
    process.stdout.write(!was ? `session ${s.id} was not running\n` : saved ? `suspended session ${s.id}\n` : `stopped session ${s.id} (the VM could not be saved: see ${projectPaths(project).supervisorLog})\n`);
    return;
  }
  // A clean stop means the next start boots: a saved state of a suspended session goes.
  const hadState = existsSync(state) || existsSync(savedStateRecordFile(s.id));
  dropSavedState(savedStateRecordFile(s.id), state);
  process.stdout.write(was ? `stopped session ${s.id}\n` : hadState ? `session ${s.id} was suspended: its saved state is deleted\n` : `session ${s.id} was not running\n`);
}
