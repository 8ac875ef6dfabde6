import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findImage, listImages, removeImage } from '../../images/build.js';
import { imagePaths } from '../../src/paths.js';
import { fakeImage } from '../helpers/fake-image.js';
import { VibeboxError } from '../../src/errors.js';


test('list, find and remove images; in-use images are refused', async () => {
  const home = await mkdtemp(join(tmpdir(), 'vibebox-imgstore-'));
  try {
    assert.deepEqual(await listImages(home), []);
    await fakeImage(home, 'default', 'aaaaaaaaaaaaaaaa');
    await fakeImage(home, 'default', 'bbbbbbbbbbbbbbbb', { complete: false }); // incomplete: not an image
    await fakeImage(home, 'other', 'cccccccccccccccc');
    await mkdir(join(home, 'images', '.tmp-default-aaaaaaaaaaaaaaaa-1-abcdef'), { recursive: true });
    const all = await listImages(home);
    assert.deepEqual(all.map((i) => `${i.name}/${i.digest}`).sort(), ['default/aaaaaaaaaaaaaaaa', 'other/cccccccccccccccc']);
    assert.ok(await findImage('default', 'aaaaaaaaaaaaaaaa', home));
    assert.equal(await findImage('default', 'bbbbbbbbbbbbbbbb', home), undefined);

    await assert.rejects(removeImage('default', (d) => d === 'aaaaaaaaaaaaaaaa', home), (e: unknown) => e instanceof VibeboxError && e.code === 'E_IMAGE_IN_USE');
    assert.ok(existsSync(imagePaths('default', 'aaaaaaaaaaaaaaaa', home).rootfs), 'nothing removed when refused');
    await assert.rejects(removeImage('nope', () => false, home), (e: unknown) => e instanceof VibeboxError && e.code === 'E_IMAGE_MISSING');

    const removed = await removeImage('cccc', () => false, home);
    assert.deepEqual(removed.map((i) => i.digest), ['cccccccccccccccc']);
    assert.equal(existsSync(join(home, 'images', 'other')), false);
    assert.deepEqual((await listImages(home)).map((i) => i.digest), ['aaaaaaaaaaaaaaaa']);
  } finally {
    await rm(home, { recursive: true, force: true });
  }
});
