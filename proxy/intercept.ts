/**
 * The intercepting path of the egress proxy (README, Security model): a CONNECT to a host an
 * injection rule names (and that the policy allows) is answered by a TLS server holding a leaf of
 * the vibebox CA; node's HTTP/1.1 server parses the requests on it (ALPN offers http/1.1 only, so
 * an HTTP/2 client falls back); each request goes to the real host over a TLS connection (one
 * per guest connection, kept alive) verified against node's trust store plus the host's extra CAs, with the session's placeholder
 * replaced by the real key in the rule's header. Responses are piped as they come (streamed tokens
 * stay streamed); a WebSocket upgrade is passed through after the same header swap.
 *
 * One log line per request (method, host, path without its query, status, bytes, the rule that
 * injected); header values are never logged.
 */
import http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import type { VibeboxCa } from './ca.js';
import { injectHeaders, interceptedHosts, type Credential, type InjectionRule } from './inject.js';
import type { EgressRecord } from './log.js';
import { errorCode, isRefusal, refusalResponse, splice, whenConnected, type Opened, type Refusal } from './upstream.js';

export type InterceptConfig = {
  ca: VibeboxCa;
  /** read at every request: a reload of the rules or of ~/.vibebox/.env applies at once */
  rules: () => readonly InjectionRule[];
  credentials: () => ReadonlyMap<string, Credential>;
  /** PEM certificates trusted for upstreams besides node's own roots: the host's extra CAs */
  upstreamCa?: string;
};

export type InterceptDeps = {
  /** an upstream socket after the proxy's policy and address checks, or the answer for the agent */
  open: (host: string, port: number) => Promise<Opened>;
  record: (r: Omit<EgressRecord, 'ts'>) => void;
  reportError: (e: Error) => void;
  stripHeaders: (h: http.IncomingHttpHeaders) => http.OutgoingHttpHeaders;
  /** TLS handshake deadline (upstream), ms */
  handshakeTimeoutMs: number;
  /** the guest's connection is closed after this long without a byte either way */
  idleTimeoutMs: number;
};

type Conn = { host: string; port: number; reason: string; rule: string | undefined; agent?: http.Agent };

/** An upstream connection that could not be made, carried through http.Agent to the request. */
class UpstreamRefused extends Error {
  constructor(readonly refusal: Refusal) {
    super(refusal.body.trim());
  }
}

