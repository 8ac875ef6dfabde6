/**
 * The host egress proxy: the VM's only way out (docs/architecture.md, Walls).
 *
 * QEMU's guestfwd runs `socat - UNIX-CONNECT:<run>/egress.sock` once per guest TCP connection, so
 * every guest connection arrives here as one unix-socket connection, speaking HTTP/1.1 proxy
 * protocol: `CONNECT host:port` (tunnelled after the decision) or absolute-URI plain HTTP
 * (`GET http://host/path`, forwarded with hop-by-hop and Proxy-* headers stripped; the client side
 * keeps its keep-alive connection, each forwarded request uses its own upstream connection).
 *
 * Every request is decided by the policy (proxy/policy.ts), the name is then resolved on the host
 * and refused if ANY address is loopback / link-local / the host's own / private (see policy.ts);
 * the proxy connects to the addresses it checked, never re-resolving (no DNS rebinding), and checks
 * the peer address of the connected socket again before a byte is forwarded.
 *
 * Bounded: at most `maxConnections` guest connections (64; each is a socat QEMU forked, which exits
 * when refused), idle connections and tunnels closed after `idleTimeoutMs`, request headers due
 * within `headersTimeoutMs`, egress.log rotated and identical denials counted (proxy/log.ts).
 *
 * Denied: 451 + `X-Vibebox-Egress: blocked; reason=<reason>; add-via='vibebox allow <host>'`, or
 * `add-via=none` where no allow can open it (loopback, link-local, reserved, the host's own
 * addresses; a private address in blocklist mode, which only an allowlist entry opens).
 * Over the connection cap: 503 + `X-Vibebox-Egress: blocked; reason=too_many_connections`.
 * Upstream failure: 502 + `X-Vibebox-Egress: upstream-error; reason=<code>`.
 * Malformed request: 400 + `X-Vibebox-Egress: blocked; reason=bad_request`.
 * Forwarded plain HTTP keeps its framing: `Connection` cannot name Content-Length,
 * Transfer-Encoding or Host away, and a chunked body is re-chunked.
 *
 * One JSON line per decision in `logFile`: denials when decided, allowed requests when they end
 * (so the line carries bytes, duration and status).
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { networkInterfaces } from 'node:os';
import type { Duplex } from 'node:stream';
import { Interceptor, type InterceptConfig } from './intercept.js';
import { EgressLog, type EgressRecord } from './log.js';
import { checkResolved, decide, type Decision, type NetworkPolicy } from './policy.js';
import { TestOverrideRefused, testOverrideAllowed } from './test-upstream.js';
import { errorCode, isRefusal, rawResponse, refusalResponse, splice, unreachable, whenConnected, type Opened, type Refusal } from './upstream.js';

const { isIP } = net;

export type { EgressRecord } from './log.js';

export type ResolvedAddress = { address: string; family: number };

/** Where a connection for a guest's host:port goes: the decision and the checked addresses. */
type Target = { policy: NetworkPolicy; decision: Decision; addresses: ResolvedAddress[]; port: number; lookupError?: string };

