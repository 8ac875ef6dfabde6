// The paths of the image store under the vibebox home (src/paths.ts names every other path).
import { homedir } from 'node:os';
import { join } from 'node:path';

export function vibeboxHome(env: NodeJS.ProcessEnv = process.env): string {
  const h = env['VIBEBOX_HOME'];
  return h && h.length > 0 ? h : join(homedir(), '.vibebox');
}

export function imagesDir(home: string = vibeboxHome()): string {
  return join(home, 'images');
}

export interface ImagePaths {
  dir: string;
  kernel: string;
  initrd: string;
  rootfs: string;
  manifest: string;
}

export function imagePaths(name: string, digest: string, home: string = vibeboxHome()): ImagePaths {
  const dir = join(imagesDir(home), name, digest);
  return {
    dir,
    kernel: join(dir, 'vmlinuz'),
    initrd: join(dir, 'initrd.img'),
    rootfs: join(dir, 'rootfs.qcow2'),
    manifest: join(dir, 'image.json'),
  };
}
