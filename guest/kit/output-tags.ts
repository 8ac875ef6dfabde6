// Paths the `/output <path>` hook tags for the response: a file outside the output dir that the
// caller still gets back. Only files of the kit's own directories (input, work) qualify, and a
// link never leads out: the file is opened without following a last-component link, the path
// the open descriptor really names must be inside the real directory, and the bytes are copied
// from that descriptor, so a link swapped in after the check changes nothing.
import { randomUUID } from 'node:crypto';
import { constants, createReadStream, createWriteStream } from 'node:fs';
import { open, readlink, realpath, writeFile } from 'node:fs/promises';
import { isAbsolute, join, normalize, relative, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { KitError } from './errors.js';
import type { Listed } from './fs-util.js';

export interface TagRoots {
  input: string;
  work: string;
}

export interface Tag {
  /** The name the file gets in the outputs: `<root>/<path below it>`, e.g. work/notes.txt. */
  name: string;
  root: keyof TagRoots;
  rel: string;
}

const inside = (root: string, p: string): boolean => p === root || p.startsWith(root.endsWith(sep) ? root : root + sep);

/** Lexical check when the hook fires (the file may not exist yet; it is read when the turn completes). */
export function checkTag(path: string, roots: TagRoots): Tag {
  if (!isAbsolute(path) || path.includes('\0')) throw new KitError('E_OUTPUT_FAILED', `/output: ${JSON.stringify(path.slice(0, 200))} is not an absolute path`);
  const p = normalize(path);
  for (const root of ['input', 'work'] as const) {
    const r = normalize(roots[root]);
    if (inside(r, p) && p !== r) return { name: `${root}/${relative(r, p).split(sep).join('/')}`, root, rel: relative(r, p) };
  }
  throw new KitError('E_OUTPUT_FAILED', `/output: ${JSON.stringify(path.slice(0, 200))} is outside the kit's input and work directories`);
}

/** Copy a tagged file into `stagingDir` (a directory only the kit writes), never through a link out. */
export async function stageTag(tag: Tag, roots: TagRoots, stagingDir: string, maxBytes: number): Promise<Listed> {
  const realRoot = await realpath(roots[tag.root]);
  const path = join(realRoot, tag.rel);
  let fh;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new KitError('E_OUTPUT_FAILED', `/output ${tag.name}: ${code === 'ELOOP' ? 'is a symbolic link' : code === 'ENOENT' ? 'no such file' : (code ?? (e as Error).message)}`);
  }
  try {
    const real = await readlink(`/proc/self/fd/${fh.fd}`);
    if (!inside(realRoot, real)) throw new KitError('E_OUTPUT_FAILED', `/output ${tag.name}: leads outside the kit's ${tag.root} directory`);
    const st = await fh.stat();
    if (!st.isFile()) throw new KitError('E_OUTPUT_FAILED', `/output ${tag.name}: not a regular file`);
    if (st.size > maxBytes) throw new KitError('E_OUTPUT_FAILED', `/output ${tag.name}: larger than ${maxBytes} bytes`);
    const staged = join(stagingDir, randomUUID());
    // Bounded by the size checked above: a file growing under the copy is cut there.
    if (st.size === 0) await writeFile(staged, '', { flag: 'wx', mode: 0o600 });
    else await pipeline(createReadStream('', { fd: fh.fd, autoClose: false, start: 0, end: st.size - 1 }), createWriteStream(staged, { flags: 'wx', mode: 0o600 }));
    return { name: tag.name, path: staged, size: st.size };
  } finally {
    await fh.close();
  }
}
