// The clients hub: a ws server on the session's unix socket (mode 0600), the clients attached to
// it, which exec each one owns, and backpressure from a slow client to the agent channel. It knows
// nothing of QEMU or of the guest's requests.
import { createServer as createHttpServer, type Server } from 'node:http';
import { chmodSync } from 'node:fs';
import { WebSocketServer, type WebSocket, type RawData } from 'ws';
import { ClientMessage, DataKind, type SupervisorMessage } from './client-protocol.js';
import type { RefCount } from './refcount.js';

/** At most this much input is held for an exec that has not started (a boot can take minutes). */
const EARLY_MAX = 16 * 1024 * 1024;

export class Client {
  execId: number | null = null;
  isRef = false;
  /** Bytes handed to ws whose write has not completed: what a client that does not read holds. */
  pending = 0;
  /**
   * Input that arrived before this client's exec was sent to the guest (the client sends its
   * stdin right after the exec message, while the supervisor still awaits the boot): held, then
   * flushed after the exec (flushEarly). Dropping it lost piped input (`wc -l` saw 0 lines).
   */
  early: Buffer[] = [];
  earlyBytes = 0;
  earlyEnd = false;
  constructor(readonly ws: WebSocket) {}

  get open(): boolean {
    return this.ws.readyState === this.ws.OPEN;
  }

  send(msg: SupervisorMessage): void {
    if (this.open) this.ws.send(JSON.stringify(msg));
  }

  close(): void {
    this.ws.close();
  }
}

export interface HubOptions {
  refs: RefCount;
  log: (line: string) => void;
  onMessage: (c: Client, m: ClientMessage) => void;
  onStdin: (c: Client, b: Buffer) => void;
  /** The client left; it was the owner of `execId` (if not null). */
  onLeave: (c: Client, execId: number | null) => void;
  /** true: some client holds more than highWater unsent bytes, stop reading from the guest; false: all drained. */
  onPressure: (paused: boolean) => void;
  highWater?: number;
  lowWater?: number;
}

export class ClientsHub {
  private readonly all = new Set<Client>();
  private readonly owners = new Map<number, Client>();
  private readonly http: Server;
  private readonly wss: WebSocketServer;
  private paused = false;
  private readonly high: number;
  private readonly low: number;

  constructor(private o: HubOptions) {
    this.high = o.highWater ?? 1024 * 1024;
    this.low = o.lowWater ?? 256 * 1024;
    this.http = createHttpServer((_req, res) => {
      res.writeHead(426).end();
    });
    this.wss = new WebSocketServer({ server: this.http, maxPayload: 8 * 1024 * 1024 });
    this.wss.on('connection', (ws) => this.accept(ws));
  }

  listen(socket: string): Promise<void> {
    return new Promise<void>((res, rej) => {
      this.http.once('error', rej);
      this.http.listen(socket, () => {
        chmodSync(socket, 0o600);
        res();
      });
    });
  }

  get clients(): ReadonlySet<Client> {
    return this.all;
  }

  /** The client becomes a reference: the session stays up while it is attached. */
  addRef(c: Client): void {
    if (c.isRef) return;
    c.isRef = true;
    this.o.refs.acquire();
    this.o.log(`client attached; ${this.o.refs.count} attached`);
  }

  own(execId: number, c: Client): void {
    c.execId = execId;
    this.owners.set(execId, c);
  }

  /** After the client's exec went to the guest: its held input, in order; true when its stdin had ended too. */
  flushEarly(c: Client): boolean {
    const held = c.early;
    c.early = [];
    c.earlyBytes = 0;
    for (const b of held) this.o.onStdin(c, b);
    const ended = c.earlyEnd;
    c.earlyEnd = false;
    return ended;
  }

  ownerOf(execId: number | null): Client | undefined {
    return execId === null ? undefined : this.owners.get(execId);
  }

  /** The exec ended: forget who owned it; returns that client. */
  disown(execId: number): Client | undefined {
    const c = this.owners.get(execId);
    this.owners.delete(execId);
    if (c && c.execId === execId) c.execId = null;
    return c;
  }

  /** One exec's output to its owner, counting what the client has not taken yet. */
  data(execId: number, kind: 'stdout' | 'stderr', b: Buffer): void {
    const c = this.owners.get(execId);
    if (!c || !c.open) return;
    const out = Buffer.allocUnsafe(b.length + 1);
    out[0] = kind === 'stdout' ? DataKind.stdout : DataKind.stderr;
    b.copy(out, 1);
    c.pending += out.length;
    c.ws.send(out, () => {
      c.pending -= out.length;
      this.checkPressure();
    });
    this.checkPressure();
  }

  private checkPressure(): void {
    let max = 0;
    for (const c of this.all) if (c.pending > max) max = c.pending;
    if (!this.paused && max > this.high) {
      this.paused = true;
      this.o.onPressure(true);
    } else if (this.paused && max <= this.low) {
      this.paused = false;
      this.o.onPressure(false);
    }
  }

  /** Tell every client `msg` and close them all (the session stops). */
  closeAll(msg: SupervisorMessage): void {
    for (const c of this.all) {
      c.send(msg);
      c.close();
    }
  }

  close(): void {
    this.wss.close();
    this.http.close();
  }

  private accept(ws: WebSocket): void {
    const c = new Client(ws);
    this.all.add(c);
    ws.on('message', (data: RawData, isBinary: boolean) => {
      const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
      if (isBinary) {
        if (buf[0] !== DataKind.stdin) return;
        if (c.execId !== null) this.o.onStdin(c, buf.subarray(1));
        else if (c.earlyBytes + buf.length <= EARLY_MAX) {
          c.early.push(buf.subarray(1));
          c.earlyBytes += buf.length;
        }
        return;
      }
      let raw: unknown;
      try {
        raw = JSON.parse(buf.toString('utf8'));
      } catch {
        c.send({ type: 'error', code: 'E_PROTOCOL', message: 'message is not JSON' });
        return;
      }
      const r = ClientMessage.safeParse(raw);
      if (!r.success) {
        c.send({ type: 'error', code: 'E_PROTOCOL', message: `invalid message: ${r.error.issues[0]?.message ?? ''}` });
        return;
      }
      this.o.onMessage(c, r.data);
    });
    ws.on('close', () => {
      this.all.delete(c);
      const execId = c.execId;
      if (execId !== null) this.owners.delete(execId);
      c.execId = null;
      c.pending = 0;
      this.checkPressure();
      this.o.onLeave(c, execId);
      if (c.isRef) {
        this.o.refs.release();
        this.o.log(`client left; ${this.o.refs.count} attached`);
      }
    });
    ws.on('error', () => undefined);
  }
}
