import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile, utimes } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fakeImage } from '../helpers/fake-image.js';
import { pruneHome } from '../../src/cli/image.js';
import { listImages } from '../../images/build.js';


test('image prune removes unused images and superseded cached packages, and counts what it freed', async () => {
  const home = await mkdtemp(join(tmpdir(), 'vibebox-prune-'));
  try {
    await fakeImage(home, 'default', 'aaaaaaaaaaaaaaaa', { rootfsBytes: 256 * 1024 }); // used by a session
    await fakeImage(home, 'default', 'bbbbbbbbbbbbbbbb', { rootfsBytes: 256 * 1024 }); // unused, old
    await fakeImage(home, 'default', 'cccccccccccccccc', { rootfsBytes: 256 * 1024 }); // the current recipe's
    const apt = join(home, 'cache', 'apt');
    await mkdir(apt, { recursive: true });
    const old = join(apt, 'curl_7.88.1-10_amd64.deb');
    const cur = join(apt, 'curl_7.88.1-10+deb12u8_amd64.deb');
    const other = join(apt, 'git_1%3a2.39.5-0+deb12u1_amd64.deb');
    for (const f of [old, cur, other]) await writeFile(f, Buffer.alloc(64 * 1024, 2));
    await utimes(old, new Date('2025-01-01'), new Date('2025-01-01'));
    const r = await pruneHome(home, (d) => d === 'aaaaaaaaaaaaaaaa', 'cccccccccccccccc');
    assert.deepEqual(r.images, ['default/bbbbbbbbbbbbbbbb']);
    assert.equal(r.debs, 1);
    assert.ok(r.bytes >= 256 * 1024 + 64 * 1024, `freed ${r.bytes}`);
    assert.deepEqual((await listImages(home)).map((i) => i.digest).sort(), ['aaaaaaaaaaaaaaaa', 'cccccccccccccccc']);
    assert.equal(existsSync(old), false);
    assert.ok(existsSync(cur) && existsSync(other));
  } finally {
    await rm(home, { recursive: true, force: true });
  }
});
