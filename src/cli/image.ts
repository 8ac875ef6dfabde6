import { buildImage, listImages, removeImage } from '../../images/build.js';
import { readIndex } from '../session/index-store.js';
import { readSessionFile } from '../session/state.js';
import { table } from './format.js';

const progress = (l: string) => process.stderr.write(`${l}\n`);

export async function build(o: { name: string; force?: boolean }): Promise<void> {
  const img = await buildImage({ name: o.name, ...(o.force ? { force: true } : {}), onProgress: progress });
  process.stdout.write(`${img.name}/${img.digest} ${img.dir}\n`);
}

export async function list(o: { json?: boolean }): Promise<void> {
  const imgs = await listImages();
  const used = await usedDigests();
  const rows = imgs.map((i) => ({ name: i.name, digest: i.digest, created: i.manifest.created, kernel: i.manifest.kernelVersion, sessions: used.get(i.digest) ?? 0, dir: i.dir }));
  if (o.json) process.stdout.write(JSON.stringify(rows) + '\n');
  else process.stdout.write(table(['NAME', 'DIGEST', 'CREATED', 'KERNEL', 'SESSIONS'], rows.map((r) => [r.name, r.digest, r.created, r.kernel, String(r.sessions)])) + '\n');
}

async function usedDigests(): Promise<Map<string, number>> {
  const m = new Map<string, number>();
  for (const s of await readIndex()) {
    const f = readSessionFile(s.directory);
    if (f?.image) m.set(f.image.digest, (m.get(f.image.digest) ?? 0) + 1);
  }
  return m;
}

export async function rm(nameOrDigest: string): Promise<void> {
  const used = await usedDigests();
  await removeImage(nameOrDigest, (d) => (used.get(d) ?? 0) > 0);
  process.stdout.write(`removed ${nameOrDigest}\n`);
}
