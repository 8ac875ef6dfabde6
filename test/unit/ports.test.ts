// Port forwarding: [[ports]] config, approval, the supervisor's forward table, and the
// guest relay (real sockets on loopback: 127.0.0.2 stands in for a container address).
import assert from 'node:assert/strict';
import { createServer, connect, type Server } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { effectiveConfig } from '../../src/approval/effective.js';
import { checkApproval } from '../../src/approval/check.js';
import { parseConfigText } from '../../src/config/load.js';
import { portWidenings, widenings, type Grant } from '../../src/approval/diff.js';
import { forwardConflict, ForwardTable, type ForwardDeps } from '../../src/supervisor/forwards.js';
import { VibeboxError } from '../../src/errors.js';
import { dialTarget, Forwards } from '../../guest/agent/forward.js';
import { parsePort } from '../../src/cli/port.js';
import { probeLoopbackPort } from '../../qemu/qemu-driver.js';
import { AgentMessage, HostMessage, OpRequest } from '../../guest/protocol.js';

describe('[[ports]] in vibebox.toml', () => {
  it('host defaults to guest; both are kept', () => {
    const c = parseConfigText('[[ports]]\nguest = 3000\n[[ports]]\nguest = 80\nhost = 8080\n');
    assert.deepEqual(c.ports, [{ guest: 3000, host: 3000 }, { guest: 80, host: 8080 }]);
  });
  it('a host port forwarded twice, a port out of range, an unknown key: E_CONFIG_INVALID naming the key', () => {
    const bad = (t: string, re: RegExp) =>
      assert.throws(() => parseConfigText(t), (e: unknown) => e instanceof VibeboxError && e.code === 'E_CONFIG_INVALID' && re.test(e.message));
    bad('[[ports]]\nguest = 1\nhost = 9000\n[[ports]]\nguest = 2\nhost = 9000\n', /ports\[1\]\.host: host port 9000 is forwarded twice/);
    bad('[[ports]]\nguest = 70000\n', /ports\[0\]\.guest/);
    bad('[[ports]]\nguest = 3000\nbind = "0.0.0.0"\n', /bind/);
  });
});

describe('approval of forwards', () => {
  const base: Grant = { network: { mode: 'allowlist', entries: [] }, mounts: [] };
  it('a new forward is a widening; the same one, or dropping one, is not', () => {
    assert.deepEqual(portWidenings(undefined, [{ guest: 3000, host: 3000 }]), ['+ port 127.0.0.1:3000 → guest 3000']);
    assert.deepEqual(portWidenings([{ guest: 3000, host: 3000 }], [{ guest: 3000, host: 3000 }]), []);
    assert.deepEqual(portWidenings([{ guest: 3000, host: 3000 }], []), []);
    // the same host port to another guest port reaches something else: a widening
    assert.equal(portWidenings([{ guest: 3000, host: 3000 }], [{ guest: 22, host: 3000 }]).length, 1);
    assert.deepEqual(widenings(base, { ...base, ports: [{ guest: 5173, host: 5173 }] }), ['+ port 127.0.0.1:5173 → guest 5173']);
  });
});

describe('[[ports]] against a real vibebox.toml', () => {
  let tmp = '';
  let project = '';
  let saved: string | undefined;
  before(() => {
    tmp = realpathSync(mkdtempSync(join(tmpdir(), 'vb-ports-')));
    project = join(tmp, 'proj');
    mkdirSync(project);
    saved = process.env['VIBEBOX_HOME'];
    process.env['VIBEBOX_HOME'] = join(tmp, 'home');
  });
  after(() => {
    if (saved === undefined) delete process.env['VIBEBOX_HOME'];
    else process.env['VIBEBOX_HOME'] = saved;
    rmSync(tmp, { recursive: true, force: true });
  });
  it('a forward is not opened until approved; an approved one stays; dropping one applies at once', async () => {
    const id = '01900000-0000-7000-8000-0000000000c1';
    const toml = (t: string) => writeFileSync(join(project, 'vibebox.toml'), t);
    toml('[[ports]]\nguest = 3000\n');
    const eff = effectiveConfig(project, id, {});
    assert.deepEqual(eff.ports, []);
    assert.deepEqual(eff.unapproved, ['+ port 127.0.0.1:3000 → guest 3000']);
    await assert.rejects(checkApproval(project, id, { interactive: false }), (e: VibeboxError) => e.code === 'E_NOT_APPROVED' && /port 127\.0\.0\.1:3000/.test(e.message));
    await checkApproval(project, id, { interactive: false, yes: true });
    assert.deepEqual(effectiveConfig(project, id, {}).ports, [{ guest: 3000, host: 3000 }]);
    // a second forward written from inside the guest: the approved one stays open, the new one waits
    toml('[[ports]]\nguest = 3000\n[[ports]]\nguest = 22\nhost = 2222\n');
    const e2 = effectiveConfig(project, id, {});
    assert.deepEqual(e2.ports, [{ guest: 3000, host: 3000 }]);
    assert.deepEqual(e2.unapproved, ['+ port 127.0.0.1:2222 → guest 22']);
    toml('');
    assert.deepEqual(effectiveConfig(project, id, {}).ports, []);
  });
});

