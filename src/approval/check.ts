// At start: a vibebox.toml that asks for more than the user approved needs a yes on the host.
import { VibeboxError } from '../errors.js';
import { loadFileConfig } from '../config/load.js';
import { confirm } from '../cli/io.js';
import { widenings } from './diff.js';
import { defaultGrant, dropCarried, grantOf, readCarried, readGrant, writeGrant } from './store.js';

export async function checkApproval(project: string, sessionId: string, o: { interactive: boolean; yes?: boolean }): Promise<void> {
  const cfg = loadFileConfig(project); // as written: host-side env overrides are not asked about
  // A session fresh from `:new` starts from what the user approved for the project before.
  const approved = readGrant(sessionId) ?? readCarried(project);
  const wanted = grantOf(cfg);
  const wider = widenings(approved ?? defaultGrant(project), wanted);
  if (wider.length === 0) {
    // Record what runs, so later widening (e.g. from inside the guest) is measured against it.
    writeGrant(sessionId, wanted);
    dropCarried(project);
    return;
  }
  const list = wider.join('\n  ');
  if (o.yes || (o.interactive && (process.stderr.write(`vibebox.toml asks for more than you approved:\n  ${list}\n`), await confirm('Apply these changes?')))) {
    writeGrant(sessionId, wanted);
    dropCarried(project);
    return;
  }
  // Asked and answered no: nothing changed, and that is a choice, not bad input.
  if (o.interactive && !o.yes) throw new VibeboxError('E_DECLINED', `nothing changed: vibebox.toml's changes were not approved (${wider.join('; ')})`, 'you answered no; `vibebox approve` asks again, or revert the change');
  throw new VibeboxError('E_NOT_APPROVED', `vibebox.toml asks for more than you approved (${wider.join('; ')})`, 'review it and run `vibebox approve` on the host, or revert the change');
}
