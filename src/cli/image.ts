import { lstatSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { buildImage, currentDigest, listImages, removeImage } from '../../images/build.js';
import { presence, readIndex } from '../session/index-store.js';
import type { IndexEntry } from '../session/index-file.js';
import { readSessionFile, showPath } from '../session/state.js';
import { VibeboxError } from '../errors.js';
import { homePaths, vibeboxHome } from '../paths.js';
import { table } from './format.js';

export const human = (n: number): string => (n >= 1024 ** 3 ? `${(n / 1024 ** 3).toFixed(1)} GiB` : n >= 1024 ** 2 ? `${(n / 1024 ** 2).toFixed(1)} MiB` : `${Math.round(n / 1024)} KiB`);

const progress = (l: string) => process.stderr.write(`${l}\n`);

export async function build(o: { name: string; force?: boolean }): Promise<void> {
  const img = await buildImage({ name: o.name, ...(o.force ? { force: true } : {}), onProgress: progress });
  process.stdout.write(`${img.name}/${img.digest} ${img.dir}\n`);
}

export async function list(o: { json?: boolean }): Promise<void> {
  const imgs = await listImages();
  const { used } = await usedDigests();
  const rows = imgs.map((i) => ({ name: i.name, digest: i.digest, created: i.manifest.created, kernel: i.manifest.kernelVersion, sessions: used.get(i.digest) ?? 0, dir: i.dir }));
  if (o.json) process.stdout.write(JSON.stringify(rows) + '\n');
  else process.stdout.write(table(['NAME', 'DIGEST', 'CREATED', 'KERNEL', 'SESSIONS'], rows.map((r) => [r.name, r.digest, r.created, r.kernel, String(r.sessions)])) + '\n');
}

interface Usage {
  /** Sessions per image digest. */
  used: Map<string, number>;
  /** Sessions whose image cannot be read now (a missing directory, an unreadable session.toml): any image may be theirs. */
  unknown: IndexEntry[];
}

async function usedDigests(): Promise<Usage> {
  const used = new Map<string, number>();
  const unknown: IndexEntry[] = [];
  for (const s of await readIndex()) {
    let f;
    try {
      f = presence(s) === 'missing' ? undefined : readSessionFile(s.directory);
    } catch {
      f = undefined;
    }
    if (f === undefined) unknown.push(s);
    else if (f?.image) used.set(f.image.digest, (used.get(f.image.digest) ?? 0) + 1);
  }
  return { used, unknown };
}

export async function rm(nameOrDigest: string): Promise<void> {
  const { used, unknown } = await usedDigests();
  // A session on an unmounted drive still needs its image: removing one it may use is refused.
  const u = unknown[0];
  await removeImage(nameOrDigest, (d) => {
    if (u) throw new VibeboxError('E_IMAGE_IN_USE', `cannot tell whether session ${u.id} uses this image: ${showPath(u.directory)} cannot be read now`, `bring the directory back first, or forget that session: vibebox delete ${u.id}`);
    return (used.get(d) ?? 0) > 0;
  });
  process.stdout.write(`removed ${nameOrDigest}\n`);
}

/** Bytes a tree takes on disk (allocated blocks: qcow2 files are sparse). */
export function diskUsage(path: string): number {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return 0;
  }
  let n = st.blocks * 512;
  if (st.isDirectory()) for (const e of readdirSync(path)) n += diskUsage(join(path, e));
  return n;
}

/**
 * Superseded package archives in the apt cache: of each package and architecture keep the newest
 * file (by modification time: the last build synced it out), older versions go.
 */
export function staleDebs(dir: string): string[] {
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.deb'));
  } catch {
    return [];
  }
  const newest = new Map<string, { file: string; mtime: number }>();
  const stale: string[] = [];
  for (const f of files) {
    const [pkg, , arch] = f.replace(/\.deb$/, '').split('_');
    const key = `${pkg}_${arch}`;
    const mtime = lstatSync(join(dir, f)).mtimeMs;
    const cur = newest.get(key);
    if (!cur) newest.set(key, { file: f, mtime });
    else if (mtime > cur.mtime) {
      stale.push(cur.file);
      newest.set(key, { file: f, mtime });
    } else stale.push(f);
  }
  return stale.map((f) => join(dir, f));
}

export interface PruneResult {
  images: string[];
  debs: number;
  bytes: number;
}

/** Remove images no session uses (except the current recipe's, which the next session needs) and stale apt archives. */
export async function pruneHome(home: string, inUse: (digest: string) => boolean, keepDigest: string | null): Promise<PruneResult> {
  let bytes = 0;
  const images: string[] = [];
  for (const i of await listImages(home)) {
    if (inUse(i.digest) || i.digest === keepDigest) continue;
    const size = diskUsage(i.dir);
    await removeImage(i.digest, inUse, home);
    bytes += size;
    images.push(`${i.name}/${i.digest}`);
  }
  const debs = staleDebs(join(home, 'cache', 'apt'));
  for (const f of debs) {
    bytes += diskUsage(f);
    rmSync(f, { force: true });
  }
  // Leftovers of interrupted builds and removals (a day old: a younger one may be a build running now).
  const imagesDir = homePaths(home).imagesDir;
  try {
    for (const e of readdirSync(imagesDir)) {
      if (!e.startsWith('.tmp-') || Date.now() - lstatSync(join(imagesDir, e)).mtimeMs < 86_400_000) continue;
      bytes += diskUsage(join(imagesDir, e));
      rmSync(join(imagesDir, e), { recursive: true, force: true });
    }
  } catch {
    /* no images yet */
  }
  return { images, debs: debs.length, bytes };
}

export async function prune(o: { json?: boolean }): Promise<void> {
  const { used, unknown } = await usedDigests();
  // A session whose directory cannot be read may use any image: keep them all until it is back.
  if (unknown.length) process.stderr.write(`vibebox: kept every image: the image of session ${unknown[0]!.id} (${showPath(unknown[0]!.directory)}) cannot be read now\n`);
  let keep: string | null = null;
  try {
    keep = await currentDigest();
  } catch {
    /* running without the guest bundle: keep nothing extra */
  }
  const r = await pruneHome(vibeboxHome(), (d) => unknown.length > 0 || (used.get(d) ?? 0) > 0, keep);
  if (o.json) process.stdout.write(JSON.stringify(r) + '\n');
  else {
    for (const i of r.images) process.stdout.write(`removed ${i}\n`);
    process.stdout.write(`freed ${human(r.bytes)} (${r.images.length} image${r.images.length === 1 ? '' : 's'}, ${r.debs} cached package${r.debs === 1 ? '' : 's'})\n`);
  }
}
