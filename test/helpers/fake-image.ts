// A fake image in a vibebox home: the files and a valid image.json, no bootable content (tests of
// the image store and prune, which never boot it).
import { mkdir, writeFile } from 'node:fs/promises';
import { imagePaths } from '../../images/store-paths.js';

export async function fakeImage(home: string, name: string, digest: string, o: { complete?: boolean; rootfsBytes?: number } = {}): Promise<void> {
  const p = imagePaths(name, digest, home);
  await mkdir(p.dir, { recursive: true });
  // Incomplete (a build cut short): only the kernel, which is not an image.
  for (const f of o.complete === false ? [p.kernel] : [p.kernel, p.initrd]) await writeFile(f, 'x');
  if (o.complete !== false) await writeFile(p.rootfs, o.rootfsBytes === undefined ? 'x' : Buffer.alloc(o.rootfsBytes, 1));
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
