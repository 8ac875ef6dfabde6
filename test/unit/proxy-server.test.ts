import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { defaultNetworkPolicy, type NetworkPolicy } from '../../proxy/policy.js';
import { EgressProxy, parseAuthority, type EgressProxyOptions, type EgressRecord } from '../../proxy/server.js';
import { closeServer, listen } from '../helpers/net.js';

type Via = { socketPath: string } | { host: string; port: number };

type Got = { status: number; headers: http.IncomingHttpHeaders; body: string; reusedSocket?: boolean };

function request(via: Via, url: string, opts: http.RequestOptions & { body?: string } = {}): Promise<Got> {
  return new Promise((resolve, reject) => {
    const { body, ...rest } = opts;
    const req = http.request({ ...via, path: url, method: 'GET', ...rest }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text, reusedSocket: req.reusedSocket }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

type Connected = { status: number; headers: http.IncomingHttpHeaders; socket: Duplex; head: Buffer };

function connect(via: Via, target: string): Promise<Connected> {
  return new Promise((resolve, reject) => {
    const req = http.request({ ...via, method: 'CONNECT', path: target, agent: false });
    req.on('connect', (res: http.IncomingMessage, socket: Duplex, head: Buffer) =>
      resolve({ status: res.statusCode ?? 0, headers: res.headers, socket, head }),
    );
    req.on('error', reject);
    req.end();
  });
}

/** read from a socket until `n` bytes or end */
function readAll(socket: Duplex, initial: Buffer = Buffer.alloc(0)): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [initial];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

const dir = mkdtempSync(join(tmpdir(), 'vibebox-proxy-'));
const proxies: EgressProxy[] = [];

async function startProxy(opts: Partial<EgressProxyOptions> & { policy: NetworkPolicy }): Promise<{ proxy: EgressProxy; tcp: Via; unix: Via; records: EgressRecord[] }> {
  const records: EgressRecord[] = [];
  const proxy = new EgressProxy({ ...opts, onDecision: (r) => records.push(r) });
  proxies.push(proxy);
  const socketPath = join(dir, `egress-${proxies.length}.sock`);
  await proxy.listen(socketPath);
  const port = await proxy.listenTcp(0);
  return { proxy, tcp: { host: '127.0.0.1', port }, unix: { socketPath }, records };
}

// origin server the tests start on loopback
let origin: http.Server;
let originPort = 0;
let seen: http.IncomingHttpHeaders[] = [];
// echo server for CONNECT
let echo: net.Server;
let echoPort = 0;

before(async () => {
  origin = http.createServer((req, res) => {
    seen.push(req.headers);
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      res.writeHead(200, { 'Content-Type': 'text/plain', Connection: 'keep-alive, X-Secret-Hop', 'X-Secret-Hop': 'x', 'Keep-Alive': 'timeout=5' });
      res.end(`${req.method} ${req.url} host=${req.headers.host} body=${body}`);
    });
  });
  originPort = await listen(origin);
  echo = net.createServer((s) => {
    s.on('error', () => {});
    s.pipe(s);
  });
  echoPort = await listen(echo);
});

after(async () => {
  await Promise.all(proxies.map((p) => p.close()));
  await closeServer(origin);
  await closeServer(echo);
  rmSync(dir, { recursive: true, force: true });
});

describe('EgressProxy: listening', () => {
  it('listens on a unix socket with mode 0600, and on TCP', async () => {
    const { unix, tcp } = await startProxy({ policy: { mode: 'allowlist', entries: [] } });
    assert.ok('socketPath' in unix);
    assert.equal(statSync(unix.socketPath).mode & 0o777, 0o600);
    assert.equal((await request(unix, 'http://example.com/')).status, 451);
    assert.equal((await request(tcp, 'http://example.com/')).status, 451);
  });
  it('parses CONNECT authorities', () => {
    assert.deepEqual(parseAuthority('example.com:443'), { host: 'example.com', port: 443 });
    assert.deepEqual(parseAuthority('[::1]:8080'), { host: '[::1]', port: 8080 });
    assert.equal(parseAuthority('example.com'), null);
    assert.equal(parseAuthority('::1:443'), null);
    assert.equal(parseAuthority('example.com:0'), null);
    assert.equal(parseAuthority('example.com:70000'), null);
  });
});

describe('EgressProxy: denials', () => {
  it('answers 451 with the exact header for a host not in the allowlist (CONNECT and plain HTTP)', async () => {
    const { unix } = await startProxy({ policy: defaultNetworkPolicy() });
    const c = await connect(unix, 'example.com:443');
    assert.equal(c.status, 451);
    assert.equal(c.headers['x-vibebox-egress'], "blocked; reason=not_in_allowlist; add-via='vibebox allow example.com'");
    const body = await readAll(c.socket, c.head);
    assert.match(body, /vibebox allow example\.com/);
    const r = await request(unix, 'http://Example.COM./path');
    assert.equal(r.status, 451);
    assert.equal(r.headers['x-vibebox-egress'], "blocked; reason=not_in_allowlist; add-via='vibebox allow example.com'");
    assert.match(r.body, /blocked \(reason=not_in_allowlist/);
  });

  it("refuses the host's loopback even when allowlisted (451, reason loopback)", async () => {
    const { unix, tcp, records } = await startProxy({
      policy: { mode: 'allowlist', entries: ['127.0.0.1', 'localhost', '::1', 'rebind.test'] },
      lookup: async (host) => (host === 'rebind.test' ? [{ address: '93.184.215.14', family: 4 }, { address: '127.0.0.1', family: 4 }] : []),
    });
    for (const target of [`127.0.0.1:${originPort}`, `localhost:${originPort}`, `[::1]:${originPort}`, `rebind.test:${originPort}`, `127.1:${originPort}`]) {
      const c = await connect(tcp, target);
      assert.equal(c.status, 451, target);
      assert.equal(String(c.headers['x-vibebox-egress']), 'blocked; reason=loopback; add-via=none', target);
      c.socket.destroy();
    }
    const r = await request(unix, `http://127.0.0.1:${originPort}/`);
    assert.equal(r.status, 451);
    assert.equal(r.headers['x-vibebox-egress'], 'blocked; reason=loopback; add-via=none');
    const r2 = await request(unix, `http://rebind.test:${originPort}/`);
    assert.equal(r2.status, 451);
    assert.match(String(r2.headers['x-vibebox-egress']), /reason=loopback/);
    assert.equal(seen.length, 0, 'the origin on loopback was never reached');
    assert.ok(records.every((rec) => rec.decision === 'deny' && rec.reason === 'loopback'));
  });

  it('answers 400 to malformed and origin-form requests and keeps running', async () => {
    const { tcp, records } = await startProxy({ policy: { mode: 'blocklist', entries: [] } });
    assert.ok('port' in tcp);
    const raw = await new Promise<string>((resolve) => {
      const s = net.connect(tcp.port, tcp.host);
      let out = '';
      s.on('data', (c: Buffer) => (out += c.toString()));
      s.on('close', () => resolve(out));
      s.on('error', () => {});
      s.write('THIS IS NOT HTTP\r\n\r\n');
    });
    assert.match(raw, /^HTTP\/1\.1 400/);
    assert.equal((await request(tcp, '/relative')).status, 400);
    assert.equal((await request(tcp, 'https://example.com/')).status, 400);
    const bad = await connect(tcp, 'no-port-here');
    assert.equal(bad.status, 400);
    bad.socket.destroy();
    const badHost = await connect(tcp, 'bad_host!:443');
    assert.equal(badHost.status, 400);
    badHost.socket.destroy();
    // a client that hangs up mid-request does not crash anything
    const s = net.connect(tcp.port, tcp.host);
    s.on('error', () => {});
    s.write('GET http://example.org/ HTTP/1.1\r\nHost: exa');
    s.destroy();
    assert.equal((await request(tcp, 'http://localhost/')).status, 451);
    assert.ok(records.some((r) => r.reason === 'bad_request' && r.status === 400));
  });
});

describe('EgressProxy: forwarding (allowLoopbackForTests)', () => {
  it('forwards absolute-URI HTTP over a keep-alive client connection, stripping hop-by-hop and Proxy-* headers', async () => {
    seen = [];
    const { unix } = await startProxy({ policy: { mode: 'allowlist', entries: ['127.0.0.1'] }, allowLoopbackForTests: true });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const r1 = await request(unix, `http://127.0.0.1:${originPort}/a?x=1`, {
        agent,
        headers: { 'Proxy-Authorization': 'Basic Zm9vOmJhcg==', 'Proxy-Connection': 'keep-alive', Connection: 'keep-alive, X-Drop-Me', 'X-Drop-Me': '1', 'X-Keep': 'yes' },
      });
      assert.equal(r1.status, 200);
      assert.equal(r1.body, `GET /a?x=1 host=127.0.0.1:${originPort} body=`);
      assert.equal(r1.headers['x-secret-hop'], undefined, 'response headers named in Connection are stripped');
      const r2 = await request(unix, `http://127.0.0.1:${originPort}/b`, { agent, method: 'POST', body: 'hello', headers: { 'Content-Type': 'text/plain' } });
      assert.equal(r2.status, 200);
      assert.equal(r2.body, `POST /b host=127.0.0.1:${originPort} body=hello`);
      assert.equal(r2.reusedSocket, true, 'the client connection to the proxy was kept alive');
    } finally {
      agent.destroy();
    }
    const h = seen[0];
    assert.ok(h);
    assert.equal(h['proxy-authorization'], undefined);
    assert.equal(h['proxy-connection'], undefined);
    assert.equal(h['x-drop-me'], undefined);
    assert.equal(h['x-keep'], 'yes');
  });

  it('tunnels CONNECT to an allowed host:port', async () => {
    const { tcp, unix, records } = await startProxy({ policy: { mode: 'allowlist', entries: [`127.0.0.1:${echoPort}`] }, allowLoopbackForTests: true });
    for (const via of [tcp, unix]) {
      const c = await connect(via, `127.0.0.1:${echoPort}`);
      assert.equal(c.status, 200);
      const got = new Promise<string>((resolve) => {
        let out = c.head.toString();
        c.socket.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('ping-pong')) resolve(out);
        });
      });
      c.socket.write('ping-pong');
      assert.equal(await got, 'ping-pong');
      c.socket.destroy();
    }
    // a port not in the entry is refused
    const other = await connect(tcp, `127.0.0.1:${originPort}`);
    assert.equal(other.status, 451);
    other.socket.destroy();
    await new Promise((r) => setTimeout(r, 50));
    const tunnels = records.filter((r) => r.decision === 'allow');
    assert.equal(tunnels.length, 2);
    for (const t of tunnels) {
      assert.equal(t.method, 'CONNECT');
      assert.equal(t.bytes_up, 9);
      assert.equal(t.bytes_down, 9);
      assert.equal(t.address, '127.0.0.1');
    }
  });

  it('keeps bytes a client sends before the 200 (slow DNS) and delivers them through the tunnel', async () => {
    const { tcp } = await startProxy({
      policy: { mode: 'allowlist', entries: ['slow.test'] },
      allowLoopbackForTests: true,
      lookup: () => new Promise((resolve) => setTimeout(() => resolve([{ address: '127.0.0.1', family: 4 }]), 150)),
    });
    assert.ok('port' in tcp);
    const out = await new Promise<string>((resolve) => {
      const s = net.connect(tcp.port, tcp.host);
      let got = '';
      s.on('error', () => {});
      s.on('data', (d: Buffer) => {
        got += d.toString();
        if (got.endsWith('early-bytes')) {
          s.destroy();
          resolve(got);
        }
      });
      s.write(`CONNECT slow.test:${echoPort} HTTP/1.1\r\nHost: slow.test:${echoPort}\r\n\r\n`);
      setTimeout(() => s.write('early-bytes'), 30);
    });
    assert.equal(out, 'HTTP/1.1 200 Connection Established\r\n\r\nearly-bytes');
  });

  it('answers 502 with the upstream-error header when the origin refuses the connection', async () => {
    const dead = net.createServer();
    const deadPort = await listen(dead);
    await closeServer(dead);
    const { tcp } = await startProxy({ policy: { mode: 'allowlist', entries: ['127.0.0.1'] }, allowLoopbackForTests: true });
    const c = await connect(tcp, `127.0.0.1:${deadPort}`);
    assert.equal(c.status, 502);
    assert.equal(c.headers['x-vibebox-egress'], 'upstream-error; reason=ECONNREFUSED');
    c.socket.destroy();
    const r = await request(tcp, `http://127.0.0.1:${deadPort}/`);
    assert.equal(r.status, 502);
    assert.equal(r.headers['x-vibebox-egress'], 'upstream-error; reason=ECONNREFUSED');
    const nx = await startProxy({ policy: { mode: 'allowlist', entries: ['nx.test'] }, lookup: async () => { throw Object.assign(new Error('nx'), { code: 'ENOTFOUND' }); } });
    const r2 = await request(nx.tcp, 'http://nx.test/');
    assert.equal(r2.status, 502);
    assert.equal(r2.headers['x-vibebox-egress'], 'upstream-error; reason=ENOTFOUND');
  });

  it('setPolicy allows a previously blocked host without a restart, and writes a JSON line per decision', async () => {
    const logFile = join(dir, 'logs', 'egress.log');
    const { proxy, unix } = await startProxy({ policy: { mode: 'allowlist', entries: [] }, allowLoopbackForTests: true, logFile });
    const url = `http://127.0.0.1:${originPort}/x`;
    const before = await request(unix, url);
    assert.equal(before.status, 451);
    assert.equal(before.headers['x-vibebox-egress'], "blocked; reason=not_in_allowlist; add-via='vibebox allow 127.0.0.1'");
    proxy.setPolicy({ mode: 'allowlist', entries: ['127.0.0.1'] });
    const afterAllow = await request(unix, url);
    assert.equal(afterAllow.status, 200);
    proxy.setPolicy({ mode: 'blocklist', entries: ['127.0.0.1'] });
    assert.equal((await request(unix, url)).status, 451);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(statSync(logFile).mode & 0o777, 0o600);
    const lines = readFileSync(logFile, 'utf8').trimEnd().split('\n');
    assert.equal(lines.length, 3);
    const recs = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const rec of recs) {
      assert.match(String(rec.ts), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
      assert.equal(rec.method, 'GET');
      assert.equal(rec.host, '127.0.0.1');
      assert.equal(rec.port, originPort);
      assert.ok(typeof rec.reason === 'string');
    }
    assert.deepEqual(recs.map((r) => [r.decision, r.reason, r.status]), [
      ['deny', 'not_in_allowlist', 451],
      ['allow', 'in_allowlist', 200],
      ['deny', 'in_blocklist', 451],
    ]);
    const allowed = recs[1];
    assert.ok(allowed);
    assert.equal(allowed.rule, '127.0.0.1');
    assert.ok(typeof allowed.duration_ms === 'number');
    assert.ok(typeof allowed.bytes_down === 'number' && allowed.bytes_down > 0);
  });
});

