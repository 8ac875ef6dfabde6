// One grammar for `vibebox exec` / `vibebox run … --`: the fast path's parser and commander's
// declarations come from the same tables (src/cli/exec-grammar.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { commanderFlags, EXEC_FLAGS, parseFast, RUN_FLAGS } from '../../src/cli/exec-grammar.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

test('the fast path takes plain command runs, and leaves everything else to the full CLI', () => {
  assert.deepEqual(parseFast(['-t', '-u', 'root', '--', 'ls', '-l'], EXEC_FLAGS, false), { opts: { tty: true, user: 'root' }, argv: ['ls', '-l'] });
  assert.deepEqual(parseFast(['-p', '/x', 'npm', 'test'], EXEC_FLAGS, false), { opts: { project: '/x' }, argv: ['npm', 'test'] });
  assert.deepEqual(parseFast(['--tty', 'sh', '-c', 'exit 3'], EXEC_FLAGS, false), { opts: { tty: true }, argv: ['sh', '-c', 'exit 3'] });
  assert.deepEqual(parseFast(['--root', '--', 'apt-get', 'install', 'jq'], RUN_FLAGS, true), { opts: { root: true }, argv: ['apt-get', 'install', 'jq'] });
  for (const [args, flags, dashes] of [
    [['--help'], EXEC_FLAGS, false],
    [['-u', 'bob', 'ls'], EXEC_FLAGS, false], // a value the full CLI refuses with its own message
    [['-p'], EXEC_FLAGS, false],
    [['-p', '', 'ls'], EXEC_FLAGS, false],
    [['--root', 'ls'], EXEC_FLAGS, false], // run's flag is no exec flag
    [['-t'], EXEC_FLAGS, false], // no command
    [['claude', '--', 'x'], RUN_FLAGS, true], // `run <agent>` is the full CLI's
    [['-u', 'root', '--', 'ls'], RUN_FLAGS, true],
    [['--'], RUN_FLAGS, true],
  ] as const) assert.equal(parseFast(args, flags, dashes), null, args.join(' '));
});

test('commander declares the same flags the fast path parses', () => {
  for (const [cmd, flags] of [['exec', EXEC_FLAGS], ['run', RUN_FLAGS]] as const) {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts', cmd, '--help'], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, VIBEBOX_HOME: '/tmp/vb-grammar-home' }, timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
    for (const f of flags) assert.ok(r.stdout.includes(commanderFlags(f)), `${cmd} --help lacks ${commanderFlags(f)}:\n${r.stdout}`);
  }
});
