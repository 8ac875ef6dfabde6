// The supervisor against guest input and bad knobs: a fake QEMU (test/fixtures/fake-qemu.mjs)
// plays an agent of another protocol; the rest boots the real image under QEMU.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn as ptySpawn } from 'node-pty';
import WebSocket from 'ws';
import { bootedSession, CLI, pidsMatching, sh, spawnVb, testEnv, until, vb, type TestEnv } from '../helpers/vm.js';
import { readPid } from '../../qemu/pidfile.js';
import { runPaths } from '../../src/paths.js';
import { PROTOCOL_VERSION } from '../../guest/protocol.js';

const FAKE_QEMU = fileURLToPath(new URL('../fixtures/fake-qemu.mjs', import.meta.url));

describe('supervisor start-up', () => {
  let t: TestEnv;
  before(() => {
    t = testEnv({ VIBEBOX_ACCEL: 'tcg' });
  });
  after(() => t.cleanup());

  it('VIBEBOX_BOOT_TIMEOUT_MS=2m is one line and exit 2, before anything starts', async () => {
    const proj = t.project('bad-knob');
    const r = await vb(t, proj, ['exec', '--', 'true'], { env: { VIBEBOX_BOOT_TIMEOUT_MS: '2m' }, timeoutMs: 60_000 });
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /^vibebox: VIBEBOX_BOOT_TIMEOUT_MS=2m is not a number of milliseconds \(/);
    assert.equal(pidsMatching(t.home, 'qemu-system').length, 0);
  });

  it('an agent of another protocol is one line saying what to do, not a boot timeout', async () => {
    const proj = t.project('old-agent');
    const t0 = Date.now();
    const r = await vb(t, proj, ['exec', '--', 'true'], { env: { VIBEBOX_QEMU: FAKE_QEMU, FAKE_AGENT: 'old-protocol', VIBEBOX_BOOT_TIMEOUT_MS: '90000' }, timeoutMs: 120_000 });
    assert.equal(r.code, 1, r.stderr);
    assert.ok(Date.now() - t0 < 45_000, `took ${Date.now() - t0} ms`);
    // Progress lines (created…, booting…) may come first; the error is one line.
    assert.equal(r.stderr.split('\n').filter((l) => l.startsWith('vibebox:')).length, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`protocol 0, this vibebox speaks ${PROTOCOL_VERSION} \\(start a fresh session`));
    assert.match(r.stderr, /vibebox image build/);
  });

  it('a VM that dies during boot says why in the error (QEMU\'s last line or the console\'s), not only an exit code', async () => {
    // A CI run once saw "the VM exited during boot (code 0)" and nothing else once its logs were gone.
    const proj = t.project('dies');
    const c = spawnVb(t, proj, ['exec', '--', 'true']);
    let stderr = '';
    c.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = new Promise<number | null>((r) => c.on('close', r));
    let qemu: number[] = [];
    // Once QEMU catches SIGTERM (its handlers installed), a SIGTERM is an orderly exit 0 with a last word.
    const catchesTerm = (pid: number) => (BigInt(`0x${/SigCgt:\s+([0-9a-f]+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '0'}`) & (1n << 14n)) !== 0n;
    await until(() => (qemu = pidsMatching(t.home, 'qemu-system')).length === 1 && catchesTerm(qemu[0]!), 60_000, 'QEMU to start');
    process.kill(qemu[0]!, 'SIGTERM');
    assert.equal(await code, 1, stderr);
    assert.match(stderr, /the VM exited during boot \(code 0: .*terminating on signal 15/, stderr);
    assert.equal(stderr.split('\n').filter((l) => l.startsWith('vibebox:')).length, 1, stderr);
  });
});

const sessionId = (proj: string) => /^id = "(.+)"$/m.exec(readFileSync(join(proj, '.vibebox', 'session.toml'), 'utf8'))![1]!;
const rssKiB = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);

