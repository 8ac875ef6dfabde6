import { loadConfig } from '../config/load.js';
import { explain, explainText } from '../explain.js';
import { resolveProject } from '../session/project.js';
import { readSessionFile } from '../session/state.js';
import { effectiveConfig } from '../approval/effective.js';

export async function explainCmd(o: { project?: string; json?: boolean }): Promise<void> {
  const project = resolveProject(o.project);
  const s = readSessionFile(project);
  // With a session, show what the VM really gets (the approved config); else the file's.
  const cfg = s ? effectiveConfig(project, s.id) : loadConfig(project);
  const e = explain(project, s?.id ?? null, cfg);
  process.stdout.write(o.json ? JSON.stringify(e) + '\n' : explainText(e));
}
