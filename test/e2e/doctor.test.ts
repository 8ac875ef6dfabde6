// `vibebox doctor` as an ordinary user tells the truth about what that user's first run needs:
// each user-specific verdict is compared with what actually happens when that user tries it.
// As root the test runs doctor as an unprivileged user (VIBEBOX_TEST_USER, else `dev`, else
// `vibebox-ci`) through runuser; as anyone else, as itself (how CI runs the e2e suite).
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CLI, ROOT } from '../helpers/vm.js';
import { account, type Account } from '../helpers/account.js';
import { asUserArgv } from '../run-plan.js';

interface Row {
  name: string;
  ok: boolean;
  status: 'ok' | 'warn' | 'missing';
  found: string;
  fix: string;
}


const isRoot = process.getuid?.() === 0;
const me = account(spawnSync('id', ['-un'], { encoding: 'utf8' }).stdout.trim());
const target: Account | null = isRoot
  ? [process.env['VIBEBOX_TEST_USER'], 'dev', 'vibebox-ci'].map((n) => (n ? account(n) : null)).find((a) => a !== null && a.uid !== 0) ?? null
  : me;

/** Run a command as the target user (runuser when we are root), with a clean environment. */
function asTarget(cmd: string[], env: Record<string, string> = {}): SpawnSyncReturns<string> {
  const a = target!;
  const base = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: a.home, USER: a.name, LOGNAME: a.name, TMPDIR: process.env['TMPDIR'] ?? '/tmp', ...env };
  const argv = isRoot ? asUserArgv(a.name, base, cmd) : cmd;
  return spawnSync(argv[0]!, argv.slice(1), { cwd: ROOT, encoding: 'utf8', timeout: 60_000, env: isRoot ? { PATH: base.PATH } : { ...process.env, ...base } });
}

const succeeds = (cmd: string[]) => asTarget(cmd).status === 0;