/** The path as logged: no query, no fragment (they carry keys and tokens as often as not). */
export function logPath(url: string): string {
  const q = url.search(/[?#]/);
  return q < 0 ? url : url.slice(0, q);
}

export class Interceptor {
  private readonly server: http.Server;
  private readonly conns = new WeakMap<Duplex, Conn>();

  constructor(
    private readonly cfg: InterceptConfig,
    private readonly deps: InterceptDeps,
  ) {
    this.server = http.createServer({ requestTimeout: 0, keepAliveTimeout: 5_000 });
    // A handshake that never finishes or a request with no byte either way for this long is cut
    // (node's server times the TLS socket, whose reads and writes are the ones that happen: a
    // stream with tokens flowing is never idle); between requests the 5 s keep-alive applies.
    this.server.timeout = deps.idleTimeoutMs;
    this.server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      this.onRequest(req, res).catch((e: unknown) => {
        this.deps.reportError(e as Error);
        if (!res.headersSent) res.destroy();
      });
    });
    this.server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      this.onUpgrade(req, socket, head).catch((e: unknown) => {
        this.deps.reportError(e as Error);
        socket.destroy();
      });
    });
    this.server.on('clientError', (_e, socket: Duplex) => socket.destroy());
  }

  /** Whether a CONNECT to host:port is terminated here. */
  covers(host: string, port: number): boolean {
    return port === 443 && interceptedHosts(this.cfg.rules(), this.cfg.credentials()).has(host);
  }

  /**
   * Take over an allowed CONNECT: 200, then TLS with the host's leaf. `onEnd` gets the bytes
   * either way when the guest's connection closes (the tunnel's log line).
   */
  accept(client: Duplex, head: Buffer, conn: Conn, onEnd: (up: number, down: number) => void): void {
    let up = head.length;
    let down = 0;
    client.on('data', (c: Buffer) => (up += c.length));
    const write = client.write.bind(client);
    client.write = ((chunk: Buffer | string, ...rest: never[]) => {
      down += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
      return write(chunk, ...rest);
    }) as typeof client.write;
    // a net.Socket's handle goes to the TLS layer, which reads and writes it directly: its byte
    // counters are the ones that see the traffic
    const raw = client instanceof net.Socket ? client : null;
    client.once('close', () => onEnd(Math.max(up, raw?.bytesRead ?? 0), Math.max(down, raw?.bytesWritten ?? 0)));
    // headers and body leave in separate writes: Nagle and delayed ACKs would add ~40 ms to each
    if (client instanceof net.Socket) client.setNoDelay(true);
    client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length > 0) client.unshift(head);
    let context: tls.SecureContext;
    try {
      context = this.cfg.ca.leaf(conn.host).context;
    } catch (e) {
      this.deps.reportError(e as Error);
      client.destroy();
      return;
    }
    const sock = new tls.TLSSocket(client as net.Socket, { isServer: true, secureContext: context, ALPNProtocols: ['http/1.1'] });
    sock.on('error', () => sock.destroy());
    sock.once('close', () => client.destroy());
    this.conns.set(sock, conn);
    sock.once('close', () => conn.agent?.destroy());
    client.resume();
    this.server.emit('connection', sock);
  }

  close(): void {
    this.server.closeAllConnections();
  }

  /** TLS to the real host over a checked socket; rejects on a certificate that does not verify. */
  private upstreamTls(host: string, socket: net.Socket): Promise<tls.TLSSocket> {
    const s = tls.connect({
      socket,
      servername: host,
      ALPNProtocols: ['http/1.1'],
      ...(this.cfg.upstreamCa ? { ca: [...tls.rootCertificates, this.cfg.upstreamCa] } : {}),
    });
    return whenConnected(s, 'secureConnect', this.deps.handshakeTimeoutMs, 'TLS handshake').catch((e: unknown) => {
      socket.destroy();
      throw e;
    });
  }

  private async connectUpstream(conn: Conn): Promise<{ tls: tls.TLSSocket; address: string | undefined } | Refusal> {
    const opened = await this.deps.open(conn.host, conn.port);
    if (isRefusal(opened)) return opened;
    opened.socket.setNoDelay(true);
    try {
      return { tls: await this.upstreamTls(conn.host, opened.socket), address: opened.address };
    } catch (e) {
      const c = errorCode(e);
      return {
        status: 502,
        header: `upstream-error; reason=${c}`,
        body: `vibebox: the TLS connection to ${conn.host} failed (${c}${c.startsWith('ERR_TLS') || /CERT|SIGNATURE|ISSUER/.test(c) ? ': its certificate does not verify against the host\'s trust store' : ''})\n`,
        decision: 'allow',
        reason: 'upstream_tls',
        error: c,
      };
    }
  }

  /**
   * The guest connection's upstream pool: one kept-alive TLS connection to the rule's host, reused
   * by the requests that follow on the same guest connection (a new handshake per request cost
   * a round trip or two), made by connectUpstream with every check.
   */
  private agentFor(conn: Conn): http.Agent {
    if (conn.agent) return conn.agent;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1, maxFreeSockets: 1, timeout: this.deps.idleTimeoutMs });
    const create = (_opts: unknown, cb: (err: Error | null, socket?: Duplex) => void): undefined => {
      this.connectUpstream(conn).then(
        (r) => ('tls' in r ? cb(null, r.tls) : cb(new UpstreamRefused(r))),
        (e: unknown) => cb(e as Error),
      );
      return undefined;
    };
    (agent as unknown as { createConnection: typeof create }).createConnection = create;
    conn.agent = agent;
    return agent;
  }

  private async onRequest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const start = Date.now();
    const conn = this.conns.get(req.socket);
    if (!conn) return void res.destroy();
    const method = req.method ?? '';
    const url = req.url ?? '';
    const path = logPath(url);
    req.on('error', (e) => this.deps.reportError(e));
    res.on('error', (e) => this.deps.reportError(e));
    let up = 0;
    let down = 0;
    let injected: string[] = [];
    let address: string | undefined;
    let error: string | undefined;
    let reason = conn.reason;
    res.once('close', () => {
      this.deps.record({
        method, host: conn.host, port: conn.port, path, decision: 'allow', reason, rule: conn.rule, address,
        status: res.statusCode, bytes_up: up, bytes_down: down, duration_ms: Date.now() - start, error,
        ...(injected.length ? { injected: injected.join(',') } : {}),
      });
    });
    const answer = (status: number, header: string, body: string): void => {
      req.resume();
      if (res.headersSent) return void res.destroy();
      res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Vibebox-Egress': header });
      res.end(body);
    };
    if (!url.startsWith('/')) {
      reason = 'bad_request';
      return answer(400, 'blocked; reason=bad_request', 'vibebox: requests inside the TLS connection use origin-form paths\n');
    }
    const swapped = injectHeaders(req.headers, conn.host, this.cfg.rules(), this.cfg.credentials());
    injected = swapped.injected;
    const headers = this.deps.stripHeaders(swapped.headers);
    headers.host = conn.host; // the name the connection was made and verified for
    if (req.headers['transfer-encoding'] !== undefined) headers['transfer-encoding'] = 'chunked';
    if (res.destroyed) return;
    const upReq = http.request({ agent: this.agentFor(conn), host: conn.host, port: conn.port, method, path: url, headers, setHost: false });
    upReq.on('socket', (s) => (address = (s as net.Socket).remoteAddress));
    upReq.on('error', (e) => {
      if (e instanceof UpstreamRefused) {
        error = e.refusal.error;
        if (e.refusal.status !== 502) reason = e.refusal.reason;
        return answer(e.refusal.status, e.refusal.header, e.refusal.body);
      }
      error = errorCode(e);
      answer(502, `upstream-error; reason=${error}`, `vibebox: ${conn.host} failed (${error})\n`);
    });
    upReq.on('response', (upRes) => {
      upRes.on('error', () => res.destroy());
      upRes.on('aborted', () => res.destroy());
      upRes.on('data', (c: Buffer) => (down += c.length));
      res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, this.deps.stripHeaders(upRes.headers));
      // an event stream must not wait in a buffer: each chunk is written as it comes
      res.flushHeaders();
      upRes.pipe(res);
    });
    res.once('close', () => {
      if (!res.writableFinished) upReq.destroy();
    });
    req.on('data', (c: Buffer) => (up += c.length));
    req.pipe(upReq);
  }

  /** A WebSocket (any Upgrade): the same header swap, then bytes both ways. */
  private async onUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const start = Date.now();
    const conn = this.conns.get(req.socket);
    if (!conn) return void socket.destroy();
    socket.on('error', () => socket.destroy());
    const method = req.method ?? '';
    const url = req.url ?? '';
    const swapped = injectHeaders(req.headers, conn.host, this.cfg.rules(), this.cfg.credentials());
    const base = { method, host: conn.host, port: conn.port, path: logPath(url), decision: 'allow' as const, reason: conn.reason, rule: conn.rule, ...(swapped.injected.length ? { injected: swapped.injected.join(',') } : {}) };
    const upstream: Awaited<ReturnType<Interceptor['connectUpstream']>> = url.startsWith('/')
      ? await this.connectUpstream(conn)
      : { status: 400, header: 'blocked; reason=bad_request', body: 'vibebox: bad upgrade request\n', decision: 'deny', reason: 'bad_request' };
    if (isRefusal(upstream)) {
      this.deps.record({ ...base, status: upstream.status, error: upstream.error, duration_ms: Date.now() - start });
      socket.end(refusalResponse(upstream));
      return;
    }
    const lines = [`${method} ${url} HTTP/1.1`];
    for (const [k, v] of Object.entries({ ...swapped.headers, host: conn.host })) {
      if (v === undefined || k.startsWith('proxy-')) continue;
      for (const one of Array.isArray(v) ? v : [v]) lines.push(`${k}: ${one}`);
    }
    upstream.tls.write(`${lines.join('\r\n')}\r\n\r\n`);
    splice(socket, upstream.tls, head, (up, down) =>
      this.deps.record({ ...base, address: upstream.address, status: 101, bytes_up: up, bytes_down: down, duration_ms: Date.now() - start }),
    );
  }
}
