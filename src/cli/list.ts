import { readIndex } from '../session/index-store.js';
import { liveState } from '../session/status.js';
import { table, timeAgo } from './format.js';
import { jsonShown } from '../../guest/shown.js';

export async function list(o: { json?: boolean }): Promise<void> {
  const index = await readIndex();
  const rows = await Promise.all(
    index.map(async (s) => {
      const live = await liveState(s.id);
      return { id: s.id, directory: s.directory, last_active: s.last_active, state: live.state, refs: live.refs };
    }),
  );
  rows.sort((a, b) => b.last_active.localeCompare(a.last_active));
  if (o.json) {
    process.stdout.write(jsonShown(rows) + '\n'); // directory names may hold bidi or C1 characters
    return;
  }
  if (rows.length === 0) {
    process.stdout.write('no sessions (run `vibebox` in a project directory to create one)\n');
    return;
  }
  process.stdout.write(
    table(
      ['ID', 'DIRECTORY', 'LAST ACTIVE', 'STATE'],
      rows.map((r) => [r.id, r.directory, timeAgo(r.last_active), r.state === 'stopped' ? 'stopped' : `${r.state} (${r.refs} attached)`]),
    ) + '\n',
  );
}
