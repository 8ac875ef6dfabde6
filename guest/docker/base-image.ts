// vibebox/agent:base: the agent containers' base image, `docker import`ed from the rootfs tarball
// the image build put into the guest (images/agent-base.ts). No registry: re-imported only when
// the tarball's sha256 differs from the image's label (a new guest image).
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { VibeboxError, isErrno } from '../errors.js';
import { dockerdOnDemand } from './dockerd.js';
import { docker, dockerRun } from './docker-cmd.js';

const execFileP = promisify(execFile);

export const BASE_IMAGE = 'vibebox/agent:base';
export const BASE_TAR = '/opt/vibebox/agent-base.tar';
export const BASE_SHA_LABEL = 'org.vibebox.base-sha256';
export const CONTAINER_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** The first requests after dockerd starts can take a minute under TCG on a loaded host. */
const INSPECT_MS = 5 * 60_000;
/** Under TCG an import of ~300 MB takes minutes. */
const IMPORT_MS = 15 * 60_000;

/** The image config `docker import` gives the base (pure). */
export function importChanges(sha256: string): string[] {
  return [
    'USER vibe',
    'WORKDIR /workspace',
    `ENV PATH=${CONTAINER_PATH}`,
    'ENV LANG=C.UTF-8',
    // No ENV HOME: Docker sets it from /etc/passwd for the user a process runs as (/home/vibe
    // for vibe), so `--user root` gets /root rather than a home it may not read without caps.
    // An empty file in the base; whoever runs a container bind-mounts the guest's extra CAs there.
    'ENV NODE_EXTRA_CA_CERTS=/etc/vibebox/host-cas.pem',
    'CMD ["bash","-l"]',
    `LABEL ${BASE_SHA_LABEL}=${sha256}`,
  ];
}

/** The sha256 of the tarball in this guest image (written beside it at build time). */
export async function baseTarSha(): Promise<string> {
  let raw: string;
  try {
    raw = await readFile(`${BASE_TAR}.sha256`, 'utf8');
  } catch (e) {
    if (isErrno(e, 'ENOENT')) throw new VibeboxError('E_IMAGE_MISSING', `${BASE_TAR}.sha256 is missing in the guest`, 'rebuild the guest image: vibebox image build --force');
    throw e;
  }
  const sha = raw.trim();
  if (!/^[0-9a-f]{64}$/.test(sha)) throw new VibeboxError('E_IMAGE_MISSING', `${BASE_TAR}.sha256 is not a sha256`, 'rebuild the guest image: vibebox image build --force');
  return sha;
}

/** A label of a local image; undefined when the image is missing. */
export async function imageLabel(image: string, label: string): Promise<string | undefined> {
  const r = await dockerRun(['image', 'inspect', '--format', `{{ index .Config.Labels ${JSON.stringify(label)} }}`, image], { timeoutMs: INSPECT_MS });
  if (r.code !== 0) {
    if (/no such image/i.test(r.stderr)) return undefined;
    throw new VibeboxError('E_IMAGE_BUILD', `docker image inspect ${image} failed: ${r.stderr.trim().split('\n').pop() ?? ''}`, 'see /var/log/dockerd.log in the VM');
  }
  return r.stdout.trim();
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

/** Make sure vibebox/agent:base is this guest image's tarball; import it when not. */
export async function ensureBaseImage(log: (line: string) => void): Promise<void> {
  await engine();
  const sha = await baseTarSha();
  if ((await imageLabel(BASE_IMAGE, BASE_SHA_LABEL)) === sha) return;
  log('importing the agent base image…');
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
