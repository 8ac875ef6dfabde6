// The slim initrd: a newc cpio (uncompressed: under TCG, decompressing costs more than the few
// MB of copying it saves) with a static busybox, the modules that mount the root disk and /init.
// Written in TS so that no cpio tool and no root (for /dev/console) is needed.
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface CpioEntry {
  name: string;
  /** Full st_mode: type bits | permissions. */
  mode: number;
  data?: Uint8Array;
  /** For device nodes. */
  rdevMajor?: number;
  rdevMinor?: number;
}

export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;
export const S_IFCHR = 0o020000;

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}

function pad4(len: number): number {
  return (4 - (len % 4)) % 4;
}

/** Serialize entries as a newc ("070701") archive, all owned by root, mtime 0 (reproducible). */
export function cpioNewc(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  const push = (e: CpioEntry) => {
    const data = e.data ?? new Uint8Array(0);
    const name = Buffer.from(`${e.name}\0`, 'utf8');
    const isDir = (e.mode & 0o170000) === S_IFDIR;
    const header =
      '070701' +
      hex8(e.name === 'TRAILER!!!' ? 0 : ino++) +
      hex8(e.mode) +
      hex8(0) + // uid
      hex8(0) + // gid
      hex8(isDir ? 2 : 1) +
      hex8(0) + // mtime
      hex8(data.length) +
      hex8(0) +
      hex8(0) +
      hex8(e.rdevMajor ?? 0) +
      hex8(e.rdevMinor ?? 0) +
      hex8(name.length) +
      hex8(0);
    const h = Buffer.from(header, 'ascii');
    parts.push(h, name, Buffer.alloc(pad4(h.length + name.length)));
    if (data.length > 0) parts.push(Buffer.from(data), Buffer.alloc(pad4(data.length)));
  };
  for (const e of entries) push(e);
  push({ name: 'TRAILER!!!', mode: 0 });
  return Buffer.concat(parts);
}

/**
 * Build initrd.img from the stage the customize hook left:
 *   <stage>/busybox, <stage>/modules/*.ko, <stage>/modules/load-order (one file name a line)
 * plus the /init script.
 */
export async function buildInitrd(stage: string, initScript: string, out: string): Promise<{ modules: string[]; bytes: number }> {
  const order = (await readFile(join(stage, 'modules', 'load-order'), 'utf8'))
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  const present = new Set(await readdir(join(stage, 'modules')));
  const entries: CpioEntry[] = [];
  const dir = (name: string) => entries.push({ name, mode: S_IFDIR | 0o755 });
  for (const d of ['bin', 'dev', 'proc', 'sys', 'newroot', 'lib', 'lib/modules']) dir(d);
  entries.push({ name: 'dev/console', mode: S_IFCHR | 0o600, rdevMajor: 5, rdevMinor: 1 });
  entries.push({ name: 'dev/null', mode: S_IFCHR | 0o666, rdevMajor: 1, rdevMinor: 3 });
  entries.push({ name: 'bin/busybox', mode: S_IFREG | 0o755, data: await readFile(join(stage, 'busybox')) });
  for (const applet of ['sh', 'mount', 'umount', 'insmod', 'switch_root', 'sleep', 'cat', 'mkdir']) {
    entries.push({ name: `bin/${applet}`, mode: S_IFLNK | 0o777, data: Buffer.from('busybox') });
  }
  const modules: string[] = [];
  for (const m of order) {
    if (!present.has(m)) throw new Error(`initrd: module ${m} listed in load-order but not staged`);
    entries.push({ name: `lib/modules/${m}`, mode: S_IFREG | 0o644, data: await readFile(join(stage, 'modules', m)) });
    modules.push(m);
  }
  entries.push({ name: 'lib/modules/load-order', mode: S_IFREG | 0o644, data: Buffer.from(`${order.join('\n')}\n`) });
  entries.push({ name: 'init', mode: S_IFREG | 0o755, data: await readFile(initScript) });
  const img = cpioNewc(entries);
  await writeFile(out, img);
  return { modules, bytes: img.length };
}
