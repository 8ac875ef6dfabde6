import { test } from 'node:test';
import assert from 'node:assert/strict';
import { freeSubidRange, kvmVerdict, parseSubids, reachVerdict, subidVerdict, uidmapVerdict, usernsVerdict, type KvmFacts, type ReachFacts, type UsernsFacts } from '../../src/cli/doctor-verdicts.js';

const dev = { name: 'dev', uid: 1001 };

test('parseSubids reads name:start:count lines and skips comments and junk', () => {
  assert.deepEqual(parseSubids('# comment\ndev:100000:65536\n\n1002:165536:65536\nbroken line\nx:1:\n  ci:231072:65536  \n'), [
    { owner: 'dev', start: 100000, count: 65536 },
    { owner: '1002', start: 165536, count: 65536 },
    { owner: 'ci', start: 231072, count: 65536 },
  ]);
  assert.deepEqual(parseSubids(''), []);
});

test('freeSubidRange starts past every range in both files, never below 100000', () => {
  assert.equal(freeSubidRange([[], []]), '100000-165535');
  assert.equal(freeSubidRange([parseSubids('a:100000:65536\nb:165536:65536'), parseSubids('a:300000:10')]), '300010-365545');
  assert.equal(freeSubidRange([parseSubids('a:1000:10')]), '100000-165535');
});

test('subidVerdict: the user name with 65536 ids is ok', () => {
  const c = subidVerdict('subuid', 'root:1:2\ndev:100000:65536\n', dev, 'X');
  assert.equal(c.status, 'ok');
  assert.equal(c.ok, true);
  assert.equal(c.found, 'dev:100000-165535');
});

test('subidVerdict: no entry, an entry by uid only, too few ids, no file: missing, with a usermod fix', () => {
  const fix = 'sudo usermod --add-subuids 200000-265535 --add-subgids 200000-265535 dev';
  for (const [file, found] of [
    ['other:100000:65536\n', /no range for dev in \/etc\/subuid/],
    ['1001:100000:65536\n', /lists uid 1001 but not the name dev/],
    ['dev:100000:1000\n', /has 1000 ids, the image build needs 65536/],
    [null, /\/etc\/subuid is missing or unreadable/],
  ] as const) {
    const c = subidVerdict('subuid', file, dev, '200000-265535');
    assert.equal(c.status, 'missing', String(file));
    assert.equal(c.ok, false);
    assert.match(c.found, found);
    assert.equal(c.fix, fix);
  }
  // mmdebstrap takes the first line with the name: a later, larger one does not help.
  assert.equal(subidVerdict('subgid', 'dev:100000:10\ndev:200000:65536\n', dev, 'X').status, 'missing');
});

test('subidVerdict: root needs none', () => {
  assert.equal(subidVerdict('subuid', null, { name: 'root', uid: 0 }, 'X').status, 'ok');
});

const ns = (o: Partial<UsernsFacts>): UsernsFacts => ({ unprivilegedClone: null, maxUserNamespaces: '15000\n', apparmorRestrict: null, probe: { ok: true, detail: '' }, uid: 1001, ...o });

test('usernsVerdict: the live probe decides; the sysctls name the fix', () => {
  assert.equal(usernsVerdict(ns({})).status, 'ok');
  const clone = usernsVerdict(ns({ unprivilegedClone: '0\n', probe: { ok: false, detail: 'unshare: unshare failed: Operation not permitted' } }));
  assert.equal(clone.status, 'missing');
  assert.match(clone.found, /kernel\.unprivileged_userns_clone = 0/);
  assert.match(clone.fix, /kernel\.unprivileged_userns_clone=1/);
  const max = usernsVerdict(ns({ maxUserNamespaces: '0', probe: { ok: false, detail: 'x' } }));
  assert.match(max.found, /user\.max_user_namespaces = 0/);
  assert.match(max.fix, /user\.max_user_namespaces=10000/);
  const aa = usernsVerdict(ns({ apparmorRestrict: '1\n', probe: { ok: false, detail: 'unshare: write failed /proc/self/uid_map: Operation not permitted' } }));
  assert.equal(aa.status, 'missing');
  assert.match(aa.found, /AppArmor/);
  assert.match(aa.fix, /kernel\.apparmor_restrict_unprivileged_userns=0/);
  // Sysctls that allow it (1, a positive limit, AppArmor off) are no reason.
  assert.equal(usernsVerdict(ns({ unprivilegedClone: '1', apparmorRestrict: '0' })).status, 'ok');
});

test('usernsVerdict: a failing probe with no sysctl to blame still fails, quoting the error', () => {
  const c = usernsVerdict(ns({ probe: { ok: false, detail: 'no answer within 10000 ms' } }));
  assert.equal(c.status, 'missing');
  assert.match(c.found, /unshare --user failed: no answer within 10000 ms/);
  assert.ok(c.fix.length > 0);
});

test('usernsVerdict: root passes the probe regardless, but a sysctl that stops users is a warning', () => {
  const c = usernsVerdict(ns({ uid: 0, unprivilegedClone: '0' }));
  assert.equal(c.status, 'warn');
  assert.equal(c.ok, true);
  assert.match(c.found, /ordinary users cannot/);
});

const tool = { path: '/usr/bin/newuidmap', setuidRoot: true };
const gtool = { path: '/usr/bin/newgidmap', setuidRoot: true };

test('uidmapVerdict: both tools and a working mapping are ok; a missing tool names the package', () => {
  assert.equal(uidmapVerdict({ uid: 1001, newuidmap: tool, newgidmap: gtool, probe: { ok: true, detail: '' } }).status, 'ok');
  const c = uidmapVerdict({ uid: 1001, newuidmap: null, newgidmap: gtool, probe: null });
  assert.equal(c.status, 'missing');
  assert.match(c.found, /newuidmap not found/);
  assert.equal(c.fix, 'sudo apt-get install uidmap');
  assert.equal(uidmapVerdict({ uid: 0, newuidmap: null, newgidmap: null, probe: null }).status, 'ok');
});

