// Agent events against a Session with a fake agent and a real clients hub (not listening): the
// hello and the setup, an exec's end, a :command's request, forward and suspend answers.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { handleAgentMessage, proxyEnv, type AgentEventDeps } from '../../src/supervisor/agent-events.js';
import type { ClientsHub } from '../../src/supervisor/clients-hub.js';
import type { StartupEvent } from '../../src/supervisor/events.js';
import type { ForwardSpec } from '../../src/supervisor/forwards.js';
import { AgentMessage, PROTOCOL_VERSION } from '../../guest/protocol.js';
import { closeTestHubs, FakeAgent, fakeClient, testHub, testSession, type TestSession } from '../helpers/supervisor-session.js';

interface Rig extends TestSession {
  agent: FakeAgent;
  hub: ClientsHub;
  emitted: StartupEvent['state'][];
  stops: [string, boolean | undefined][];
  added: ForwardSpec[][];
  reopened: number;
  guestLogs: [string, string][];
  on(m: AgentMessage): void;
}

after(closeTestHubs);

function rig(config = ''): Rig {
  const t = testSession(config);
  const agent = new FakeAgent();
  t.s.agent = agent;
  const hub = testHub();
  const r = {
    ...t,
    agent,
    hub,
    emitted: [] as StartupEvent['state'][],
    stops: [] as [string, boolean | undefined][],
    added: [] as ForwardSpec[][],
    reopened: 0,
    guestLogs: [] as [string, string][],
    on: (m: AgentMessage) => handleAgentMessage(m, deps),
  };
  const deps: AgentEventDeps = {
    session: t.s,
    hub,
    forwards: {
      addAll: async (specs) => void r.added.push([...specs]),
      reopen: async () => void r.reopened++,
    },
    events: { emit: (e) => void r.emitted.push(e) },
    stop: async (reason, resetAfter) => void r.stops.push([reason, resetAfter]),
    explain: (json) => (json ? '{"explained":true}\n' : 'explained\n'),
    guestLog: { frame: (level, message) => void r.guestLogs.push([level, message]) },
  };
  return r;
}

/** A message as the agent channel hands it over: parsed, so each test sends what a real agent could. */
const msg = (raw: unknown): AgentMessage => AgentMessage.parse(raw);
const hello = msg({ type: 'hello', protocol: PROTOCOL_VERSION, version: '0.1.0', uptimeMs: 900, agentStartMs: 800, kernel: '6.1', node: 'v20' });

describe('agent events', () => {
  it('hello: the boot time is taken and the setup goes out (mounts, proxy, host CAs, local dirs)', () => {
    const r = rig();
    r.s.mounts = [{ tag: 'vb0', guest: '/workspace', ro: false, fs: 'virtiofs' }];
    r.s.hostCas = { cas: 'PEM' };
    r.on(hello);
    assert.notEqual(r.s.bootMs, null);
    assert.deepEqual(r.agent.sent, [{ type: 'setup', mounts: r.s.mounts, env: proxyEnv(), cas: 'PEM', local: [] }]);
    r.done();
  });

  it('hello after a resume: the host clock first, then the setup', () => {
    const r = rig();
    r.s.resumedVm = true;
    r.on(hello);
    assert.deepEqual(r.agent.sent.map((m) => m.type), ['clock', 'setup']);
    r.done();
  });

  it('setup done: the session runs, waiting clients go on, the config forwards open once, then reopen after a resume', async () => {
    const r = rig('[[ports]]\nhost = 8080\nguest = 80\n');
    r.on(msg({ type: 'setup_done', ok: true }));
    await r.s.ready;
    assert.equal(r.s.state, 'running');
    assert.deepEqual(r.emitted, ['running']);
    assert.deepEqual(r.added, [[{ host: 8080, guest: 80, origin: 'config' }]]);
    r.on(msg({ type: 'setup_done', ok: true }));
    assert.equal(r.added.length, 1);
    assert.equal(r.reopened, 1);
    r.done();
  });

  it('a failed setup fails the waiting clients and stops the session', async () => {
    const r = rig();
    r.on(msg({ type: 'setup_done', ok: false, error: 'mount failed\x1b[31m' }));
    await assert.rejects(r.s.ready, (e: Error) => e.message.startsWith('guest setup failed: mount failed') && !e.message.includes('\x1b'));
    assert.deepEqual(r.stops, [['setup failed', undefined]]);
    assert.equal(r.s.state, 'starting');
    r.done();
  });

  it('an exec that ends: its owner gets the exit (or the error) and is closed; an unowned one is ignored', () => {
    const r = rig();
    const a = fakeClient();
    const b = fakeClient();
    r.hub.own(1, a);
    r.hub.own(2, b);
    r.on(msg({ type: 'exit', id: 1, code: 3, signal: null }));
    r.on(msg({ type: 'exec_error', id: 2, reason: 'not_found', message: 'no such command: x' }));
    r.on(msg({ type: 'exit', id: 9, code: 0, signal: null }));
    assert.deepEqual(a.sent, [{ type: 'exit', code: 3, signal: null }]);
    assert.deepEqual(b.sent, [{ type: 'error', code: 'E_EXEC_NOT_FOUND', message: 'no such command: x' }]);
    assert.equal(a.closed && b.closed, true);
    assert.equal(r.hub.ownerOf(1), undefined);
    r.done();
  });

  it(':explain is answered through the agent; :new from the shell a client runs replaces the session', () => {
    const r = rig();
    const owner = fakeClient(4);
    r.hub.own(4, owner);
    r.on(msg({ type: 'request', reqId: 1, execId: 4, command: 'explain', args: ['--json'] }));
    assert.deepEqual(r.agent.sent, [{ type: 'reply', reqId: 1, ok: true, output: '{"explained":true}\n', exitCode: 0 }]);
    r.on(msg({ type: 'request', reqId: 2, execId: 4, command: 'new', args: [] }));
    assert.deepEqual(r.stops, [['new session requested', true]]);
    r.done();
  });

  it('log frames, suspend and forward answers go where they are awaited', () => {
    const r = rig();
    r.on(msg({ type: 'log', level: 'info', message: 'hi' }));
    assert.deepEqual(r.guestLogs, [['info', 'hi']]);
    const answers: unknown[] = [];
    r.s.suspendAnswer = (m) => answers.push(m);
    r.on(msg({ type: 'suspend_done', ok: true, lazy: [] }));
    r.s.relayWaits.set(3, (m) => answers.push(m));
    r.on(msg({ type: 'forward_ready', fwdId: 3, port: 7000 }));
    r.on(msg({ type: 'forward_ready', fwdId: 99, port: 1 }));
    assert.deepEqual(answers, [{ type: 'suspend_done', ok: true, lazy: [] }, { port: 7000 }]);
    r.done();
  });
});