export type EgressProxyOptions = {
  policy: NetworkPolicy;
  /** JSON-lines access log (e.g. `<project>/.vibebox/egress.log`); no log when absent */
  logFile?: string;
  /** called with every record written to the log (also when there is no logFile) */
  onDecision?: (record: EgressRecord) => void;
  /** socket / log errors that were swallowed */
  onError?: (err: Error) => void;
  /** ONLY for tests of the forwarding path: let the proxy reach loopback / the host's own
   *  addresses. Default false. Never set in production code. */
  allowLoopbackForTests?: boolean;
  /** TESTS ONLY (proxy/test-upstream.ts): these names lead to 127.0.0.1:<port>, whatever port was
   *  asked, past the loopback wall. The constructor refuses it outside a test run. */
  testUpstreams?: Readonly<Record<string, number>>;
  /** per-address TCP connect timeout, default 10 s */
  connectTimeoutMs?: number;
  /** name resolution; default dns.lookup(host, { all: true }). Tests inject one. */
  lookup?: (host: string) => Promise<ResolvedAddress[]>;
  /** the host's own interface addresses, asked before and after every connect; default
   *  os.networkInterfaces(). Tests inject one. */
  hostAddresses?: () => Iterable<string>;
  /** concurrent guest connections (each one a socat QEMU forked); more get 503. Default 64. */
  maxConnections?: number;
  /** a connection or tunnel with no bytes either way for this long is closed; default 5 min */
  idleTimeoutMs?: number;
  /** a request's headers must arrive within this; default 20 s */
  headersTimeoutMs?: number;
  /** egress.log is rotated beyond this size (one old file, `.1`); default 10 MiB */
  logMaxBytes?: number;
  /** credential injection: CONNECTs to the rules' hosts are terminated here (proxy/intercept.ts) */
  intercept?: InterceptConfig;
};

export const DEFAULT_MAX_CONNECTIONS = 64;
export const DEFAULT_IDLE_TIMEOUT_MS = 5 * 60_000;
export const DEFAULT_HEADERS_TIMEOUT_MS = 20_000;

// Framing and routing: a `Connection` header may name them, but they are never dropped because of
// it (dropping Content-Length would forward a GET's body unframed: a second, smuggled request).
const NEVER_DROPPED_BY_CONNECTION = new Set(['content-length', 'transfer-encoding', 'host']);

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'trailers',
  'transfer-encoding',
  'upgrade',
]);

type UpstreamError = Error & { code?: string };

function stripHeaders(headers: http.IncomingHttpHeaders | http.OutgoingHttpHeaders): http.OutgoingHttpHeaders {
  const drop = new Set(HOP_BY_HOP);
  const conn = headers.connection;
  const connList = Array.isArray(conn) ? conn.join(',') : typeof conn === 'string' ? conn : '';
  for (const name of connList.split(',')) {
    const n = name.trim().toLowerCase();
    if (n && !NEVER_DROPPED_BY_CONNECTION.has(n)) drop.add(n);
  }
  const out: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    const n = name.toLowerCase();
    if (value === undefined || drop.has(n) || n.startsWith('proxy-')) continue;
    out[n] = value;
  }
  return out;
}

/** Parse the authority-form of a CONNECT target: host:port or [v6]:port. */
export function parseAuthority(target: string): { host: string; port: number } | null {
  let host: string;
  let portStr: string;
  if (target.startsWith('[')) {
    const close = target.indexOf(']');
    if (close < 0 || target[close + 1] !== ':') return null;
    host = target.slice(0, close + 1);
    portStr = target.slice(close + 2);
  } else {
    const i = target.lastIndexOf(':');
    if (i <= 0) return null;
    host = target.slice(0, i);
    portStr = target.slice(i + 1);
    if (host.includes(':')) return null;
  }
  if (!/^\d{1,5}$/.test(portStr)) return null;
  const port = Number(portStr);
  if (port < 1 || port > 65535) return null;
  return { host, port };
}

// Destinations refused whatever the policy says: an `allow` for them changes nothing, so none is offered.
const NEVER_ALLOWED = new Set(['loopback', 'link_local', 'reserved', 'host_address']);

/** Whether `vibebox allow <host>` on the host would open this destination. */
function allowOpens(reason: string, mode: NetworkPolicy['mode']): boolean {
  if (NEVER_ALLOWED.has(reason)) return false;
  // blocklist mode refuses private addresses unless an allowlist entry names them: removing a
  // blocklist entry (what `allow` does there) cannot open one
  return !(reason === 'private' && mode === 'blocklist');
}

