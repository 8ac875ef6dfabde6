// The typed client SDK: named endpoints, a lazy WebSocket per box, prompts whose events and
// display slots are async iterables and whose message/outputs are promises, and read(name) that
// materialises an output FileRef. Imports only the shared protocol module, never the server.
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import {
  EnvironmentInfo,
  parseFrame,
  ServerMessage,
  type ClientMessage,
  type DisplayClearMsg,
  type DisplayPushMsg,
  type EventMsg,
  type FileRef,
  type StoragePolicy,
} from './kit-protocol.js';

export class KitClientError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'KitClientError';
  }
}

export interface Endpoint {
  /** ws://host:port/ (or wss://) */
  url: string;
  key: string;
}

export interface ClientOptions {
  endpoints: Record<string, Endpoint>;
  /** Connection attempts before a prompt fails (backoff doubles from backoffMs). */
  connectAttempts?: number;
  backoffMs?: number;
  /** Deadline for one connection attempt. */
  connectTimeoutMs?: number;
  /** Needed only to read s3 outputs: the client's own download hook. */
  s3Download?: (o: { bucket: string; key: string; region?: string }) => Promise<Buffer>;
  /**
   * Which `url` and `s3` FileRefs this program may fetch. A kit chooses those refs (and a url
   * ref's headers), and the fetch runs here, with this host's network and credentials: a hostile
   * kit could make it read a loopback service, cloud metadata or the LAN. So none is fetched
   * unless this says yes (E_REF_REFUSED otherwise). Redirects are never followed.
   */
  allowRefs?: {
    url?: (url: URL) => boolean;
    s3?: (o: { bucket: string; key: string; region?: string }) => boolean;
  };
}

export type InputFile = { bytes: Uint8Array; mime?: string } | FileRef;
export type DisplayEvent = ({ type: 'push' } & Omit<DisplayPushMsg, 'type'>) | ({ type: 'clear' } & Omit<DisplayClearMsg, 'type'>);

/** A small unbounded queue exposed as an async iterable; ends (or throws) once closed. */
class Channel<T> implements AsyncIterable<T> {
  private items: T[] = [];
  private waiters: Array<(r: IteratorResult<T>) => void> = [];
  private done = false;
  push(v: T): void {
    if (this.done) return;
    const w = this.waiters.shift();
    if (w) w({ value: v, done: false });
    else this.items.push(v);
  }
  close(): void {
    this.done = true;
    for (const w of this.waiters.splice(0)) w({ value: undefined, done: true });
  }
  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => {
        const v = this.items.shift();
        if (v !== undefined) return Promise.resolve({ value: v, done: false });
        if (this.done) return Promise.resolve({ value: undefined, done: true });
        return new Promise((r) => this.waiters.push(r));
      },
    };
  }
}

export interface PromptOptions {
  files?: Record<string, InputFile>;
  outputsPolicy?: StoragePolicy;
  id?: string;
}

export interface PromptHandle {
  readonly id: string;
  readonly events: AsyncIterable<EventMsg>;
  readonly display: AsyncIterable<DisplayEvent>;
  /** Final assistant text; rejects with KitClientError(code) on a terminal error. */
  readonly message: Promise<string>;
  readonly outputs: Promise<Record<string, FileRef>>;
  read(name: string, opts?: { consume?: boolean }): Promise<Buffer>;
  abort(): void;
  resolve(slotId: string, value: unknown): void;
  reject(slotId: string, error: unknown): void;
}

