import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile, utimes } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { imagePaths } from '../../src/paths.js';
import { pruneHome } from '../../src/cli/image.js';
import { listImages } from '../../images/build.js';

async function fakeImage(home: string, name: string, digest: string): Promise<void> {
  const p = imagePaths(name, digest, home);
  await mkdir(p.dir, { recursive: true });
  for (const f of [p.kernel, p.initrd]) await writeFile(f, 'x');
  await writeFile(p.rootfs, Buffer.alloc(256 * 1024, 1));
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

test('image prune removes unused images and superseded cached packages, and counts what it freed', async () => {
  const home = await mkdtemp(join(tmpdir(), 'vibebox-prune-'));
  try {
    await fakeImage(home, 'default', 'aaaaaaaaaaaaaaaa'); // used by a session
    await fakeImage(home, 'default', 'bbbbbbbbbbbbbbbb'); // unused, old
    await fakeImage(home, 'default', 'cccccccccccccccc'); // the current recipe's
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
