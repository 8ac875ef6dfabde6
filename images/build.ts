// The image builder (docs/architecture.md, Files on disk): mmdebstrap → kernel, slim initrd, qcow2 root disk,
// image.json, under <home>/images/<name>/<digest>/. Built in <home>/images/.tmp-*, renamed into
// place at the end, so an interrupted build never looks complete. One lock per name+digest.
import { constants as fsc } from 'node:fs';
import { access, chmod, copyFile, cp, mkdir, mkdtemp, readdir, readFile, rename, rm, rmdir, stat, statfs, symlink, writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { delimiter, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { execa } from 'execa';
import lockfile from 'proper-lockfile';
import { VibeboxError, isErrno } from '../guest/errors.js';
import { imagePaths, imagesDir as imagesDirOf, vibeboxHome } from './store-paths.js';
import { computeDigest, isDigest, type DigestInput } from './digest.js';
import { GUEST_PTY_VERSION, guestPtyIdentity, stageGuestPty } from './guest-pty.js';
import { buildInitrd } from './initrd.js';
import { ensureAgentBase, type AgentBase } from './agent-base.js';
import { dockerStore } from './docker-store.js';
import { ImageManifestSchema, kernelCmdline, type ImageManifest } from './manifest.js';
import {
  AGENT_PORT,
  DEFAULT_IMAGE_NAME,
  DISK_SIZE,
  GUEST_USER,
  HOSTNAME,
  INITRD_MODULES,
  KERNEL_CMDLINE,
  MIRRORS,
  PACKAGES,
  SUITE,
  packageRoot,
  recipeData,
  recipeFiles,
  vibeIds,
} from './recipe.js';

export { kernelCmdline };
export type { ImageManifest };

export interface ImageInfo {
  name: string;
  digest: string;
  dir: string;
  kernel: string;
  initrd: string;
  rootfs: string;
  manifest: ImageManifest;
}

export interface BuildOptions {
  name?: string;
  /** Rebuild even when an image for the current digest exists. */
  force?: boolean;
  home?: string;
  onProgress?: (line: string) => void;
  /** With force: refuse (E_IMAGE_IN_USE) to replace an image a session uses. */
  inUse?: (digest: string) => boolean;
}

/** Free space a build needs under <home>/images (chroot + ext4 + qcow2, with margin). */
const MIN_FREE_BYTES = 4 * 1024 ** 3;
const NO_SPACE_HINT = 'free some disk space: a build needs about 4 GB under';
const NAME_RE = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const SBIN_PATH = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

function checkName(name: string): void {
  if (!NAME_RE.test(name)) {
    throw new VibeboxError('E_USAGE', `invalid image name "${name}"`, 'use lowercase letters, digits, ".", "_" and "-"');
  }
}

function toolPath(): string {
  const parts = (process.env['PATH'] ?? '').split(delimiter).filter((p) => p.length > 0);
  for (const s of SBIN_PATH) if (!parts.includes(s)) parts.push(s);
  return parts.join(delimiter);
}

async function findTool(tool: string, path: string): Promise<string | undefined> {
  for (const dir of path.split(delimiter)) {
    const p = join(dir, tool);
    try {
      await access(p, fsc.X_OK);
      return p;
    } catch {
      // next
    }
  }
  return undefined;
}

/** The input files of the digest, by logical name (missing optional inputs are left out). */
async function digestInputs(root: string): Promise<DigestInput[]> {
  const f = recipeFiles(root);
  const out: DigestInput[] = [];
  const add = async (name: string, path: string, required: boolean) => {
    try {
      out.push({ name, data: await readFile(path) });
    } catch (e) {
      if (required || !isErrno(e, 'ENOENT')) throw e;
    }
  };
  await add('images/guest-init.sh', f.guestInit, true);
  await add('images/initrd-init.sh', f.initrdInit, true);
  await add('images/customize.sh', f.customize, true);
  await add('images/agent-base.sh', f.agentBaseHook, true);
  for (const [name, path] of [['dist/guest-agent.js', f.guestAgent], ['dist/guest-containers.js', f.guestContainers]] as const) {
    try {
      await add(name, path, true);
    } catch (e) {
      if (isErrno(e, 'ENOENT')) throw missingAgent(path);
      throw e;
    }
  }
  // The guest's PTY module: pinned by version and sha512 (guest-pty.ts), so known without fetching it.
  out.push({ name: 'node-pty', data: Buffer.from(guestPtyIdentity(process.arch)) });
  for (const c of await listCommands(f.commandsDir)) await add(`guest/commands/${c}`, join(f.commandsDir, c), true);
  return out;
}

function missingAgent(path: string): VibeboxError {
  return new VibeboxError('E_IMAGE_BUILD', `the guest bundle ${path} is missing`, 'run npm run build');
}

async function listCommands(dir: string): Promise<string[]> {
  try {
    const entries = await readdir(dir, { withFileTypes: true });
    return entries.filter((e) => e.isFile()).map((e) => e.name).sort();
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return [];
    throw e;
  }
}

/** The digest of the current recipe and guest inputs (sha256, 16 hex). */
export async function currentDigest(): Promise<string> {
  const root = packageRoot();
  return computeDigest(recipeData(vibeIds()), await digestInputs(root));
}

async function readImage(name: string, digest: string, home: string): Promise<ImageInfo | undefined> {
  const p = imagePaths(name, digest, home);
  let raw: string;
  try {
    raw = await readFile(p.manifest, 'utf8');
  } catch (e) {
    if (isErrno(e, 'ENOENT') || isErrno(e, 'ENOTDIR')) return undefined;
    throw e;
  }
  const parsed = ImageManifestSchema.safeParse(safeJson(raw));
  if (!parsed.success || parsed.data.digest !== digest || parsed.data.name !== name) return undefined;
  for (const f of [p.kernel, p.initrd, p.rootfs]) {
    try {
      await stat(f);
    } catch {
      return undefined;
    }
  }
  return { name, digest, dir: p.dir, kernel: p.kernel, initrd: p.initrd, rootfs: p.rootfs, manifest: parsed.data };
}

/** A complete image by name and digest, or undefined when it is missing or incomplete. */
export async function findImage(name: string, digest: string, home: string = vibeboxHome()): Promise<ImageInfo | undefined> {
  return readImage(name, digest, home);
}

function safeJson(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return undefined;
  }
}

/** Every complete image under <home>/images, oldest first. */
export async function listImages(home: string = vibeboxHome()): Promise<ImageInfo[]> {
  const dir = imagesDirOf(home);
  const out: ImageInfo[] = [];
  let names: string[];
  try {
    names = (await readdir(dir, { withFileTypes: true })).filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name);
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return [];
    throw e;
  }
  for (const name of names.sort()) {
    const digests = (await readdir(join(dir, name), { withFileTypes: true })).filter((e) => e.isDirectory() && isDigest(e.name));
    for (const d of digests) {
      const info = await readImage(name, d.name, home);
      if (info) out.push(info);
    }
  }
  return out.sort((a, b) => (a.manifest.created < b.manifest.created ? -1 : a.manifest.created > b.manifest.created ? 1 : 0));
}

