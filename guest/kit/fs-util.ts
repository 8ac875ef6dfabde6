// Filesystem helpers for the per-prompt /input and /output dirs.
import { lstat, mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';

/** Empty a directory without removing it (in a container it may be a mount point). */
export async function emptyDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const e of await readdir(dir)) await rm(join(dir, e), { recursive: true, force: true });
}

export interface Listed {
  name: string;
  path: string;
  size: number;
}

/**
 * Regular files under dir, recursively, named by relative path. Symlinks and other non-regular
 * entries are skipped: the agent must not be able to exfiltrate /etc/shadow by linking it into /output.
 */
export async function listRegularFiles(dir: string, limit: number): Promise<{ files: Listed[]; skipped: string[] }> {
  const files: Listed[] = [];
  const skipped: string[] = [];
  async function walk(abs: string, rel: string): Promise<void> {
    for (const e of (await readdir(abs)).sort()) {
      const p = join(abs, e);
      const r = rel ? `${rel}/${e}` : e;
      const st = await lstat(p);
      if (st.isDirectory()) await walk(p, r);
      else if (st.isFile()) {
        if (files.length >= limit) throw new Error(`more than ${limit} output files`);
        files.push({ name: r, path: p, size: st.size });
      } else skipped.push(r);
    }
  }
  await walk(dir, '');
  return { files, skipped };
}
