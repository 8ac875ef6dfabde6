// Client requests against a Session with a fake agent: status, stop, reload, port, and an exec
// from each state the session can be in; every error reply goes through one helper.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { VibeboxError } from '../../src/errors.js';
import { handleClientMessage, type ClientRequestDeps } from '../../src/supervisor/client-requests.js';
import { asVibeboxError, errorBody, sendError } from '../../src/supervisor/error-reply.js';
import type { ClientMessage, Status } from '../../src/supervisor/client-protocol.js';
import { ForwardTable } from '../../src/supervisor/forwards.js';
import { keyRoutes } from '../../src/keys/inject.js';
import { BUILTIN_RULES } from '../../proxy/inject.js';
import type { NetworkPolicy } from '../../proxy/policy.js';
import { FakeAgent, fakeClient, testSession, type FakeClient, type TestSession } from '../helpers/supervisor-session.js';

interface Rig extends TestSession {
  agent: FakeAgent;
  stops: [string, boolean | undefined, boolean | undefined][];
  owned: Map<number, FakeClient>;
  ask(c: FakeClient, m: ClientMessage): Promise<void>;
}

const STATUS: Status = { id: 'x', project: '/p', state: 'running', refs: 1, supervisorPid: 1, qemuPid: 2, accel: 'tcg', bootMs: 10, forwards: [] };

function rig(over: Partial<ClientRequestDeps> = {}): Rig {
  const t = testSession();
  const agent = new FakeAgent();
  t.s.agent = agent;
  const stops: Rig['stops'] = [];
  const owned = new Map<number, FakeClient>();
  const forwards = new ForwardTable({ openRelay: async () => 7000, closeRelay: () => undefined, hostfwd: async () => undefined, log: () => undefined });
  const deps: ClientRequestDeps = {
    session: t.s,
    hub: {
      addRef: (c) => void (c.isRef = true),
      own: (id, c) => {
        c.execId = id;
        owned.set(id, c as FakeClient);
      },
      flushEarly: (c) => c.earlyEnd,
    },
    forwards,
    status: () => STATUS,
    stop: async (reason, resetAfter, suspend) => void stops.push([reason, resetAfter, suspend]),
    applyConfig: () => t.s.cfg,
    touchIndex: async () => undefined,
    ...over,
  };
  return { ...t, agent, stops, owned, ask: (c, m) => handleClientMessage(c, m, deps) };
}

