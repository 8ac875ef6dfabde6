// Agents installed once per machine, end to end: real QEMU (TCG here), real Docker in the VM, the
// real egress proxy, the real npm registry fetched by the host's npm. The agent is copilot, the
// smallest bundled one that runs from the store (17 files, ~190 MB): the registry has no test
// package of ours to use instead. Two projects, one VM at a time: the first fetches, the second
// (its registry denied) runs the same copy; neither VM can change it; a copy changed on the host
// is refused until `vibebox update` fetches it again.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { egressLog, testEnv, vb, type EgressLine, type TestEnv } from '../helpers/vm.js';

const LONG = { timeoutMs: 900_000 };
/** The VM's egress decisions; none yet when it never used the proxy. */
const egress = (proj: string): EgressLine[] => (existsSync(join(proj, '.vibebox', 'egress.log')) ? egressLog(proj) : []);

describe('the host\'s agent store', () => {
  let t: TestEnv;
  let first: string;
  let second: string;
  let version = '';
  before(() => {
    t = testEnv();
    first = t.project('first');
    second = t.project('second');
  });
  after(() => t?.cleanup());

  const treeDir = () => {
    const dirs = readdirSync(join(t.home, 'agents/trees/copilot')).filter((n) => n !== 'current');
    assert.equal(dirs.length, 1, dirs.join(' '));
    return join(t.home, 'agents/trees/copilot', dirs[0]!);
  };

  it('the first project\'s first run fetches the agent on the host, once, into a private store; it runs in the container', { timeout: 1_200_000 }, async () => {
    const t0 = Date.now();
    const r = await vb(t, first, ['run', 'copilot', '--version'], LONG);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /fetching copilot [\d.]+ \(@github\/copilot\) on the host/);
    assert.doesNotMatch(r.stderr, /installing copilot/);
    const m = /GitHub Copilot CLI (\d+(?:\.\d+)+)/.exec(r.stdout);
    assert.ok(m, r.stdout);
    version = m[1]!;
    // The VM fetched nothing: the registry was not asked through its proxy.
    assert.ok(!egress(first).some((l) => l.host === 'registry.npmjs.org'), 'the VM reached the registry');
    // Private to the user on the host; inside, readable by all (root in the container has no override).
    assert.equal(statSync(join(t.home, 'agents')).mode & 0o777, 0o700);
    assert.equal(statSync(join(t.home, 'agents/trees')).mode & 0o777, 0o755);
    assert.equal(statSync(join(t.home, 'agents/records/copilot.json')).mode & 0o777, 0o600);
    assert.match(readFileSync(join(t.home, 'agents/trees/copilot/current'), 'utf8'), new RegExp(`^version=${version.replaceAll('.', '\\.')}\n`));
    treeDir();
    process.stderr.write(`first project, first run with the host's fetch: ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
    // vibebox agents lists the store's version.
    const list = await vb(t, first, ['agents', '--json'], LONG);
    assert.equal(list.code, 0, list.stderr);
    const rows = JSON.parse(list.stdout) as { name: string; version: string | null }[];
    assert.equal(rows.find((x) => x.name === 'copilot')?.version, version);
  });

  it('no VM can write the shared copy: root in the VM and in the container get a read-only file system', { timeout: 600_000 }, async () => {
    const vm = await vb(t, first, ['exec', '--user', 'root', '--', 'sh', '-c', 'for f in /opt/vibebox-agents/copilot/current /opt/vibebox-agents/copilot/*/node_modules/.bin/copilot; do echo x >> "$f" && echo WROTE; done; touch /opt/vibebox-agents/new 2>&1 || true; mount | grep -c " /opt/vibebox-agents type virtiofs (ro"'], LONG);
    assert.doesNotMatch(vm.stdout, /WROTE/, vm.stdout + vm.stderr);
    assert.match(vm.stdout + vm.stderr, /Read-only file system/);
    assert.equal(vm.stdout.trim().split('\n').pop(), '1', vm.stdout);
    const c = await vb(t, first, ['run', '--root', '--', 'sh', '-c', 'echo x >> /opt/vibebox-agents/copilot/current && echo WROTE; rm -rf /opt/vibebox-agents/copilot 2>&1; ls /opt/vibebox-agents/copilot | grep -c current'], LONG);
    assert.doesNotMatch(c.stdout, /WROTE/, c.stdout + c.stderr);
    assert.match(c.stdout + c.stderr, /Read-only file system/);
    assert.equal(c.stdout.trim().split('\n').pop(), '1');
    // Still the copy that was fetched: the host's check passes and it runs.
    const again = await vb(t, first, ['run', 'copilot', '--version'], LONG);
    assert.equal(again.code, 0, again.stderr);
    assert.doesNotMatch(again.stderr, /fetching|installing/);
    const stop = await vb(t, first, ['stop'], LONG);
    assert.equal(stop.code, 0, stop.stderr);
  });

  it('a second project, its registry denied, runs the same copy without any download', { timeout: 1_200_000 }, async () => {
    const deny = await vb(t, second, ['deny', '.npmjs.org:443']);
    assert.equal(deny.code, 0, deny.stderr);
    const t0 = Date.now();
    const r = await vb(t, second, ['run', 'copilot', '--version'], LONG);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /fetching|installing/);
    assert.match(r.stdout, new RegExp(`GitHub Copilot CLI ${version.replaceAll('.', '\\.')}`));
    process.stderr.write(`second project, first agent run: ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
    // The registry really is closed to this VM.
    // An HTTPS request: the proxy answers the CONNECT with 451 (curl's http_connect).
    const probe = await vb(t, second, ['run', '--', 'curl', '-s', '-o', '/dev/null', '-w', '%{http_connect}', 'https://registry.npmjs.org/'], LONG);
    assert.equal(probe.stdout, '451', probe.stderr);
    assert.ok(!egress(second).some((l) => l.host === 'registry.npmjs.org' && l.decision === 'allow'));
  });

  it('a copy changed on the host is refused by its hash; vibebox update fetches it again', { timeout: 1_200_000 }, async () => {
    const dir = treeDir();
    const loader = join(dir, 'node_modules/@github/copilot/npm-loader.js');
    appendFileSync(loader, '\nconsole.log("tampered")\n');
    const r = await vb(t, second, ['run', 'copilot', '--version'], LONG);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^vibebox: the host's copy of copilot [\d.]+ changed since it was fetched \(node_modules\/@github\/copilot\/npm-loader\.js: size changed\); it is not run \(vibebox update copilot fetches it again\)$/m);
    assert.doesNotMatch(r.stdout, /tampered/);
    const u = await vb(t, second, ['update', 'copilot'], LONG);
    assert.equal(u.code, 0, u.stderr);
    assert.match(u.stderr, /changed since it was fetched; fetching it again/);
    assert.doesNotMatch(readFileSync(loader, 'utf8'), /tampered/);
    const ok = await vb(t, second, ['run', 'copilot', '--version'], LONG);
    assert.equal(ok.code, 0, ok.stderr);
    assert.doesNotMatch(ok.stdout, /tampered/);
    // Already the newest and intact: nothing changes, and it says so.
    const same = await vb(t, second, ['update', 'copilot'], LONG);
    assert.equal(same.code, 0, same.stderr);
    assert.match(same.stderr, /copilot is at the newest version, [\d.]+ \(nothing changed\)/);
  });
});
