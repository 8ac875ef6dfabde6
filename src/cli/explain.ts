import { loadConfig } from '../config/load.js';
import { explain, explainText, type Explanation } from '../explain.js';
import { runPaths } from '../paths.js';
import { request } from '../client/attach.js';
import { socketAnswers } from '../net/socket-answers.js';
import { resolveProject } from '../session/project.js';
import { readSessionFile } from '../session/state.js';
import { effectiveConfig } from '../approval/effective.js';
import { jsonShown } from '../../guest/shown.js';

async function liveForwards(id: string): Promise<Explanation['ports'] | undefined> {
  const sock = runPaths(id).supervisorSock;
  if (!(await socketAnswers(sock))) return undefined;
  try {
    const r = await request(sock, { type: 'status' });
    return r.type === 'status' ? r.status.forwards : undefined;
  } catch {
    return undefined;
  }
}

export async function explainCmd(o: { project?: string; json?: boolean }): Promise<void> {
  const project = resolveProject(o.project);
  const s = readSessionFile(project);
  // With a session, show what the VM really gets (the approved config); else the file's.
  const cfg = s ? effectiveConfig(project, s.id) : loadConfig(project);
  // A running session reports its live forwards (including `vibebox port` ones).
  let live: Awaited<ReturnType<typeof liveForwards>> = undefined;
  if (s) live = await liveForwards(s.id);
  const e = explain(project, s?.id ?? null, cfg, live);
  process.stdout.write(o.json ? jsonShown(e) + '\n' : explainText(e));
}