describe('client requests', () => {
  it('status answers with the status of the moment', async () => {
    const r = rig();
    const c = fakeClient();
    await r.ask(c, { type: 'status' });
    assert.deepEqual(c.sent, [{ type: 'status', status: STATUS }]);
    r.done();
  });

  it('stop says ok, then stops (or suspends when asked)', async () => {
    const r = rig();
    const c = fakeClient();
    await r.ask(c, { type: 'stop' });
    await r.ask(c, { type: 'stop', suspend: true });
    assert.deepEqual(c.sent, [{ type: 'ok' }, { type: 'ok' }]);
    assert.deepEqual(r.stops, [
      ['requested', false, false],
      ['suspend requested', false, true],
    ]);
    r.done();
  });

  it('reload answers ok, or the error: a plain one as E_INTERNAL, a VibeboxError as it is', async () => {
    const ok = rig();
    const c = fakeClient();
    await ok.ask(c, { type: 'reload' });
    assert.deepEqual(c.sent, [{ type: 'ok' }]);
    assert.match(ok.logs[0]!, /^policy reloaded: allowlist \d+ entries$/);
    ok.done();

    const plain = rig({
      applyConfig: () => {
        throw new Error('disk on fire');
      },
    });
    const c2 = fakeClient();
    await plain.ask(c2, { type: 'reload' });
    assert.deepEqual(c2.sent, [{ type: 'error', code: 'E_INTERNAL', message: 'disk on fire' }]);
    plain.done();

    const typed = rig({
      applyConfig: () => {
        throw new VibeboxError('E_CONFIG_INVALID', 'vibebox.toml:1:1: bad', 'fix it');
      },
    });
    const c3 = fakeClient();
    await typed.ask(c3, { type: 'reload' });
    assert.deepEqual(c3.sent, [{ type: 'error', code: 'E_CONFIG_INVALID', message: 'vibebox.toml:1:1: bad', hint: 'fix it' }]);
    typed.done();
  });

  it('port waits for the boot, then forwards; closing one that is not there is E_USAGE', async () => {
    const r = rig();
    r.s.readyResolve();
    const c = fakeClient();
    await r.ask(c, { type: 'port', host: 8080 });
    await r.ask(c, { type: 'port', host: 9090, close: true });
    assert.deepEqual(c.sent, [{ type: 'ok' }, { type: 'error', code: 'E_USAGE', message: 'host port 9090 is not forwarded', hint: 'see `vibebox port` for the forwards' }]);
    r.done();

    const failed = rig();
    failed.s.readyReject(new Error('the VM exited during boot'));
    const c2 = fakeClient();
    await failed.ask(c2, { type: 'port', host: 8080 });
    assert.deepEqual(c2.sent, [{ type: 'error', code: 'E_PORT', message: 'the VM exited during boot' }]);
    failed.done();
  });

  it('an exec from another folder is refused and closed', async () => {
    const r = rig();
    const c = fakeClient();
    await r.ask(c, { type: 'exec', tty: false, project: '/elsewhere' });
    assert.equal(c.sent[0]?.type, 'error');
    assert.equal((c.sent[0] as { code: string }).code, 'E_SESSION_OTHER');
    assert.equal(c.closed, true);
    assert.equal(c.isRef, false);
    r.done();
  });

  it('an exec while the session stops is E_STOPPING', async () => {
    const r = rig();
    r.s.stopping = Promise.resolve();
    const c = fakeClient();
    await r.ask(c, { type: 'exec', tty: false });
    assert.deepEqual(c.sent, [{ type: 'error', code: 'E_STOPPING', message: 'the session is shutting down', hint: 'run the command again in a moment' }]);
    assert.equal(c.closed, true);
    r.done();
  });

  it('an exec whose boot fails gets the reason, E_VM_START and where to look unless the error says better', async () => {
    const r = rig();
    const c = fakeClient();
    const asked = r.ask(c, { type: 'exec', tty: false });
    r.s.announce('booting the VM (tcg)…');
    r.s.readyReject(new Error('the guest agent did not answer within 300 s'));
    await asked;
    assert.deepEqual(c.sent, [
      { type: 'progress', line: 'booting the VM (tcg)…' },
      { type: 'error', code: 'E_VM_START', message: 'the guest agent did not answer within 300 s', hint: `see ${r.s.paths.serialLog} and ${r.s.paths.supervisorLog}` },
    ]);
    assert.equal(c.closed, true);
    assert.equal(c.isRef, true, 'it was counted while it waited');
    r.done();

    const typed = rig();
    const c2 = fakeClient();
    const asked2 = typed.ask(c2, { type: 'exec', tty: false });
    typed.s.readyReject(new VibeboxError('E_PROTOCOL', 'this session speaks protocol 1'));
    await asked2;
    assert.deepEqual(c2.sent.at(-1), { type: 'error', code: 'E_PROTOCOL', message: 'this session speaks protocol 1', hint: `see ${typed.s.paths.serialLog} and ${typed.s.paths.supervisorLog}` });
    typed.done();
  });

  it('an exec once the guest is ready goes to the agent with its defaults, then input that came early', async () => {
    const r = rig();
    r.s.nextExec = 5;
    r.s.readyResolve();
    const c = fakeClient();
    c.earlyEnd = true;
    await r.ask(c, { type: 'exec', tty: true, cols: 100 });
    assert.deepEqual(r.agent.sent, [
      { type: 'exec', id: 5, argv: ['/bin/bash', '-l'], env: {}, cwd: '/workspace', user: 'vibe', pty: { cols: 100, rows: 24, term: 'xterm-256color' } },
      { type: 'stdin_end', id: 5 },
    ]);
    assert.equal(r.owned.get(5), c);
    assert.equal(r.s.nextExec, 6);
    assert.deepEqual(r.logs, ['shell 5 opened']);
    // Its resize and signals go to its exec; a client that is already a reference cannot exec again.
    await r.ask(c, { type: 'resize', cols: 120, rows: 40 });
    await r.ask(c, { type: 'signal', signal: 'SIGINT' });
    await r.ask(c, { type: 'exec', tty: false });
    assert.deepEqual(r.agent.sent.slice(2), [
      { type: 'resize', id: 5, cols: 120, rows: 40 },
      { type: 'signal', id: 5, signal: 'SIGINT' },
    ]);
    r.done();
  });

  it('a run that passes a key whose rule host the policy refuses is told so in one line, as the policy is at each run (a reload re-checks)', async () => {
    let policy: NetworkPolicy = { mode: 'allowlist', entries: ['registry.npmjs.org'] };
    const keys = { guestEnv: (env: Record<string, string>) => env, routes: (p: NetworkPolicy) => keyRoutes(['ANTHROPIC_API_KEY', 'GH_TOKEN', 'PLAIN_KEY'], BUILTIN_RULES, p) };
    const r = rig({ keys, applyConfig: () => ({ ...r.s.cfg, network: policy }) });
    r.s.cfg = { ...r.s.cfg, network: policy };
    r.s.readyResolve();
    const progress = (c: FakeClient) => c.sent.filter((m) => m.type === 'progress').map((m) => (m as { line: string }).line);
    const c = fakeClient();
    await r.ask(c, { type: 'exec', tty: false, argv: ['true'], env: { ANTHROPIC_API_KEY: 'x', PLAIN_KEY: 'y' } });
    assert.deepEqual(progress(c), ['vibebox: ANTHROPIC_API_KEY: api.anthropic.com is not allowed by the network policy, so the key is never put in there (vibebox allow api.anthropic.com)']);
    // a run that does not pass the key hears nothing of it
    const quiet = fakeClient();
    await r.ask(quiet, { type: 'exec', tty: false, argv: ['true'], env: { PLAIN_KEY: 'y' } });
    assert.deepEqual(progress(quiet), []);
    // the policy reloads with the host allowed: no line in the log, none at the next run
    policy = { mode: 'allowlist', entries: ['api.anthropic.com:443'] };
    await r.ask(fakeClient(), { type: 'reload' });
    assert.ok(!r.logs.some((l) => l.includes('ANTHROPIC_API_KEY')), r.logs.join('\n'));
    const after = fakeClient();
    await r.ask(after, { type: 'exec', tty: false, argv: ['true'], env: { ANTHROPIC_API_KEY: 'x' } });
    assert.deepEqual(progress(after), []);
    // and reloads without it again: the log says so at once
    policy = { mode: 'allowlist', entries: [] };
    await r.ask(fakeClient(), { type: 'reload' });
    assert.ok(r.logs.some((l) => l.startsWith('ANTHROPIC_API_KEY: api.anthropic.com is not allowed')), r.logs.join('\n'));
    r.done();
  });

  it('what the keys bring along into the exec env (the git credential helper) joins the container\'s pass list, which is all that enters the container', async () => {
    const keys = {
      routes: () => [],
      guestEnv: (env: Record<string, string>, pass: readonly string[] = []) => ({ ...env, ...Object.fromEntries(pass.map((n) => [n, 'ph'])), GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: 'k', GIT_CONFIG_VALUE_0: 'v' }),
    };
    const r = rig({ keys });
    r.s.readyResolve();
    await r.ask(fakeClient(), { type: 'exec', tty: false, argv: ['git', 'push'], env: { PLAIN: 'x' }, container: { op: 'run', pass: ['PLAIN', 'GH_TOKEN'] } });
    const sent = r.agent.sent[0] as { env: Record<string, string>; container: { pass: string[] } };
    assert.deepEqual(sent.container.pass, ['PLAIN', 'GH_TOKEN', 'GIT_CONFIG_COUNT', 'GIT_CONFIG_KEY_0', 'GIT_CONFIG_VALUE_0']);
    assert.equal(sent.env['GH_TOKEN'], 'ph');
    r.done();
  });

  it('stdin_end before the exec is held for it', async () => {
    const r = rig();
    const c = fakeClient();
    await r.ask(c, { type: 'stdin_end' });
    assert.equal(c.earlyEnd, true);
    assert.deepEqual(r.agent.sent, []);
    r.done();
  });
});

describe('error replies', () => {
  it('wraps what is not a VibeboxError under the code given, and keeps one that is', () => {
    const plain = asVibeboxError(new Error('x'), 'E_PORT');
    assert.equal(plain.code, 'E_PORT');
    assert.equal(plain.message, 'x');
    const typed = new VibeboxError('E_USAGE', 'y', 'h');
    assert.equal(asVibeboxError(typed, 'E_PORT'), typed);
  });

  it('the hint is the error\'s own, else the fallback, else none', () => {
    assert.deepEqual(errorBody(new VibeboxError('E_USAGE', 'm', 'own'), 'fallback'), { code: 'E_USAGE', message: 'm', hint: 'own' });
    assert.deepEqual(errorBody(new VibeboxError('E_USAGE', 'm'), 'fallback'), { code: 'E_USAGE', message: 'm', hint: 'fallback' });
    assert.deepEqual(errorBody(new VibeboxError('E_USAGE', 'm')), { code: 'E_USAGE', message: 'm' });
    const c = fakeClient();
    sendError(c, new Error('gone'), 'E_VM_START', 'see the log');
    assert.deepEqual(c.sent, [{ type: 'error', code: 'E_VM_START', message: 'gone', hint: 'see the log' }]);
  });
});