describe('forward planning', () => {
  it('a host port taken by another forward is E_PORT_IN_USE naming it; the same forward again is fine', () => {
    const have = [{ host: 3000, guest: 3000, origin: 'config' as const }];
    assert.equal(forwardConflict(have, { host: 3000, guest: 3000, origin: 'session' }), null);
    const e = forwardConflict(have, { host: 3000, guest: 4000, origin: 'session' });
    assert.ok(e instanceof VibeboxError && e.code === 'E_PORT_IN_USE' && /127\.0\.0\.1:3000/.test(e.message));
    assert.equal(e.exitCode, 1);
  });
  it('parsePort takes 1..65535 only', () => {
    assert.equal(parsePort('8080', 'guest port'), 8080);
    for (const s of ['0', '65536', 'x', '-1', '80.5']) assert.throws(() => parsePort(s, 'guest port'), /not a port number/);
  });

  function fakeDeps(busy: Set<number>) {
    const calls: string[] = [];
    let relay = 40000;
    const deps: ForwardDeps = {
      openRelay: async (id, guest) => (calls.push(`relay ${id} ${guest}`), relay++),
      closeRelay: (id) => void calls.push(`close ${id}`),
      hostfwd: async (op, host, g) => {
        if (op === 'add' && busy.has(host)) throw new VibeboxError('E_PORT_IN_USE', `host port 127.0.0.1:${host} is in use`);
        calls.push(`${op} ${host}${g ? `→${g}` : ''}`);
      },
      log: () => undefined,
    };
    return { deps, calls };
  }
  it('opens relay then hostfwd; a busy host port fails, leaves nothing behind, and closes the relay', async () => {
    const { deps, calls } = fakeDeps(new Set([8081]));
    const t = new ForwardTable(deps);
    const e = await t.add({ host: 8080, guest: 3000, origin: 'session' });
    assert.equal(e.state, 'open');
    await assert.rejects(t.add({ host: 8081, guest: 3000, origin: 'session' }), /127\.0\.0\.1:8081 is in use/);
    assert.deepEqual(t.list().map((f) => f.host), [8080]);
    assert.deepEqual(calls, ['relay 1 3000', 'add 8080→40000', 'relay 2 3000', 'close 2']);
    assert.equal(await t.remove(8080), true);
    assert.deepEqual(calls.slice(-2), ['remove 8080', 'close 1']);
    assert.deepEqual(t.list(), []);
  });
  it('config forwards: a failing one is kept as failed (explain shows why); reopen re-adds the open ones', async () => {
    const { deps, calls } = fakeDeps(new Set([9001]));
    const t = new ForwardTable(deps);
    await t.addAll([
      { host: 9000, guest: 9000, origin: 'config' },
      { host: 9001, guest: 9001, origin: 'config' },
    ]);
    assert.deepEqual(t.list().map((f) => [f.host, f.state]), [[9000, 'open'], [9001, 'failed']]);
    assert.match(t.list()[1]!.error ?? '', /in use/);
    calls.length = 0;
    await t.reopen();
    assert.deepEqual(calls, ['relay 1 9000', 'add 9000→40002']);
  });
});

describe('host port probe', () => {
  it('a taken 127.0.0.1 port is E_PORT_IN_USE naming it; a free one is left free', async () => {
    const busy = await new Promise<Server>((r) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => r(s));
    });
    const port = (busy.address() as { port: number }).port;
    await assert.rejects(probeLoopbackPort(port, 3000), (e: unknown) => e instanceof VibeboxError && e.code === 'E_PORT_IN_USE' && e.toLine() === `vibebox: host port 127.0.0.1:${port} is in use (free it, or forward to another host port: vibebox port 3000 <host-port>)`);
    await new Promise<void>((r) => busy.close(() => r()));
    await probeLoopbackPort(port, 3000);
    await probeLoopbackPort(port, 3000); // closed again after the probe
  });
});

