import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ImageManifestSchema, kernelCmdline, parseManifest, type ImageManifest } from '../../images/manifest.js';
import { cpioNewc, S_IFCHR, S_IFDIR, S_IFREG } from '../../images/initrd.js';

const good: ImageManifest = {
  schema: 1,
  name: 'default',
  digest: '0123456789abcdef',
  created: '2025-05-20T10:11:12Z',
  suite: 'bookworm',
  arch: 'amd64',
  kernelVersion: '6.1.0-50-amd64',
  packages: ['linux-image-amd64', 'nodejs'],
  user: { name: 'vibe', uid: 1000, gid: 1000, home: '/home/vibe' },
  hostname: 'vibebox',
  cmdline: 'console=ttyS0 root=/dev/vda rw quiet',
  agentPort: 'org.vibebox.agent.0',
  diskSizeBytes: 20 * 1024 ** 3,
  files: { kernel: 'vmlinuz', initrd: 'initrd.img', rootfs: 'rootfs.qcow2' },
  buildSeconds: 61.2,
};

test('manifest schema accepts a built image', () => {
  assert.deepEqual(parseManifest(JSON.parse(JSON.stringify(good))), good);
  assert.ok(ImageManifestSchema.safeParse({ ...good, created: '2025-05-20T10:11:12.345Z' }).success);
});

test('manifest schema rejects bad or unknown fields', () => {
  const bad: Array<[string, unknown]> = [
    ['short digest', { ...good, digest: 'abc' }],
    ['uppercase digest', { ...good, digest: '0123456789ABCDEF' }],
    ['local time', { ...good, created: '2025-05-20 10:11:12' }],
    ['offset time', { ...good, created: '2025-05-20T10:11:12+02:00' }],
    ['bad name', { ...good, name: '../etc' }],
    ['negative uid', { ...good, user: { ...good.user, uid: -1 } }],
    ['relative home', { ...good, user: { ...good.user, home: 'home/vibe' } }],
    ['no packages', { ...good, packages: [] }],
    ['unknown key', { ...good, extra: true }],
    ['wrong schema version', { ...good, schema: 2 }],
    ['missing cmdline', (({ cmdline: _c, ...rest }) => rest)(good)],
  ];
  for (const [what, value] of bad) assert.equal(ImageManifestSchema.safeParse(value).success, false, what);
  assert.throws(() => parseManifest('{}'));
});

test('kernelCmdline appends extra arguments', () => {
  assert.equal(kernelCmdline(good), good.cmdline);
  assert.equal(kernelCmdline(good, ['vibebox.debug=1', '']), `${good.cmdline} vibebox.debug=1`);
});

test('initrd cpio is newc with padding and a trailer', () => {
  const img = cpioNewc([
    { name: 'dev', mode: S_IFDIR | 0o755 },
    { name: 'dev/console', mode: S_IFCHR | 0o600, rdevMajor: 5, rdevMinor: 1 },
    { name: 'init', mode: S_IFREG | 0o755, data: Buffer.from('#!/bin/sh\n') },
  ]);
  assert.equal(img.length % 4, 0);
  const text = img.toString('latin1');
  assert.equal(text.slice(0, 6), '070701');
  assert.ok(text.includes('TRAILER!!!\0'));
  // dev/console: mode 020600, rdev 5:1
  const at = text.indexOf('dev/console\0') - 110;
  const field = (i: number) => parseInt(text.slice(at + 6 + i * 8, at + 14 + i * 8), 16);
  assert.equal(field(1), S_IFCHR | 0o600);
  assert.equal(field(9), 5);
  assert.equal(field(10), 1);
  // every header starts on a 4-byte boundary
  let off = 0;
  for (;;) {
    assert.equal(img.toString('latin1', off, off + 6), '070701', `header at ${off}`);
    const size = parseInt(img.toString('latin1', off + 54, off + 62), 16);
    const nameSize = parseInt(img.toString('latin1', off + 94, off + 102), 16);
    const name = img.toString('latin1', off + 110, off + 110 + nameSize - 1);
    off += 110 + nameSize;
    off += (4 - (off % 4)) % 4;
    off += size + ((4 - (size % 4)) % 4);
    if (name === 'TRAILER!!!') break;
  }
  assert.equal(off, img.length);
});