test('uidmapVerdict: a failed mapping is missing; a non-setuid tool says reinstall', () => {
  const c = uidmapVerdict({ uid: 1001, newuidmap: { ...tool, setuidRoot: false }, newgidmap: gtool, probe: { ok: false, detail: 'newuidmap: write to uid_map failed: Operation not permitted' } });
  assert.equal(c.status, 'missing');
  assert.match(c.found, /not setuid root/);
  assert.equal(c.fix, 'sudo apt-get install --reinstall uidmap');
});

const kvm = (o: Partial<KvmFacts>): KvmFacts => ({
  platform: 'linux', uid: 1001, device: { mode: 0o20660, gid: 993, groupName: 'kvm' }, readWrite: false, userInDeviceGroup: false, ...o,
});
const ADD = 'add yourself to the kvm group (sudo usermod -aG kvm $USER, then log in again)';

test('kvmVerdict: read-write access is ok', () => {
  assert.equal(kvmVerdict(kvm({ readWrite: true })).status, 'ok');
  assert.equal(kvmVerdict(kvm({ platform: 'darwin', device: null })).status, 'ok');
});

test('kvmVerdict: a user outside the kvm group is told to join it (a warning: tcg still runs)', () => {
  const c = kvmVerdict(kvm({}));
  assert.equal(c.status, 'warn');
  assert.equal(c.ok, true);
  assert.equal(c.fix, ADD);
  assert.match(c.found, /tcg/);
});

test('kvmVerdict: added to the group after logging in: log in again', () => {
  const c = kvmVerdict(kvm({ userInDeviceGroup: true }));
  assert.equal(c.status, 'warn');
  assert.match(c.fix, /log in again/);
  assert.doesNotMatch(c.fix, /usermod/);
});

test('kvmVerdict: a device no group may use (0600 root:root) says make it 0660 kvm, then join', () => {
  const c = kvmVerdict(kvm({ device: { mode: 0o20600, gid: 0, groupName: 'root' } }));
  assert.equal(c.status, 'warn');
  assert.match(c.found, /mode 600, group root/);
  assert.match(c.fix, /chgrp kvm \/dev\/kvm && sudo chmod 660 \/dev\/kvm/);
  assert.ok(c.fix.endsWith(ADD));
});

test('kvmVerdict: another group owns it: that group is named', () => {
  assert.match(kvmVerdict(kvm({ device: { mode: 0o20660, gid: 50, groupName: 'hypervisor' } })).fix, /sudo usermod -aG hypervisor \$USER/);
});

test('kvmVerdict: no /dev/kvm is a warning naming the modules', () => {
  const c = kvmVerdict(kvm({ device: null }));
  assert.equal(c.status, 'warn');
  assert.match(c.fix, /kvm_intel or kvm_amd/);
});

const reach = (o: Partial<ReachFacts>): ReachFacts => ({
  uid: 1001,
  buildDir: '/home/u/.vibebox/images',
  chain: [{ path: '/', mode: 0o40755 }, { path: '/home', mode: 0o40755 }, { path: '/home/u', mode: 0o40755 }],
  newDirsSearchable: true,
  probe: { ok: true, detail: '' },
  ...o,
});
test("reachVerdict: a build dir others may search is ok; one behind a 0700 dir is missing, naming it", () => {
  assert.equal(reachVerdict(reach({})).status, 'ok');
  const c = reachVerdict(reach({ chain: [{ path: '/', mode: 0o40755 }, { path: '/home', mode: 0o40755 }, { path: '/home/u', mode: 0o40700 }], probe: { ok: false, detail: "sh: 1: cd: can't cd to /home/u" } }));
  assert.equal(c.status, 'missing');
  assert.match(c.found, /cannot reach \/home\/u\/\.vibebox\/images: \/home\/u not searchable by others/);
  assert.match(c.fix, /^chmod o\+x \/home\/u /);
  assert.match(c.fix, /VIBEBOX_BUILD_TMPDIR/);
  // 0750 (Ubuntu's default home) stops it too; 0711 lets it pass.
  assert.equal(reachVerdict(reach({ chain: [{ path: '/home/u', mode: 0o40750 }], probe: null })).status, 'missing');
  assert.equal(reachVerdict(reach({ chain: [{ path: '/home/u', mode: 0o40711 }], probe: null })).status, 'ok');
});

test('reachVerdict: the live try decides over the modes (an ACL may allow, an LSM may deny)', () => {
  assert.equal(reachVerdict(reach({ chain: [{ path: '/home/u', mode: 0o40700 }] })).status, 'ok');
  const c = reachVerdict(reach({ probe: { ok: false, detail: 'E: unshared command failed' } }));
  assert.equal(c.status, 'missing');
  assert.match(c.found, /cannot enter \/home\/u: E: unshared command failed/);
});

test('reachVerdict: a umask that makes new directories unsearchable; root needs nothing', () => {
  const c = reachVerdict(reach({ newDirsSearchable: false }));
  assert.equal(c.status, 'missing');
  assert.match(c.fix, /mkdir -p -m 0755 \/home\/u\/\.vibebox\/images/);
  assert.equal(reachVerdict(reach({ newDirsSearchable: false, chain: [...reach({}).chain, { path: '/home/u/.vibebox', mode: 0o40755 }, { path: '/home/u/.vibebox/images', mode: 0o40755 }] })).status, 'ok');
  assert.equal(reachVerdict(reach({ uid: 0, probe: { ok: false, detail: 'x' } })).status, 'ok');
});
