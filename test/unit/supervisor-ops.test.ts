// Container ops through the supervisor, with a fake agent: a client's op goes to the guest with
// the approved spec (and an env only for a kit), the guest's events go to that client only, and
// its one result or error ends the op and the connection. Nothing the guest sends for an op
// another client owns, or for none, reaches anyone.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { handleClientMessage, type ClientRequestDeps } from '../../src/supervisor/client-requests.js';
import { handleAgentMessage, type AgentEventDeps } from '../../src/supervisor/agent-events.js';
import { AgentMessage } from '../../guest/protocol.js';
import { ClientMessage } from '../../src/supervisor/client-protocol.js';
import { closeTestHubs, FakeAgent, fakeClient, testHub, testSession, type FakeClient } from '../helpers/supervisor-session.js';

after(closeTestHubs);

function rig(config = '') {
  const t = testSession(config);
  const agent = new FakeAgent();
  t.s.agent = agent;
  const hub = testHub();
  const keys = { guestEnv: (env: Record<string, string>) => Object.fromEntries(Object.entries(env).map(([k, v]) => [k, k === 'COVERED' ? 'placeholder' : v])), routes: () => [] };
  const cdeps: ClientRequestDeps = {
    session: t.s,
    hub: { addRef: (c) => void (c.isRef = true), own: (id, c) => hub.own(id, c), flushEarly: () => false },
    forwards: { add: async () => { throw new Error('unused'); }, remove: async () => true },
    status: () => {
      throw new Error('unused');
    },
    stop: async () => undefined,
    applyConfig: () => t.s.cfg,
    touchIndex: async () => undefined,
    keys,
  };
  const adeps: AgentEventDeps = {
    session: t.s,
    hub,
    forwards: { addAll: async () => undefined, reopen: async () => undefined },
    events: { emit: () => undefined },
    stop: async () => undefined,
    explain: () => '',
    guestLog: { frame: () => undefined },
  };
  return {
    ...t,
    agent,
    hub,
    /** As the hub hands it over: validated first. */
    ask: (c: FakeClient, raw: unknown) => handleClientMessage(c, ClientMessage.parse(raw), cdeps),
    /** As the agent channel hands it over: validated first. */
    on: (raw: unknown) => handleAgentMessage(AgentMessage.parse(raw), adeps),
  };
}

describe('container ops through the supervisor', () => {
  it('an op waits for the boot, becomes a reference, and goes out with the approved spec and no env', async () => {
    const r = rig('[image]\napt = ["jq"]\n');
    const c = fakeClient();
    const asked = r.ask(c, { type: 'op', request: { op: 'stack_plan' }, env: { SNEAKY: '1' } });
    await new Promise((res) => setImmediate(res));
    assert.equal(r.agent.sent.length, 0, 'nothing goes out before the guest is ready');
    r.s.readyResolve();
    await asked;
    assert.equal(c.isRef, true);
    assert.equal(r.agent.sent.length, 1);
    const m = r.agent.sent[0]!;
    assert.equal(m.type, 'op');
    if (m.type !== 'op') return;
    assert.deepEqual(m.request, { op: 'stack_plan' });
    assert.deepEqual(m.spec.image.apt, ['jq']);
    assert.deepEqual(m.env, {}, 'an env goes only with the op that reads one (kit_serve)');
    assert.equal(r.hub.ownerOf(m.id), c);
    r.done();
  });

  it('kit_serve carries its env, with injected keys as placeholders', async () => {
    const r = rig();
    r.s.readyResolve();
    const c = fakeClient();
    await r.ask(c, { type: 'op', request: { op: 'kit_serve', name: 'k', dir: '/workspace/dist' }, env: { VIBEBOX_KIT_KEY: 'k'.repeat(43), COVERED: 'secret' } });
    const m = r.agent.sent[0]!;
    assert.ok(m.type === 'op');
    if (m.type === 'op') assert.deepEqual(m.env, { VIBEBOX_KIT_KEY: 'k'.repeat(43), COVERED: 'placeholder' });
    r.done();
  });

  it('an op from another folder, or while the session stops, is refused and never reaches the guest', async () => {
    const r = rig();
    r.s.readyResolve();
    const other = fakeClient();
    await r.ask(other, { type: 'op', request: { op: 'commit' }, project: '/elsewhere' });
    assert.equal((other.sent[0] as { code?: string }).code, 'E_SESSION_OTHER');
    r.s.stopping = Promise.resolve();
    const late = fakeClient();
    await r.ask(late, { type: 'op', request: { op: 'commit' } });
    assert.equal((late.sent[0] as { code?: string }).code, 'E_STOPPING');
    assert.equal(r.agent.sent.length, 0);
    r.done();
  });

  it('events go to the op\'s owner only; the result ends it and closes the client; later frames for it go nowhere', async () => {
    const r = rig();
    r.s.readyResolve();
    const a = fakeClient();
    const b = fakeClient();
    await r.ask(a, { type: 'op', request: { op: 'stack_plan' } });
    await r.ask(b, { type: 'op', request: { op: 'agents' } });
    const idA = (r.agent.sent[0] as { id: number }).id;
    const idB = (r.agent.sent[1] as { id: number }).id;
    r.on({ type: 'op_event', id: idA, event: { kind: 'line', line: 'starting the stack-controller' } });
    r.on({ type: 'op_result', id: idA, result: { kind: 'stack_plan', proposed: true, hash: '0123456789abcdef', diff: '+ redis (new)\n', empty: false } });
    r.on({ type: 'op_event', id: idA, event: { kind: 'line', line: 'late' } });
    r.on({ type: 'op_result', id: 999, result: { kind: 'done' } });
    assert.deepEqual(a.sent, [
      { type: 'op_event', event: { kind: 'line', line: 'starting the stack-controller' } },
      { type: 'op_result', result: { kind: 'stack_plan', proposed: true, hash: '0123456789abcdef', diff: '+ redis (new)\n', empty: false } },
    ]);
    assert.equal(a.closed, true);
    assert.deepEqual(b.sent, [], 'another client\'s op hears nothing of it');
    r.on({ type: 'op_error', id: idB, error: { code: 'E_USAGE', message: 'unknown agent x', hint: 'known: claude', exitCode: 2 } });
    assert.deepEqual(b.sent, [{ type: 'error', code: 'E_USAGE', message: 'unknown agent x', hint: 'known: claude', exitCode: 2 }]);
    assert.equal(b.closed, true);
    r.done();
  });

  it('a client that already runs an exec or an op cannot start a second one on the same connection', async () => {
    const r = rig();
    r.s.readyResolve();
    const c = fakeClient();
    await r.ask(c, { type: 'op', request: { op: 'agents' } });
    await r.ask(c, { type: 'op', request: { op: 'commit' } });
    await r.ask(c, { type: 'exec', tty: false, argv: ['true'] });
    assert.equal(r.agent.sent.length, 1);
    r.done();
  });
});
