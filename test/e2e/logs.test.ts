// `vibebox logs` prints what the guest wrote without its escape sequences (the CLI as built).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI } from '../helpers/vm.js';

test('vibebox logs strips escape sequences and control characters', () => {
  const base = mkdtempSync(join(tmpdir(), 'vb-logs-'));
  try {
    const proj = join(base, 'p');
    mkdirSync(join(proj, '.vibebox'), { recursive: true });
    writeFileSync(join(proj, '.vibebox', 'serial.log'), 'boot ok\r\n\x1b]0;pwned\x07\x1b[2Jfake [y/N] \x1b[8mhidden\x1b[0m\x08\x08\r\ndone\n');
    const out = execFileSync(process.execPath, [CLI, 'logs', 'serial', '-p', proj], { env: { ...process.env, VIBEBOX_HOME: join(base, 'home') } }).toString();
    assert.equal(out, 'boot ok\nfake [y/N] hidden??\ndone\n');
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});

test('vibebox logs follows no link a shipped .vibebox/ plants: not to a host file, a FIFO or /dev/zero', () => {
  const base = mkdtempSync(join(tmpdir(), 'vb-logs-'));
  try {
    const proj = join(base, 'p');
    mkdirSync(join(proj, '.vibebox'), { recursive: true });
    writeFileSync(join(base, 'secret'), 'host secret\n');
    symlinkSync(join(base, 'secret'), join(proj, '.vibebox', 'serial.log'));
    symlinkSync('/dev/zero', join(proj, '.vibebox', 'egress.log'));
    execFileSync('mkfifo', [join(proj, '.vibebox', 'supervisor.log')]);
    for (const which of ['serial', 'egress', 'supervisor']) {
      const r = spawnSync(process.execPath, [CLI, 'logs', which, '-p', proj], { env: { ...process.env, VIBEBOX_HOME: join(base, 'home') }, encoding: 'utf8', timeout: 20_000 });
      assert.equal(r.status, 2, `${which}: ${r.stderr}`);
      assert.match(r.stderr, /is not a regular file/, which);
      assert.doesNotMatch(r.stdout, /host secret/);
    }
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});