/**
 * Remove images by name (all its digests) or by digest (or a unique digest prefix of 4+ hex).
 * Refuses with E_IMAGE_IN_USE if any of them is used by a session; nothing is removed then.
 */
export async function removeImage(
  nameOrDigest: string,
  inUse: (digest: string) => boolean,
  home: string = vibeboxHome(),
): Promise<ImageInfo[]> {
  const all = await listImages(home);
  let matched = all.filter((i) => i.name === nameOrDigest);
  if (matched.length === 0 && /^[0-9a-f]{4,16}$/.test(nameOrDigest)) {
    matched = all.filter((i) => i.digest.startsWith(nameOrDigest));
    const digests = new Set(matched.map((i) => i.digest));
    if (digests.size > 1) {
      throw new VibeboxError('E_USAGE', `"${nameOrDigest}" matches ${digests.size} images`, 'give more digits of the digest');
    }
  }
  if (matched.length === 0) {
    throw new VibeboxError('E_IMAGE_MISSING', `no image named or with digest "${nameOrDigest}"`, 'see vibebox image list');
  }
  const busy = matched.filter((i) => inUse(i.digest));
  if (busy.length > 0) {
    throw new VibeboxError(
      'E_IMAGE_IN_USE',
      `image ${busy.map((i) => `${i.name}/${i.digest}`).join(', ')} is used by a session`,
      'delete the sessions that use it first (vibebox list)',
    );
  }
  for (const i of matched) {
    // Rename first: a half-removed image must not look complete.
    const trash = join(imagesDirOf(home), `.tmp-rm-${i.digest}-${process.pid}-${randomBytes(3).toString('hex')}`);
    await rename(i.dir, trash);
    await rm(trash, { recursive: true, force: true });
    try {
      await rmdir(join(imagesDirOf(home), i.name));
    } catch {
      // other digests still there
    }
  }
  return matched;
}

