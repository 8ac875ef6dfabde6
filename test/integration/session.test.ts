// Sessions that run: real QEMU (TCG here), the real image, the built CLI.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn as ptySpawn } from 'node-pty';
import { CLI, bootedSession, pidsMatching, testEnv, until, vb, within, type TestEnv } from '../helpers/vm.js';

function qemuPids(t: TestEnv): number[] {
  return pidsMatching(t.home, 'qemu-system');
}

describe('a running session', () => {
  let t: TestEnv;
  let proj: string;
  before(async () => {
    ({ t, proj } = await bootedSession('shared'));
  });
  after(() => t.cleanup());

  it('returns output and exit codes', async () => {
    const r = await vb(t, proj, ['exec', '--', 'sh', '-c', 'echo out; echo err >&2; exit 7']);
    assert.equal(r.code, 7);
    assert.equal(r.stdout, 'out\n');
    assert.equal(r.stderr, 'err\n');
  });

  it('runs as vibe in /workspace, in a guest kernel that is not the host one', async () => {
    const r = await vb(t, proj, ['exec', '--', 'sh', '-c', 'id -un; pwd; uname -r']);
    assert.equal(r.code, 0, r.stderr);
    const [user, cwd, kernel] = r.stdout.trim().split('\n');
    assert.equal(user, 'vibe');
    assert.equal(cwd, '/workspace');
    assert.notEqual(kernel, (await import('node:os')).release());
  });

  it('pipes stdin through and closes it', async () => {
    const input = Array.from({ length: 2000 }, (_, i) => `line ${i}`).join('\n') + '\n';
    const r = await vb(t, proj, ['exec', '--', 'sh', '-c', 'wc -l; cat >/dev/null'], { input });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), '2000');
  });

  it('passes large output intact', async () => {
    const r = await vb(t, proj, ['exec', '--', 'sh', '-c', 'head -c 3000000 /dev/zero | tr "\\0" x']);
    assert.equal(r.code, 0);
    assert.equal(r.stdout.length, 3_000_000);
  });

  it('reports a missing command as a failure, not a hang', async () => {
    const r = await vb(t, proj, ['exec', '--', 'no-such-command-xyz']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /no-such-command-xyz/);
  });

  it('gives a PTY exec a terminal, and a resize reaches it', async () => {
    const term = ptySpawn(process.execPath, [CLI, 'exec', '-t', '--', 'sh', '-c', 'tty; stty size; read x; stty size'], {
      cwd: proj, env: t.env as Record<string, string>, cols: 100, rows: 30,
    });
    let out = '';
    term.onData((d) => (out += d));
    const exited = new Promise<number>((r) => term.onExit((e) => r(e.exitCode)));
    await until(() => /30 100/.test(out), 60_000, 'first stty size');
    assert.match(out, /\/dev\/pts\/\d+/);
    term.resize(120, 40);
    // The resize travels client → supervisor → agent; give it one round trip before reading.
    await until(async () => {
      const r = await vb(t, proj, ['exec', '--', 'true']);
      return r.code === 0;
    }, 30_000, 'a round trip');
    term.write('\r');
    assert.equal(await within(exited, 60_000, 'the PTY command to exit'), 0);
    assert.match(out, /40 120/);
  });

  it('`vibebox` alone opens a login shell as vibe in /workspace and returns its exit code', async () => {
    const term = ptySpawn(process.execPath, [CLI], { cwd: proj, env: t.env as Record<string, string>, cols: 80, rows: 24 });
    let out = '';
    term.onData((d) => (out += d));
    const exited = new Promise<number>((r) => term.onExit((e) => r(e.exitCode)));
    // Type only once the shell prompts: input sent before the terminal is attached may be lost.
    await until(() => /vibe@vibebox:\/workspace\$ $/.test(out.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')), 120_000, 'the shell prompt');
    term.write('echo "who=$(id -un) where=$(pwd) tty=$(tty)"; exit 3\r');
    assert.equal(await within(exited, 60_000, 'the shell to exit'), 3);
    assert.match(out, /who=vibe where=\/workspace tty=\/dev\/pts\/\d+/);
  });

  it('starts the Docker engine the first time `docker` is used, reachable as vibe', async () => {
    const before = await vb(t, proj, ['exec', '--', 'sh', '-c', 'test -S /run/docker.sock && echo up || echo down']);
    assert.equal(before.stdout, 'down\n', 'dockerd is not on the boot path');
    const r = await vb(t, proj, ['exec', '--', 'docker', 'version', '--format', '{{.Server.Version}}']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^\d+\.\d+/);
  });

  it('shares one VM between concurrent clients', async () => {
    const clients = [0, 1, 2].map(() => vb(t, proj, ['exec', '--', 'sh', '-c', 'sleep 2; echo done']));
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(qemuPids(t).length, 1);
    const list = await vb(t, proj, ['list', '--json']);
    const rows = JSON.parse(list.stdout) as { state: string; refs: number }[];
    assert.equal(rows[0]!.state, 'running');
    assert.ok(rows[0]!.refs >= 3, `refs ${rows[0]!.refs}`);
    for (const r of await Promise.all(clients)) assert.equal(r.stdout, 'done\n');
  });

  it('a copy of the running project is refused, never attached to the original VM', async () => {
    // `cp -r` carries .vibebox/session.toml (the running session's id) into another folder.
    const copy = `${proj}-copy`;
    cpSync(proj, copy, { recursive: true });
    writeFileSync(join(proj, 'only-in-original'), '');
    const r = await vb(t, copy, ['exec', '--', 'ls', '/workspace']);
    assert.equal(r.code, 2, `the copy attached: ${r.stdout}${r.stderr}`);
    assert.doesNotMatch(r.stdout, /only-in-original/);
    assert.match(r.stderr, /^vibebox: .*\.vibebox.*not made by vibebox for this folder/);
    assert.equal(qemuPids(t).length, 1);
  });
});

