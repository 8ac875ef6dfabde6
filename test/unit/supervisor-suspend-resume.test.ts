// Resume planning and the resume attempt against a fake driver: a saved state is used only when
// the host's record and everything it was saved against match; a load that fails abandons the
// half-started VM, drops the state and says why in the boot line.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { savedStateRecordFile } from '../../src/paths.js';
import { diskStamp, hashFile, readRecord, writeRecord, type SavedStateRecord } from '../../qemu/saved-state.js';
import type { VmRequest } from '../../qemu/driver.js';
import { keyNow, savedStatePlan, tryResume, type SuspendResumeDeps } from '../../src/supervisor/suspend-resume.js';
import { FakeDriver } from '../helpers/fake-driver.js';
import { FakeAgent, fakeClient, TEST_SESSION_ID, testSession, type TestSession } from '../helpers/supervisor-session.js';

const req: VmRequest = {
  name: 'vibebox-abc', cpus: 2, memoryBytes: 2 * 1024 ** 3, kernel: '/i/vmlinuz', initrd: '/i/initrd.img', cmdline: 'console=ttyS0',
  disk: '/p/disk.qcow2', backing: '/i/rootfs.qcow2', agentSocket: '/r/agent.sock', agentPortName: 'org.vibebox.agent.0', egressSocket: '/r/egress.sock', serialLog: '/p/serial.log',
};

interface Rig extends TestSession {
  driver: FakeDriver;
  deps: SuspendResumeDeps;
}

function rig(): Rig {
  const t = testSession();
  const driver = new FakeDriver();
  return { ...t, driver, deps: { session: t.s, driver, savedRecord: savedStateRecordFile(TEST_SESSION_ID, t.home) } };
}

/** A saved state on disk and its record, as a suspend leaves them. */
async function saved(r: Rig, over: Partial<SavedStateRecord['key']> = {}): Promise<SavedStateRecord> {
  const pp = r.s.paths;
  writeFileSync(pp.disk, 'a disk');
  writeFileSync(pp.savedState, 'device state');
  const rec: SavedStateRecord = {
    schema: 1, key: { ...(await keyNow(r.deps, req)), ...over }, disk: (await diskStamp(pp.disk))!, bytes: 'device state'.length,
    sha256: await hashFile(pp.savedState), ram: null, nextExec: 9, savedAt: new Date().toISOString(), saveMs: 1,
  };
  writeRecord(r.deps.savedRecord, rec);
  return rec;
}

describe('resume plan', () => {
  it('nothing saved: boot, and nothing to say', async () => {
    const r = rig();
    assert.equal(await savedStatePlan(r.deps, req), null);
    assert.equal(r.s.dropped, null);
    assert.deepEqual(r.logs, []);
    r.done();
  });

  it('a state file the host has no record of is dropped, with the reason kept for the boot line', async () => {
    const r = rig();
    writeFileSync(r.s.paths.savedState, 'x');
    assert.equal(await savedStatePlan(r.deps, req), null);
    assert.equal(r.s.dropped, 'no host record of it');
    assert.equal(existsSync(r.s.paths.savedState), false);
    r.done();
  });

  it('a record that matches the driver, the image, the config and the disk is resumed', async () => {
    const r = rig();
    const rec = await saved(r);
    assert.equal(rec.key.qemu, 'fake-qemu:1:1', "the driver's part of the key comes from the driver");
    assert.deepEqual(await savedStatePlan(r.deps, req), rec);
    r.done();
  });

  it('a record saved against another config or another QEMU is dropped, saying which', async () => {
    for (const [over, why] of [
      [{ config: 'another' }, 'vibebox.toml changed'],
      [{ qemu: 'another-qemu:1:1' }, 'QEMU changed'],
    ] as const) {
      const r = rig();
      await saved(r, over);
      assert.equal(await savedStatePlan(r.deps, req), null);
      assert.equal(r.s.dropped, why);
      assert.equal(readRecord(r.deps.savedRecord), null);
      assert.equal(existsSync(r.s.paths.savedState), false);
      assert.deepEqual(r.logs, [`saved state not used: ${why}`]);
      r.done();
    }
  });
});

describe('resume attempt', () => {
  const bootLine = (why?: string) => `booting the VM (tcg${why ? `; saved state not used: ${why}` : ''})…`;

  it('starts waiting for the state, loads it, and says resuming once the file is verified', async () => {
    const r = rig();
    const rec = await saved(r);
    assert.equal(await tryResume(r.deps, rec, req, { console: () => undefined, bootLine, accel: 'tcg' }), true);
    assert.deepEqual(r.driver.calls, ['start', 'resume']);
    assert.deepEqual(r.driver.requests[0]?.incoming, { ram: null });
    assert.equal(await r.s.startLine, 'resuming the VM (tcg)…');
    assert.equal(readRecord(r.deps.savedRecord), null, 'a loaded state is used up');
    r.done();
  });

  it('a state file that is not the one recorded is not run: the VM boots, the boot line says why', async () => {
    const r = rig();
    const rec = await saved(r);
    writeFileSync(r.s.paths.savedState, 'device statX');
    assert.equal(await tryResume(r.deps, rec, req, { console: () => undefined, bootLine, accel: 'tcg' }), false);
    assert.deepEqual(r.driver.calls, ['start', 'resume', 'abandon']);
    assert.equal(await r.s.startLine, bootLine('it could not be loaded (the saved state is not the one recorded)'));
    assert.equal(existsSync(r.s.paths.savedState), false);
    r.done();
  });

  it('a load that fails: the VM is abandoned, its channel closed, the state dropped, the boot line says why', async () => {
    const r = rig();
    const rec = await saved(r);
    const agent = new FakeAgent();
    r.s.agent = agent;
    r.driver.failing.add('resume');
    const waiting = fakeClient();
    r.s.announced.add(waiting);
    assert.equal(await tryResume(r.deps, rec, req, { console: () => undefined, bootLine, accel: 'tcg' }), false);
    assert.deepEqual(r.driver.calls, ['start', 'resume', 'abandon']);
    assert.equal(agent.closed, true);
    assert.equal(r.s.agent, null);
    assert.equal(readRecord(r.deps.savedRecord), null);
    assert.equal(existsSync(r.s.paths.savedState), false);
    // The file was verified (the line said resuming); the load then failed: a second line says so.
    assert.equal(await r.s.startLine, 'resuming the VM (tcg)…');
    assert.deepEqual(waiting.sent, [{ type: 'progress', line: bootLine('it could not be loaded (fake resume failed)') }]);
    assert.ok(r.logs.includes('resume failed, booting instead: fake resume failed'));
    r.done();
  });
});
