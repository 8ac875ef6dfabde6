import { createReadStream, existsSync, statSync, watch } from 'node:fs';
import { VibeboxError } from '../errors.js';
import { projectPaths } from '../paths.js';
import { resolveProject } from '../session/project.js';
import { StringDecoder } from 'node:string_decoder';
import { cleanText } from '../supervisor/guest-text.js';

export async function logs(which: string, o: { project?: string; follow?: boolean }): Promise<void> {
  const pp = projectPaths(resolveProject(o.project));
  const files: Record<string, string> = { egress: pp.egressLog, supervisor: pp.supervisorLog, serial: pp.serialLog };
  const file = files[which];
  if (!file) throw new VibeboxError('E_USAGE', `unknown log "${which}"`, 'use egress, supervisor or serial');
  if (!existsSync(file)) {
    if (!o.follow) return;
  }
  let pos = 0;
  // The guest writes into every one of these logs (its console, its log frames, requested hosts):
  // escape sequences and control characters never reach the terminal.
  const dec = new StringDecoder('utf8');
  const dump = () =>
    new Promise<void>((res) => {
      if (!existsSync(file)) return res();
      const size = statSync(file).size;
      if (size < pos) pos = 0;
      if (size === pos) return res();
      const s = createReadStream(file, { start: pos, end: size - 1 });
      s.on('data', (b) => process.stdout.write(cleanText(dec.write(b as Buffer))));
      s.on('end', () => {
        pos = size;
        res();
      });
    });
  await dump();
  if (!o.follow) return;
  let busy = Promise.resolve();
  const again = () => (busy = busy.then(dump));
  watch(pp.stateDir, () => void again());
  await new Promise(() => undefined);
}
