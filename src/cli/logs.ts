import { createReadStream, existsSync, lstatSync, watch } from 'node:fs';
import { shown } from '../../guest/shown.js';
import { showPath } from '../session/state.js';
import { VibeboxError } from '../errors.js';
import { projectPaths } from '../paths.js';
import { resolveProject } from '../session/project.js';
import { StringDecoder } from 'node:string_decoder';
import { cleanText } from '../supervisor/guest-text.js';

function isDir(p: string): boolean {
  try {
    return lstatSync(p).isDirectory();
  } catch {
    return false;
  }
}

export async function logs(which: string, o: { project?: string; follow?: boolean }): Promise<void> {
  const pp = projectPaths(resolveProject(o.project));
  const files: Record<string, string> = { egress: pp.egressLog, supervisor: pp.supervisorLog, serial: pp.serialLog };
  const file = files[which];
  if (!file) throw new VibeboxError('E_USAGE', `unknown log "${shown(which)}"`, 'use egress, supervisor or serial');
  // The logs live in .vibebox/: without it there is no session, and nothing to follow.
  if (!isDir(pp.stateDir)) throw new VibeboxError('E_SESSION_NONE', `no session in ${showPath(pp.project)}`, 'start one with `vibebox`; its logs are in .vibebox/');
  let pos = 0;
  // The guest writes into every one of these logs (its console, its log frames, requested hosts):
  // escape sequences and control characters never reach the terminal.
  const dec = new StringDecoder('utf8');
  const dump = () =>
    new Promise<void>((res, rej) => {
      if (!existsSync(file)) return res();
      // lstat: a link planted in a shipped .vibebox/ is refused, never followed to a FIFO or a device.
      const st = lstatSync(file);
      if (!st.isFile()) return rej(new VibeboxError('E_SESSION_UNTRUSTED', `${showPath(file)} is not a regular file`, 'vibebox writes its logs as plain files; move it away'));
      const size = st.size;
      if (size < pos) pos = 0;
      if (size === pos) return res();
      const s = createReadStream(file, { start: pos, end: size - 1 });
      s.on('error', (e: NodeJS.ErrnoException) => rej(new VibeboxError('E_SESSION_UNTRUSTED', `cannot read ${showPath(file)}: ${e.code ?? e.message}`, 'check its owner and mode')));
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
  // The folder can go while we follow (a `vibebox delete`): say so in one line, not as a crash.
  const w = watch(pp.stateDir, () => void again());
  await new Promise<never>((_, reject) => w.on('error', () => reject(new VibeboxError('E_SESSION_NONE', `${showPath(pp.stateDir)} went away while following the log`, 'the session was deleted or moved'))));
}
