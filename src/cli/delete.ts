import { VibeboxError } from '../errors.js';
import { readIndex } from '../session/index-store.js';
import { matchId } from '../session/index-file.js';
import { removeSession } from '../session/remove.js';
import { stopSession } from '../session/status.js';
import { withProjectLock } from '../session/lock.js';
import { confirm, isInteractive } from './io.js';
import { shown } from '../../guest/shown.js';

export async function del(prefix: string, o: { yes?: boolean }): Promise<void> {
  const s = matchId(await readIndex(), prefix);
  if (!o.yes) {
    if (!isInteractive()) throw new VibeboxError('E_NOT_CONFIRMED', `deleting session ${s.id} needs confirmation`, 'run on a terminal, or pass -y');
    if (!(await confirm(`Delete session ${s.id} of ${shown(s.directory)}? Its VM disk is lost.`))) {
      throw new VibeboxError('E_NOT_CONFIRMED', 'nothing deleted', 'answer y to delete');
    }
  }
  await withProjectLock(s.directory, async () => {
    if (await stopSession(s.id)) process.stderr.write(`stopped session ${s.id}\n`);
    await removeSession(s.directory, s.id);
  });
  process.stdout.write(`deleted session ${s.id} (${shown(s.directory)})\n`);
}
