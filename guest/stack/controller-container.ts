// The stack-controller's container: the only container with the Docker socket. On vibebox-internal
// (alias stack-controller) for the agent API; its host API is a unix socket in a VM directory that
// no agent container mounts. Restart policy unless-stopped: when dockerd starts after a boot the
// controller comes back and reconciles.
import { mkdirSync } from 'node:fs';
import { BASE_IMAGE, ensureBaseImage } from '../docker/base-image.js';
import { INTERNAL_NETWORK, LABEL_ROLE, LABEL_SPEC } from '../docker/names.js';
import { createContainer, inspectContainer, removeContainer, startContainer } from '../docker/engine.js';
import { ensureInternalNetwork } from '../docker/network.js';
import { CONTROLLER_ALIAS } from './api.js';
import { VM_SOCKET_DIR, VM_STATE_DIR } from './vm-paths.js';

export const CONTROLLER_CONTAINER = 'vibebox-stack-controller';
/** Bump when the body changes: an older controller container is then recreated. */
export const CONTROLLER_VERSION = '2';

export function controllerBody(image: string): Record<string, unknown> {
  return {
    Image: image,
    // Root for the Docker socket (owned by root) and its state directory; no capability at all.
    User: '0:0',
    Cmd: ['/usr/bin/node', '/opt/vibebox/guest-containers.js', 'stack-controller'],
    Entrypoint: [],
    Env: ['VIBEBOX_STACK_STATE=/state', 'VIBEBOX_STACK_SOCKET_DIR=/run/vibebox-stack', 'PATH=/usr/local/bin:/usr/bin:/bin'],
    Labels: { [LABEL_ROLE]: 'stack-controller', [LABEL_SPEC]: CONTROLLER_VERSION },
    HostConfig: {
      Binds: ['/opt/vibebox:/opt/vibebox:ro', '/run/docker.sock:/run/docker.sock', `${VM_STATE_DIR}:/state`, `${VM_SOCKET_DIR}:/run/vibebox-stack`],
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      ReadonlyRootfs: true,
      RestartPolicy: { Name: 'unless-stopped' },
      NetworkMode: INTERNAL_NETWORK,
      Init: true,
      Memory: 256 * 1024 * 1024,
    },
    NetworkingConfig: { EndpointsConfig: { [INTERNAL_NETWORK]: { Aliases: [CONTROLLER_ALIAS] } } },
  };
}

/** The controller exists, is current and runs (dockerd must be up). */
export async function ensureController(log: (line: string) => void): Promise<void> {
  mkdirSync(VM_STATE_DIR, { recursive: true, mode: 0o700 });
  mkdirSync(VM_SOCKET_DIR, { recursive: true, mode: 0o700 });
  let c = await inspectContainer(CONTROLLER_CONTAINER);
  if (c && c.Config.Labels?.[LABEL_SPEC] !== CONTROLLER_VERSION) {
    await removeContainer(c.Id);
    c = null;
  }
  if (!c) {
    await ensureBaseImage(log);
    await ensureInternalNetwork();
    log('vibebox: starting the stack-controller');
    await createContainer(CONTROLLER_CONTAINER, controllerBody(BASE_IMAGE));
    c = await inspectContainer(CONTROLLER_CONTAINER);
    if (!c) throw new Error(`${CONTROLLER_CONTAINER} vanished after its creation`);
  }
  if (!c.State.Running) await startContainer(c.Id);
}