describe('guest relay', () => {
  const listen = (host: string, reply: string): Promise<Server> =>
    new Promise((r) => {
      const s = createServer((c) => c.end(reply));
      s.listen(0, host, () => r(s));
    });
  const portOf = (s: Server) => (s.address() as { port: number }).port;
  const fetchVia = (port: number): Promise<string> =>
    new Promise((resolve, reject) => {
      const c = connect(port, '127.0.0.1');
      let out = '';
      c.on('data', (d) => (out += d));
      c.on('end', () => resolve(out));
      c.on('close', () => resolve(out));
      c.on('error', reject);
    });

  it('goes to the VM port when something listens there, else to the container address', async () => {
    const vm = await listen('127.0.0.1', 'vm');
    const g = portOf(vm);
    const sock = await dialTarget({ guest: g, container: 'c', vmFirst: true }, async () => '127.0.0.2');
    const got = await new Promise<string>((r) => sock.once('data', (d) => r(String(d))));
    assert.equal(got, 'vm');
    vm.close();
    const ctr = await new Promise<Server>((r) => {
      const s = createServer((c) => c.end('container'));
      s.listen(g, '127.0.0.2', () => r(s));
    });
    const fw = new Forwards(() => undefined, '127.0.0.1');
    const relayPort = await fw.start(1, { guest: g, container: 'c', vmFirst: true });
    // dialTarget's default lookup asks Docker; this relay has none: the VM side must be refused
    // cleanly (the connection closes) rather than hang.
    assert.equal(await fetchVia(relayPort), '');
    assert.equal(await fw.start(1, { guest: g, container: 'c', vmFirst: true }), relayPort, 'same id, same target: same relay');
    fw.stop(1);
    const viaContainer = await dialTarget({ guest: g, container: 'c', vmFirst: true }, async () => '127.0.0.2');
    assert.equal(await new Promise<string>((r) => viaContainer.once('data', (d) => r(String(d)))), 'container');
    // A kit's forward skips the VM even when something listens there.
    const vm2 = await listen('127.0.0.1', 'vm');
    await new Promise<void>((r) => vm2.close(() => r()));
    const vm3 = await new Promise<Server>((r) => {
      const s = createServer((c) => c.end('vm'));
      s.listen(g, '127.0.0.1', () => r(s));
    });
    const kitOnly = await dialTarget({ guest: g, container: 'c', vmFirst: false }, async () => '127.0.0.2');
    assert.equal(await new Promise<string>((r) => kitOnly.once('data', (d) => r(String(d)))), 'container');
    vm3.close();
    ctr.close();
    await assert.rejects(dialTarget({ guest: g, container: 'c', vmFirst: true }, async () => null), /has no address/);
  });
});

describe('guest protocol additions', () => {
  it('forward_open/close and forward_ready are strict; the kit op takes a dir under /workspace only', () => {
    assert.ok(HostMessage.safeParse({ type: 'forward_open', fwdId: 1, guest: 3000 }).success);
    assert.ok(HostMessage.safeParse({ type: 'forward_open', fwdId: 1, guest: 8080, container: 'vibebox-kit-a' }).success);
    assert.ok(!HostMessage.safeParse({ type: 'forward_open', fwdId: 1, guest: 0 }).success);
    assert.ok(!HostMessage.safeParse({ type: 'forward_open', fwdId: 1, guest: 3000, host: '0.0.0.0' }).success, 'no bind address from anyone');
    assert.ok(!HostMessage.safeParse({ type: 'forward_open', fwdId: 1, guest: 3000, container: '../x' }).success);
    assert.ok(HostMessage.safeParse({ type: 'forward_close', fwdId: 1 }).success);
    assert.ok(AgentMessage.safeParse({ type: 'forward_ready', fwdId: 1, port: 40000 }).success);
    assert.ok(AgentMessage.safeParse({ type: 'forward_ready', fwdId: 1, error: 'EADDRINUSE' }).success);
    assert.ok(OpRequest.safeParse({ op: 'kit_serve', name: 'a', dir: '/workspace/dist' }).success);
    assert.ok(!OpRequest.safeParse({ op: 'kit_serve', name: 'a', dir: '/etc' }).success);
    assert.ok(!OpRequest.safeParse({ op: 'kit_serve', name: 'a', dir: '/workspace/../etc' }).success);
    assert.ok(!OpRequest.safeParse({ op: 'kit_serve', name: 'A/../b', dir: '/workspace' }).success);
  });
});
