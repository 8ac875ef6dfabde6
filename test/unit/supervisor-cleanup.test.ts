// The supervisor's stop as one ordered list: the list itself (order, failures, deadlines, once),
// then the session's stop steps against a fake driver.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { Cleanup } from '../../src/supervisor/cleanup.js';
import { stopper, stopSteps, type StopDeps } from '../../src/supervisor/stop-steps.js';
import type { StartupEvent } from '../../src/supervisor/events.js';
import type { SupervisorMessage } from '../../src/supervisor/client-protocol.js';
import { FakeDriver } from '../helpers/fake-driver.js';
import { FakeAgent, testSession, type TestSession } from '../helpers/supervisor-session.js';

describe('cleanup list', () => {
  it('runs the steps in reverse order of registration, each once, however often it is run', async () => {
    const ran: string[] = [];
    const c = new Cleanup<void>(() => undefined);
    for (const n of ['a', 'b', 'c']) c.add(n, () => ran.push(n));
    const first = c.run();
    assert.equal(c.run(), first);
    await first;
    await c.run();
    assert.deepEqual(ran, ['c', 'b', 'a']);
  });

  it('runs the first step before run() returns', () => {
    let ran = false;
    const c = new Cleanup<void>(() => undefined);
    c.add('later', async () => undefined);
    c.add('first', () => (ran = true));
    void c.run();
    assert.equal(ran, true);
  });

  it('logs a step that throws or rejects and still runs the next ones', async () => {
    const ran: string[] = [];
    const logs: string[] = [];
    const c = new Cleanup<void>((l) => logs.push(l));
    c.add('last', () => ran.push('last'));
    c.add('rejects', async () => {
      ran.push('rejects');
      throw new Error('no');
    });
    c.add('throws', () => {
      ran.push('throws');
      throw new Error('boom');
    });
    await c.run();
    assert.deepEqual(ran, ['throws', 'rejects', 'last']);
    assert.deepEqual(logs, ['stop step "throws" failed: boom', 'stop step "rejects" failed: no']);
  });

  it('moves on when a step overruns its deadline; a step without one is awaited', async () => {
    const ran: string[] = [];
    const logs: string[] = [];
    const c = new Cleanup<void>((l) => logs.push(l));
    c.add('after', () => ran.push('after'));
    c.add('slow but bounded elsewhere', () => new Promise<void>((r) => setTimeout(() => (ran.push('slow'), r()), 60)), { deadlineMs: null });
    c.add('stuck', () => new Promise<void>(() => undefined), { deadlineMs: 20 });
    const t = Date.now();
    await c.run();
    assert.deepEqual(ran, ['slow', 'after']);
    assert.deepEqual(logs, ['stop step "stuck" did not finish within 20 ms; going on']);
    assert.ok(Date.now() - t < 2000);
  });

  it('passes the context to every step (one step may tell the next)', async () => {
    const c = new Cleanup<{ n: number }>(() => undefined);
    const seen: number[] = [];
    c.add('reads', (ctx) => seen.push(ctx.n));
    c.add('writes', (ctx) => (ctx.n = 2));
    await c.run({ n: 1 });
    assert.deepEqual(seen, [2]);
  });
});

describe('the session stop steps (fake driver)', () => {
  interface Rig extends TestSession {
    driver: FakeDriver;
    agent: FakeAgent;
    order: string[];
    told: SupervisorMessage[];
    emitted: StartupEvent['state'][];
    touched: boolean[];
    stop: ReturnType<typeof stopper>;
  }
  const rig = (over: Partial<StopDeps> = {}): Rig => {
    const t = testSession();
    const driver = new FakeDriver();
    const agent = new FakeAgent();
    t.s.agent = agent;
    const order: string[] = [];
    const told: SupervisorMessage[] = [];
    const emitted: StartupEvent['state'][] = [];
    const touched: boolean[] = [];
    const activeTimer = setInterval(() => undefined, 60_000);
    activeTimer.unref();
    const steps = stopSteps({
      session: t.s,
      driver,
      hub: {
        closeAll: (m) => (order.push('hub.closeAll'), told.push(m)),
        close: () => order.push('hub.close'),
      },
      refs: { disarm: () => order.push('refs.disarm') },
      events: { emit: (e) => (order.push(`event ${e}`), emitted.push(e)) },
      suspendVm: async () => (order.push('suspendVm'), false),
      touchIndex: async (force) => (order.push('touchIndex'), touched.push(force === true)),
      activeTimer,
      ...over,
    });
    return { ...t, driver, agent, order, told, emitted, touched, stop: stopper(t.s, steps) };
  };

  it('stops the VM, closes every part, removes the run directory, then says stopped; once', async () => {
    const r = rig();
    writeFileSync(r.s.dirtyMarker, '');
    const p = r.stop('requested');
    assert.equal(r.s.state, 'stopping', 'the state changes at once');
    assert.equal(r.stop('again'), p, 'a second stop waits for the first');
    await assert.rejects(r.s.ready, /the session stopped \(requested\)/);
    await p;
    await r.s.done;
    assert.deepEqual(r.order, ['refs.disarm', 'hub.closeAll', 'hub.close', 'touchIndex', 'event stopped']);
    assert.deepEqual(r.driver.calls, ['stop', 'close']);
    assert.deepEqual(r.agent.sent, [{ type: 'shutdown' }], 'the guest is asked to power off first');
    assert.equal(r.agent.closed, true);
    assert.equal(existsSync(r.s.dirtyMarker), false, 'a clean stop removes the dirty marker');
    assert.equal(existsSync(r.s.run.dir), false);
    assert.deepEqual(r.told, [{ type: 'error', code: 'E_SUPERVISOR', message: 'the session stopped' }]);
    assert.deepEqual(r.touched, [true]);
    assert.deepEqual(r.logs, ['stopping: requested', 'stopped']);
    r.done();
  });

  it('a driver whose stop throws still has every part closed and the session ended; the disk stays marked dirty', async () => {
    const r = rig();
    r.driver.failing.add('stop');
    writeFileSync(r.s.dirtyMarker, '');
    await r.stop('requested');
    await r.s.done;
    assert.deepEqual(r.driver.calls, ['stop', 'close']);
    assert.equal(r.agent.closed, true);
    assert.ok(r.order.includes('hub.close'));
    assert.deepEqual(r.emitted, ['stopped']);
    assert.equal(existsSync(r.s.dirtyMarker), true, 'an unclean end is checked at the next start');
    assert.ok(r.logs.includes('stop step "stop the VM" failed: fake stop failed'));
    r.done();
  });

  it('an unclean stop (the VM was killed) keeps the dirty marker', async () => {
    const r = rig();
    r.driver.stopClean = false;
    writeFileSync(r.s.dirtyMarker, '');
    await r.stop('requested');
    assert.equal(existsSync(r.s.dirtyMarker), true);
    r.done();
  });

  it('suspends only a session that was running, and then does not stop the VM', async () => {
    const starting = rig({ suspendVm: async () => true });
    await starting.stop('idle', false, true);
    assert.deepEqual(starting.driver.calls, ['stop', 'close'], 'a session that never ran is shut down');
    starting.done();

    let asked = 0;
    const r = rig({ suspendVm: async () => (asked++, true) });
    r.s.state = 'running';
    await r.stop('idle', false, true);
    assert.equal(asked, 1);
    assert.deepEqual(r.driver.calls, ['close'], 'a saved VM is not stopped again');
    r.done();
  });
});