function blockedHeader(reason: string, host: string, mode: NetworkPolicy['mode']): string {
  if (!allowOpens(reason, mode)) return `blocked; reason=${reason}; add-via=none`;
  // the host is normalised (only [a-z0-9._:-]) or replaced, so it is safe in a header
  const safe = /^[A-Za-z0-9._:-]+$/.test(host) ? host : '<host>';
  return `blocked; reason=${reason}; add-via='vibebox allow ${safe}'`;
}

function blockedBody(reason: string, host: string, port: number, mode: NetworkPolicy['mode']): string {
  const why: Record<string, string> = {
    not_in_allowlist: 'it is not in the network allowlist',
    in_blocklist: 'it is in the network blocklist',
    loopback: "it is the host's loopback, which is always refused",
    host_address: "it is one of the host's own addresses, which are always refused",
    link_local: 'it is a link-local address, which is always refused',
    reserved: 'it is a reserved/multicast address, which is always refused',
    private: mode === 'blocklist' ? 'it is a private network address, which blocklist mode always refuses' : 'it is a private network address and no allowlist entry names it',
  };
  const head = `vibebox: egress to ${host}:${port} blocked (reason=${reason}: ${why[reason] ?? reason}).\n`;
  if (reason === 'private' && mode === 'blocklist') return `${head}Only allowlist mode reaches a private address: set [network] mode = "allowlist" and list it in vibebox.toml.\n`;
  if (reason === 'loopback' || reason === 'host_address') {
    // A service on the host stays out of the VM's reach by design: forwards only go inward.
    return `${head}no vibebox setting allows it: the VM never reaches a service on the host, and a [[ports]] forward goes from the host into the VM, never back. Run the service in the VM (or its stack) instead.\n`;
  }
  if (NEVER_ALLOWED.has(reason)) return `${head}no vibebox setting allows it.\n`;
  return `${head}To allow it, run on the host: vibebox allow ${host}\n`;
}

function defaultLookup(host: string): Promise<ResolvedAddress[]> {
  return dnsLookup(host, { all: true, verbatim: true });
}

function interfaceAddresses(): string[] {
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) out.push(a.address);
  }
  return out;
}

export class EgressProxy {
  private policy: NetworkPolicy;
  private readonly log: EgressLog;
  private readonly servers: http.Server[] = [];
  private readonly sockets = new Set<Duplex>();
  /** guest connections (not upstream sockets): what the connection cap counts */
  private readonly clients = new Set<Duplex>();
  /** connections over the cap: answered 503, never handled */
  private readonly refused = new WeakSet<Duplex>();
  private readonly opts: EgressProxyOptions;
  private closed = false;
  private readonly interceptor: Interceptor | null;

  constructor(opts: EgressProxyOptions) {
    if (opts.testUpstreams !== undefined && !testOverrideAllowed()) throw new TestOverrideRefused();
    this.opts = opts;
    this.interceptor = opts.intercept
      ? new Interceptor(opts.intercept, {
          open: (host, port) => this.openChecked(host, port),
          record: (r) => this.record(r),
          reportError: (e) => this.reportError(e),
          stripHeaders: (h) => stripHeaders(h),
          handshakeTimeoutMs: opts.connectTimeoutMs ?? 10_000,
          idleTimeoutMs: opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
        })
      : null;
    this.policy = clonePolicy(opts.policy);
    this.log = new EgressLog(opts.logFile, {
      onError: (e) => this.reportError(e),
      ...(opts.logMaxBytes !== undefined ? { maxBytes: opts.logMaxBytes } : {}),
    });
  }

  /** Replace the policy; applies to every request decided from now on (open tunnels stay). */
  setPolicy(policy: NetworkPolicy): void {
    this.policy = clonePolicy(policy);
  }

  getPolicy(): NetworkPolicy {
    return clonePolicy(this.policy);
  }

