// /workspace as agents use it: host edits reach the guest within 1 s, and
// `[workspace] local` directories live on the VM disk — unseen by the host, kept across a restart.
// Real QEMU (TCG here), the real image, the real virtiofsd. One session for the file.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sh, testEnv, vb, type TestEnv } from '../helpers/vm.js';


describe('workspace', () => {
  let t: TestEnv;
  let proj: string;
  before(async () => {
    t = testEnv();
    proj = t.project('ws');
    writeFileSync(join(proj, 'vibebox.toml'), '[workspace]\nlocal = ["node_modules", "web/target"]\n');
    // The host's own node_modules: shadowed in the guest, untouched on the host.
    mkdirSync(join(proj, 'node_modules'));
    writeFileSync(join(proj, 'node_modules', 'host-only'), 'h\n');
    const r = await sh(t, proj, 'true');
    assert.equal(r.code, 0, r.stderr);
  });
  after(() => t?.cleanup());

  it('a host edit is visible in the guest within 1 s', async () => {
    // The guest reads the file first, so its attributes and data are cached by FUSE.
    writeFileSync(join(proj, 'edit.txt'), 'one\n');
    let r = await sh(t, proj, 'cat /workspace/edit.txt; ls /workspace > /dev/null');
    assert.equal(r.stdout, 'one\n', r.stderr);
    // Same size on purpose: a size change alone would not prove the data cache was dropped.
    writeFileSync(join(proj, 'edit.txt'), 'two\n');
    writeFileSync(join(proj, 'new.txt'), 'new\n');
    const t0 = Date.now();
    // Poll in the guest (one exec), so the figure is the cache's delay, not exec round trips.
    r = await sh(t, proj, 'i=0; while [ $i -lt 40 ]; do [ "$(cat /workspace/edit.txt)" = two ] && [ -e /workspace/new.txt ] && { echo $((i*50)); exit 0; }; sleep 0.05; i=$((i+1)); done; exit 1');
    assert.equal(r.code, 0, `not visible within 2 s: ${r.stderr}`);
    const ms = Number(r.stdout.trim());
    assert.ok(ms <= 1000, `visible after ${ms} ms in the guest (${Date.now() - t0} ms with the exec)`);
  });

  it('local dirs live on the VM disk: the host does not see them, other paths still reach the host', async () => {
    const r = await sh(t, proj, [
      'set -e',
      'cd /workspace',
      'test ! -e node_modules/host-only', // the host's directory is shadowed
      'touch node_modules/x && mkdir -p node_modules/pkg && echo a > node_modules/pkg/index.js',
      'echo t > web/target/out',
      'stat -c %U node_modules node_modules/x',
      'echo h > on-host',
    ].join('; '));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'vibe\nvibe\n');
    assert.deepEqual(readdirSync(join(proj, 'node_modules')), ['host-only']);
    assert.ok(existsSync(join(proj, 'web', 'target')), 'the mount point is made on the host');
    assert.deepEqual(readdirSync(join(proj, 'web', 'target')), []);
    assert.ok(existsSync(join(proj, 'on-host')));
  });

  it('explain lists them', async () => {
    const r = await vb(t, proj, ['explain']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /\/workspace\/node_modules\n/);
    assert.match(r.stdout, /host does not see them/);
  });

  it('they survive a VM restart (stop, then exec)', async () => {
    assert.equal((await vb(t, proj, ['stop'])).code, 0);
    const r = await sh(t, proj, 'cat /workspace/node_modules/pkg/index.js /workspace/web/target/out; ls /workspace/node_modules');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'a\nt\npkg\nx\n');
    assert.deepEqual(readdirSync(join(proj, 'node_modules')), ['host-only']);
  });
});