describe('a session under guest input', () => {
  let t: TestEnv;
  let proj: string;
  before(async () => {
    ({ t, proj } = await bootedSession('guest-input'));
  });
  after(() => t.cleanup());

  it('a command that is not found exits 127, one that cannot run 126, with or without a terminal', async () => {
    const nf = await vb(t, proj, ['exec', '--', 'no-such-command-vb']);
    assert.equal(nf.code, 127, nf.stderr);
    assert.match(nf.stderr, /^vibebox: no-such-command-vb: command not found\n$/);
    const ne = await vb(t, proj, ['exec', '--', '/etc/hostname']);
    assert.equal(ne.code, 126, ne.stderr);
    const tty = await vb(t, proj, ['exec', '-t', '--', 'no-such-command-vb']);
    assert.equal(tty.code, 127, tty.stderr);
    assert.equal((await vb(t, proj, ['exec', '--', 'sh', '-c', 'exit 3'])).code, 3);
  });

  it('a guest flooding stdout to a client that does not read grows neither the supervisor nor the client', async () => {
    const sup = readPid(runPaths(sessionId(proj), t.home).supervisorPid)!;
    const sample = async (ms: number, pids: () => number[]) => {
      const peak = new Map<number, number>();
      for (const t0 = Date.now(); Date.now() - t0 < ms; ) {
        await new Promise((r) => setTimeout(r, 500));
        for (const p of pids()) peak.set(p, Math.max(peak.get(p) ?? 0, rssKiB(p)));
      }
      return peak;
    };
    // 1. A ws client that asks for `yes` and never reads its socket.
    const base = rssKiB(sup);
    const ws = new WebSocket(`ws+unix://${runPaths(sessionId(proj), t.home).supervisorSock}:/`, { perMessageDeflate: false });
    await new Promise((r) => ws.once('open', r));
    (ws as unknown as { _socket: { pause(): void } })._socket.pause();
    ws.send(JSON.stringify({ type: 'exec', tty: false, argv: ['yes', 'flood-line-flood-line-flood-line'] }));
    const p1 = await sample(20_000, () => [sup]);
    ws.terminate();
    process.stderr.write(`non-reading ws client: supervisor RSS ${base} KiB before, peak ${p1.get(sup)} KiB\n`);
    assert.ok(p1.get(sup)! - base < 64 * 1024, `the supervisor grew by ${p1.get(sup)! - base} KiB`);
    // 2. The CLI with a stdout pipe nobody reads: the client stops reading, so does everyone upstream.
    const c = spawnVb(t, proj, ['exec', '--', 'yes', 'flood-line-flood-line-flood-line']);
    try {
      const p2 = await sample(20_000, () => [sup, ...(c.pid ? [c.pid] : [])]);
      process.stderr.write(`non-reading CLI: supervisor peak ${p2.get(sup)} KiB, client peak ${p2.get(c.pid!)} KiB\n`);
      assert.ok(p2.get(sup)! - base < 64 * 1024, `the supervisor grew by ${p2.get(sup)! - base} KiB`);
      assert.ok(p2.get(c.pid!)! < 200 * 1024, `the client reached ${p2.get(c.pid!)} KiB`);
    } finally {
      c.kill('SIGKILL');
    }
    // Once the slow readers are gone, the channel resumes: the session still answers.
    const r = await sh(t, proj, 'echo still-here');
    assert.equal(r.stdout, 'still-here\n', r.stderr);
  });

  it(':exit naming another client\'s exec ends only the requester, never that client', async () => {
    const other = spawnVb(t, proj, ['exec', '--', 'sh', '-c', 'sleep 25; echo survived']);
    let out = '';
    other.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const otherExit = new Promise<number | null>((r) => other.on('close', (c) => r(c)));
    try {
      await until(async () => (await sh(t, proj, 'pgrep -x sleep')).code === 0, 60_000, 'the other client\'s sleep');
      const forged = await sh(t, proj, [
        'pid=$(pgrep -x sleep | head -n1)',
        "victim=$(tr '\\0' '\\n' < /proc/$pid/environ | sed -n 's/^VIBEBOX_EXEC_ID=//p')",
        'test -n "$victim" || exit 9',
        'VIBEBOX_EXEC_ID=$victim :exit',
        'sleep 20; echo not-reached',
      ].join('; '));
      assert.notEqual(forged.code, 9, 'found the victim exec id');
      assert.doesNotMatch(forged.stdout, /not-reached/);
      assert.equal(await otherExit, 0);
      assert.equal(out, 'survived\n');
    } finally {
      other.kill('SIGKILL');
    }
  });

  it('vibebox logs shows no escape sequence the guest wrote to its console', async () => {
    const w = await vb(t, proj, ['exec', '-u', 'root', '--', 'sh', '-c', "printf 'console-mark \\033]0;pwned\\007\\033[2J end\\n' > /dev/ttyS0"]);
    assert.equal(w.code, 0, w.stderr);
    await until(() => readFileSync(join(proj, '.vibebox', 'serial.log'), 'utf8').includes('console-mark'), 30_000, 'the console line');
    const r = await vb(t, proj, ['logs', 'serial']);
    assert.equal(r.code, 0, r.stderr);
    const line = r.stdout.split('\n').find((l) => l.includes('console-mark'))!;
    assert.equal(line, 'console-mark  end');
    assert.doesNotMatch(r.stdout, /\x1b/);
  });

  it(':new from a process that runs in no exec (no VIBEBOX_EXEC_ID, or a daemon left by an ended one) deletes nothing', async () => {
    const id = sessionId(proj);
    const bootId = async () => (await sh(t, proj, 'cat /proc/sys/kernel/random/boot_id')).stdout;
    const boot = await bootId();
    // The request names no exec: the agent passes it on with none.
    const r = await sh(t, proj, 'echo y | env -u VIBEBOX_EXEC_ID :new; echo "rc=$?"');
    assert.match(r.stdout, /rc=1/, r.stderr);
    assert.match(r.stdout, /:new works in a vibebox shell/, r.stderr);
    // A daemon started by an exec that has ended since: its exec id is no client's any more.
    const d = await sh(t, proj, "setsid sh -c 'sleep 2; echo y | :new >/tmp/daemon-new.out 2>&1; echo rc=$? >>/tmp/daemon-new.out' </dev/null >/dev/null 2>&1 & echo started");
    assert.equal(d.stdout, 'started\n', d.stderr);
    await until(async () => /rc=/.test((await sh(t, proj, 'cat /tmp/daemon-new.out 2>/dev/null')).stdout), 60_000, "the daemon's :new");
    assert.match((await sh(t, proj, 'cat /tmp/daemon-new.out')).stdout, /rc=1/);
    assert.equal(sessionId(proj), id);
    assert.equal(await bootId(), boot, 'the same VM: the session was not replaced');
  });

  it('after a guest-requested :new, a widened vibebox.toml is refused with "run vibebox approve", never a y/N prompt', async () => {
    const id = sessionId(proj);
    const term = ptySpawn(process.execPath, [CLI], { cwd: proj, env: t.env as Record<string, string>, cols: 100, rows: 30 });
    let out = '';
    term.onData((d) => (out += d));
    const exited = new Promise<number>((r) => term.onExit((e) => r(e.exitCode)));
    try {
      await until(() => /vibe@|\$ $/.test(out), 60_000, 'the first prompt');
      // The guest widens its config, prints a fake host prompt, and asks for :new.
      term.write(`sed -i 's/^entries = \\[/entries = [ "example.com",/' /workspace/vibebox.toml; :new\r`);
      await until(() => /\[y\/N\]/.test(out), 30_000, 'the :new question');
      term.write('y\r');
      // Type-ahead the user might send, thinking the guest's fake prompt is the host's.
      term.write('y\r');
      const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('no exit within 180 s'), 180_000))]);
      const after = out.slice(out.lastIndexOf('[y/N]') + 5);
      assert.equal(code, 2, out);
      assert.match(after, /vibebox approve/, out);
      assert.doesNotMatch(after, /Apply these changes\?/, out);
    } finally {
      term.kill();
    }
    assert.notEqual(existsSync(join(proj, '.vibebox', 'session.toml')) ? sessionId(proj) : null, id);
  });
});

