// `NODE_ENV=test VIBEBOX_TEST_UPSTREAM=1 node --import tsx bench/key-injection.ts`: the latency an
// intercepted request adds over a plain tunnel to the same fake upstream (a TLS server on
// loopback; the real providers are not reachable here), medians of many in one run, and the
// proxy's memory with 64 open intercepted connections. Proxy, client and upstream share this
// process: the figures compare paths, they are not a production measurement.
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { VibeboxCa } from '../proxy/ca.js';
import { BUILTIN_RULES, type Credential } from '../proxy/inject.js';
import { EgressProxy } from '../proxy/server.js';

const RUNS = Number(process.env['BENCH_RUNS'] ?? 200);
const dir = mkdtempSync(join(tmpdir(), 'vibebox-bench-keys-'));
// the test-only upstream override wants a throwaway home in the temp dir (proxy/test-upstream.ts)
process.env['VIBEBOX_HOME'] = dir;
const upCa = VibeboxCa.loadOrCreate(join(dir, 'up'), 'fake public CA');
const ca = VibeboxCa.loadOrCreate(join(dir, 'vb'));
const upstream = https.createServer({ SNICallback: (n, cb) => cb(null, upCa.leaf(n).context) }, (req, res) => {
  req.resume();
  req.on('end', () => res.end('ok'));
});
await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
const upPort = (upstream.address() as { port: number }).port;
const creds = new Map<string, Credential>([['ANTHROPIC_API_KEY', { env: 'ANTHROPIC_API_KEY', placeholder: 'sk-ant-api03-ph', value: 'sk-ant-real' }]]);
const proxy = new EgressProxy({
  policy: { mode: 'allowlist', entries: ['api.anthropic.com', 'plain.example'] },
  allowLoopbackForTests: true,
  lookup: async () => [{ address: '127.0.0.1', family: 4 }],
  maxConnections: 200,
  testUpstreams: { 'api.anthropic.com': upPort },
  intercept: { ca, rules: () => BUILTIN_RULES, credentials: () => creds, upstreamCa: upCa.certPem },
});
const proxyPort = await proxy.listenTcp(0);

function tunnel(target: string): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: proxyPort, method: 'CONNECT', path: target, agent: false });
    req.on('connect', (_res, socket: Duplex) => resolve(socket));
    req.on('error', reject);
    req.end();
  });
}

async function open(host: string, port: number, trust: string): Promise<tls.TLSSocket> {
  const s = tls.connect({ socket: (await tunnel(`${host}:${port}`)) as never, servername: host, ca: trust });
  await new Promise<void>((r, j) => s.once('secureConnect', () => r()).once('error', j));
  return s;
}

function get(s: tls.TLSSocket, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host, path: '/v1/messages', method: 'POST', headers: { 'x-api-key': 'sk-ant-api03-ph', connection: 'keep-alive' }, createConnection: () => s }, (res) => {
      res.resume();
      res.on('end', () => resolve());
    });
    req.on('error', reject);
    req.end('{}');
  });
}

async function timeFresh(host: string, port: number, trust: string): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    const s = await open(host, port, trust);
    await get(s, host);
    out.push(performance.now() - t0);
    s.destroy();
  }
  return out;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
// warm-up, then alternate so drift hits both alike
await timeFresh('api.anthropic.com', 443, ca.certPem);
await timeFresh('plain.example', upPort, upCa.certPem);
const intercepted = await timeFresh('api.anthropic.com', 443, ca.certPem);
const plain = await timeFresh('plain.example', upPort, upCa.certPem);
console.log(`connection + one request, median of ${RUNS}: plain tunnel ${median(plain).toFixed(2)} ms, intercepted ${median(intercepted).toFixed(2)} ms, added ${(median(intercepted) - median(plain)).toFixed(2)} ms`);

/** Requests one after another on one kept-alive connection (raw HTTP/1.1, so nothing else pools). */
async function timeReused(host: string, port: number, trust: string): Promise<number[]> {
  const s = await open(host, port, trust);
  let got = '';
  s.on('data', (c: Buffer) => (got += c.toString()));
  const out: number[] = [];
  for (let i = 1; i <= RUNS; i++) {
    const t0 = performance.now();
    s.write(`POST /v1/messages HTTP/1.1\r\nHost: ${host}\r\nx-api-key: sk-ant-api03-ph\r\nContent-Length: 2\r\n\r\n{}`);
    while ((got.match(/\r\n\r\nok/g) ?? []).length < i) await new Promise((r) => setImmediate(r));
    out.push(performance.now() - t0);
  }
  s.destroy();
  return out;
}
const iReused = await timeReused('api.anthropic.com', 443, ca.certPem);
const pReused = await timeReused('plain.example', upPort, upCa.certPem);
console.log(`one request on a kept-alive connection, median of ${RUNS}: plain tunnel ${median(pReused).toFixed(2)} ms, intercepted ${median(iReused).toFixed(2)} ms, added ${(median(iReused) - median(pReused)).toFixed(2)} ms`);

globalThis.gc?.();
const before = process.memoryUsage();
const held: tls.TLSSocket[] = [];
for (let i = 0; i < 64; i++) {
  const s = await open('api.anthropic.com', 443, ca.certPem);
  await get(s, 'api.anthropic.com');
  held.push(s);
}
globalThis.gc?.();
const after = process.memoryUsage();
console.log(`64 open intercepted connections (client and upstream in this process too): rss +${((after.rss - before.rss) / 1048576).toFixed(1)} MiB, heap +${((after.heapUsed - before.heapUsed) / 1048576).toFixed(1)} MiB`);
for (const s of held) s.destroy();
await proxy.close();
upstream.closeAllConnections();
upstream.close();
rmSync(dir, { recursive: true, force: true });
