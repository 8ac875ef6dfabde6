import { presence, readIndex, unreadableEntries } from '../session/index-store.js';
import { liveState } from '../session/status.js';
import { table, timeAgo } from './format.js';
import { jsonShown } from '../../guest/shown.js';

export async function list(o: { json?: boolean }): Promise<void> {
  const index = await readIndex();
  const rows = await Promise.all(
    index.map(async (s) => {
      const live = await liveState(s.id);
      // A directory that is not there (an unmounted drive, a rename) hides nothing: the session
      // is listed as missing and kept, and comes back with its directory.
      const state = live.state === 'stopped' && presence(s) === 'missing' ? 'missing' : live.state;
      return { id: s.id, directory: s.directory, last_active: s.last_active, state, refs: live.refs };
    }),
  );
  rows.sort((a, b) => b.last_active.localeCompare(a.last_active));
  if (o.json) {
    process.stdout.write(jsonShown(rows) + '\n'); // directory names may hold bidi or C1 characters
    return;
  }
  if (rows.length === 0) {
    // An index whose only entries are unreadable is not an empty one (each was warned about above).
    const bad = unreadableEntries().length;
    process.stdout.write(bad ? `no sessions vibebox can read (${bad} entr${bad === 1 ? 'y' : 'ies'} of sessions.toml skipped: see the warning)\n` : 'no sessions (run `vibebox` in a project directory to create one)\n');
    return;
  }
  const stateText = (r: (typeof rows)[number]): string => (r.state === 'stopped' ? 'stopped' : r.state === 'missing' ? 'missing (directory not found)' : `${r.state} (${r.refs} attached)`);
  process.stdout.write(table(['ID', 'DIRECTORY', 'LAST ACTIVE', 'STATE'], rows.map((r) => [r.id, r.directory, timeAgo(r.last_active), stateText(r)])) + '\n');
  if (rows.some((r) => r.state === 'missing')) {
    process.stdout.write('\nmissing: the directory is not there now (an unmounted drive, a rename?); the session and its disk are kept. `vibebox delete <id>` forgets one for good.\n');
  }
}
