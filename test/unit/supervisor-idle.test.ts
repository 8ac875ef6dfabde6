// The idle path end to end without a VM: the last client leaves, the grace timer (fake timers)
// fires, and the stop steps shut the fake VM down, or save it (agent unmounts, driver migrates,
// the record is written) and end the session.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { savedStateRecordFile } from '../../src/paths.js';
import { readRecord } from '../../qemu/saved-state.js';
import { which } from '../../qemu/which.js';
import { EventWriter, readEvents } from '../../src/supervisor/events.js';
import { RefCount, type Timers } from '../../src/supervisor/refcount.js';
import { stopper, stopSteps } from '../../src/supervisor/stop-steps.js';
import { suspendVm } from '../../src/supervisor/suspend-resume.js';
import { FakeDriver } from '../helpers/fake-driver.js';
import { FakeAgent, TEST_SESSION_ID, testSession } from '../helpers/supervisor-session.js';

class FakeTimers implements Timers {
  private pending = new Map<number, () => void>();
  private next = 1;
  setTimeout(fn: () => void): unknown {
    this.pending.set(this.next, fn);
    return this.next++;
  }
  clearTimeout(h: unknown): void {
    this.pending.delete(h as number);
  }
  fire(): void {
    for (const [id, fn] of [...this.pending]) {
      this.pending.delete(id);
      fn();
    }
  }
}

function rig(suspend: boolean) {
  const t = testSession();
  const driver = new FakeDriver();
  const agent = new FakeAgent();
  t.s.agent = agent;
  const events = new EventWriter(join(t.dir, 'events.jsonl'));
  const timers = new FakeTimers();
  const savedRecord = savedStateRecordFile(TEST_SESSION_ID, t.home);
  const activeTimer = setInterval(() => undefined, 60_000);
  activeTimer.unref();
  const closed: string[] = [];
  const refs: RefCount = new RefCount({ graceMs: () => 1000, onIdle: () => void stop('idle', false, suspend), timers });
  const stop = stopper(
    t.s,
    stopSteps({
      session: t.s,
      driver,
      hub: { closeAll: () => closed.push('clients'), close: () => closed.push('socket') },
      refs,
      events,
      suspendVm: () => suspendVm({ session: t.s, driver, savedRecord }),
      touchIndex: async () => undefined,
      activeTimer,
    }),
  );
  return { ...t, driver, agent, events, timers, refs, savedRecord, closed };
}

describe('idle → stop (fake driver)', () => {
  it('the last client leaves, the grace period ends, the VM is shut down and the session ends', async () => {
    const r = rig(false);
    r.s.state = 'running';
    r.refs.acquire();
    r.refs.release();
    assert.equal(r.refs.idleScheduled, true);
    r.timers.fire();
    await r.s.done;
    assert.equal(r.s.state, 'stopping');
    assert.deepEqual(r.driver.calls, ['stop', 'close']);
    assert.deepEqual(r.agent.sent, [{ type: 'shutdown' }]);
    assert.deepEqual(r.closed, ['clients', 'socket']);
    assert.deepEqual(readEvents(join(r.dir, 'events.jsonl')).map((e) => e.state), ['stopped']);
    assert.ok(r.logs.includes('stopping: idle'));
    // Disarmed: a client arriving and leaving now schedules nothing.
    r.refs.acquire();
    r.refs.release();
    assert.equal(r.refs.idleScheduled, false);
    r.done();
  });

  it('with suspend: the guest unmounts, the driver saves, the record is written, the VM is not stopped again', { skip: which('zstd') ? false : 'zstd is not installed' }, async () => {
    const r = rig(true);
    r.s.state = 'running';
    r.s.bootMs = 1234;
    r.s.nextExec = 7;
    r.s.resumeKey = { vibebox: '0.1.0', protocol: 1, qemu: 'fake-qemu:1:1', image: 'd1', config: 'c', argv: 'fake-argv' };
    writeFileSync(r.s.paths.disk, 'a disk');
    r.agent.onSend = (m) => {
      if (m.type === 'suspend') r.s.suspendAnswer?.({ type: 'suspend_done', ok: true, lazy: [] });
    };
    r.refs.arm();
    r.timers.fire();
    await r.s.done;
    assert.deepEqual(r.agent.sent, [{ type: 'suspend' }]);
    assert.deepEqual(r.driver.calls, ['suspend', 'close']);
    assert.deepEqual(readFileSync(r.s.paths.savedState), r.driver.savedBytes);
    assert.equal(statSync(r.s.paths.savedState).mode & 0o777, 0o600);
    const rec = readRecord(r.savedRecord);
    assert.ok(rec);
    assert.equal(rec.nextExec, 7);
    assert.deepEqual(rec.key, r.s.resumeKey);
    assert.equal(rec.bytes, r.driver.savedBytes.length);
    assert.equal(rec.ram, null);
    assert.equal(existsSync(`${r.s.paths.savedState}.tmp`), false);
    r.done();
  });

  it('with suspend, a guest that cannot unmount: the VM is shut down instead and nothing is saved', { skip: which('zstd') ? false : 'zstd is not installed' }, async () => {
    const r = rig(true);
    r.s.state = 'running';
    r.s.bootMs = 1;
    r.s.resumeKey = { vibebox: '0.1.0', protocol: 1, qemu: 'q', image: 'd1', config: 'c', argv: 'a' };
    r.agent.onSend = (m) => {
      if (m.type === 'suspend') r.s.suspendAnswer?.({ type: 'suspend_done', ok: false, error: 'busy', lazy: [] });
    };
    r.refs.arm();
    r.timers.fire();
    await r.s.done;
    assert.deepEqual(r.agent.sent.map((m) => m.type), ['suspend', 'shutdown']);
    assert.deepEqual(r.driver.calls, ['stop', 'close']);
    assert.equal(existsSync(r.s.paths.savedState), false);
    assert.equal(readRecord(r.savedRecord), null);
    assert.ok(r.logs.some((l) => l.startsWith('suspend failed, shutting down instead: the guest could not unmount its shares: busy')));
    r.done();
  });
});
