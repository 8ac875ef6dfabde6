// Crash safety: a fixed-seed sequence of starting clients, killing clients, and killing the
// supervisor or QEMU with SIGKILL; afterwards one exec works, exactly one VM runs, the index is
// valid, the disk checks clean, and nothing is left running after a stop.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseIndex } from '../../src/session/index-file.js';
import { runPaths } from '../../src/paths.js';
import { checkDisk } from '../../qemu/disk.js';
import { qemuRunPaths } from '../../qemu/qemu-driver.js';
import { pidsMatching, spawnVb, testEnv, until, vb, type TestEnv } from '../helpers/vm.js';

function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a |= 0;
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const readPid = (f: string) => {
  try {
    return Number(readFileSync(f, 'utf8').trim()) || null;
  } catch {
    return null;
  }
};

describe('chaos', () => {
  let t: TestEnv;
  let proj: string;
  before(() => {
    t = testEnv({ VIBEBOX_AUTO_SHUTDOWN_MS: '3000' });
    proj = t.project('chaos');
  });
  after(() => t.cleanup());

  it('survives 30 random kills and starts, seed 20261122', async () => {
    const rand = mulberry32(20261122);
    const pick = <T,>(xs: T[]): T => xs[Math.floor(rand() * xs.length)]!;
    const first = await vb(t, proj, ['exec', '--', 'true']);
    assert.equal(first.code, 0, first.stderr);
    const id = /^id = "(.+)"$/m.exec(readFileSync(join(proj, '.vibebox', 'session.toml'), 'utf8'))![1]!;
    const rp = runPaths(id, t.home);
    const clients = new Set<ChildProcess>();
    const log: string[] = [];
    for (let step = 0; step < 30; step++) {
      const action = pick(['start', 'start', 'start', 'killClient', 'killSupervisor', 'killQemu', 'exec']);
      log.push(action);
      if (action === 'start') {
        const c = spawnVb(t, proj, ['exec', '--', 'sleep', String(1 + Math.floor(rand() * 4))]);
        c.stdin!.end();
        c.stdout!.resume();
        c.stderr!.resume();
        clients.add(c);
        c.on('exit', () => clients.delete(c));
      } else if (action === 'killClient' && clients.size > 0) {
        pick([...clients]).kill('SIGKILL');
      } else if (action === 'killSupervisor' || action === 'killQemu') {
        const pid = readPid(action === 'killQemu' ? qemuRunPaths(rp.dir).qemuPid : rp.supervisorPid);
        if (pid) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            /* already gone */
          }
        }
      } else if (action === 'exec') {
        await vb(t, proj, ['exec', '--', 'true']);
      }
      await new Promise((r) => setTimeout(r, 200 + rand() * 1300));
    }
    for (const c of clients) c.kill('SIGKILL');

    const final = await vb(t, proj, ['exec', '--', 'sh', '-c', 'echo alive > ~/alive && cat ~/alive']);
    assert.equal(final.code, 0, `final exec failed after ${log.join(',')}: ${final.stderr}`);
    assert.equal(final.stdout, 'alive\n');
    assert.equal(pidsMatching(t.home, 'qemu-system').length, 1, 'exactly one VM');
    const index = parseIndex(readFileSync(join(t.home, 'sessions.toml'), 'utf8'));
    assert.deepEqual(index.map((s) => s.id), [id]);

    const stop = await vb(t, proj, ['stop']);
    assert.equal(stop.code, 0, stop.stderr);
    await until(() => pidsMatching(t.home).length === 0, 30_000, 'every supervisor, QEMU and virtiofsd to exit');
    const image = /digest = "(.+)"/.exec(readFileSync(join(proj, '.vibebox', 'session.toml'), 'utf8'))![1]!;
    const name = /name = "(.+)"/.exec(readFileSync(join(proj, '.vibebox', 'session.toml'), 'utf8'))![1]!;
    const check = await checkDisk(join(proj, '.vibebox', 'disk.qcow2'), join(t.home, 'images', name, image, 'rootfs.qcow2'));
    assert.equal(check.corruptions, 0, check.output);
    assert.ok(check.ok, check.output);
  });

  it('a client whose supervisor is killed gets one line and exit 1 (a failure, not bad input); the next command restarts the session', async () => {
    const id = /^id = "(.+)"$/m.exec(readFileSync(join(proj, '.vibebox', 'session.toml'), 'utf8'))![1]!;
    const rp = runPaths(id, t.home);
    const client = vb(t, proj, ['exec', '--', 'sleep', '60']);
    await until(() => pidsMatching(t.home, 'qemu-system').length === 1, 120_000, 'the VM');
    await until(async () => (await vb(t, proj, ['exec', '--', 'true'])).code === 0, 120_000, 'the guest');
    process.kill(readPid(rp.supervisorPid)!, 'SIGKILL');
    const r = await client;
    assert.equal(r.code, 1);
    // Progress lines (booting…) may come first; the error is one line, the last.
    const errors = r.stderr.split('\n').filter((l) => l.startsWith('vibebox:'));
    assert.equal(errors.length, 1, r.stderr);
    assert.match(r.stderr, /\nvibebox: lost the connection to the session [^\n]*\n$/);
    const again = await vb(t, proj, ['exec', '--', 'cat', '/home/vibe/alive']);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout, 'alive\n');
    assert.equal(pidsMatching(t.home, 'qemu-system').length, 1);
  });
});
