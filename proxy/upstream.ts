/**
 * The egress proxy's upstream side, shared by its three paths (a CONNECT tunnel, forwarded plain
 * HTTP, a request inside an intercepted TLS connection): what a connection that could not be made
 * answers the guest, and the byte splice of a tunnel or an upgraded connection with its counts.
 */
import type { Duplex } from 'node:stream';
import type net from 'node:net';

/**
 * An upstream connection that was refused (policy: 400/451, decision 'deny') or failed (502,
 * decision 'allow': the policy let it through, the host did not answer): the answer for the
 * guest and what the log line records.
 */
export type Refusal = {
  status: number;
  /** the X-Vibebox-Egress header */
  header: string;
  body: string;
  decision: 'allow' | 'deny';
  reason: string;
  rule?: string | undefined;
  error?: string;
  /** the peer that failed the check after connecting */
  address?: string | undefined;
};

/** A node error's code as logged and answered (only [A-Z0-9_]: it goes into a header), else EUPSTREAM. */
export function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && /^[A-Z0-9_]+$/.test(code) ? code : 'EUPSTREAM';
}

/**
 * `s` once it emits `event` (a TCP connect, a TLS handshake) within `timeoutMs`; otherwise it is
 * destroyed and the promise rejects with its error or ETIMEDOUT (every wait has a deadline).
 */
export function whenConnected<S extends Duplex>(s: S, event: 'connect' | 'secureConnect', timeoutMs: number, what: string): Promise<S> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      s.destroy();
      reject(Object.assign(new Error(`${what} timed out`), { code: 'ETIMEDOUT' }));
    }, timeoutMs);
    s.once(event, () => {
      clearTimeout(timer);
      resolve(s);
    });
    s.once('error', (err) => {
      clearTimeout(timer);
      s.destroy();
      reject(err);
    });
  });
}

/** A checked upstream connection, or why there is none. */
export type Opened = { socket: net.Socket; address: string | undefined } | Refusal;

export function isRefusal(o: Opened | object): o is Refusal {
  return 'status' in o && !('socket' in o);
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  451: 'Unavailable For Legal Reasons',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
};

/** A whole HTTP/1.1 response written on a raw socket (text body, then the connection closes). */
export function rawResponse(status: number, headers: Record<string, string>, body: string): string {
  const lines = [`HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}`];
  const all: Record<string, string> = {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(body)),
    Connection: 'close',
    ...headers,
  };
  for (const [k, v] of Object.entries(all)) lines.push(`${k}: ${v}`);
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}

/** The refusal as a raw response (a CONNECT or an upgrade, where no HTTP response object exists). */
export function refusalResponse(r: Refusal): string {
  return rawResponse(r.status, { 'X-Vibebox-Egress': r.header }, r.body);
}

/** The 502 of an upstream that could not be reached. */
export function unreachable(host: string, port: number, code: string, reason: string, rule?: string): Refusal {
  return { status: 502, header: `upstream-error; reason=${code}`, body: `vibebox: could not reach ${host}:${port} (${code})\n`, decision: 'allow', reason, rule, error: code };
}

/**
 * Bytes both ways between the guest's side and upstream until either closes (then both are cut);
 * `head` (bytes the guest sent early) goes upstream first. `onEnd` gets the counts once. Returns
 * the function that ends it (an idle timeout calls it). Whatever the caller writes to either side
 * before (a 200, the upgrade request) is not counted.
 */
export function splice(client: Duplex, upstream: Duplex, head: Buffer, onEnd: (up: number, down: number) => void): () => void {
  let up = head.length;
  let down = 0;
  let done = false;
  const finish = (): void => {
    if (done) return;
    done = true;
    client.destroy();
    upstream.destroy();
    onEnd(up, down);
  };
  client.on('data', (c: Buffer) => (up += c.length));
  upstream.on('data', (c: Buffer) => (down += c.length));
  client.once('close', finish);
  upstream.once('close', finish);
  if (head.length > 0) upstream.write(head);
  client.pipe(upstream);
  upstream.pipe(client);
  return finish;
}