describe('EgressProxy: the real network', () => {
  it('CONNECT registry.npmjs.org:443 is allowed by default and TLS + GET / works through the tunnel', { timeout: 60_000 }, async () => {
    const logFile = join(dir, 'real-egress.log');
    const { tcp, proxy } = await startProxy({ policy: defaultNetworkPolicy(), logFile });
    const c = await connect(tcp, 'registry.npmjs.org:443');
    assert.equal(c.status, 200);
    const status = await new Promise<number>((resolve, reject) => {
      const req = https.request(
        {
          host: 'registry.npmjs.org',
          path: '/',
          method: 'GET',
          createConnection: () => tls.connect({ socket: c.socket, servername: 'registry.npmjs.org' }),
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.end();
    });
    assert.ok(status >= 200 && status < 500, `status ${status}`);
    c.socket.destroy();
    const denied = await connect(tcp, 'example.com:443');
    assert.equal(denied.status, 451);
    assert.equal(denied.headers['x-vibebox-egress'], "blocked; reason=not_in_allowlist; add-via='vibebox allow example.com'");
    denied.socket.destroy();
    await proxy.close();
    const recs = readFileSync(logFile, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as EgressRecord);
    const npm = recs.find((r) => r.host === 'registry.npmjs.org');
    assert.ok(npm);
    assert.equal(npm.decision, 'allow');
    assert.equal(npm.reason, 'in_allowlist');
    assert.ok((npm.bytes_down ?? 0) > 1000, 'TLS handshake and response went through');
    assert.ok(recs.some((r) => r.host === 'example.com' && r.decision === 'deny' && r.reason === 'not_in_allowlist'));
  });
});
