// At start: a vibebox.toml that asks for more than the user approved needs a yes on the host.
import { VibeboxError } from '../errors.js';
import { loadFileConfig } from '../config/load.js';
import { confirm } from '../cli/io.js';
import { wideningSummary, widenings } from './diff.js';
import { shown } from '../../guest/shown.js';
import { defaultGrant, dropCarried, grantOf, readCarried, readGrant, updateGrant } from './store.js';

/** The y/N question on the host terminal: the widening lines, then the question. */
async function askOnTerminal(text: string, question: string): Promise<boolean> {
  process.stderr.write(text);
  return confirm(question);
}

/**
 * `ask` shows `text` (ending in a newline), then asks `question` y/N; tests pass their own.
 * Returns the widenings the user just approved (empty: nothing was asked beyond the grant).
 */
export async function checkApproval(project: string, sessionId: string, o: { interactive: boolean; yes?: boolean; ask?: (text: string, question: string) => Promise<boolean> }): Promise<string[]> {
  const cfg = loadFileConfig(project); // as written: host-side env overrides are not asked about
  // A session fresh from `:new` starts from what the user approved for the project before.
  const approved = readGrant(sessionId) ?? readCarried(project);
  const wanted = grantOf(cfg);
  const wider = widenings(approved ?? defaultGrant(project), wanted);
  if (wider.length === 0) {
    // Record what runs, so later widening (e.g. from inside the guest) is measured against it.
    await updateGrant(sessionId, () => wanted);
    dropCarried(project);
    return [];
  }
  // diff.ts escaped each line already; again here (a no-op then) so no line can reach the
  // terminal raw whatever builds it.
  const list = wider.map(shown).join('\n  ');
  if (o.yes || (o.interactive && (await (o.ask ?? askOnTerminal)(`vibebox.toml asks for more than you approved:\n  ${list}\n  in all: ${wideningSummary(approved ?? defaultGrant(project), wanted)}\n`, 'Apply these changes?')))) {
    await updateGrant(sessionId, () => wanted);
    dropCarried(project);
    return wider;
  }
  // Asked and answered no: nothing changed, and that is a choice, not bad input.
  if (o.interactive && !o.yes) throw new VibeboxError('E_DECLINED', `nothing changed: vibebox.toml's changes were not approved (${wider.map(shown).join('; ')})`, 'you answered no; `vibebox approve` asks again, or revert the change');
  throw new VibeboxError('E_NOT_APPROVED', `vibebox.toml asks for more than you approved (${wider.map(shown).join('; ')})`, 'review it and run `vibebox approve` on the host, or revert the change');
}
