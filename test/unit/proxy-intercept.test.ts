// The intercepting path of the egress proxy, against fake providers: TLS servers on host loopback
// with certificates of a test CA stand in for api.anthropic.com and friends, which this machine
// cannot reach. The proxy reaches them through its test-only upstream override.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import { VibeboxCa } from '../../proxy/ca.js';
import { BUILTIN_RULES, type Credential } from '../../proxy/inject.js';
import { EgressProxy, type EgressRecord } from '../../proxy/server.js';
import { closeServer, listen } from '../helpers/net.js';

process.env['NODE_ENV'] = 'test';
process.env['VIBEBOX_TEST_UPSTREAM'] = '1';

const dir = mkdtempSync(join(tmpdir(), 'vibebox-intercept-'));
process.env['VIBEBOX_HOME'] = dir; // a throwaway home in the temp dir: the override's third condition
const REAL = 'sk-ant-api03-REALKEY-never-in-the-vm-0123456789';
const PLACEHOLDER = 'sk-ant-api03-placeholder0123456789abcdefghijklmnopqrstuvwxyz';
const GH_REAL = 'ghp_REALGITHUBTOKEN000000000000000000';
const GH_PLACEHOLDER = 'ghp_placeholderplaceholderplaceholder';
const creds = new Map<string, Credential>([
  ['ANTHROPIC_API_KEY', { env: 'ANTHROPIC_API_KEY', placeholder: PLACEHOLDER, value: REAL }],
  ['OPENAI_API_KEY', { env: 'OPENAI_API_KEY', placeholder: 'sk-proj-ph', value: 'sk-proj-real' }],
  ['GH_TOKEN', { env: 'GH_TOKEN', placeholder: GH_PLACEHOLDER, value: GH_REAL }],
  ['GEMINI_API_KEY', { env: 'GEMINI_API_KEY', placeholder: 'AIzaPlaceholder', value: 'AIzaReal' }],
]);

type Seen = { host: string; url: string; headers: http.IncomingHttpHeaders };
const seen: Seen[] = [];
let providerCa: VibeboxCa; // the "public" CA the fake providers' certificates chain to
let rogueCa: VibeboxCa; // a CA nobody trusts (an interception upstream, an expired chain…)
const servers: https.Server[] = [];
const ports: Record<string, number> = {};
const handshakes: Record<string, number> = {};
let vibeboxCa: VibeboxCa;
let proxy: EgressProxy;
let proxyPort = 0;
const records: EgressRecord[] = [];
const logFile = join(dir, 'egress.log');
let releaseSecond: () => void = () => undefined;

async function fake(host: string, ca: () => VibeboxCa): Promise<void> {
  const s = https.createServer({ SNICallback: (name, cb) => cb(null, ca().leaf(name).context) }, (req, res) => {
    seen.push({ host, url: req.url ?? '', headers: req.headers });
    if (req.url === '/stream') {
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.write('data: first\n\n');
      // the second chunk goes only once the client has the first (or after 3 s: then the test fails)
      const t = setTimeout(() => res.end('data: second\n\n'), 3_000);
      releaseSecond = () => {
        clearTimeout(t);
        res.end('data: second\n\n');
      };
      return;
    }
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end(`ok ${host}`);
    });
  });
  // a WebSocket-like upgrade: 101, then the bytes echoed
  s.on('upgrade', (req: http.IncomingMessage, socket: Duplex) => {
    seen.push({ host, url: req.url ?? '', headers: req.headers });
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    socket.pipe(socket);
  });
  s.on('secureConnection', () => (handshakes[host] = (handshakes[host] ?? 0) + 1));
  servers.push(s);
  ports[host] = await listen(s);
}

before(async () => {
  providerCa = VibeboxCa.loadOrCreate(join(dir, 'provider-ca'), 'fake public CA');
  rogueCa = VibeboxCa.loadOrCreate(join(dir, 'rogue-ca'), 'rogue CA');
  vibeboxCa = VibeboxCa.loadOrCreate(join(dir, 'vibebox-ca'));
  await fake('api.anthropic.com', () => providerCa);
  await fake('api.github.com', () => providerCa);
  await fake('other.example', () => providerCa);
  await fake('api.openai.com', () => rogueCa);
  proxy = new EgressProxy({
    policy: { mode: 'allowlist', entries: ['api.anthropic.com', 'api.github.com', 'api.openai.com', 'other.example'] },
    allowLoopbackForTests: true,
    lookup: async () => [{ address: '127.0.0.1', family: 4 }],
    logFile,
    onDecision: (r) => records.push(r),
    intercept: {
      ca: vibeboxCa,
      rules: () => BUILTIN_RULES,
      credentials: () => creds,
      upstreamCa: providerCa.certPem,
    },
    testUpstreams: { 'api.anthropic.com': ports['api.anthropic.com']!, 'api.github.com': ports['api.github.com']!, 'api.openai.com': ports['api.openai.com']! },
  });
  proxyPort = await proxy.listenTcp(0);
});

