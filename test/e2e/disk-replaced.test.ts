// A known session whose disk.qcow2 was replaced is refused before anything starts; the disk
// vibebox created boots again once it is back. Boots a real VM (the record of the disk is
// written by the supervisor when it creates the overlay), as a user runs the built CLI.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { bootedSession, killUnder, vb, type RunResult, type TestEnv } from '../helpers/vm.js';

function assertOneLine(r: RunResult, ...patterns: RegExp[]): void {
  assert.equal(r.code, 2, `exit 2, got ${r.code}; stderr: ${r.stderr}`);
  const lines = r.stderr.split('\n').filter((l) => l.length > 0);
  assert.equal(lines.length, 1, `one stderr line, got:\n${r.stderr}`);
  assert.match(lines[0]!, /^vibebox: /);
  for (const p of patterns) assert.match(lines[0]!, p);
}

describe('a known session with a replaced disk', () => {
  let t: TestEnv;
  let proj: string;
  let id: string;
  let disk: string;
  let rootfs: string;
  before(async () => {
    ({ t, proj } = await bootedSession('replaced', { VIBEBOX_AUTO_SHUTDOWN_MS: '600000' }));
    id = /^id = "(.+)"$/m.exec(readFileSync(join(proj, '.vibebox', 'session.toml'), 'utf8'))![1]!;
    disk = join(proj, '.vibebox', 'disk.qcow2');
    const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', '-U', disk], { encoding: 'utf8' })) as { 'backing-filename': string };
    rootfs = info['backing-filename'];
    const s = await vb(t, proj, ['stop']);
    assert.equal(s.code, 0, s.stderr);
  });
  after(() => t.cleanup());

  const supervisors = () => killUnder(dirname(t.home)); // the supervisor names the project, QEMU the run dir

  it('the host recorded the disk it created, under VIBEBOX_HOME', () => {
    const rec = JSON.parse(readFileSync(join(t.home, 'disks', `${id}.json`), 'utf8')) as { disk: string; ino: string };
    assert.equal(rec.disk, disk);
    assert.ok(/^\d+$/.test(rec.ino));
  });

  it('another overlay of the same shape in its place: refused, one line, exit 2, nothing started', async () => {
    renameSync(disk, `${disk}.mine`);
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', rootfs, disk, String(20 * 1024 ** 3)]);
    const r = await vb(t, proj, ['exec', '--', 'true']);
    assertOneLine(r, /will not boot this session's disk: .*disk\.qcow2 is not the disk vibebox created for this session \(it was replaced\)/, /disks\/.*\.json to accept it/);
    assert.equal(supervisors(), 0, 'a supervisor or QEMU was started');
    assert.ok(existsSync(disk) && existsSync(`${disk}.mine`), 'nothing was deleted');
  });

  it('a disk whose header names an external data file: refused for that reason', async () => {
    const victim = join(t.home, '..', 'victim');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', `data_file=${victim}`, '-F', 'qcow2', '-b', rootfs, disk, String(20 * 1024 ** 3)]);
    writeFileSync(victim, 'host file\n');
    const r = await vb(t, proj, ['exec', '--', 'true']);
    assertOneLine(r, /disk\.qcow2 has an external data file \(".*victim"\), which vibebox never writes/);
    assert.equal(supervisors(), 0);
    assert.equal(readFileSync(victim, 'utf8'), 'host file\n');
  });

  it('the disk vibebox created, put back: boots again', async () => {
    renameSync(`${disk}.mine`, disk);
    const r = await vb(t, proj, ['exec', '--', 'true']);
    assert.equal(r.code, 0, r.stderr);
    const s = await vb(t, proj, ['stop']);
    assert.equal(s.code, 0, s.stderr);
  });

  it('the folder moved with mv: its disk is the recorded file, so the session continues there; a cp -r copy is refused', async () => {
    const moved = `${proj}-moved`;
    renameSync(proj, moved);
    const r = await vb(t, moved, ['exec', '--', 'true']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`session ${id} was moved to this folder`));
    const l = await vb(t, moved, ['list', '--json']);
    assert.deepEqual((JSON.parse(l.stdout) as { id: string; directory: string }[]).map((e) => [e.id, e.directory]), [[id, moved]]);
    assert.equal((await vb(t, moved, ['stop'])).code, 0);
    const copy = `${proj}-copy`;
    cpSync(moved, copy, { recursive: true });
    assertOneLine(await vb(t, copy, ['exec', '--', 'true']), new RegExp(`its session ${id} belongs to .*-moved\\)`));
    // Even with the original gone, a copy's disk is not the recorded file.
    rmSync(join(moved, '.vibebox'), { recursive: true });
    assertOneLine(await vb(t, copy, ['exec', '--', 'true']), new RegExp(`its session ${id} is not in `));
    assert.equal(supervisors(), 0);
  });
});
