// Names on the VM's Docker engine that the container layer, the stack and kits all use: the
// floor they stand on (see docs/architecture.md, Folders). Pure constants.
import { EGRESS_ADDR } from '../protocol.js';

/** The project's one persistent agent container. */
export const AGENT_CONTAINER = 'vibebox-agent';
/** The internal network: no route anywhere; its only way out is the relay. */
export const INTERNAL_NETWORK = 'vibebox-internal';
export const RELAY_CONTAINER = 'vibebox-relay';
/** The relay's alias on the internal network, and its port. */
export const PROXY_ALIAS = 'proxy';
export const PROXY_PORT = 3128;
/** The host's egress proxy as the VM reaches it (QEMU's guestfwd). */
export const HOST_PROXY = EGRESS_ADDR;

/** Labels on containers: what one was made from, for "is it still current?", and its role. */
export const LABEL_IMAGE = 'org.vibebox.project-image';
export const LABEL_SPEC = 'org.vibebox.spec-hash';
export const LABEL_ROLE = 'org.vibebox.role';

export const PROXY_URL = `http://${PROXY_ALIAS}:${PROXY_PORT}`;
export const PROXY_ENV: Readonly<Record<string, string>> = {
  HTTP_PROXY: PROXY_URL,
  HTTPS_PROXY: PROXY_URL,
  http_proxy: PROXY_URL,
  https_proxy: PROXY_URL,
  NO_PROXY: 'localhost,127.0.0.1',
  no_proxy: 'localhost,127.0.0.1',
};
