// Kits in the VM: `vibebox kit serve` runs a built kit (dist/ under /workspace) in its
// own container with the agent container's hardening and egress path: cap_drop ALL,
// no-new-privileges, the vibe uid, on the internal network whose only way out is the relay to the
// host proxy. The root filesystem is read-only; the kit's state (files index, /input, /output,
// /work) lives in a per-kit directory on the VM disk. The key and the manifest's secrets reach
// the kit through a 0600 file on the VM's tmpfs (/run), never the VM disk nor the container's
// stored config, and `kit stop` deletes it.
import { chownSync, closeSync, constants, fstatSync, mkdirSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { KitManifestFile } from '../kit/main-schema.js';
import { ensureKitImage } from './kit-image.js';
import { VibeboxError } from '../errors.js';
import { BASE_IMAGE } from '../docker/base-image.js';
import { CONTAINER_PATH, KIT_PORT, kitContainerName } from './agent-create-body.js';
import { INTERNAL_NETWORK, LABEL_ROLE, PROXY_ENV } from '../docker/names.js';
import { createContainer, inspectContainer, listContainers, removeContainer, startContainer } from '../docker/engine.js';
import { ensureRelay } from '../docker/network.js';
import type { Who } from './container.js';

export const LABEL_KIT = 'org.vibebox.kit';
const STATE_ROOT = '/var/lib/vibebox/kits';
/** On tmpfs: the secrets never reach the VM disk, and leave with the VM's power-off. */
export const SECRETS_ROOT = '/run/vibebox/kits';
const IN_CONTAINER_STATE = '/var/lib/vibebox-kit';
const IN_CONTAINER_SECRETS = '/run/vibebox-kit';
/** As the host checks it: the name becomes a container name and paths here. */
const KIT_NAME = /^[a-z0-9][a-z0-9_.-]{0,62}$/;

export interface KitContainerInput {
  name: string;
  /** The kit's dist directory in the VM. */
  dir: string;
  /** Its state directory in the VM. */
  state: string;
  /** The directory (on tmpfs) holding its secrets.json. */
  secrets: string;
  who: Who;
  image?: string;
}

/** Pure: the container body (hardening as agentContainerBody, plus a read-only root). */
export function kitContainerBody(i: KitContainerInput): Record<string, unknown> {
  const st = IN_CONTAINER_STATE;
  return {
    Image: i.image ?? BASE_IMAGE,
    Hostname: kitContainerName(i.name),
    User: `${i.who.uid}:${i.who.gid}`,
    // The agent's view is the manifest's fs layout (/input, /output, /work), as in the Dockerfile's image.
    WorkingDir: '/work',
    // Debian's node: the kit's native modules are built for the guest's Node ABI, not the agents' Node.
    Cmd: ['/usr/bin/node', '/opt/kit/server/index.mjs'],
    Entrypoint: [],
    Env: [
      `PATH=${CONTAINER_PATH}`,
      'HOME=/work',
      'LANG=C.UTF-8',
      'NODE_EXTRA_CA_CERTS=/etc/vibebox/host-cas.pem',
      ...Object.entries(PROXY_ENV).map(([k, v]) => `${k}=${v}`),
      'VIBEBOX_KIT_MANIFEST=/opt/kit/kit.json',
      'VIBEBOX_KIT_RUNNABLE=/opt/kit/server/runnable.mjs',
      `VIBEBOX_KIT_SECRETS=${IN_CONTAINER_SECRETS}/secrets.json`,
      `VIBEBOX_KIT_PORT=${KIT_PORT}`,
      `VIBEBOX_KIT_STATE=${st}/files`,
      'VIBEBOX_KIT_INPUT=/input',
      'VIBEBOX_KIT_OUTPUT=/output',
      'VIBEBOX_KIT_WORK=/work',
    ],
    Labels: { [LABEL_ROLE]: 'kit', [LABEL_KIT]: i.name },
    HostConfig: {
      Binds: [
        `${i.dir}:/opt/kit:ro`,
        `${i.state}/files:${st}/files`,
        `${i.state}/input:/input`,
        `${i.state}/output:/output`,
        `${i.state}/work:/work`,
        `${i.secrets}:${IN_CONTAINER_SECRETS}:ro`,
        '/etc/vibebox:/etc/vibebox:ro',
        '/etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro',
      ],
      Tmpfs: { '/tmp': 'rw,nosuid,nodev,size=256m' },
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      NetworkMode: INTERNAL_NETWORK,
      Init: true,
      ReadonlyRootfs: true,
      RestartPolicy: { Name: 'no' },
      Privileged: false,
    },
    NetworkingConfig: { EndpointsConfig: { [INTERNAL_NETWORK]: {} } },
  };
}

/** The secrets file's content: the key and the manifest's env entries found in the exec env. */
export function kitSecrets(env: Record<string, string>, pass: readonly string[]): { VIBEBOX_KIT_KEY: string } & Record<string, string> {
  const key = env['VIBEBOX_KIT_KEY'];
  if (!key || key.length < 16) throw new VibeboxError('E_USAGE', 'kit serve needs the kit key (VIBEBOX_KIT_KEY, at least 16 characters)', 'run vibebox kit serve <dist> from the host');
  const out: { VIBEBOX_KIT_KEY: string } & Record<string, string> = { VIBEBOX_KIT_KEY: key };
  for (const n of pass) if (n !== 'VIBEBOX_KIT_KEY' && env[n] !== undefined) out[n] = env[n]!;
  return out;
}

/** kit.json of the dist (the project's file): not through a link, capped, checked by the launcher's schema. */
function readManifest(file: string): ReturnType<typeof KitManifestFile.parse> {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    throw new VibeboxError('E_USAGE', `cannot open the kit's kit.json (${(e as NodeJS.ErrnoException).code ?? 'error'})`, 'run vibebox kit build again');
  }
  let text: string;
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.size > 1024 * 1024) throw new VibeboxError('E_USAGE', "the kit's kit.json is not a regular file under 1 MiB", 'run vibebox kit build again');
    const buf = Buffer.alloc(st.size);
    let n = 0;
    while (n < buf.length) {
      const r = readSync(fd, buf, n, buf.length - n, null);
      if (r === 0) break;
      n += r;
    }
    text = buf.subarray(0, n).toString('utf8');
  } finally {
    closeSync(fd);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new VibeboxError('E_USAGE', "the kit's kit.json is not JSON", 'run vibebox kit build again');
  }
  const m = KitManifestFile.safeParse(json);
  if (!m.success) throw new VibeboxError('E_USAGE', `the kit's kit.json: ${m.error.issues[0]?.path.join('.') ?? ''}: ${m.error.issues[0]?.message ?? 'invalid'}`, 'run vibebox kit build again');
  return m.data;
}

