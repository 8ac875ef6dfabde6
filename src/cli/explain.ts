import { loadConfig } from '../config/load.js';
import { explain, explainText, type Explanation } from '../explain.js';
import { runPaths } from '../paths.js';
import { request } from '../client/attach.js';
import { socketAnswers } from '../net/socket-answers.js';
import { resolveProject } from '../session/project.js';
import { readSessionFile } from '../session/state.js';
import { effectiveFrom } from '../approval/effective.js';
import { defaultGrant, readCarried, readGrant } from '../approval/store.js';
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
  const file = loadConfig(project); // a broken vibebox.toml is reported as such
  // With a session, what the VM gets (the approved config) and, marked, what the file asks for
  // beyond it. Before the first start, the file's config, with what the first start will ask
  // about (measured against the grant a fresh session starts from) marked the same way.
  const grant = (s ? readGrant(s.id) : readCarried(project)) ?? defaultGrant(project);
  const { unapproved, ...approved } = effectiveFrom(project, grant);
  const cfg = s ? approved : file;
  // A running session reports its live forwards (including `vibebox port` ones).
  let live: Awaited<ReturnType<typeof liveForwards>> = undefined;
  if (s) live = await liveForwards(s.id);
  const e = explain(project, s?.id ?? null, cfg, live, { file, unapproved, approved });
  process.stdout.write(o.json ? jsonShown(e) + '\n' : explainText(e));
}
