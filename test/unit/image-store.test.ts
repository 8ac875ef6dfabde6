import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findImage, listImages, removeImage } from '../../images/build.js';
import { imagePaths } from '../../src/paths.js';
import { VibeboxError } from '../../src/errors.js';

async function fakeImage(home: string, name: string, digest: string, complete = true): Promise<void> {
  const p = imagePaths(name, digest, home);
  await mkdir(p.dir, { recursive: true });
  for (const f of complete ? [p.kernel, p.initrd, p.rootfs] : [p.kernel]) await writeFile(f, 'x');
  await writeFile(
    p.manifest,
    JSON.stringify({
      schema: 1, name, digest, created: '2025-05-20T10:11:12Z', suite: 'bookworm', arch: 'amd64',
      kernelVersion: '6.1.0-50-amd64', packages: ['nodejs'], user: { name: 'vibe', uid: 1000, gid: 1000, home: '/home/vibe' },
      hostname: 'vibebox', cmdline: 'console=ttyS0', agentPort: 'org.vibebox.agent.0', diskSizeBytes: 1,
      files: { kernel: 'vmlinuz', initrd: 'initrd.img', rootfs: 'rootfs.qcow2' }, buildSeconds: 1,
    }),
  );
}

test('list, find and remove images; in-use images are refused', async () => {
  const home = await mkdtemp(join(tmpdir(), 'vibebox-imgstore-'));
  try {
    assert.deepEqual(await listImages(home), []);
    await fakeImage(home, 'default', 'aaaaaaaaaaaaaaaa');
    await fakeImage(home, 'default', 'bbbbbbbbbbbbbbbb', false); // incomplete: not an image
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