  /** Listen on a unix socket (mode 0600). A stale socket file at `path` is replaced. */
  async listen(path: string): Promise<void> {
    try {
      const st = lstatSync(path);
      if (!st.isSocket()) throw new Error(`${path} exists and is not a socket`);
      unlinkSync(path);
    } catch (err) {
      if ((err as UpstreamError).code !== 'ENOENT') throw err;
    }
    const server = this.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
    chmodSync(path, 0o600);
  }

  /** Listen on TCP (tests, or a fallback); returns the bound port. */
  async listenTcp(port: number, host = '127.0.0.1'): Promise<number> {
    const server = this.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const addr = server.address();
    return typeof addr === 'object' && addr !== null ? addr.port : port;
  }

  /** Stop listening and cut every open connection and tunnel. */
  async close(): Promise<void> {
    this.closed = true;
    const waits = this.servers.map(
      (s) => new Promise<void>((resolve) => s.close(() => resolve())),
    );
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    for (const s of this.servers) s.closeAllConnections();
    this.interceptor?.close();
    await Promise.all(waits);
    this.servers.length = 0;
    this.log.close();
  }

  // -------------------------------------------------------------------------------------------

  private createServer(): http.Server {
    const headersTimeout = this.opts.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS;
    const server = http.createServer({
      requestTimeout: 0,
      headersTimeout,
      // how often Node looks for connections past headersTimeout (its default is 30 s)
      connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(headersTimeout / 4))),
      keepAliveTimeout: 5_000,
    });
    // idle HTTP connections (Node destroys them; a tunnel sets its own, see onConnect)
    server.timeout = this.idleTimeoutMs();
    server.on('connection', (s: net.Socket) => this.admit(s));
    server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      if (this.refused.has(req.socket)) {
        res.destroy();
        return;
      }
      this.onRequest(req, res).catch((e: unknown) => {
        this.reportError(e as Error);
        if (!res.headersSent) res.destroy();
      });
    });
    server.on('connect', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      if (this.refused.has(socket)) {
        socket.destroy();
        return;
      }
      socket.pause(); // keep bytes the client sends before the 200 until the tunnel is piped
      this.onConnect(req, socket, head).catch((e: unknown) => {
        this.reportError(e as Error);
        socket.destroy();
      });
    });
    server.on('upgrade', (req: http.IncomingMessage, socket: Duplex) => {
      socket.on('error', (e) => this.reportError(e));
      if (this.refused.has(socket)) {
        socket.destroy();
        return;
      }
      this.record({ method: req.method ?? '', host: '', port: 0, decision: 'deny', reason: 'upgrade_not_supported', status: 501 });
      socket.end(
        rawResponse(501, { 'X-Vibebox-Egress': 'blocked; reason=upgrade_not_supported' },
          'vibebox: protocol upgrades over plain-HTTP proxying are not supported; use CONNECT (HTTPS_PROXY)\n'),
      );
    });
    server.on('clientError', (err: UpstreamError, socket: Duplex) => {
      const code = err.code ?? '';
      if (code === 'ECONNRESET' || code === 'EPIPE' || !socket.writable || this.refused.has(socket)) {
        socket.destroy();
        return;
      }
      this.record({ method: '', host: '', port: 0, decision: 'deny', reason: 'bad_request', status: 400, error: code || undefined });
      socket.end(
        rawResponse(400, { 'X-Vibebox-Egress': 'blocked; reason=bad_request' }, 'vibebox: malformed proxy request\n'),
      );
    });
    server.on('error', (e) => this.reportError(e));
    this.servers.push(server);
    return server;
  }

  /**
   * A new guest connection: counted against the cap (over it: 503 at once, so the socat QEMU forked
   * for it exits), and closed after idleTimeoutMs without a byte either way.
   */
  private admit(s: net.Socket): void {
    this.track(s);
    if (this.closed) return;
    if (this.clients.size >= (this.opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS)) {
      this.refused.add(s);
      this.record({ method: '', host: '', port: 0, decision: 'deny', reason: 'too_many_connections', status: 503 });
      s.end(
        rawResponse(503, { 'X-Vibebox-Egress': 'blocked; reason=too_many_connections' },
          `vibebox: too many connections through the egress proxy (at most ${this.opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS}); close some and retry\n`),
      );
      // the client's request is read and dropped; a client that never closes is cut after 2 s
      setTimeout(() => s.destroy(), 2_000).unref();
      return;
    }
    this.clients.add(s);
    s.once('close', () => this.clients.delete(s));
  }

  private idleTimeoutMs(): number {
    return this.opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  }

  private track(s: Duplex): void {
    if (this.closed) {
      s.destroy();
      return;
    }
    this.sockets.add(s);
    s.on('error', (e) => this.reportError(e));
    s.once('close', () => this.sockets.delete(s));
  }

  private reportError(err: Error): void {
    try {
      this.opts.onError?.(err);
    } catch {
      /* a callback's failure must not take the proxy down */
    }
  }

  private record(r: Omit<EgressRecord, 'ts'>): void {
    const rec: EgressRecord = { ts: new Date().toISOString(), ...r };
    for (const k of Object.keys(rec) as (keyof EgressRecord)[]) if (rec[k] === undefined) delete rec[k];
    this.log.write(rec);
    try {
      this.opts.onDecision?.(rec);
    } catch (e) {
      this.reportError(e as Error);
    }
  }

  /** Policy decision + resolution + address check: where a connection for host:port would go. */
  private async resolveAndDecide(host: string, port: number): Promise<Target> {
    const policy = this.policy;
    const decision = decide(policy, host, port, { allowLoopbackForTests: this.opts.allowLoopbackForTests === true });
    if (!decision.allowed) return { policy, decision, addresses: [], port };
    // a name the test-only override plays: the fake upstream on loopback (proxy/test-upstream.ts)
    const testPort = this.opts.testUpstreams?.[decision.host];
    if (testPort !== undefined) return { policy, decision, addresses: [{ address: '127.0.0.1', family: 4 }], port: testPort };
    let addresses: ResolvedAddress[];
    const family = isIP(decision.host);
    if (family !== 0) {
      // an IP literal (already normalised: a mapped IPv6 is its IPv4) is its own and only address
      addresses = [{ address: decision.host, family }];
    } else {
      try {
        addresses = await (this.opts.lookup ?? defaultLookup)(decision.host);
      } catch (err) {
        return { policy, decision, addresses: [], port, lookupError: errorCode(err) };
      }
    }
    if (addresses.length === 0) return { policy, decision, addresses, port, lookupError: 'ENOTFOUND' };
    const checked = this.checkAddresses(policy, decision, addresses.map((a) => a.address));
    return { policy, decision: checked, addresses, port };
  }

  /** The address checks of policy.ts, with the host's own addresses as they are now. */
  private checkAddresses(policy: NetworkPolicy, decision: Decision, addresses: string[]): Decision {
    return checkResolved(policy, decision, addresses, {
      allowLoopbackForTests: this.opts.allowLoopbackForTests === true || this.opts.testUpstreams?.[decision.host] !== undefined,
      hostAddresses: (this.opts.hostAddresses ?? interfaceAddresses)(),
    });
  }

  /**
   * The address actually connected to must pass the same checks as the resolved ones (a socket
   * may reach an address that is the host's own by now): the decision for the peer.
   */
  private checkPeer(policy: NetworkPolicy, decision: Decision, socket: net.Socket): Decision {
    const peer = socket.remoteAddress;
    if (peer === undefined) return { ...decision, allowed: false, reason: 'bad_request' };
    return this.checkAddresses(policy, decision, [peer]);
  }

  private connectOne(address: string, port: number): Promise<net.Socket> {
    const s = net.connect({ host: address, port });
    this.track(s);
    return whenConnected(s, 'connect', this.opts.connectTimeoutMs ?? 10_000, `connect to ${address}:${port}`);
  }

  /** Connect to the checked addresses in order; never resolves the name again. */
  private async connectAny(addresses: ResolvedAddress[], port: number): Promise<net.Socket> {
    let last: unknown = new Error('no address');
    for (const a of addresses) {
      if (this.closed) break;
      try {
        return await this.connectOne(a.address, port);
      } catch (err) {
        last = err;
      }
    }
    throw last;
  }

  /** The answer to a destination the policy or the address checks refuse. */
  private denial(d: Decision, policy: NetworkPolicy, port: number, address?: string): Refusal {
    return {
      status: d.reason === 'bad_request' ? 400 : 451,
      header: blockedHeader(d.reason, d.host, policy.mode),
      body: blockedBody(d.reason, d.host, port, policy.mode),
      decision: 'deny',
      reason: d.reason,
      rule: d.rule,
      address,
    };
  }

  /**
   * The one way upstream, for every path: a connection to an allowed target's checked addresses,
   * its peer checked again; or the refusal (451/400) or failure (502) for the guest. `port` is
   * the one the guest asked for (named in the answers).
   */
  private async connectChecked(t: Target, port: number, gone: () => boolean = () => false): Promise<Opened> {
    const { policy, decision } = t;
    if (!decision.allowed) return this.denial(decision, policy, port);
    if (t.lookupError !== undefined) return unreachable(decision.host, port, t.lookupError, decision.reason, decision.rule);
    let socket: net.Socket;
    try {
      socket = await this.connectAny(t.addresses, t.port);
    } catch (err) {
      return unreachable(decision.host, port, errorCode(err), decision.reason, decision.rule);
    }
    const peer = this.checkPeer(policy, decision, socket);
    if (!peer.allowed || gone()) socket.destroy();
    if (!peer.allowed) return this.denial(peer, policy, port, socket.remoteAddress);
    return { socket, address: socket.remoteAddress };
  }

  /** A connection to host:port that passed the policy (as it is now) and the address checks, or the answer for the client. */
  private async openChecked(host: string, port: number): Promise<Opened> {
    return this.connectChecked(await this.resolveAndDecide(host, port), port);
  }

  // -------------------------------------------------------------------------------------------
  // CONNECT

  private async onConnect(req: http.IncomingMessage, client: Duplex, head: Buffer): Promise<void> {
    const start = Date.now();
    const method = 'CONNECT';
    const target = parseAuthority(req.url ?? '');
    if (target === null) {
      this.record({ method, host: '', port: 0, decision: 'deny', reason: 'bad_request', status: 400 });
      client.end(rawResponse(400, { 'X-Vibebox-Egress': 'blocked; reason=bad_request' }, 'vibebox: CONNECT needs host:port\n'));
      return;
    }
    const t = await this.resolveAndDecide(target.host, target.port);
    const { decision } = t;
    const host = decision.host;
    const port = target.port;
    const base = { method, host, port, decision: 'allow' as const, reason: decision.reason, rule: decision.rule };
    if (decision.allowed && this.interceptor?.covers(host, port)) {
      // each request inside opens its own checked upstream connection (openChecked)
      this.interceptor.accept(client, head, { host, port, reason: decision.reason, rule: decision.rule }, (up, down) =>
        this.record({ ...base, intercepted: true, status: 200, bytes_up: up, bytes_down: down, duration_ms: Date.now() - start }),
      );
      return;
    }
    const opened = await this.connectChecked(t, port, () => client.destroyed);
    if (isRefusal(opened)) {
      const { status, decision: d, reason, rule, error, address } = opened;
      this.record({ method, host, port, decision: d, reason, rule, status, address, error, ...(d === 'allow' ? { duration_ms: Date.now() - start } : {}) });
      if (!client.destroyed) client.end(refusalResponse(opened));
      return;
    }
    const upstream = opened.socket;
    if (client.destroyed) return;
    const address = opened.address;
    client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    const finish = splice(client, upstream, head, (up, down) =>
      this.record({ ...base, address, status: 200, bytes_up: up, bytes_down: down, duration_ms: Date.now() - start }),
    );
    // idle: no byte either way (a write to the client counts as activity on its socket too)
    if (client instanceof net.Socket) {
      client.setTimeout(this.idleTimeoutMs());
      client.on('timeout', finish);
    }
  }

  // -------------------------------------------------------------------------------------------
  // absolute-URI plain HTTP

  private async onRequest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const start = Date.now();
    const method = req.method ?? '';
    req.on('error', (e) => this.reportError(e));
    res.on('error', (e) => this.reportError(e));
    let url: URL | null = null;
    try {
      url = new URL(req.url ?? '');
    } catch {
      url = null;
    }
    if (url === null || url.protocol !== 'http:' || url.hostname === '') {
      this.record({ method, host: '', port: 0, decision: 'deny', reason: 'bad_request', status: 400 });
      const msg =
        url !== null && url.protocol === 'https:'
          ? 'vibebox: use CONNECT for https:// (set HTTPS_PROXY)\n'
          : 'vibebox: this is an egress proxy; send absolute-URI requests (http://host/path) or CONNECT\n';
      res.writeHead(400, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Vibebox-Egress': 'blocked; reason=bad_request' });
      res.end(msg);
      req.resume();
      return;
    }
    const port = url.port === '' ? 80 : Number(url.port);
    const t = await this.resolveAndDecide(url.hostname, port);
    const host = t.decision.host;
    const base = { method, host, port, decision: 'allow' as const, reason: t.decision.reason, rule: t.decision.rule };
    const answer = (r: Refusal): void => {
      req.resume();
      if (res.headersSent) return void res.destroy();
      res.writeHead(r.status, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Vibebox-Egress': r.header });
      res.end(r.body);
    };
    const opened = await this.connectChecked(t, port, () => res.destroyed || req.destroyed);
    if (isRefusal(opened)) {
      const { status, decision: d, reason, rule, error, address } = opened;
      this.record({ method, host, port, decision: d, reason, rule, status, address, error, ...(d === 'allow' ? { bytes_up: 0, bytes_down: 0, duration_ms: Date.now() - start } : {}) });
      return answer(opened);
    }
    const socket = opened.socket;
    if (res.destroyed || req.destroyed) return;
    const address = opened.address;
    let up = 0;
    let down = 0;
    let error: string | undefined;
    res.once('close', () => {
      this.record({ ...base, address, status: res.statusCode, bytes_up: up, bytes_down: down, duration_ms: Date.now() - start, error });
    });
    const headers = stripHeaders(req.headers);
    headers.host = url.host;
    // Node decoded a chunked body: send it chunked again, whatever the method (a GET without
    // framing would put the body on the wire as the next request).
    if (req.headers['transfer-encoding'] !== undefined) headers['transfer-encoding'] = 'chunked';
    const upReq = http.request({
      createConnection: () => socket,
      method,
      path: `${url.pathname}${url.search}`,
      headers,
      setHost: false,
    });
    upReq.on('error', (err) => {
      socket.destroy();
      error = errorCode(err);
      answer(unreachable(host, port, error, base.reason, base.rule));
    });
    upReq.on('response', (upRes) => {
      upRes.on('error', () => res.destroy());
      upRes.on('aborted', () => res.destroy());
      upRes.on('data', (c: Buffer) => (down += c.length));
      res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, stripHeaders(upRes.headers));
      upRes.pipe(res);
    });
    res.once('close', () => {
      if (!res.writableFinished) {
        upReq.destroy();
        socket.destroy();
      }
    });
    req.on('data', (c: Buffer) => (up += c.length));
    req.pipe(upReq);
  }
}

function clonePolicy(p: NetworkPolicy): NetworkPolicy {
  return { mode: p.mode, entries: [...p.entries] };
}