describe('a mount source deleted while the VM boots', () => {
  let t: TestEnv;
  after(() => t.cleanup());

  it('costs at most that mount, never the supervisor', async () => {
    t = testEnv();
    const proj = t.project('vanishing');
    mkdirSync(join(proj, 'data'));
    writeFileSync(join(proj, 'data', 'f'), 'x');
    writeFileSync(join(proj, 'vibebox.toml'), '[[mounts]]\nhost = "./data"\nguest = "/mnt/data"\nmode = "rw"\n');
    assert.equal((await vb(t, proj, ['approve', '--yes'])).code, 0);
    const c = vb(t, proj, ['exec', '--', 'echo', 'booted']);
    // Once the guest runs (its console speaks: QEMU has its file servers), before its hello, the source goes.
    const serial = join(proj, '.vibebox', 'serial.log');
    await until(() => existsSync(serial) && statSync(serial).size > 0, 60_000, 'the guest console');
    rmSync(join(proj, 'data'), { recursive: true, force: true });
    const r = await c;
    assert.doesNotMatch(r.stderr, /lost the connection/, r.stderr);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'booted\n');
    const log = readFileSync(join(proj, '.vibebox', 'supervisor.log'), 'utf8');
    assert.doesNotMatch(log, /ENOENT[\s\S]*at /, 'no stack trace in the supervisor log');
  });
});
