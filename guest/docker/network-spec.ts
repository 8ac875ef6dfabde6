// The create bodies of the internal network and its relay (Docker Engine API), pure: the walls of
// the way out are decided here, where a unit test reads them.
import { HOST_PROXY, INTERNAL_NETWORK, LABEL_ROLE, PROXY_PORT } from './names.js';

/** The relay: the internal network's only way out, forwarding to the host's egress proxy. */
export function relayContainerBody(image: string): Record<string, unknown> {
  return {
    Image: image,
    // nobody: the relay needs no privilege at all (port 3128 is unprivileged).
    User: '65534:65534',
    Cmd: ['socat', `TCP-LISTEN:${PROXY_PORT},fork,reuseaddr`, `TCP:${HOST_PROXY}`],
    Entrypoint: [],
    Labels: { [LABEL_ROLE]: 'relay' },
    HostConfig: {
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      ReadonlyRootfs: true,
      RestartPolicy: { Name: 'unless-stopped' },
      NetworkMode: 'bridge',
      Init: true,
      Memory: 64 * 1024 * 1024,
    },
  };
}

export function internalNetworkBody(): Record<string, unknown> {
  return { Name: INTERNAL_NETWORK, Internal: true, Driver: 'bridge', Labels: { [LABEL_ROLE]: 'network' } };
}
