// The agent base rootfs: a Debian tree for containers, made by a second mmdebstrap run during
// the image build. The image build writes it into the guest's Docker store as vibebox/agent:base
// (docker-store.ts) and ships it gzipped as the fallback a guest `docker import`s when its store
// lost the image. Cached under <home>/cache/agent-base by its own recipe digest, so a guest-only
// change (a new guest agent bundle) rebuilds the VM image without rebuilding it.
import { createReadStream, createWriteStream } from 'node:fs';
import { chmod, copyFile, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { isErrno } from '../guest/errors.js';
import { computeDigest } from './digest.js';
import { ensurePinnedTarball } from './agent-node.js';
import { AGENT_BASE, MIRRORS, SUITE, agentBaseRecipe } from './recipe.js';

export interface AgentBase {
  /** The cached tarball (uncompressed: its sha256 is the layer's diff id). */
  tar: string;
  /** The same, gzipped (the guest's fallback import). */
  gz: string;
  sha256: string;
  bytes: number;
  reused: boolean;
}

export type RunTool = (cmd: string, args: string[], env: Record<string, string>, onLine: (line: string) => void) => Promise<void>;

/** The cache key of the tarball: its recipe (packages, suite, uid/gid, version) and its hook script. */
export function agentBaseKey(ids: { uid: number; gid: number }, hook: Uint8Array): string {
  return computeDigest(agentBaseRecipe(ids), [{ name: 'images/agent-base.sh', data: hook }]);
}

/** mmdebstrap's arguments for the agent base tarball (pure). */
export function agentBaseArgs(o: {
  mode: 'root' | 'unshare';
  hook: string;
  ids: { uid: number; gid: number };
  aptCache: string;
  out: string;
  /** The agents' Node and npm package tarballs (agent-node.ts), readable by the hook. */
  node: string;
  npm: string;
}): string[] {
  const sq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  return [
    `--variant=${AGENT_BASE.variant}`,
    `--mode=${o.mode}`,
    '--format=tar',
    `--include=${AGENT_BASE.packages.join(',')}`,
    '--aptopt=Acquire::Retries "3"',
    // Only while building (mmdebstrap removes its dpkg config): later apt installs keep their docs.
    '--dpkgopt=path-exclude=/usr/share/man/*',
    '--dpkgopt=path-exclude=/usr/share/info/*',
    '--dpkgopt=path-exclude=/usr/share/doc/*',
    '--dpkgopt=path-include=/usr/share/doc/*/copyright',
    '--dpkgopt=path-exclude=/usr/share/locale/*',
    '--skip=download/empty',
    // The hook removes lists and caches itself; mmdebstrap's own apt clean-up fails in unshare
    // mode on files the hook (namespace root) made (as in the guest build).
    '--skip=cleanup/apt',
    // No device nodes: Docker gives every container its own /dev, and without them the tarball
    // unpacks as an unprivileged build's namespace root into the guest's Docker store.
    '--skip=output/dev',
    '--setup-hook=mkdir -p "$1"/var/cache/apt/archives/',
    `--setup-hook=sync-in ${o.aptCache} /var/cache/apt/archives/`,
    `--customize-hook=sync-out /var/cache/apt/archives ${o.aptCache}`,
    `--customize-hook=sh ${sq(o.hook)} "$1" ${o.ids.uid} ${o.ids.gid} ${sq(o.node)} ${sq(o.npm)}`,
    SUITE,
    o.out,
    ...MIRRORS,
  ];
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

export interface AgentBaseBuild {
  home: string;
  hook: string;
  ids: { uid: number; gid: number };
  mode: 'root' | 'unshare';
  /** A dir mmdebstrap (and, in unshare mode, its namespace root) may write. */
  work: string;
  aptCache: string;
  force: boolean;
  progress: (line: string) => void;
  run: RunTool;
  env: Record<string, string>;
}

/** The tarball for the current recipe: from the cache, or built (with progress) and cached. */
export async function ensureAgentBase(b: AgentBaseBuild): Promise<AgentBase> {
  const key = agentBaseKey(b.ids, await readFile(b.hook));
  const dir = join(b.home, 'cache', 'agent-base');
  const tar = join(dir, `${key}.tar`);
  const gz = `${tar}.gz`;
  const shaFile = `${tar}.sha256`;
  if (!b.force) {
    try {
      const [sha, st] = await Promise.all([readFile(shaFile, 'utf8'), stat(tar), stat(gz)]);
      if (/^[0-9a-f]{64}$/.test(sha.trim())) {
        b.progress(`agent base: reusing ${key} (${(st.size / 1024 ** 2).toFixed(0)} MiB)`);
        return { tar, gz, sha256: sha.trim(), bytes: st.size, reused: true };
      }
    } catch (e) {
      if (!isErrno(e, 'ENOENT')) throw e;
    }
  }
  const t0 = Date.now();
  const out = join(b.work, 'agent-base.tar');
  await mkdir(b.aptCache, { recursive: true });
  // The hook runs as the build's (namespace) root: the tarballs go where it may read them.
  const pinned = async (pkg: typeof AGENT_BASE.node | typeof AGENT_BASE.npm, name: string) => {
    const src = await ensurePinnedTarball({ home: b.home, pkg, run: b.run, progress: b.progress });
    const dst = join(b.work, name);
    await copyFile(src, dst);
    await chmod(dst, 0o644);
    return dst;
  };
  const node = await pinned(AGENT_BASE.node, 'agent-node.tgz');
  const npm = await pinned(AGENT_BASE.npm, 'agent-npm.tgz');
  b.progress(`agent base: mmdebstrap: building the container rootfs (${AGENT_BASE.packages.length} packages, ${b.mode} mode)`);
  await b.run('mmdebstrap', agentBaseArgs({ mode: b.mode, hook: b.hook, ids: b.ids, aptCache: b.aptCache, out, node, npm }), b.env, (line) => {
    const step = /^vibebox-step: (.*)$/.exec(line);
    if (step?.[1]) b.progress(step[1]);
    else if (/^[EW]: /.test(line) || /^I: (downloading|extracting|installing)/.test(line)) b.progress(`agent base: mmdebstrap: ${line.slice(3)}`);
  });
  await rm(node, { force: true });
  await rm(npm, { force: true });
  const sha256 = await sha256File(out);
  const bytes = (await stat(out)).size;
  // Into the cache atomically; older tarballs go (one recipe at a time per home).
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.tmp-${randomBytes(4).toString('hex')}`);
  await copyFile(out, tmp);
  await rm(out, { force: true });
  b.progress('agent base: compressing the fallback copy');
  // Level 1: the guest decompresses it only when its Docker store lost the image.
  await pipeline(createReadStream(tmp), createGzip({ level: 1 }), createWriteStream(`${tmp}.gz`));
  await writeFile(`${tmp}.sha256`, `${sha256}\n`);
  // The tarballs first: a tarball without its sha256 beside it is rebuilt, never trusted.
  await rm(shaFile, { force: true });
  await rename(tmp, tar);
  await rename(`${tmp}.gz`, gz);
  await rename(`${tmp}.sha256`, shaFile);
  for (const f of await readdir(dir)) {
    if (!f.startsWith(key) && !f.startsWith('.tmp-')) await rm(join(dir, f), { force: true });
  }
  b.progress(`agent base: ${(bytes / 1024 ** 2).toFixed(0)} MiB in ${((Date.now() - t0) / 1000).toFixed(1)}s, sha256 ${sha256.slice(0, 12)}`);
  return { tar, gz, sha256, bytes, reused: false };
}