describe('vibebox doctor as an ordinary user', { skip: target ? false : 'no unprivileged user to run as (set VIBEBOX_TEST_USER)' }, () => {
  let home: string;
  let rows: Row[];
  let status: number | null;
  const row = (name: string): Row => {
    const r = rows.find((x) => x.name === name);
    assert.ok(r, `a ${name} row in ${JSON.stringify(rows)}`);
    return r;
  };

  before(() => {
    home = mkdtempSync(join(tmpdir(), 'vbt-doctor-'));
    if (isRoot) chownSync(home, target!.uid, target!.gid);
    const r = asTarget([process.execPath, CLI, 'doctor', '--json'], { VIBEBOX_HOME: home });
    status = r.status;
    assert.ok(r.status === 0 || r.status === 1, `doctor ran as ${target!.name}: ${r.status} ${r.stderr}`);
    rows = JSON.parse(r.stdout) as Row[];
  });
  after(() => rmSync(home, { recursive: true, force: true }));

  it('runs as that user', () => {
    assert.notEqual(target!.uid, 0);
    assert.equal(asTarget(['id', '-u']).stdout.trim(), String(target!.uid));
    assert.equal(status, rows.some((r) => r.status === 'missing') ? 1 : 0, 'exit 1 exactly when something is missing');
  });

  it('user namespaces: ok exactly when the user can create one', () => {
    const works = succeeds(['unshare', '--user', '--map-root-user', 'true']);
    assert.equal(row('user namespaces').status, works ? 'ok' : 'missing', JSON.stringify(row('user namespaces')));
  });

  it('subuid and subgid: ok exactly when the file has a line with the user name and 65536 ids', () => {
    for (const kind of ['subuid', 'subgid'] as const) {
      let has = false;
      try {
        const line = readFileSync(`/etc/${kind}`, 'utf8').split('\n').find((l) => l.split(':')[0] === target!.name);
        has = line !== undefined && Number(line.split(':')[2]) >= 65536;
      } catch {
        /* no file */
      }
      const r = row(kind);
      assert.equal(r.status, has ? 'ok' : 'missing', JSON.stringify(r));
      if (has) assert.match(r.found, new RegExp(`^${target!.name}:\\d+-\\d+$`));
      else assert.match(r.fix, new RegExp(`^sudo usermod --add-subuids \\d+-\\d+ --add-subgids \\d+-\\d+ ${target!.name}$`));
    }
  });

  it('uidmap: ok exactly when the user can map its subordinate ids (what mmdebstrap does)', () => {
    const maps = succeeds(['unshare', '--user', '--map-root-user', '--map-auto', 'true']);
    const r = row('uidmap');
    assert.equal(r.status, maps ? 'ok' : 'missing', JSON.stringify(r));
    if (maps) {
      // The mapping really gives the namespace the user's 65536 ids.
      const map = asTarget(['unshare', '--user', '--map-root-user', '--map-auto', 'cat', '/proc/self/uid_map']).stdout;
      assert.match(map, /^\s*1\s+\d+\s+65535\s*$/m, map);
    }
  });

  it('kvm: ok exactly with read-write /dev/kvm; otherwise a warning that says to join the kvm group, and tcg', () => {
    const rw = succeeds(['sh', '-c', 'test -r /dev/kvm && test -w /dev/kvm']);
    const exists = spawnSync('test', ['-e', '/dev/kvm']).status === 0;
    const r = row('kvm');
    assert.equal(r.status, rw ? 'ok' : 'warn', JSON.stringify(r));
    assert.equal(r.ok, true, 'no KVM is slow, not a failure');
    if (exists && !rw) {
      const inGroupDb = spawnSync('id', ['-nG', target!.name], { encoding: 'utf8' }).stdout.split(/\s+/).includes('kvm');
      if (!inGroupDb) assert.ok(r.fix.includes('add yourself to the kvm group (sudo usermod -aG kvm $USER, then log in again)') || /sudo usermod -aG \S+ \$USER/.test(r.fix), r.fix);
      assert.match(row('accelerator').found, /^tcg\b/);
    }
  });

  it("image build: a 0700 VIBEBOX_HOME is fine (the build works under /var/tmp); a build dir behind a 0700 directory is missing, as the real try says", () => {
    const reaches = (dir: string) => succeeds(['mmdebstrap', '--unshare-helper', 'sh', '-c', 'cd "$1"', 'sh', dir]);
    // The home is a fresh mkdtemp: mode 0700, like a home made by adduser on Debian 12.
    assert.equal(reaches(home), false, 'a subordinate uid cannot enter a 0700 directory');
    assert.equal(row('image build').status, reaches('/var/tmp') ? 'ok' : 'missing', JSON.stringify(row('image build')));
    // VIBEBOX_BUILD_TMPDIR inside the 0700 home: the namespace root cannot get there.
    const inside = join(home, 'build-tmp');
    asTarget(['mkdir', '-p', inside]);
    const blocked = (JSON.parse(asTarget([process.execPath, CLI, 'doctor', '--json'], { VIBEBOX_HOME: home, VIBEBOX_BUILD_TMPDIR: inside }).stdout) as Row[]).find((x) => x.name === 'image build')!;
    assert.equal(blocked.status, 'missing', JSON.stringify(blocked));
    assert.ok(blocked.fix.startsWith('chmod o+x ') && blocked.fix.split(' (')[0]!.split(' ').includes(home), `the fix opens ${home}: ${blocked.fix}`);
    assert.match(blocked.fix, /VIBEBOX_BUILD_TMPDIR/);
    chmodSync(home, 0o755);
    const again = (JSON.parse(asTarget([process.execPath, CLI, 'doctor', '--json'], { VIBEBOX_HOME: home, VIBEBOX_BUILD_TMPDIR: inside }).stdout) as Row[]).find((x) => x.name === 'image build')!;
    assert.equal(again.status, reaches(inside) ? 'ok' : 'missing', JSON.stringify(again));
  });

  it('without read-write /dev/kvm the accelerator is tcg with no probe (none can work)', { skip: succeeds(['sh', '-c', 'test -r /dev/kvm && test -w /dev/kvm']) ? 'this user has KVM' : false }, () => {
    // A kernel that does not exist: any probe would be tried (and recorded) and fail.
    const cache = join(home, 'accel-probe.json');
    const script = `import { probeAccel } from ${JSON.stringify(join(ROOT, 'qemu', 'accel.ts'))};
const t0 = Date.now(); const r = await probeAccel('/nonexistent/vmlinuz', ${JSON.stringify(cache)});
console.log(JSON.stringify({ ...r, ms: Date.now() - t0 }));`;
    const out = asTarget([process.execPath, '--import', 'tsx', '--input-type=module', '-e', script], { VIBEBOX_HOME: home });
    assert.equal(out.status, 0, out.stderr);
    const r = JSON.parse(out.stdout) as { accel: string; tried: unknown[]; ms: number };
    assert.equal(r.accel, 'tcg');
    assert.deepEqual(r.tried, [], 'no probe was run');
    assert.ok(r.ms < 1000, `decided in ${r.ms} ms`);
  });

  it('as root, the subordinate ids and uidmap are not needed', { skip: isRoot ? false : 'not root' }, () => {
    const r = spawnSync(process.execPath, [CLI, 'doctor', '--json'], { encoding: 'utf8', env: { ...process.env, VIBEBOX_HOME: home }, timeout: 60_000 });
    const rootRows = JSON.parse(r.stdout) as Row[];
    for (const name of ['subuid', 'subgid', 'uidmap']) assert.match(rootRows.find((x) => x.name === name)!.found, /not needed as root/);
  });
});