/** What the kit ops ask (protocol OpRequest kit_serve, kit_stop, kit_ls). */
export interface KitAction {
  action: 'serve' | 'stop' | 'ls';
  name?: string;
  dir?: string;
}

/** The kits in this VM: name and container state (labels are guest text: the host escapes them). */
export async function listKits(): Promise<{ name: string; state: string }[]> {
  const cs = await listContainers(LABEL_ROLE, 'kit');
  return cs.map((c) => ({ name: c.Labels?.[LABEL_KIT] ?? c.Names[0]?.replace(/^\//, '') ?? '', state: c.State }));
}

export async function kitOp(op: KitAction, env: Record<string, string>, pass: readonly string[], who: Who, line: (s: string) => void, out: (s: string) => void): Promise<number> {
  if (op.action === 'ls') {
    for (const k of await listKits()) out(`${k.name}\t${k.state}\n`);
    return 0;
  }
  if (!op.name) throw new VibeboxError('E_USAGE', `kit ${op.action} needs a name`);
  if (!KIT_NAME.test(op.name)) throw new VibeboxError('E_USAGE', 'kit name is not valid', 'use lower-case letters, digits, ".", "_" or "-"');
  const cname = kitContainerName(op.name);
  const state = `${STATE_ROOT}/${op.name}`;
  const secretsDir = `${SECRETS_ROOT}/${op.name}`;
  // The secrets leave with the kit (and a file an older vibebox left on the VM disk with them).
  const dropSecrets = (): void => {
    rmSync(secretsDir, { recursive: true, force: true });
    rmSync(`${state}/secrets.json`, { force: true });
  };
  if (op.action === 'stop') {
    const c = await inspectContainer(cname);
    if (c) await removeContainer(c.Id);
    dropSecrets();
    if (!c) {
      line(`vibebox: no kit named ${op.name} is running`);
      return 1;
    }
    return 0;
  }
  if (!op.dir) throw new VibeboxError('E_USAGE', 'kit serve needs the kit directory');
  const secrets = kitSecrets(env, pass);
  const manifest = readManifest(`${op.dir}/kit.json`);
  // The base family's and the kit's packages: layers built on first use, found by content after.
  const image = await ensureKitImage(manifest.base, { apt: manifest.packages?.['apt'] ?? [], npm: manifest.packages?.['npm'] ?? [] }, line);
  await ensureRelay(line);
  // A kit served again replaces the one running (a rebuilt dist, a new key).
  await removeContainer(cname);
  dropSecrets();
  for (const d of ['', '/files', '/input', '/output', '/work']) {
    mkdirSync(`${state}${d}`, { recursive: true, mode: 0o700 });
    chownSync(`${state}${d}`, who.uid, who.gid);
  }
  mkdirSync(secretsDir, { recursive: true, mode: 0o700 });
  chownSync(secretsDir, who.uid, who.gid);
  writeFileSync(`${secretsDir}/secrets.json`, JSON.stringify(secrets), { mode: 0o600, flag: 'wx' });
  chownSync(`${secretsDir}/secrets.json`, who.uid, who.gid);
  const id = await createContainer(cname, kitContainerBody({ name: op.name, dir: op.dir, state, secrets: secretsDir, who, image }));
  await startContainer(id);
  line(`vibebox: kit ${op.name} started in container ${cname}`);
  return 0;
}
