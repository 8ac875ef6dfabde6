// The agent container's only way out: an internal Docker network (no route anywhere) and a relay
// container on it (alias `proxy`) and on the default bridge, forwarding to the host's egress proxy.
import { BASE_IMAGE } from './base-image.js';
import { INTERNAL_NETWORK, PROXY_ALIAS, RELAY_CONTAINER } from './names.js';
import { internalNetworkBody, relayContainerBody } from './network-spec.js';
import { connectNetwork, createContainer, createNetwork, inspectContainer, inspectNetwork, removeContainer, removeNetwork, startContainer } from './engine.js';

export async function ensureInternalNetwork(): Promise<void> {
  const n = await inspectNetwork(INTERNAL_NETWORK);
  if (n && n.Internal) return;
  // A network of that name that is not internal would be a way out: replace it.
  if (n) await removeNetwork(INTERNAL_NETWORK);
  await createNetwork(internalNetworkBody());
}

/** The relay exists, runs, and answers as `proxy` on the internal network. */
export async function ensureRelay(log: (line: string) => void): Promise<void> {
  await ensureInternalNetwork();
  let c = await inspectContainer(RELAY_CONTAINER);
  if (!c) {
    log('vibebox: creating the egress relay');
    await createContainer(RELAY_CONTAINER, relayContainerBody(BASE_IMAGE));
    c = await inspectContainer(RELAY_CONTAINER);
    if (!c) throw new Error(`${RELAY_CONTAINER} vanished after its creation`);
  }
  const nets = c.NetworkSettings.Networks ?? {};
  if (!(INTERNAL_NETWORK in nets)) await connectNetwork(INTERNAL_NETWORK, c.Id, [PROXY_ALIAS]);
  if (!c.State.Running) await startContainer(c.Id);
}

/** Drop the relay (when its image is replaced). */
export async function removeRelay(): Promise<void> {
  await removeContainer(RELAY_CONTAINER);
}
