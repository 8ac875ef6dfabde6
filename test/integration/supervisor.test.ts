// The supervisor against guest input and bad knobs: a fake QEMU (test/fixtures/fake-qemu.mjs)
// plays an agent of another protocol; the rest boots the real image under QEMU.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pidsMatching, testEnv, vb, type TestEnv } from '../helpers/vm.js';

const FAKE_QEMU = fileURLToPath(new URL('../fixtures/fake-qemu.mjs', import.meta.url));

describe('supervisor start-up', () => {
  let t: TestEnv;
  before(() => {
    t = testEnv({ VIBEBOX_ACCEL: 'tcg' });
  });
  after(() => t.cleanup());

  it('VIBEBOX_BOOT_TIMEOUT_MS=2m is one line and exit 2, before anything starts', async () => {
    const proj = t.project('bad-knob');
    const r = await vb(t, proj, ['exec', '--', 'true'], { env: { VIBEBOX_BOOT_TIMEOUT_MS: '2m' }, timeoutMs: 60_000 });
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /^vibebox: VIBEBOX_BOOT_TIMEOUT_MS=2m is not a number of milliseconds \(/);
    assert.equal(pidsMatching(t.home, 'qemu-system').length, 0);
  });

  it('an agent of another protocol is one line saying what to do, not a boot timeout', async () => {
    const proj = t.project('old-agent');
    const t0 = Date.now();
    const r = await vb(t, proj, ['exec', '--', 'true'], { env: { VIBEBOX_QEMU: FAKE_QEMU, FAKE_AGENT: 'old-protocol', VIBEBOX_BOOT_TIMEOUT_MS: '90000' }, timeoutMs: 120_000 });
    assert.equal(r.code, 1, r.stderr);
    assert.ok(Date.now() - t0 < 45_000, `took ${Date.now() - t0} ms`);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /protocol 0, this vibebox speaks 1/);
    assert.match(r.stderr, /vibebox image build/);
    void join;
  });
});
