// Two different host locks held at once in one process (a start holds the project lock and takes a
// grant's lock inside it): releasing one must leave the other's refresh timer working. With both
// keyed by the shared locks directory, proper-lockfile's refresh crashed the process
// ("Cannot read properties of undefined (reading 'updateTimeout')") a few seconds after.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

test('the project lock and a home lock nest; the outer one outlives the inner without a crash', () => {
  const home = mkdtempSync(join(tmpdir(), 'vb-locks-'));
  try {
    // A child process: an uncaught exception from a timer would kill it (exit 1), not the runner.
    const script = `
      import { withProjectLock } from './src/session/lock.ts';
      import { withHomeLock } from './src/fs/home-lock.ts';
      await withProjectLock('/tmp/some-project', async () => {
        await withHomeLock('grant-x', 'a grant', () => undefined);
        // Past both refresh intervals (home lock 2 s, project lock 5 s).
        await new Promise((r) => setTimeout(r, 6500));
      });
      await withHomeLock('grant-y', 'a grant', async () => {
        await withProjectLock('/tmp/other', async () => undefined);
        await new Promise((r) => setTimeout(r, 2500));
      });
      console.log('ok');
    `;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, env: { ...process.env, VIBEBOX_HOME: home }, encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'ok');
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});
