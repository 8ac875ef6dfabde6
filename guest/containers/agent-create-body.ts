// The agent container's create body (Docker Engine API), pure: every wall of the container is
// decided here, where a unit test can read it.
import type { ContainerSpec } from '../protocol.js';
import { AGENT_PREFIX, AGENT_STORE, STATE_HOME } from './agents.js';
import { AGENT_CONTAINER, INTERNAL_NETWORK, LABEL_IMAGE, LABEL_ROLE, LABEL_SPEC, PROXY_ENV } from '../docker/names.js';


/** Bump when the create body changes: containers made by an older runtime are then recreated (when clean). */
export const RUNTIME_VERSION = 4;
/** The agent's runner socket directory in the VM (runner-hub.ts; here to keep this module pure). */
export const RUNNER_DIR = '/run/vibebox/runner';

export const STATE_VOLUME = 'vibebox-agent-state';
/** A served kit's container (guest/containers/kit.ts) and the port it listens on (forwarded to the host). */
export const KIT_PREFIX = 'vibebox-kit-';
export const KIT_PORT = 8080;
export const kitContainerName = (name: string): string => `${KIT_PREFIX}${name}`;


export const CONTAINER_PATH = `${AGENT_PREFIX}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`;

export interface AgentContainerInput {
  /** The image to create from: the committed image when there is one, else the project image. */
  image: string;
  /** The project image tag the container derives from (label; compared with the spec's). */
  projectImage: string;
  specHash: string;
  spec: ContainerSpec;
  uid: number;
  gid: number;
}

/**
 * Not read-only: `vibebox run --root -- apt-get install` must be able to change the root
 * filesystem, and commit/reset exist to keep or drop exactly those changes.
 */
export function agentContainerBody(i: AgentContainerInput): Record<string, unknown> {
  const hostConfig: Record<string, unknown> = {
    Binds: [
      '/workspace:/workspace',
      // The host's CA trust as the VM has it at this boot (both re-resolved at every container start).
      '/etc/vibebox:/etc/vibebox:ro',
      '/etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro',
      // The runner (the container's main process) runs from the guest's bundle and connects to
      // the agent's socket in this directory (runner.ts).
      '/opt/vibebox:/opt/vibebox:ro',
      `${RUNNER_DIR}:/run/vibebox-runner:ro`,
      // The agent's stack CLI: a wrapper around the bundle's stack-cli.
      '/opt/vibebox/vibebox-stack:/usr/local/bin/vibebox-stack:ro',
      // The host's agent store: agents installed once per machine, read-only for every VM.
      `${AGENT_STORE}:${AGENT_STORE}:ro`,
    ],
    Mounts: [{ Type: 'volume', Source: STATE_VOLUME, Target: STATE_HOME }],
    CapDrop: ['ALL'],
    SecurityOpt: ['no-new-privileges'],
    NetworkMode: INTERNAL_NETWORK,
    // tini as PID 1 reaps what the execs leave behind.
    Init: true,
    RestartPolicy: { Name: 'no' },
    ReadonlyRootfs: false,
    Privileged: false,
  };
  if (i.spec.cpus !== undefined) hostConfig['NanoCpus'] = Math.round(i.spec.cpus * 1e9);
  if (i.spec.memoryBytes !== undefined) {
    hostConfig['Memory'] = i.spec.memoryBytes;
    // No swap beyond the memory cap.
    hostConfig['MemorySwap'] = i.spec.memoryBytes;
  }
  return {
    Image: i.image,
    Hostname: 'vibebox-agent',
    User: `${i.uid}:${i.gid}`,
    WorkingDir: '/workspace',
    // The runner (under tini): spawns the runs as vibe without a runc exec each (runner.ts).
    // Debian's node (/usr/bin): the guest's node-pty is built for its ABI; the agents' Node is first on PATH.
    Cmd: ['/usr/bin/node', '/opt/vibebox/guest-containers.js', 'runner'],
    Entrypoint: [],
    // Only what is not secret: keys are passed per exec (ops.ts), never stored here.
    Env: [
      `PATH=${CONTAINER_PATH}`,
      `HOME=${STATE_HOME}`,
      'LANG=C.UTF-8',
      'NODE_EXTRA_CA_CERTS=/etc/vibebox/host-cas.pem',
      'VIBEBOX_STACK_URL=http://stack-controller:7000',
      ...Object.entries(PROXY_ENV).map(([k, v]) => `${k}=${v}`),
    ],
    Labels: { [LABEL_ROLE]: 'agent', [LABEL_IMAGE]: i.projectImage, [LABEL_SPEC]: i.specHash },
    HostConfig: hostConfig,
    NetworkingConfig: { EndpointsConfig: { [INTERNAL_NETWORK]: {} } },
  };
}

/** The spec's identity for labels: the project layer plus the resource caps. */
export function specHash(spec: ContainerSpec, hash: (s: string) => string): string {
  return hash(JSON.stringify({ runtime: RUNTIME_VERSION, image: spec.image, cpus: spec.cpus ?? null, memoryBytes: spec.memoryBytes ?? null })).slice(0, 16);
}
