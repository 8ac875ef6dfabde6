// Port forwarding, the guest's half. QEMU's hostfwd carries host 127.0.0.1:H to a relay
// port here; each connection is then piped to 127.0.0.1:<guest> in the VM (a dev server bound to
// localhost works too), or, when nothing listens there, to that port of a container on the internal
// Docker network (docker -p cannot publish from an internal network). Nothing here listens for the
// host directly: restrict=on stays, the only way in is the forward the supervisor added.
import { request } from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';

const DOCKER_SOCKET = '/run/docker.sock';
const CONNECT_TIMEOUT_MS = 5_000;
/** The VM's address on QEMU's user network (images/guest-init.sh); hostfwd delivers there. */
export const GUEST_ADDRESS = '10.0.2.15';

/** The container's address on its first network with one (Engine API, no containers bundle needed). */
export function containerAddress(name: string, socketPath = DOCKER_SOCKET): Promise<string | null> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: `/containers/${encodeURIComponent(name)}/json`, timeout: CONNECT_TIMEOUT_MS }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        if (res.statusCode !== 200) return resolve(null);
        try {
          const info = JSON.parse(body) as { NetworkSettings?: { Networks?: Record<string, { IPAddress?: string }> } };
          const ip = Object.values(info.NetworkSettings?.Networks ?? {}).map((n) => n.IPAddress).find((a) => a);
          resolve(ip ?? null);
        } catch {
          resolve(null);
        }
      });
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(null));
    req.end();
  });
}

function dial(host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port });
    const t = setTimeout(() => s.destroy(new Error('connect timeout')), CONNECT_TIMEOUT_MS);
    s.once('connect', () => {
      clearTimeout(t);
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
  });
}

export interface ForwardTarget {
  guest: number;
  container: string;
  /** Try the VM's own port first (a plain forward); a kit's forward goes to its container only. */
  vmFirst: boolean;
}

/** Where a connection goes: the VM's own port first (when vmFirst), then the container's. */
export async function dialTarget(t: ForwardTarget, lookup = containerAddress): Promise<Socket> {
  if (t.vmFirst) {
    try {
      return await dial('127.0.0.1', t.guest);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ECONNREFUSED') throw e;
    }
  }
  const ip = await lookup(t.container);
  if (!ip) throw new Error(`nothing listens on ${t.guest} in the VM and container ${t.container} has no address`);
  return dial(ip, t.guest);
}

export class Forwards {
  private readonly open = new Map<number, { server: Server; port: number; target: ForwardTarget }>();
  /**
   * `listenHost`: the VM's slirp address, where hostfwd delivers; not 0.0.0.0, so containers on
   * the VM's Docker bridges cannot use a relay to reach the VM's loopback services.
   */
  constructor(
    private readonly log: (line: string) => void,
    private readonly listenHost = GUEST_ADDRESS,
  ) {}

  /** Listen on a free port (idempotent per id); resolves with it. */
  async start(id: number, target: ForwardTarget): Promise<number> {
    const have = this.open.get(id);
    // The same id again: a resumed VM's supervisor re-adding its rules. A different target under
    // an old id (a new supervisor after a save) replaces the old relay.
    if (have && have.target.guest === target.guest && have.target.container === target.container && have.target.vmFirst === target.vmFirst) return have.port;
    if (have) this.stop(id);
    const server = createServer((client) => {
      client.pause();
      client.on('error', () => undefined);
      dialTarget(target).then(
        (up) => {
          up.on('error', () => client.destroy());
          client.on('error', () => up.destroy());
          client.pipe(up);
          up.pipe(client);
          client.resume();
        },
        (e: Error) => {
          this.log(`forward ${target.guest}: ${e.message}`);
          client.destroy();
        },
      );
    });
    const port = await new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, this.listenHost, () => {
        const a = server.address();
        resolve(typeof a === 'object' && a ? a.port : 0);
      });
    });
    this.open.set(id, { server, port, target });
    return port;
  }

  stop(id: number): void {
    const f = this.open.get(id);
    if (!f) return;
    this.open.delete(id);
    f.server.close();
  }
}