/** The image for the current recipe: reused if built, built (with progress) if not. */
export async function ensureImage(opts: { name?: string; home?: string; onProgress?: (line: string) => void } = {}): Promise<ImageInfo> {
  const name = opts.name ?? DEFAULT_IMAGE_NAME;
  checkName(name);
  const home = opts.home ?? vibeboxHome();
  const digest = await currentDigest();
  const existing = await readImage(name, digest, home);
  if (existing) return existing;
  return buildImage({ ...opts, name, home });
}

export async function buildImage(opts: BuildOptions = {}): Promise<ImageInfo> {
  const name = opts.name ?? DEFAULT_IMAGE_NAME;
  checkName(name);
  const home = opts.home ?? vibeboxHome();
  const t0 = Date.now();
  const progress = (line: string) => opts.onProgress?.(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${line}`);
  const root = packageRoot();
  const ids = vibeIds();
  const inputs = await digestInputs(root);
  const digest = computeDigest(recipeData(ids), inputs);

  if (!opts.force) {
    const existing = await readImage(name, digest, home);
    if (existing) return existing;
  }

  const path = toolPath();
  for (const tool of ['mmdebstrap', 'mkfs.ext4', 'qemu-img']) {
    if (!(await findTool(tool, path))) {
      throw new VibeboxError('E_TOOL_MISSING', `${tool} is not installed (needed to build the guest image)`, 'run vibebox doctor');
    }
  }

  const imagesDir = imagesDirOf(home);
  await mkdir(imagesDir, { recursive: true });
  await checkFreeSpace(imagesDir);

  const lockTarget = join(imagesDir, `.lock-${name}-${digest}`);
  await writeFile(lockTarget, '', { flag: 'a' });
  let compromised: Error | undefined;
  let release: (() => Promise<void>) | undefined;
  try {
    release = await lockfile.lock(lockTarget, {
      stale: 30_000,
      update: 10_000,
      retries: { retries: 1800, factor: 1, minTimeout: 500, maxTimeout: 1000 },
      onCompromised: (err) => {
        compromised = err;
      },
    });
  } catch (e) {
    throw new VibeboxError('E_IMAGE_BUILD', `could not take the image build lock ${lockTarget}`, 'another build may be stuck; retry', { cause: e });
  }
  try {
    const existing = await readImage(name, digest, home);
    if (existing && !opts.force) {
      progress('image built by another process');
      return existing;
    }
    if (existing && opts.force && opts.inUse?.(digest)) {
      throw new VibeboxError('E_IMAGE_IN_USE', `image ${name}/${digest} is used by a session`, 'delete the sessions that use it first, or build without --force');
    }
    await removeStaleTempDirs(imagesDir);
    const info = await buildLocked({ name, digest, home, root, ids, progress, imagesDir, force: opts.force === true });
    if (compromised) throw new VibeboxError('E_IMAGE_BUILD', 'the image build lock was lost during the build', 'retry', { cause: compromised });
    progress(`done: ${name}/${digest} in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
    return info;
  } finally {
    await release().catch(() => undefined);
  }
}

async function checkFreeSpace(dir: string): Promise<void> {
  try {
    const s = await statfs(dir);
    const free = s.bavail * s.bsize;
    if (free < MIN_FREE_BYTES) {
      throw new VibeboxError('E_NO_SPACE', `not enough disk space to build the image (${(free / 1024 ** 3).toFixed(1)} GB free)`, `${NO_SPACE_HINT} ${dir}`);
    }
  } catch (e) {
    if (e instanceof VibeboxError) throw e;
    // statfs unsupported: let the build find out
  }
}

/** Mount points at or below dir (never delete through a mount). */
async function mountsUnder(dir: string): Promise<string[]> {
  try {
    const info = await readFile('/proc/self/mountinfo', 'utf8');
    return info
      .split('\n')
      .map((l) => l.split(' ')[4])
      .filter((m): m is string => m !== undefined)
      .map((m) => m.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
      .filter((m) => m === dir || m.startsWith(`${dir}/`));
  } catch {
    return [];
  }
}

async function removeTree(dir: string): Promise<void> {
  const mounts = await mountsUnder(dir);
  if (mounts.length > 0) {
    throw new VibeboxError('E_IMAGE_BUILD', `cannot remove ${dir}: ${mounts.length} mount(s) remain under it (${mounts[0]})`, 'unmount them (umount -R) and retry');
  }
  await rm(dir, { recursive: true, force: true });
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return isErrno(e, 'EPERM');
  }
}

