// Suspend and resume: real QEMU (TCG here), the real image, the built CLI. One project
// for the file: booted once, then suspended by its auto-shutdown and resumed, then made stale,
// corrupted and stopped, each time looking at what the next start does.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, openSync, readFileSync, readdirSync, statSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { pidsMatching, testEnv, until, vb, type TestEnv } from '../helpers/vm.js';

const BOOT_ID = 'cat /proc/sys/kernel/random/boot_id';

describe('a suspended session', () => {
  let t: TestEnv;
  let proj: string;
  let state: string;
  let bootMs = 0;
  const records = () => (existsSync(join(t.home, 'suspended')) ? readdirSync(join(t.home, 'suspended')) : []);
  const running = () => pidsMatching(t.home, 'qemu-system').length > 0;
  /** The auto-shutdown (2 s after the last client) has saved the VM and QEMU is gone. */
  const suspended = () => until(() => !running() && existsSync(state) && records().length === 1, 180_000, 'the auto-shutdown to save the VM');
  const bootId = async () => {
    const r = await vb(t, proj, ['exec', '--', 'sh', '-c', BOOT_ID]);
    assert.equal(r.code, 0, r.stderr);
    return { id: r.stdout.trim(), stderr: r.stderr };
  };

  before(async () => {
    // The grace comes from vibebox.toml here, not from the test default of 10 minutes.
    t = testEnv({ VIBEBOX_AUTO_SHUTDOWN_MS: undefined });
    proj = t.project('suspend');
    state = join(proj, '.vibebox', 'saved-state');
    writeFileSync(join(proj, 'vibebox.toml'), '[session]\nauto_shutdown_ms = 2000\n');
  });
  after(() => t.cleanup());

  it('resumes with its processes, its disk, its shares and the right clock, faster than a boot', async () => {
    const t0 = Date.now();
    writeFileSync(join(proj, 'held.txt'), 'held\n');
    // The sleep holds a file under /workspace open and has it as its working directory.
    const first = await vb(t, proj, ['exec', '--', 'sh', '-c', `${BOOT_ID}; setsid sh -c 'exec 3</workspace/held.txt; exec sleep 1000' >/dev/null 2>&1 & echo $! ; echo kept > /home/vibe/marker; sync`]);
    bootMs = Date.now() - t0;
    assert.equal(first.code, 0, first.stderr);
    const [boot, sleepPid] = first.stdout.trim().split('\n');
    await suspended();
    // Guest RAM (keys included), the disk and the logs are this user's alone, whatever the umask
    // of the test user (written 0600 from their first byte: test/unit/session-modes.test.ts).
    const modeOf = (f: string) => `0${(statSync(f).mode & 0o777).toString(8)}`;
    assert.equal(modeOf(join(proj, '.vibebox')), '0700');
    for (const f of ['saved-state', 'saved-state.ram', 'disk.qcow2', 'session.toml', 'supervisor.log', 'serial.log', 'egress.log']) {
      const path = join(proj, '.vibebox', f);
      if (f === 'egress.log' && !existsSync(path)) continue; // only once the guest went out
      assert.equal(modeOf(path), '0600', f);
    }
    assert.equal(modeOf(t.home), '0700');
    const saved = statSync(state).size + statSync(`${state}.ram`).size;
    assert.ok(statSync(`${state}.ram`).size > 0, 'the guest RAM is saved beside the device state');

    writeFileSync(join(proj, 'from-host.txt'), 'host\n');
    const t1 = Date.now();
    const r = await vb(t, proj, ['exec', '--', 'sh', '-c', `${BOOT_ID}; kill -0 ${sleepPid} && echo alive; cat /home/vibe/marker; date +%s%3N; cat /workspace/from-host.txt; echo guest > /workspace/from-guest.txt; cat /proc/${sleepPid}/fd/3 >&2; ls /proc/${sleepPid}/cwd/ >&2; cat /workspace/held.txt >&2`]);
    const t2 = Date.now();
    assert.equal(r.code, 0, r.stderr);
    const [id, alive, marker, guestMs, fromHost] = r.stdout.trim().split('\n');
    assert.equal(id, boot, 'the same boot: the VM was resumed, not booted');
    assert.equal(alive, 'alive', 'the sleep started before the suspend still runs');
    assert.equal(marker, 'kept');
    assert.equal(fromHost, 'host');
    assert.equal(readFileSync(join(proj, 'from-guest.txt'), 'utf8'), 'guest\n');
    const g = Number(guestMs);
    assert.ok(g >= t1 - 2000 && g <= t2 + 2000, `guest clock ${g} within 2 s of the host's (${t1}–${t2})`);
    assert.match(r.stderr, /resuming the VM/);
    // What README says a process with a file open under /workspace sees: its old descriptor and
    // working directory are dead (the share was detached lazily), a fresh open works.
    assert.match(r.stderr, /cat: \/proc\/\d+\/fd\/3: Transport endpoint is not connected/);
    assert.match(r.stderr, /ls: .*Transport endpoint is not connected/);
    assert.match(r.stderr, /^held$/m);
    assert.doesNotMatch(r.stderr, /booting/);
    assert.ok(t2 - t1 < bootMs, `resume ${t2 - t1} ms < boot ${bootMs} ms`);
    // A resumed state is used up: a crash now must not resume it against a changed disk.
    assert.equal(existsSync(state), false);
    assert.deepEqual(records(), []);
    process.stderr.write(`suspend test: first start ${bootMs} ms, resume ${t2 - t1} ms, saved state ${(saved / 1e6).toFixed(1)} MB\n`);
  });

  it('boots when the saved state is stale (vibebox.toml changed) and drops it', async () => {
    const before = (await bootId()).id; // the resumed VM; its auto-shutdown saves it again
    await suspended();
    writeFileSync(join(proj, 'vibebox.toml'), '[session]\nauto_shutdown_ms = 2000\n[vm]\ncpus = 1\n');
    const r = await bootId();
    assert.notEqual(r.id, before, 'a new boot');
    assert.match(r.stderr, /booting the VM \([a-z]+; saved state not used: vibebox.toml changed\)/);
    assert.equal(existsSync(state), false);
    assert.equal(existsSync(`${state}.ram`), false);
  });

  it('boots when the saved state is corrupted: one progress line, the disk intact', async () => {
    const before = (await bootId()).id;
    await suspended();
    // Same size, other bytes: only the content check can tell.
    const ram = `${state}.ram`;
    const fd = openSync(ram, 'r+');
    writeSync(fd, Buffer.alloc(4096, 0x5a), 0, 4096, Math.floor(statSync(ram).size / 2));
    closeSync(fd);
    const r = await vb(t, proj, ['exec', '--', 'sh', '-c', `${BOOT_ID}; cat /home/vibe/marker`]);
    assert.equal(r.code, 0, r.stderr);
    const [id, marker] = r.stdout.trim().split('\n');
    assert.notEqual(id, before, 'a new boot');
    assert.equal(marker, 'kept', 'the disk is intact');
    const lines = r.stderr.split('\n').filter((l) => /VM/.test(l));
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, /booting the VM \([a-z]+; saved state not used: it could not be loaded/);
    assert.equal(existsSync(state), false);
  });

  it('`vibebox stop` leaves no saved state (and drops one a suspend left); the next start boots', async () => {
    const before = (await bootId()).id;
    const s = await vb(t, proj, ['stop', '--suspend']);
    assert.equal(s.code, 0, s.stderr);
    assert.match(s.stdout, /suspended session/);
    assert.ok(existsSync(state));
    const stop = await vb(t, proj, ['stop']);
    assert.equal(stop.code, 0, stop.stderr);
    assert.match(stop.stdout, /saved state is deleted/);
    assert.equal(existsSync(state), false);
    assert.deepEqual(records(), []);
    const r = await bootId();
    assert.notEqual(r.id, before);
    assert.match(r.stderr, /booting the VM/);
    const again = await vb(t, proj, ['stop']);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(existsSync(state), false, 'a clean stop saves nothing');
    assert.deepEqual(records(), []);
  });
});