after(async () => {
  await proxy.close();
  await Promise.all(servers.map((s) => closeServer(s)));
  rmSync(dir, { recursive: true, force: true });
});

function tunnel(target: string): Promise<{ status: number; socket: Duplex }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: proxyPort, method: 'CONNECT', path: target, agent: false });
    req.on('connect', (res: http.IncomingMessage, socket: Duplex) => resolve({ status: res.statusCode ?? 0, socket }));
    req.on('error', reject);
    req.end();
  });
}

type Got = { status: number; headers: http.IncomingHttpHeaders; body: string; chunks: string[] };

/** An HTTPS request the way an agent in the VM makes it: CONNECT, then TLS trusting the vibebox CA. */
async function agentRequest(host: string, path: string, headers: http.OutgoingHttpHeaders, opts: { port?: number; ca?: string; onChunk?: (c: string) => void } = {}): Promise<Got> {
  const t = await tunnel(`${host}:${opts.port ?? 443}`);
  assert.equal(t.status, 200);
  const socket = tls.connect({ socket: t.socket as never, servername: host, ca: opts.ca ?? vibeboxCa.certPem, ALPNProtocols: ['h2', 'http/1.1'] });
  return new Promise((resolve, reject) => {
    const req = https.request({ host, path, method: 'POST', headers, createConnection: () => socket }, (res) => {
      const chunks: string[] = [];
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        chunks.push(c);
        opts.onChunk?.(c);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: chunks.join(''), chunks }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end('{"hello":1}');
  });
}

describe('egress proxy: credential injection', () => {
  it('puts the real key in for the rule host, where the request carries the placeholder', async () => {
    seen.length = 0;
    const got = await agentRequest('api.anthropic.com', '/v1/messages?beta=true&key=x', { 'x-api-key': PLACEHOLDER, 'anthropic-version': '2023-06-01' });
    assert.equal(got.status, 200, got.body);
    assert.equal(got.body, 'ok api.anthropic.com');
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.headers['x-api-key'], REAL);
    assert.equal(seen[0]!.url, '/v1/messages?beta=true&key=x', 'the query reaches upstream');
    assert.equal(seen[0]!.headers.host, 'api.anthropic.com');
  });

  it('puts a GitHub token in for Bearer and for git over HTTPS (Basic) alike', async () => {
    seen.length = 0;
    await agentRequest('api.github.com', '/user', { authorization: `Bearer ${GH_PLACEHOLDER}` });
    assert.equal(seen[0]!.headers.authorization, `Bearer ${GH_REAL}`);
  });

  it('leaves a header without the placeholder as it is (the agent brought its own key)', async () => {
    seen.length = 0;
    await agentRequest('api.anthropic.com', '/v1/messages', { 'x-api-key': 'sk-ant-mine' });
    assert.equal(seen[0]!.headers['x-api-key'], 'sk-ant-mine');
  });

  it('sends the placeholder unchanged to any other host (a plain tunnel, not intercepted)', async () => {
    seen.length = 0;
    // other.example is reached as 127.0.0.1:<port>: allowed, no rule, so tunnelled end to end
    const got = await agentRequest('other.example', '/gist', { 'x-api-key': PLACEHOLDER, authorization: `Bearer ${PLACEHOLDER}` }, { port: ports['other.example']!, ca: providerCa.certPem });
    assert.equal(got.status, 200);
    assert.equal(seen[0]!.headers['x-api-key'], PLACEHOLDER);
    assert.equal(seen[0]!.headers.authorization, `Bearer ${PLACEHOLDER}`);
  });

  it('streams a response chunk by chunk', async () => {
    let firstBeforeSecond = false;
    const got = await agentRequest('api.anthropic.com', '/stream', { 'x-api-key': PLACEHOLDER }, {
      onChunk: (c) => {
        if (c.includes('first') && !c.includes('second')) {
          firstBeforeSecond = true;
          releaseSecond();
        }
      },
    });
    assert.equal(got.body, 'data: first\n\ndata: second\n\n');
    assert.ok(firstBeforeSecond, 'the first event reached the agent before the provider sent the second');
  });

  it('answers a certificate that does not verify upstream with a 502 the agent can read', async () => {
    const got = await agentRequest('api.openai.com', '/v1/chat', { authorization: 'Bearer sk-proj-ph' });
    assert.equal(got.status, 502);
    assert.match(String(got.headers['x-vibebox-egress']), /^upstream-error; reason=[A-Z_]+/);
    assert.match(got.body, /TLS connection to api\.openai\.com failed .*certificate/);
  });

  it('reuses one upstream connection for the requests of one guest connection, the key put in each time', async () => {
    seen.length = 0;
    const t = await tunnel('api.anthropic.com:443');
    const s = tls.connect({ socket: t.socket as never, servername: 'api.anthropic.com', ca: vibeboxCa.certPem });
    await new Promise<void>((r, j) => s.once('secureConnect', () => r()).once('error', j));
    const before = handshakes['api.anthropic.com'] ?? 0;
    let got = '';
    s.on('data', (c: Buffer) => (got += c.toString()));
    const ask = async (n: number) => {
      s.write(`POST /v1/messages HTTP/1.1\r\nHost: api.anthropic.com\r\nx-api-key: ${PLACEHOLDER}\r\nContent-Length: 2\r\n\r\n{}`);
      const deadline = Date.now() + 5_000;
      while ((got.match(/ok api\.anthropic\.com/g) ?? []).length < n) {
        if (Date.now() > deadline) throw new Error(`no answer ${n}: ${got}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    await ask(1);
    await ask(2);
    await ask(3);
    s.destroy();
    assert.equal((handshakes['api.anthropic.com'] ?? 0) - before, 1, 'one upstream TLS handshake for three requests');
    assert.deepEqual(seen.map((x) => x.headers['x-api-key']), [REAL, REAL, REAL]);
  });

  it('offers only HTTP/1.1 by ALPN (an h2-first client falls back)', async () => {
    const t = await tunnel('api.anthropic.com:443');
    const s = tls.connect({ socket: t.socket as never, servername: 'api.anthropic.com', ca: vibeboxCa.certPem, ALPNProtocols: ['h2', 'http/1.1'] });
    await new Promise<void>((r, j) => s.once('secureConnect', () => r()).once('error', j));
    assert.equal(s.alpnProtocol, 'http/1.1');
    s.destroy();
  });

  it('logs one line per request, the path without its query, the rule, and nothing of a credential', async () => {
    await new Promise((r) => setTimeout(r, 100));
    const line = records.find((r) => r.host === 'api.anthropic.com' && r.path === '/v1/messages' && r.injected === 'anthropic');
    assert.ok(line, JSON.stringify(records));
    assert.equal(line.method, 'POST');
    assert.equal(line.status, 200);
    assert.ok((line.bytes_down ?? 0) > 0);
    const tunnelLine = records.find((r) => r.host === 'api.anthropic.com' && r.method === 'CONNECT' && r.intercepted === true);
    assert.ok(tunnelLine && typeof tunnelLine.duration_ms === 'number');
    assert.ok((tunnelLine.bytes_up ?? 0) > 200 && (tunnelLine.bytes_down ?? 0) > 1000, `the tunnel's bytes: ${JSON.stringify(tunnelLine)}`);
    const text = readFileSync(logFile, 'utf8');
    for (const secret of [REAL, PLACEHOLDER, GH_REAL, GH_PLACEHOLDER, 'sk-proj-real', 'beta=true']) assert.ok(!text.includes(secret), `log holds ${secret}`);
  });

  it('passes a WebSocket upgrade through, with the key put in', async () => {
    seen.length = 0;
    const t = await tunnel('api.anthropic.com:443');
    const s = tls.connect({ socket: t.socket as never, servername: 'api.anthropic.com', ca: vibeboxCa.certPem });
    await new Promise<void>((r, j) => s.once('secureConnect', () => r()).once('error', j));
    s.write(`GET /ws?token=q HTTP/1.1\r\nHost: api.anthropic.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nx-api-key: ${PLACEHOLDER}\r\n\r\n`);
    let got = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no echo: ${JSON.stringify(got)}`)), 5_000);
      s.on('data', (c: Buffer) => {
        got += c.toString();
        if (got.includes('\r\n\r\n') && !got.includes('ping')) s.write('ping');
        if (got.endsWith('ping')) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    assert.match(got, /^HTTP\/1.1 101 /);
    assert.equal(seen[0]!.headers['x-api-key'], REAL);
    assert.equal(seen[0]!.headers.upgrade, 'websocket');
    s.destroy();
  });

  it('never terminates TLS for a rule host the policy does not allow: the 451 comes first', async () => {
    const t = await tunnel('generativelanguage.googleapis.com:443');
    assert.equal(t.status, 451);
    t.socket.destroy();
  });

  it('closes an idle intercepted connection after the idle timeout, never one with tokens flowing', async () => {
    const slow = https.createServer({ SNICallback: (name, cb) => cb(null, providerCa.leaf(name).context) }, (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      let n = 0;
      const t = setInterval(() => {
        res.write(`data: ${n}\n\n`);
        if (++n === 8) {
          clearInterval(t);
          res.end();
        }
      }, 150);
    });
    const slowPort = await listen(slow);
    const p2 = new EgressProxy({
      policy: { mode: 'allowlist', entries: ['api.anthropic.com'] },
      allowLoopbackForTests: true,
      lookup: async () => [{ address: '127.0.0.1', family: 4 }],
      idleTimeoutMs: 500,
      intercept: { ca: vibeboxCa, rules: () => BUILTIN_RULES, credentials: () => creds, upstreamCa: providerCa.certPem },
      testUpstreams: { 'api.anthropic.com': slowPort },
    });
    const port2 = await p2.listenTcp(0);
    try {
      const open = async () => {
        const socket = await new Promise<Duplex>((resolve, reject) => {
          const req = http.request({ host: '127.0.0.1', port: port2, method: 'CONNECT', path: 'api.anthropic.com:443', agent: false });
          req.on('connect', (_res: http.IncomingMessage, s: Duplex) => resolve(s));
          req.on('error', reject);
          req.end();
        });
        const s = tls.connect({ socket: socket as never, servername: 'api.anthropic.com', ca: vibeboxCa.certPem });
        await new Promise<void>((r, j) => s.once('secureConnect', () => r()).once('error', j));
        return s;
      };
      // 1.2 s of a stream, chunks 150 ms apart: longer than the idle timeout, never idle
      const s = await open();
      let got = '';
      s.on('data', (c: Buffer) => (got += c.toString()));
      s.write(`GET /stream HTTP/1.1\r\nHost: api.anthropic.com\r\nx-api-key: ${PLACEHOLDER}\r\n\r\n`);
      const t0 = Date.now();
      while (!got.includes('data: 7') && Date.now() - t0 < 5_000) await new Promise((r) => setTimeout(r, 20));
      assert.ok(got.includes('data: 7'), `the stream was cut: ${got}`);
      // then nothing either way: closed by the 5 s keep-alive timeout between requests
      const closed = new Promise<number>((r) => s.once('close', () => r(Date.now())));
      const at = await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(-1), 8_000))]);
      assert.ok(at > 0, 'an idle intercepted connection stays open');
      // a connection that never sends a request: cut after the idle timeout (0.5 s here)
      const quiet = await open();
      const t2 = Date.now();
      const cut = await Promise.race([new Promise<number>((r) => quiet.once('close', () => r(Date.now()))), new Promise<number>((r) => setTimeout(() => r(-1), 4_000))]);
      assert.ok(cut > 0 && cut - t2 < 3_000, `a silent connection stays open (${cut - t2} ms)`);
    } finally {
      await p2.close();
      await closeServer(slow);
    }
  });

  it('refuses the test-only upstream override outside tests: each of its three conditions missing, and a home outside the temp dir', () => {
    const make = () => new EgressProxy({ policy: { mode: 'allowlist', entries: [] }, testUpstreams: { 'api.anthropic.com': 1 } });
    const saved = { ...process.env };
    const outside = mkdtempSync(join(process.cwd(), '.vibebox-home-'));
    try {
      for (const [k, v] of [['VIBEBOX_TEST_UPSTREAM', undefined], ['NODE_ENV', undefined], ['NODE_ENV', 'production'], ['VIBEBOX_HOME', undefined], ['VIBEBOX_HOME', outside], ['VIBEBOX_HOME', tmpdir()], ['VIBEBOX_HOME', join(dir, 'nonexistent')]] as const) {
        process.env = { ...saved };
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
        assert.throws(make, /for vibebox's own tests only/, `${k}=${String(v)}`);
      }
      process.env = { ...saved };
      assert.doesNotThrow(() => void make().close());
    } finally {
      process.env = saved;
      rmSync(outside, { recursive: true, force: true });
    }
  });
});
