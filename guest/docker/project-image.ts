// The project layer: vibebox.toml [image] (apt, npm, run) built FROM vibebox/agent:base in a
// throw-away container, committed as vibebox/project:<content hash>. An unchanged layer is found
// by its tag and never rebuilt. The build reaches package mirrors only through the egress proxy.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { VibeboxError } from '../errors.js';
import { ImageLayerSpec } from '../protocol.js';
import { BASE_IMAGE, CONTAINER_PATH, baseTarSha, ensureBaseImage } from './base-image.js';
import { docker, dockerRun, lastLine } from './docker-cmd.js';
import { EGRESS_URL } from '../protocol.js';

export const PROJECT_REPO = 'vibebox/project';
export const LAYER_SHA_LABEL = 'org.vibebox.layer-sha256';
export const PROXY_URL = EGRESS_URL;
const SYSTEM_CAS = '/etc/ssl/certs/ca-certificates.crt';
const HOST_CAS = '/etc/vibebox/host-cas.pem';

/** Minutes under TCG for an apt or npm install; every step has this deadline. */
const STEP_MS = 30 * 60_000;
const DOCKER_MS = 5 * 60_000;

/**
 * The spec as it is hashed and built. apt and npm lists are sorted and deduplicated: each list is
 * installed by one command, whose result does not depend on the order, so reordering the toml does
 * not rebuild. `run` lines keep their order (each may depend on the ones before).
 */
export function canonicalSpec(spec: ImageLayerSpec): ImageLayerSpec {
  const set = (xs: readonly string[]) => [...new Set(xs)].sort();
  return { apt: set(spec.apt), npm: set(spec.npm), run: [...spec.run] };
}

export function isEmptySpec(spec: ImageLayerSpec): boolean {
  return spec.apt.length === 0 && spec.npm.length === 0 && spec.run.length === 0;
}

/** sha256 over the base tarball's sha and the canonical spec (fixed key order). */
export function layerSha(spec: ImageLayerSpec, baseSha: string): string {
  const c = canonicalSpec(spec);
  const json = JSON.stringify({ apt: c.apt, npm: c.npm, run: c.run });
  return createHash('sha256').update(`vibebox-project-layer\0${baseSha}\0${json}`).digest('hex');
}

/** The image a container with this [image] spec is made from: the base itself when the spec is empty. */
export function projectImageTag(spec: ImageLayerSpec, baseSha: string): string {
  if (isEmptySpec(spec)) return BASE_IMAGE;
  return `${PROJECT_REPO}:${layerSha(spec, baseSha).slice(0, 16)}`;
}

export interface BuildStep {
  /** For messages: "apt install", "npm install", "run[2]". */
  name: string;
  /** argv for `docker exec <container>`. */
  argv: string[];
}

/** The steps of a layer build, in order (pure). Package names go as arguments, never through a shell. */
export function buildSteps(spec: ImageLayerSpec): BuildStep[] {
  const c = canonicalSpec(spec);
  const steps: BuildStep[] = [];
  if (c.apt.length > 0) {
    steps.push({
      name: 'apt install',
      argv: ['sh', '-ec', 'apt-get update && apt-get install -y --no-install-recommends "$@" && rm -rf /var/lib/apt/lists/*', 'sh', ...c.apt],
    });
  }
  if (c.npm.length > 0) {
    steps.push({ name: 'npm install', argv: ['sh', '-ec', 'npm install -g --no-fund --no-audit "$@" && rm -rf /root/.npm', 'sh', ...c.npm] });
  }
  c.run.forEach((line, i) => steps.push({ name: `run[${i}]`, argv: ['sh', '-ec', line] }));
  return steps;
}

/** Environment of every build step: the proxy (the VM's only way out) and the guest's CA trust. */
export function buildEnv(hostCas: boolean): string[] {
  const env = [
    `http_proxy=${PROXY_URL}`,
    `https_proxy=${PROXY_URL}`,
    `HTTP_PROXY=${PROXY_URL}`,
    `HTTPS_PROXY=${PROXY_URL}`,
    'DEBIAN_FRONTEND=noninteractive',
    'HOME=/root',
    `PATH=${CONTAINER_PATH}`,
  ];
  if (hostCas) env.push(`NODE_EXTRA_CA_CERTS=${HOST_CAS}`);
  return env;
}

