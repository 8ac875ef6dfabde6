// A supervisor Session in a temporary folder, with a fake agent channel and fake clients: the
// supervisor's parts (client requests, agent events, stop steps) run against it in unit tests,
// with no VM, no QEMU and no socket.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HostMessage } from '../../guest/protocol.js';
import type { ImageInfo } from '../../images/build.js';
import { parseConfigText, resolveConfig } from '../../src/config/load.js';
import { projectPaths, runPaths } from '../../src/paths.js';
import { ClientsHub, type Client } from '../../src/supervisor/clients-hub.js';
import { RefCount } from '../../src/supervisor/refcount.js';
import type { SupervisorMessage } from '../../src/supervisor/client-protocol.js';
import { Session, type AgentLink } from '../../src/supervisor/session.js';

export const TEST_SESSION_ID = '01890a5d-ac96-774b-bcce-b302099a8057';

export class FakeAgent implements AgentLink {
  readonly sent: HostMessage[] = [];
  closed = false;
  paused: boolean | null = null;
  /** Called with each message sent, after it is recorded (to answer like the guest would). */
  onSend: ((m: HostMessage) => void) | null = null;
  send(m: HostMessage): void {
    this.sent.push(m);
    this.onSend?.(m);
  }
  stdin(_id: number, _b: Buffer): void {}
  pause(paused: boolean): void {
    this.paused = paused;
  }
  close(): void {
    this.closed = true;
  }
}

export type FakeClient = Client & { sent: SupervisorMessage[]; closed: boolean };

/** A client as the hub holds it, without a websocket: what it is sent is recorded. */
export function fakeClient(execId: number | null = null): FakeClient {
  const c = {
    execId,
    isRef: false,
    pending: 0,
    early: [] as Buffer[],
    earlyBytes: 0,
    earlyEnd: false,
    sent: [] as SupervisorMessage[],
    closed: false,
    get open(): boolean {
      return !this.closed;
    },
    send(m: SupervisorMessage) {
      if (!this.closed) this.sent.push(m);
    },
    close() {
      this.closed = true;
    },
  };
  return c as unknown as FakeClient;
}

export interface TestSession {
  s: Session;
  dir: string;
  home: string;
  logs: string[];
  done(): void;
}

export function testSession(config = ''): TestSession {
  const dir = mkdtempSync(join(tmpdir(), 'vb-sup-'));
  const project = join(dir, 'project');
  const home = join(dir, 'home');
  mkdirSync(join(project, '.vibebox'), { recursive: true });
  const run = runPaths(TEST_SESSION_ID, home);
  mkdirSync(run.dir, { recursive: true });
  const logs: string[] = [];
  const image = { name: 'test', digest: 'd1', dir: '/i', kernel: '/i/vmlinuz', initrd: '/i/initrd.img', rootfs: '/i/rootfs.qcow2', manifest: { digest: 'd1', user: { uid: 1000, gid: 1000 } } } as unknown as ImageInfo;
  const cfg = resolveConfig(parseConfigText(config), project, { vbHome: home, checkPaths: false });
  const s = new Session({ project, projectReal: project, id: TEST_SESSION_ID, paths: projectPaths(project), run, image, cfg, log: (l) => logs.push(l) });
  return { s, dir, home, logs, done: () => rmSync(dir, { recursive: true, force: true }) };
}

const hubs: ClientsHub[] = [];

/** A clients hub whose handlers do nothing (the parts under test are called directly); close them with closeTestHubs. */
export function testHub(): ClientsHub {
  const refs = new RefCount({ graceMs: () => 1000, onIdle: () => undefined });
  const hub = new ClientsHub({ refs, log: () => undefined, onMessage: () => undefined, onStdin: () => undefined, onLeave: () => undefined, onPressure: () => undefined });
  hubs.push(hub);
  return hub;
}

/** Close every hub testHub made (a test file's `after`). */
export function closeTestHubs(): void {
  for (const h of hubs.splice(0)) h.close();
}