interface Pending {
  events: Channel<EventMsg>;
  display: Channel<DisplayEvent>;
  settle(message: string, outputs: Record<string, FileRef>): void;
  fail(e: KitClientError): void;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class KitBox {
  private ws: WebSocket | undefined;
  private connecting: Promise<WebSocket> | undefined;
  private readonly pending = new Map<string, Pending>();
  private readonly pings = new Map<number, () => void>();
  private envCache: Promise<EnvironmentInfo> | undefined;
  private sendErrorListeners: Array<(e: Error) => void> = [];
  /** Errors the server sent without a prompt id (malformed frames). */
  readonly frameErrors: Array<{ code: string; message: string }> = [];
  readonly httpBase: string;

  constructor(
    private readonly endpoint: Endpoint,
    private readonly opts: ClientOptions,
  ) {
    const u = new URL(endpoint.url);
    u.protocol = u.protocol === 'wss:' ? 'https:' : 'http:';
    this.httpBase = u.origin;
  }

  onSendError(fn: (e: Error) => void): void {
    this.sendErrorListeners.push(fn);
  }

  private authHeaders(): Record<string, string> {
    return { authorization: `Bearer ${this.endpoint.key}` };
  }

  /** One attempt; a 401 is final (retrying a wrong key is pointless). */
  private connectOnce(): Promise<WebSocket> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.endpoint.url, { headers: this.authHeaders(), handshakeTimeout: this.opts.connectTimeoutMs ?? 5000 });
      ws.once('open', () => resolve(ws));
      ws.once('unexpected-response', (_req, res) => {
        const code = res.statusCode === 401 ? 'E_UNAUTHORIZED' : 'E_CONNECT';
        reject(new KitClientError(code, `upgrade refused with HTTP ${res.statusCode ?? '?'}`));
        ws.terminate();
      });
      ws.once('error', (e) => reject(new KitClientError('E_CONNECT', e.message)));
    });
  }

  /** Lazy connect with exponential backoff; the socket is reopened on the next prompt if it drops. */
  connect(): Promise<WebSocket> {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) return Promise.resolve(this.ws);
    if (this.connecting) return this.connecting;
    this.connecting = (async () => {
      const attempts = this.opts.connectAttempts ?? 5;
      let delay = this.opts.backoffMs ?? 100;
      let last: unknown;
      for (let i = 0; i < attempts; i++) {
        try {
          const ws = await this.connectOnce();
          this.attach(ws);
          return ws;
        } catch (e) {
          last = e;
          if (e instanceof KitClientError && e.code === 'E_UNAUTHORIZED') break;
          if (i < attempts - 1) await sleep(delay);
          delay *= 2;
        }
      }
      throw last instanceof Error ? last : new KitClientError('E_CONNECT', String(last));
    })().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private attach(ws: WebSocket): void {
    this.ws = ws;
    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      const parsed = parseFrame(ServerMessage, data.toString());
      if (!parsed.ok) {
        // A server bug must not crash the host program, nor leave a prompt waiting forever.
        const p = parsed.id === null ? undefined : this.pending.get(parsed.id);
        if (p && parsed.id !== null) {
          this.pending.delete(parsed.id);
          p.fail(new KitClientError('E_BAD_FRAME', `the server sent an invalid frame: ${parsed.message}`));
        }
        return;
      }
      this.dispatch(parsed.value);
    });
    ws.on('close', () => {
      if (this.ws === ws) this.ws = undefined;
      for (const [id, p] of this.pending) {
        this.pending.delete(id);
        p.fail(new KitClientError('E_DISCONNECTED', 'the connection closed before the prompt finished'));
      }
    });
    ws.on('error', () => undefined);
  }

  private dispatch(m: ServerMessage): void {
    if (m.type === 'pong') {
      if (m.ts !== undefined) this.pings.get(m.ts)?.();
      return;
    }
    if (m.type === 'error' && m.id === null) {
      this.frameErrors.push(m.error);
      return;
    }
    const p = this.pending.get(m.id as string);
    if (!p) return;
    switch (m.type) {
      case 'event':
        p.events.push(m);
        return;
      case 'display_push':
        p.display.push({ type: 'push', id: m.id, slot: m.slot });
        return;
      case 'display_clear':
        p.display.push({ type: 'clear', id: m.id, slot_id: m.slot_id });
        return;
      case 'complete':
        this.pending.delete(m.id);
        p.settle(m.message, m.outputs);
        return;
      case 'error':
        this.pending.delete(m.id as string);
        p.fail(new KitClientError(m.error.code, m.error.message));
        return;
    }
  }

  /** Fire-and-forget send; failures go to onSendError listeners. */
  private send(m: ClientMessage): void {
    this.connect()
      .then((ws) => ws.send(JSON.stringify(m)))
      .catch((e: Error) => this.sendErrorListeners.forEach((fn) => fn(e)));
  }

  /** Send raw text (tests use it to send malformed frames). */
  async sendRaw(text: string | Buffer): Promise<void> {
    const ws = await this.connect();
    ws.send(text);
  }

  prompt(text: string, opts: PromptOptions = {}): PromptHandle {
    const id = opts.id ?? randomUUID();
    const events = new Channel<EventMsg>();
    const display = new Channel<DisplayEvent>();
    let settle!: (v: { message: string; outputs: Record<string, FileRef> }) => void;
    let fail!: (e: KitClientError) => void;
    const done = new Promise<{ message: string; outputs: Record<string, FileRef> }>((res, rej) => {
      settle = res;
      fail = rej;
    });
    done.catch(() => undefined); // callers may await only one of message/outputs
    this.pending.set(id, {
      events,
      display,
      settle: (message, outputs) => {
        events.close();
        display.close();
        settle({ message, outputs });
      },
      fail: (e) => {
        events.close();
        display.close();
        fail(e);
      },
    });
    const inputs: Record<string, FileRef> = {};
    for (const [name, f] of Object.entries(opts.files ?? {})) {
      inputs[name] = 'kind' in f ? f : { kind: 'inline', data: Buffer.from(f.bytes).toString('base64'), size: f.bytes.length, ...(f.mime ? { mime: f.mime } : {}) };
    }
    const msg: ClientMessage = {
      type: 'prompt',
      id,
      text,
      ...(Object.keys(inputs).length ? { inputs } : {}),
      ...(opts.outputsPolicy ? { outputs_policy: opts.outputsPolicy } : {}),
    };
    this.connect()
      .then((ws) => ws.send(JSON.stringify(msg)))
      .catch((e: Error) => {
        const p = this.pending.get(id);
        this.pending.delete(id);
        p?.fail(e instanceof KitClientError ? e : new KitClientError('E_CONNECT', e.message));
      });
    // Marked handled: a caller may await only one of them, and the other must not crash the host.
    const outputs = done.then((d) => d.outputs);
    const message = done.then((d) => d.message);
    outputs.catch(() => undefined);
    message.catch(() => undefined);
    return {
      id,
      events,
      display,
      message,
      outputs,
      read: async (name, ro) => {
        const ref = (await outputs)[name];
        if (!ref) throw new KitClientError('E_NO_OUTPUT', `no output named ${name}`);
        return this.readRef(ref, ro);
      },
      abort: () => this.send({ type: 'abort', id }),
      resolve: (slotId, value) => this.send({ type: 'display_resolve', slot_id: slotId, value }),
      reject: (slotId, error) => this.send({ type: 'display_reject', slot_id: slotId, error }),
    };
  }

  /**
   * Materialise a FileRef. Server refs are fetched from this endpoint's own origin by id, never from
   * the URL inside the ref: the bearer key must not be sent wherever a ref points. url and s3 refs
   * only as the allowRefs option allows.
   */
  async readRef(ref: FileRef, opts: { consume?: boolean } = {}): Promise<Buffer> {
    switch (ref.kind) {
      case 'inline':
        return Buffer.from(ref.data, 'base64');
      case 'server': {
        const res = await fetch(`${this.httpBase}/files/${encodeURIComponent(ref.id)}${opts.consume ? '?consume=1' : ''}`, { headers: this.authHeaders() });
        if (!res.ok) throw new KitClientError(res.status === 410 ? 'E_GONE' : res.status === 404 ? 'E_NOT_FOUND' : 'E_HTTP', `GET /files/${ref.id}: HTTP ${res.status}`);
        return Buffer.from(await res.arrayBuffer());
      }
      case 'url': {
        const url = new URL(ref.url);
        if ((url.protocol !== 'http:' && url.protocol !== 'https:') || !this.opts.allowRefs?.url?.(url)) throw new KitClientError('E_REF_REFUSED', `a url ref to ${url.origin} is not fetched: the kit chose it (allow it with the allowRefs.url option)`);
        // A redirect would lead past the caller's check (to a loopback or metadata address).
        let res: Response;
        try {
          res = await fetch(url, { headers: ref.headers ?? {}, redirect: 'manual' });
        } catch (e) {
          throw new KitClientError('E_HTTP', `GET ${url.origin}${url.pathname}: ${(e as Error).message}`);
        }
        if (!res.ok) throw new KitClientError('E_HTTP', `GET ${url.origin}${url.pathname}: HTTP ${res.status}${res.status >= 300 && res.status < 400 ? ' (redirects are not followed)' : ''}`);
        return Buffer.from(await res.arrayBuffer());
      }
      case 's3': {
        const o = { bucket: ref.bucket, key: ref.key, ...(ref.region ? { region: ref.region } : {}) };
        if (!this.opts.allowRefs?.s3?.(o)) throw new KitClientError('E_REF_REFUSED', `an s3 ref to bucket ${ref.bucket} is not read: the kit chose it (allow it with the allowRefs.s3 option)`);
        if (!this.opts.s3Download) throw new KitClientError('E_NO_ADAPTER', 'reading an s3 output needs the s3Download option');
        return this.opts.s3Download(o);
      }
    }
  }

  /** GET /environment once, cached. */
  environment(): Promise<EnvironmentInfo> {
    this.envCache ??= (async () => {
      const res = await fetch(`${this.httpBase}/environment`, { headers: this.authHeaders() });
      if (res.status === 401) throw new KitClientError('E_UNAUTHORIZED', 'GET /environment: HTTP 401');
      if (!res.ok) throw new KitClientError('E_HTTP', `GET /environment: HTTP ${res.status}`);
      return EnvironmentInfo.parse(await res.json());
    })();
    this.envCache.catch(() => (this.envCache = undefined));
    return this.envCache;
  }

  /** Round trip in ms, with a deadline. */
  async ping(timeoutMs = 5000): Promise<number> {
    const ws = await this.connect();
    const ts = Date.now() + Math.random();
    const t0 = performance.now();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pings.delete(ts);
        reject(new KitClientError('E_TIMEOUT', `no pong within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pings.set(ts, () => {
        clearTimeout(timer);
        this.pings.delete(ts);
        resolve();
      });
      ws.send(JSON.stringify({ type: 'ping', ts } satisfies ClientMessage));
    });
    return performance.now() - t0;
  }

  /** Drop the socket (tests use it to simulate a drop between prompts). */
  disconnect(): void {
    this.ws?.terminate();
  }

  close(): Promise<void> {
    const ws = this.ws;
    if (!ws || ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((r) => {
      ws.once('close', () => r());
      ws.close();
    });
  }
}

export class KitClient {
  private readonly boxes = new Map<string, KitBox>();
  private constructor(private readonly opts: ClientOptions) {}
  static make(opts: ClientOptions): KitClient {
    return new KitClient(opts);
  }
  box(name: string): KitBox {
    const ep = this.opts.endpoints[name];
    if (!ep) throw new KitClientError('E_NO_ENDPOINT', `no endpoint named ${name}`);
    let b = this.boxes.get(name);
    if (!b) this.boxes.set(name, (b = new KitBox(ep, this.opts)));
    return b;
  }
  async close(): Promise<void> {
    await Promise.all([...this.boxes.values()].map((b) => b.close()));
  }
}