/** Temp dirs of builds whose process is gone (killed, Ctrl-C). */
async function removeStaleTempDirs(imagesDir: string): Promise<void> {
  for (const e of await readdir(imagesDir)) {
    const m = /^\.tmp-.*-(\d+)-[0-9a-f]{6}$/.exec(e);
    if (!m || !m[1]) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || pidAlive(pid)) continue;
    await removeTree(join(imagesDir, e)).catch(() => undefined);
  }
}

function q(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

interface LockedBuild {
  name: string;
  digest: string;
  home: string;
  root: string;
  ids: { uid: number; gid: number };
  progress: (line: string) => void;
  imagesDir: string;
  force: boolean;
}

/** Where an unprivileged build keeps the files mmdebstrap's namespace root reads and writes. */
export function buildWorkRoot(): string {
  return process.env['VIBEBOX_BUILD_TMPDIR'] || '/var/tmp';
}

async function buildLocked(b: LockedBuild): Promise<ImageInfo> {
  const t0 = Date.now();
  const tmp = join(b.imagesDir, `.tmp-${b.name}-${b.digest}-${process.pid}-${randomBytes(3).toString('hex')}`);
  const mode = process.getuid?.() === 0 ? 'root' : 'unshare';
  // In unshare mode the customize hook runs as root of mmdebstrap's user namespace, a
  // subordinate uid on the host, which cannot enter a 0700 home (adduser's default). Its
  // inputs and outputs live in a work dir it can reach: a 0711 dir under /var/tmp (not listable)
  // holding one random-named dir (unguessable, so nobody else can plant files in it).
  const workParent = mode === 'unshare' ? await mkdtemp(join(buildWorkRoot(), 'vibebox-build-')) : undefined;
  const work = workParent ? join(workParent, randomBytes(16).toString('hex')) : tmp;
  const payload = join(work, 'payload');
  const stage = join(work, 'stage');
  const out = join(tmp, 'out');
  const chrootTmp = join(work, 'chroot');
  const disk = join(work, 'rootfs.ext4');
  const aptCache = join(b.home, 'cache', 'apt');
  const files = recipeFiles(b.root);
  try {
    await mkdir(payload, { recursive: true });
    await mkdir(stage, { recursive: true });
    await mkdir(out, { recursive: true });
    await mkdir(chrootTmp, { recursive: true });
    await mkdir(aptCache, { recursive: true });

    b.progress('staging the guest payload');
    try {
      await copyFile(files.guestAgent, join(payload, 'guest-agent.js'));
    } catch (e) {
      if (isErrno(e, 'ENOENT')) throw missingAgent(files.guestAgent);
      throw e;
    }
    try {
      await copyFile(files.guestContainers, join(payload, 'guest-containers.js'));
    } catch (e) {
      if (isErrno(e, 'ENOENT')) throw missingAgent(files.guestContainers);
      throw e;
    }
    await copyFile(files.guestInit, join(payload, 'init'));
    // The registry's prebuilt for the guest, never the host's install (built for the host's platform).
    b.progress(`fetching the guest's PTY module (@lydell/node-pty ${GUEST_PTY_VERSION}, linux-${process.arch})`);
    await stageGuestPty(join(payload, 'node-pty'), process.arch, join(b.home, 'cache', 'npm'));
    const commands = await listCommands(files.commandsDir);
    if (commands.length > 0) {
      await mkdir(join(payload, 'commands'));
      for (const c of commands) await copyFile(join(files.commandsDir, c), join(payload, 'commands', c));
    }

    if (workParent) {
      // The hook (a subordinate uid) may write only where everyone may; it hands its output
      // back (chmod a+rwX) so the user can read, convert and delete it.
      await chmod(workParent, 0o711);
      await chmod(work, 0o777);
      await chmod(stage, 0o777);
    }
    const agentBase = await ensureAgentBase({
      home: b.home,
      hook: files.agentBaseHook,
      ids: b.ids,
      mode,
      work,
      // Its own .deb cache: syncing the guest's (a kernel, docker) into this chroot would only cost time.
      aptCache: join(b.home, 'cache', 'apt-agent-base'),
      force: b.force,
      progress: b.progress,
      run,
      env: { TMPDIR: chrootTmp },
    });
    await stageAgentBase(payload, agentBase, b.progress);
    const divert =
      'chroot "$1" dpkg-divert --quiet --local --rename --add /usr/sbin/update-initramfs && ' +
      'printf "#!/bin/sh\\nexit 0\\n" > "$1/usr/sbin/update-initramfs" && chmod 0755 "$1/usr/sbin/update-initramfs"';
    const customize = ['sh', files.customize, '"$1"', payload, stage, String(b.ids.uid), String(b.ids.gid), disk, DISK_SIZE, INITRD_MODULES.join(' ')]
      .map((a) => (a === '"$1"' ? a : q(a)))
      .join(' ');
    const args = [
      '--variant=minbase',
      `--mode=${mode}`,
      '--format=null',
      `--include=${PACKAGES.join(',')}`,
      '--aptopt=Acquire::Retries "3"',
      '--dpkgopt=path-exclude=/usr/share/man/*',
      '--dpkgopt=path-exclude=/usr/share/info/*',
      '--dpkgopt=path-exclude=/usr/share/doc/*',
      '--dpkgopt=path-include=/usr/share/doc/*/copyright',
      '--skip=download/empty',
      '--skip=essential/unlink',
      // The tree is thrown away (--format=null; the hook wrote the disk): mmdebstrap's apt
      // clean-up would only fail in unshare mode, on a lock the hook's user does not own.
      '--skip=cleanup/apt',
      '--setup-hook=mkdir -p "$1"/var/cache/apt/archives/',
      `--setup-hook=sync-in ${aptCache} /var/cache/apt/archives/`,
      `--essential-hook=${divert}`,
      `--customize-hook=sync-out /var/cache/apt/archives ${aptCache}`,
      `--customize-hook=${customize}`,
      SUITE,
      '/dev/null',
      ...MIRRORS,
    ];
    b.progress(`mmdebstrap: building Debian ${SUITE} (${mode} mode)`);
    await run('mmdebstrap', args, { TMPDIR: chrootTmp }, (line) => {
      const step = /^vibebox-step: (.*)$/.exec(line);
      if (step?.[1]) b.progress(step[1]);
      else if (/^[IWE]: /.test(line) && !/^I: (chroot architecture|finding correct signed-by|automatically chosen format|running |using |skipping |removing tempdir)/.test(line)) {
        b.progress(`mmdebstrap: ${line.slice(3)}`);
      }
    });

    const kernelVersion = (await readFile(join(stage, 'kernel-version'), 'utf8')).trim();
    const p = imagePaths(b.name, b.digest, b.home);
    b.progress('writing the initrd');
    const initrd = await buildInitrd(stage, files.initrdInit, join(out, 'initrd.img'));
    b.progress(`initrd: ${initrd.modules.length} modules, ${(initrd.bytes / 1024 ** 2).toFixed(1)} MiB`);
    await copyFile(join(stage, 'vmlinuz'), join(out, 'vmlinuz'));
    await chmod(join(out, 'vmlinuz'), 0o644);

    b.progress('converting the root disk to qcow2');
    await run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', disk, join(out, 'rootfs.qcow2')], {}, () => undefined);
    await rm(disk, { force: true });

    const manifest: ImageManifest = {
      schema: 1,
      name: b.name,
      digest: b.digest,
      created: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
      suite: SUITE,
      arch: 'amd64',
      kernelVersion,
      packages: PACKAGES.filter((x) => x !== 'busybox-static'),
      user: { name: GUEST_USER, uid: b.ids.uid, gid: b.ids.gid, home: `/home/${GUEST_USER}` },
      hostname: HOSTNAME,
      cmdline: KERNEL_CMDLINE.join(' '),
      agentPort: AGENT_PORT,
      diskSizeBytes: parseSize(DISK_SIZE),
      files: { kernel: 'vmlinuz', initrd: 'initrd.img', rootfs: 'rootfs.qcow2' },
      buildSeconds: Math.round((Date.now() - t0) / 100) / 10,
    };
    ImageManifestSchema.parse(manifest);
    await writeFile(join(out, 'image.json'), `${JSON.stringify(manifest, null, 2)}\n`);

    // Into place: rename is atomic; with --force the old dir goes aside first.
    await mkdir(join(b.imagesDir, b.name), { recursive: true });
    let old: string | undefined;
    if (b.force && (await exists(p.dir))) {
      old = join(tmp, 'old');
      await rename(p.dir, old);
    }
    await rename(out, p.dir);
    await removeTree(tmp);
    if (workParent) await removeTree(workParent);
    return { name: b.name, digest: b.digest, dir: p.dir, kernel: p.kernel, initrd: p.initrd, rootfs: p.rootfs, manifest };
  } catch (e) {
    await removeTree(tmp).catch(() => undefined);
    if (workParent) await removeTree(workParent).catch(() => undefined);
    if (isErrno(e, 'ENOSPC')) throw noSpace(b.imagesDir, e);
    if (e instanceof VibeboxError && e.code === 'E_NO_SPACE') throw noSpace(b.imagesDir, e.cause);
    throw e;
  }
}

/**
 * The agent base for the customize hook: the tarball it unpacks into the guest's Docker store,
 * the store's metadata (docker-store.ts) with the modes the hook sets, and the gzipped copy and
 * sha256 the guest keeps for its fallback import (guest/docker/base-image.ts).
 */
async function stageAgentBase(payload: string, base: AgentBase, progress: (line: string) => void): Promise<void> {
  progress('staging the agent base and its Docker store');
  await copyFile(base.tar, join(payload, 'agent-base.tar'));
  await copyFile(base.gz, join(payload, 'agent-base.tar.gz'));
  await writeFile(join(payload, 'agent-base.tar.sha256'), `${base.sha256}\n`);
  const store = dockerStore(base.sha256, new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'));
  const root = join(payload, 'docker');
  // Staged readable by all: in unshare mode the hook is a subordinate uid; it sets the modes listed.
  await mkdir(root);
  const modes: string[] = [];
  for (const e of store.entries) {
    const at = join(root, e.path);
    if (e.kind === 'dir') await mkdir(at, { recursive: true });
    else if (e.kind === 'file') await writeFile(at, e.data ?? '');
    else await symlink(e.data ?? '', at);
    if (e.kind !== 'symlink') modes.push(`${e.mode.toString(8).padStart(4, '0')} ${e.path}`);
  }
  await writeFile(join(payload, 'docker-modes'), `${modes.join('\n')}\n`);
  await writeFile(join(payload, 'docker-layer'), `${store.diffDir} ${store.sizeFile}\n`);
}

function noSpace(dir: string, cause: unknown): VibeboxError {
  return new VibeboxError('E_NO_SPACE', 'no space left on the device while building the image (the partial image was removed)', `${NO_SPACE_HINT} ${dir}`, { cause });
}

function parseSize(s: string): number {
  const m = /^(\d+)([KMGT]?)$/.exec(s);
  if (!m || !m[1]) throw new Error(`bad size ${s}`);
  const mult = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }[m[2] ?? ''] ?? 1;
  return Number(m[1]) * mult;
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

/** Run a build tool; stderr and stdout lines go to onLine; failure → E_IMAGE_BUILD / E_NO_SPACE. */
async function run(cmd: string, args: string[], env: Record<string, string>, onLine: (line: string) => void): Promise<void> {
  const tail: string[] = [];
  const keep = (line: string) => {
    tail.push(line);
    if (tail.length > 40) tail.shift();
    onLine(line);
  };
  const child = execa(cmd, args, {
    env: { ...process.env, PATH: toolPath(), LC_ALL: 'C.UTF-8', ...env },
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
    reject: false,
    buffer: false,
  });
  const readers: Promise<void>[] = [];
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue;
    const rl = createInterface({ input: stream, crlfDelay: Infinity });
    readers.push(
      (async () => {
        for await (const line of rl) keep(line);
      })(),
    );
  }
  const result = await child;
  await Promise.all(readers);
  if (result.exitCode === 0) return;
  const text = tail.join('\n');
  if (/No space left on device|ENOSPC|Could not allocate block|disk full/i.test(text)) {
    throw noSpace('', new Error(text));
  }
  const detail = tail.filter((l) => /^E: |error|failed|cannot/i.test(l)).slice(-3).join(' | ') || tail.slice(-3).join(' | ');
  throw new VibeboxError(
    'E_IMAGE_BUILD',
    `${cmd} failed (${result.signal ?? `exit ${result.exitCode}`}): ${detail}`,
    'see the output above; VIBEBOX_DEBUG=1 shows more',
  );
}
