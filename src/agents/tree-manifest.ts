// What an agent tree in the host's store holds, file by file (path, kind, mode, size, sha256, link
// target), recorded when the host fetched it, and the check of a tree against that record before
// each use (docs/architecture.md, Agents: the shared store). Links are never followed. A file's
// content is hashed again only when its stat changed (inode, size, mtime or ctime: ctime cannot be
// set back by a program), so the check of an unchanged 400 MB tree is a walk of lstat calls.
import { createHash } from 'node:crypto';
import { createReadStream, lstatSync, readdirSync, readlinkSync, type Stats } from 'node:fs';
import { join } from 'node:path';

export interface TreeEntry {
  /** Relative to the tree's root, '/'-separated. */
  path: string;
  kind: 'file' | 'dir' | 'link';
  mode: number;
  size?: number;
  sha256?: string;
  target?: string;
}

export interface Manifest {
  entries: TreeEntry[];
  /** path → stat fingerprint when last hashed (not part of the tree's identity). */
  seen: Record<string, string>;
}

export interface TreeMismatch {
  path: string;
  why: string;
}

/** Entries of a tree this large are refused (a runaway or hostile package; pi's tree is ~20,000). */
export const MAX_ENTRIES = 200_000;

function fingerprint(st: Stats): string {
  return `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
}

function kindOf(st: Stats): TreeEntry['kind'] | null {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'link';
  return null;
}

interface Walked {
  path: string;
  st: Stats;
}

/** Every entry under `root` (lstat, sorted, no link followed); a FIFO, socket or device is an error. */
function walk(root: string): Walked[] {
  const out: Walked[] = [];
  const visit = (rel: string) => {
    const names = readdirSync(rel ? join(root, rel) : root).sort();
    for (const name of names) {
      const p = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(root, p));
      out.push({ path: p, st });
      if (out.length > MAX_ENTRIES) throw new Error(`more than ${MAX_ENTRIES} entries`);
      if (st.isDirectory()) visit(p);
    }
  };
  visit('');
  return out;
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Record a tree as it is now. */
export async function buildManifest(root: string): Promise<Manifest> {
  const entries: TreeEntry[] = [];
  const seen: Record<string, string> = {};
  for (const { path, st } of walk(root)) {
    const kind = kindOf(st);
    if (!kind) throw new Error(`${path} is neither a file, a directory nor a link`);
    const e: TreeEntry = { path, kind, mode: st.mode & 0o7777 };
    if (kind === 'file') {
      e.size = st.size;
      e.sha256 = await sha256File(join(root, path));
      seen[path] = fingerprint(st);
    } else if (kind === 'link') e.target = readlinkSync(join(root, path));
    entries.push(e);
  }
  return { entries, seen };
}

/** The tree's identity: a hash of its entries (what a record names; `seen` left out). */
export function manifestDigest(m: Pick<Manifest, 'entries'>): string {
  return createHash('sha256').update(JSON.stringify(m.entries)).digest('hex');
}

/**
 * The first difference between the tree on disk and its manifest, or null when they match.
 * Files whose stat changed are hashed again; `seen` is updated for those that still match.
 */
export async function checkTree(root: string, m: Manifest): Promise<TreeMismatch | null> {
  let now: Walked[];
  try {
    now = walk(root);
  } catch (e) {
    return { path: '.', why: (e as Error).message };
  }
  const want = new Map(m.entries.map((e) => [e.path, e]));
  for (const { path, st } of now) {
    const e = want.get(path);
    if (!e) return { path, why: 'added' };
    want.delete(path);
    const kind = kindOf(st);
    if (kind !== e.kind) return { path, why: `is now a ${kind ?? 'special file'}, was a ${e.kind}` };
    if ((st.mode & 0o7777) !== e.mode) return { path, why: `mode changed to ${(st.mode & 0o7777).toString(8)}` };
    if (kind === 'link') {
      if (readlinkSync(join(root, path)) !== e.target) return { path, why: 'link target changed' };
    } else if (kind === 'file') {
      if (st.size !== e.size) return { path, why: 'size changed' };
      const fp = fingerprint(st);
      if (m.seen[path] === fp) continue;
      if ((await sha256File(join(root, path))) !== e.sha256) return { path, why: 'content changed' };
      m.seen[path] = fp;
    }
  }
  const missing = want.keys().next();
  if (!missing.done) return { path: missing.value, why: 'missing' };
  return null;
}
