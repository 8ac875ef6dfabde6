// vibebox/agent:base: the agent containers' base image. The image build writes it into the
// guest's Docker store (images/docker-store.ts), so a container starts from disk. When the store
// lacks it or holds another one (its label is not this guest image's tarball sha256), it is
// `docker import`ed from the gzipped rootfs tarball the image also carries: the fallback.
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { VibeboxError, isErrno } from '../errors.js';
import { dockerdOnDemand } from './dockerd.js';
import { docker } from './docker-cmd.js';
import { inspectImage } from './engine.js';
import { BASE_IMAGE, BASE_SHA_LABEL, CONTAINER_PATH, baseConfig } from './base-config.js';

export { BASE_IMAGE, BASE_SHA_LABEL, CONTAINER_PATH };

const execFileP = promisify(execFile);
export const BASE_TAR = '/opt/vibebox/agent-base.tar.gz';
/** The sha256 of the uncompressed tarball: the layer's diff id and the base's label. */
export const BASE_SHA_FILE = '/opt/vibebox/agent-base.tar.sha256';

/** Under TCG an import of ~300 MB takes minutes. */
const IMPORT_MS = 15 * 60_000;

/** The image config `docker import` gives the base (pure): the same as the store's (base-config.ts). */
export function importChanges(sha256: string): string[] {
  const c = baseConfig(sha256);
  return [
    `USER ${c.User}`,
    `WORKDIR ${c.WorkingDir}`,
    ...c.Env.map((e) => `ENV ${e}`),
    `CMD ${JSON.stringify(c.Cmd)}`,
    ...Object.entries(c.Labels).map(([k, v]) => `LABEL ${k}=${v}`),
  ];
}

/** The sha256 of the tarball in this guest image (written beside it at build time). */
export async function baseTarSha(): Promise<string> {
  let raw: string;
  try {
    raw = await readFile(BASE_SHA_FILE, 'utf8');
  } catch (e) {
    if (isErrno(e, 'ENOENT')) throw new VibeboxError('E_IMAGE_MISSING', `${BASE_SHA_FILE} is missing in the guest`, 'rebuild the guest image: vibebox image build --force');
    throw e;
  }
  const sha = raw.trim();
  if (!/^[0-9a-f]{64}$/.test(sha)) throw new VibeboxError('E_IMAGE_MISSING', `${BASE_SHA_FILE} is not a sha256`, 'rebuild the guest image: vibebox image build --force');
  return sha;
}

/** A label of a local image (one engine API call, no CLI); undefined when the image is missing. */
export async function imageLabel(image: string, label: string): Promise<string | undefined> {
  const img = await inspectImage(image);
  if (!img) return undefined;
  return img.Config?.Labels?.[label] ?? '';
}

/** The Docker engine, started if it is not running. */
export async function engine(): Promise<void> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  try {
    await dockerdOnDemand(env);
  } catch (e) {
    throw new VibeboxError('E_IMAGE_BUILD', `the docker engine did not start: ${(e as Error).message}`, 'see /var/log/dockerd.log in the VM', { cause: e });
  }
}

/** Make sure vibebox/agent:base is this guest image's base (the store's, normally); import it when not. */
export async function ensureBaseImage(log: (line: string) => void): Promise<void> {
  await engine();
  const sha = await baseTarSha();
  const label = await imageLabel(BASE_IMAGE, BASE_SHA_LABEL);
  if (label === sha) return;
  log(`importing the agent base image (${label === undefined ? 'not in the Docker store' : 'the store holds another one'})…`);
  const t0 = Date.now();
  const args = ['import', ...importChanges(sha).flatMap((c) => ['--change', c]), BASE_TAR, BASE_IMAGE];
  await docker(args, { timeoutMs: IMPORT_MS, what: `docker import ${BASE_TAR}` });
  log(`imported ${BASE_IMAGE} in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
  releaseImportCache();
}

/**
 * The import leaves the tarball (425 MiB) and the layer it wrote in the guest's page cache, guest
 * RAM the host then keeps as QEMU's memory for the whole session (bench: 1.8 GB PSS idle after a
 * first run, against ~0.4 GB before it). Written back and dropped, those pages are free, and free
 * page reporting returns them to the host. In the background: the run does not wait for it.
 */
function releaseImportCache(): void {
  void execFileP('sync', [], { timeout: 120_000 })
    .then(() => writeFile('/proc/sys/vm/drop_caches', '1'))
    .catch(() => undefined);
}
