// The image a kit runs on: the agent base, its base family's Debian packages (one layer, shared by
// every kit of that family), then the kit's own packages (one more layer). Each layer is built the
// first time a kit serve asks for it, in a throw-away container whose apt and npm reach their
// mirrors through the egress proxy (as the project layer, guest/docker/project-image.ts), and is
// committed under a tag made from its content: a second serve, or another kit of the family,
// finds it and builds nothing. Why in the VM and not an mmdebstrap tarball made on the host: the
// packages land on top of the very image the kit runs (no second Debian to keep in step), only
// what is asked for is ever fetched, and the path is the one the project layer already proves.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { FAMILIES, familyOf } from '../kit/families.js';
import { BASE_IMAGE, baseTarSha, ensureBaseImage } from '../docker/base-image.js';
import { docker, dockerRun } from '../docker/docker-cmd.js';
import { buildEnv, buildSteps, imageExists } from '../docker/project-image.js';
import { VibeboxError } from '../errors.js';

export const KIT_IMAGE_REPO = 'vibebox/kit';
const SYSTEM_CAS = '/etc/ssl/certs/ca-certificates.crt';
const HOST_CAS = '/etc/vibebox/host-cas.pem';
const STEP_MS = 45 * 60_000;
const DOCKER_MS = 5 * 60_000;

export interface KitLayer {
  /** For messages: "family docs", "packages". */
  what: string;
  from: string;
  apt: string[];
  npm: string[];
  tag: string;
}

const sorted = (xs: readonly string[]): string[] => [...new Set(xs)].sort();

/** The content tag of a layer: what it is built from and what it adds. */
export function layerTag(kind: string, from: string, apt: readonly string[], npm: readonly string[]): string {
  const sha = createHash('sha256').update(`vibebox-kit-layer\0${from}\0${JSON.stringify({ apt: sorted(apt), npm: sorted(npm) })}`).digest('hex');
  return `${KIT_IMAGE_REPO}:${kind}-${sha.slice(0, 16)}`;
}

/** The layers a kit's image needs, in order (pure). Empty: the kit runs on the agent base itself. */
export function kitLayers(base: string | undefined, own: { apt?: readonly string[]; npm?: readonly string[] }, baseSha: string): KitLayer[] {
  const layers: KitLayer[] = [];
  // The base tarball's sha is the agent base's identity: a new guest image rebuilds the layers.
  let from = `${BASE_IMAGE}@${baseSha}`;
  let fromTag = BASE_IMAGE;
  const family = familyOf(base);
  if (family) {
    const f = FAMILIES[family];
    const tag = layerTag(family, from, f.apt, f.npm);
    layers.push({ what: `family ${family}`, from: fromTag, apt: sorted(f.apt), npm: sorted(f.npm), tag });
    from = fromTag = tag;
  }
  const apt = sorted(own.apt ?? []);
  const npm = sorted(own.npm ?? []);
  if (apt.length || npm.length) layers.push({ what: 'packages', from: fromTag, apt, npm, tag: layerTag('pkgs', from, apt, npm) });
  return layers;
}

async function buildLayer(l: KitLayer, log: (line: string) => void): Promise<void> {
  const t0 = Date.now();
  const name = `vibebox-kit-layer-${randomBytes(4).toString('hex')}`;
  const hostCas = existsSync(HOST_CAS);
  log(`building the kit image layer ${l.what} (${l.tag})…`);
  try {
    await docker(
      ['run', '-d', '--name', name, '--user', 'root', '--network', 'bridge', '-v', `${SYSTEM_CAS}:${SYSTEM_CAS}:ro`, ...(hostCas ? ['-v', `${HOST_CAS}:${HOST_CAS}:ro`] : []), l.from, 'sleep', 'infinity'],
      { timeoutMs: DOCKER_MS, what: 'starting the kit layer build container' },
    );
    for (const step of buildSteps({ apt: l.apt, npm: l.npm, run: [] })) {
      log(`kit image ${l.what}: ${step.name}`);
      const env = buildEnv(hostCas).flatMap((e) => ['-e', e]);
      const r = await dockerRun(['exec', ...env, name, ...step.argv], { timeoutMs: STEP_MS, onLine: (x) => log(`  ${x}`) });
      if (r.code !== 0) throw new VibeboxError('E_IMAGE_BUILD', `the kit image layer ${l.what} failed at ${step.name} (exit ${r.code})`, 'see the output above; check the kit\'s packages');
    }
    await docker(['commit', '--change', 'USER vibe', '--change', 'CMD ["bash","-l"]', name, l.tag], { timeoutMs: DOCKER_MS * 2, what: 'docker commit' });
  } finally {
    await dockerRun(['rm', '-f', name], { timeoutMs: DOCKER_MS }).catch(() => undefined);
  }
  log(`built ${l.tag} in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
}

/** The image to run a kit on, building what is missing. */
export async function ensureKitImage(base: string | undefined, own: { apt?: readonly string[]; npm?: readonly string[] }, log: (line: string) => void): Promise<string> {
  await ensureBaseImage(log);
  const layers = kitLayers(base, own, await baseTarSha());
  for (const l of layers) if (!(await imageExists(l.tag))) await buildLayer(l, log);
  return layers.at(-1)?.tag ?? BASE_IMAGE;
}
