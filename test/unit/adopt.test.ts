// A project folder moved with `mv` is taken back by adoptMovedSession; the index entry it leaves
// behind (its old directory now missing) must not make the move look like a copy.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, realpathSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { adoptMovedSession } from '../../src/session/adopt.js';
import { createSessionDir, writeSessionFile } from '../../src/session/state.js';
import { prepareSessionDisk } from '../../src/session/disk.js';
import { readIndexSync } from '../../src/session/index-store.js';
import { imagePaths } from '../../images/store-paths.js';
import { fakeImage } from '../helpers/fake-image.js';

describe('adoptMovedSession', () => {
  let base: string;
  let home: string;
  let saved: string | undefined;
  const digest = '0123456789abcdef';
  before(async () => {
    base = realpathSync(mkdtempSync(join(tmpdir(), 'vb-adopt-')));
    home = join(base, 'home');
    saved = process.env['VIBEBOX_HOME'];
    process.env['VIBEBOX_HOME'] = home;
    await fakeImage(home, 'default', digest);
    const rootfs = imagePaths('default', digest, home).rootfs;
    rmSync(rootfs);
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', rootfs, '64M']);
  });
  after(() => {
    if (saved === undefined) delete process.env['VIBEBOX_HOME'];
    else process.env['VIBEBOX_HOME'] = saved;
    rmSync(base, { recursive: true, force: true });
  });

  it('a moved folder is taken back although its old entry (directory now missing) is still indexed; a copy is not', async () => {
    const old = join(base, 'old');
    mkdirSync(old);
    const s = await createSessionDir(old, new Date(), home);
    writeSessionFile(old, { ...s, image: { name: 'default', digest } });
    await prepareSessionDisk(old, s.id, imagePaths('default', digest, home).rootfs, 64 * 1024 * 1024);
    const moved = join(base, 'moved');
    renameSync(old, moved);
    // The entry stays (the old directory is only missing), and the move is still recognised.
    assert.deepEqual(readIndexSync(home).map((e) => [e.id, e.directory]), [[s.id, old]]);
    const back = await adoptMovedSession(moved, home);
    assert.equal(back?.id, s.id);
    assert.deepEqual(readIndexSync(home).map((e) => [e.id, e.directory]), [[s.id, moved]]);
    // A copy of a folder that is there is never adopted.
    const copy = join(base, 'copy');
    cpSync(moved, copy, { recursive: true });
    assert.equal(await adoptMovedSession(copy, home), null);
    assert.deepEqual(readIndexSync(home).map((e) => [e.id, e.directory]), [[s.id, moved]]);
  });
});