/** `docker run` for the build container: root, the default bridge, the guest's trust read-only. */
export function buildContainerArgs(name: string, hostCas: boolean): string[] {
  return [
    'run',
    '-d',
    '--name',
    name,
    '--user',
    'root',
    '--network',
    'bridge',
    '-v',
    `${SYSTEM_CAS}:${SYSTEM_CAS}:ro`,
    ...(hostCas ? ['-v', `${HOST_CAS}:${HOST_CAS}:ro`] : []),
    BASE_IMAGE,
    'sleep',
    'infinity',
  ];
}

/** What `docker commit` restores (the build container ran as root, sleeping; the base has no entrypoint). */
export function commitChanges(layer: string, baseSha: string): string[] {
  return [
    'USER vibe',
    'WORKDIR /workspace',
    'CMD ["bash","-l"]',
    `LABEL ${LAYER_SHA_LABEL}=${layer}`,
    `LABEL org.vibebox.base-sha256=${baseSha}`,
  ];
}

export async function imageExists(tag: string): Promise<boolean> {
  const r = await dockerRun(['image', 'inspect', '--format', '{{.Id}}', tag], { timeoutMs: DOCKER_MS });
  if (r.code === 0) return true;
  if (/no such image/i.test(r.stderr)) return false;
  throw new VibeboxError('E_IMAGE_BUILD', `docker image inspect ${tag} failed: ${lastLine(r.stderr)}`, 'see /var/log/dockerd.log in the VM');
}

/** The image to create the project's container from: built (with progress) when its tag is missing. */
export async function ensureProjectImage(input: ImageLayerSpec, log: (line: string) => void): Promise<string> {
  const parsed = ImageLayerSpec.safeParse(input);
  if (!parsed.success) throw new VibeboxError('E_CONFIG_INVALID', `invalid [image] spec: ${parsed.error.issues[0]?.message ?? 'unknown'}`, 'fix [image] in vibebox.toml');
  const spec = canonicalSpec(parsed.data);
  await ensureBaseImage(log);
  const baseSha = await baseTarSha();
  const tag = projectImageTag(spec, baseSha);
  if (tag === BASE_IMAGE || (await imageExists(tag))) return tag;

  await buildLayerImage(spec, baseSha, tag, log);
  return tag;
}

/** Build `tag` FROM the base with the (canonical) spec's steps, through the proxy; also the stack's
 * `local/<name>` service images. */
export async function buildLayerImage(spec: ImageLayerSpec, baseSha: string, tag: string, log: (line: string) => void): Promise<void> {
  const t0 = Date.now();
  const layer = layerSha(spec, baseSha);
  const name = `vibebox-layer-build-${layer.slice(0, 12)}-${randomBytes(3).toString('hex')}`;
  const hostCas = existsSync(HOST_CAS);
  log(`building the project image ${tag}…`);
  try {
    await docker(buildContainerArgs(name, hostCas), { timeoutMs: DOCKER_MS, what: 'starting the build container' });
    for (const step of buildSteps(spec)) {
      log(`project image: ${step.name}`);
      const env = buildEnv(hostCas).flatMap((e) => ['-e', e]);
      const r = await dockerRun(['exec', ...env, name, ...step.argv], { timeoutMs: STEP_MS, onLine: (l) => log(`  ${l}`) });
      if (r.code !== 0) {
        const what = step.name.startsWith('run[') ? `${step.name} ${JSON.stringify(step.argv[2]).slice(0, 80)}` : step.name;
        throw new VibeboxError('E_IMAGE_BUILD', `the project image build failed at ${what} (exit ${r.code})`, 'see the output above; fix [image] in vibebox.toml');
      }
    }
    await docker(['commit', ...commitChanges(layer, baseSha).flatMap((c) => ['--change', c]), name, tag], { timeoutMs: DOCKER_MS * 2, what: 'docker commit' });
  } finally {
    await dockerRun(['rm', '-f', name], { timeoutMs: DOCKER_MS }).catch(() => undefined);
  }
  log(`built ${tag} in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
}