describe('auto-shutdown and resume', () => {
  let t: TestEnv;
  let proj: string;
  before(() => {
    // The grace period comes from vibebox.toml here (the env override is unset).
    t = testEnv({ VIBEBOX_AUTO_SHUTDOWN_MS: undefined });
    proj = t.project('idle');
    writeFileSync(join(proj, 'vibebox.toml'), '[session]\nauto_shutdown_ms = 4000\n');
  });
  after(() => t.cleanup());

  it('stops after the last client leaves, not before, and a client in the window cancels it', async () => {
    const first = await vb(t, proj, ['exec', '--', 'sh', '-c', 'echo hello > ~/kept.txt']);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(qemuPids(t).length, 1);
    // A client arriving inside the grace window keeps the VM.
    await new Promise((r) => setTimeout(r, 2500));
    const second = await vb(t, proj, ['exec', '--', 'sh', '-c', 'sleep 5']);
    assert.equal(second.code, 0);
    // 2.5 s + 5 s since the first client left: without the cancel it would have stopped.
    assert.equal(qemuPids(t).length, 1, 'VM stopped while a client was attached');
    await until(() => qemuPids(t).length === 0, 60_000, 'the VM to stop after the grace period');
    // QEMU gone is not yet stopped: the supervisor may still be writing the saved state.
    let state = '';
    await until(async () => {
      const list = await vb(t, proj, ['list', '--json']);
      state = (JSON.parse(list.stdout) as { state: string }[])[0]!.state;
      return state !== 'stopping';
    }, 60_000, 'the supervisor to finish stopping');
    assert.equal(state, 'stopped');
  });

  it('resumes the same disk, and a delete starts from a fresh one', async () => {
    const r = await vb(t, proj, ['exec', '--', 'cat', '/home/vibe/kept.txt']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'hello\n');
    const id = /^id = "(.+)"$/m.exec(readFileSync(join(proj, '.vibebox', 'session.toml'), 'utf8'))![1]!;
    const d = await vb(t, proj, ['delete', id.slice(0, 13), '-y']);
    assert.equal(d.code, 0, d.stderr);
    assert.equal(existsSync(join(proj, '.vibebox')), false);
    assert.equal(qemuPids(t).length, 0);
    const again = await vb(t, proj, ['exec', '--', 'sh', '-c', 'test -e /home/vibe/kept.txt && echo present || echo absent']);
    assert.equal(again.stdout, 'absent\n');
    const id2 = /^id = "(.+)"$/m.exec(readFileSync(join(proj, '.vibebox', 'session.toml'), 'utf8'))![1]!;
    assert.notEqual(id2, id);
  });
});

describe('two clients starting at once', () => {
  let t: TestEnv;
  before(() => (t = testEnv()));
  after(() => t.cleanup());
  it('get exactly one VM', async () => {
    const proj = t.project('race');
    const rs = await Promise.all([0, 1, 2, 3].map(() => vb(t, proj, ['exec', '--', 'cat', '/proc/sys/kernel/random/boot_id'])));
    for (const r of rs) assert.equal(r.code, 0, r.stderr);
    assert.equal(new Set(rs.map((r) => r.stdout)).size, 1, 'all clients saw the same boot');
    assert.equal(qemuPids(t).length, 1);
  });
});
