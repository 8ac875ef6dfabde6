import { VibeboxError } from '../errors.js';
import { readIndex } from '../session/index-store.js';
import { matchId } from '../session/index-file.js';
import { removeSession } from '../session/remove.js';
import { stopSession } from '../session/status.js';
import { withProjectLock } from '../session/lock.js';
import { presence } from '../session/index-store.js';
import { confirm, isInteractive } from './io.js';
import { shown } from '../../guest/shown.js';

export async function del(prefix: string, o: { yes?: boolean }): Promise<void> {
  const s = matchId(await readIndex(), prefix);
  // A directory that is not there (an unmounted drive): only the host's records go; its .vibebox/
  // cannot be reached, so the disk is not deleted, and the messages say so.
  const missing = presence(s) === 'missing';
  if (!o.yes) {
    if (!isInteractive()) throw new VibeboxError('E_NOT_CONFIRMED', `deleting session ${s.id} needs confirmation`, 'run on a terminal, or pass -y');
    const q = missing ? `Forget session ${s.id}? Its directory ${shown(s.directory)} is not there now; if it comes back, its .vibebox/ will no longer be used.` : `Delete session ${s.id} of ${shown(s.directory)}? Its VM disk is lost.`;
    if (!(await confirm(q))) throw new VibeboxError('E_DECLINED', `nothing changed: session ${s.id} was not deleted`, 'you answered no');
  }
  await withProjectLock(s.directory, async () => {
    if (await stopSession(s.id)) process.stderr.write(`stopped session ${s.id}\n`);
    await removeSession(s.directory, s.id);
  });
  process.stdout.write(missing ? `forgot session ${s.id} (${shown(s.directory)} is not there: its .vibebox/ was not deleted)\n` : `deleted session ${s.id} (${shown(s.directory)})\n`);
}
