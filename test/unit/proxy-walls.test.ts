// Attacks on the egress proxy, each against the real proxy on loopback.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Duplex } from 'node:stream';
import { EgressLog } from '../../proxy/log.js';
import { type NetworkPolicy } from '../../proxy/policy.js';
import { EgressProxy, type EgressProxyOptions, type EgressRecord } from '../../proxy/server.js';
import { closeServer, listen } from '../helpers/net.js';

type Tcp = { host: string; port: number };

const dir = mkdtempSync(join(tmpdir(), 'vibebox-walls-'));
const proxies: EgressProxy[] = [];
const sockets: Duplex[] = [];

async function startProxy(opts: Partial<EgressProxyOptions> & { policy: NetworkPolicy }): Promise<{ proxy: EgressProxy; tcp: Tcp; records: EgressRecord[] }> {
  const records: EgressRecord[] = [];
  const proxy = new EgressProxy({ ...opts, onDecision: (r) => records.push(r) });
  proxies.push(proxy);
  const port = await proxy.listenTcp(0);
  return { proxy, tcp: { host: '127.0.0.1', port }, records };
}

type Connected = { status: number; headers: http.IncomingHttpHeaders; socket: Duplex; head: Buffer };

function connect(via: Tcp, target: string): Promise<Connected> {
  return new Promise((resolve, reject) => {
    const req = http.request({ ...via, method: 'CONNECT', path: target, agent: false });
    req.on('connect', (res: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      sockets.push(socket);
      socket.on('error', () => {});
      resolve({ status: res.statusCode ?? 0, headers: res.headers, socket, head });
    });
    req.on('response', (res: http.IncomingMessage) => {
      // a refusal before the request was read (the connection cap) arrives as a plain response
      res.resume();
      resolve({ status: res.statusCode ?? 0, headers: res.headers, socket: res.socket, head: Buffer.alloc(0) });
    });
    req.on('error', reject);
    req.end();
  });
}

/** Send raw bytes, collect everything until the proxy closes (or the deadline). */
function raw(via: Tcp, bytes: string, deadlineMs = 5_000): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const s = net.connect(via.port, via.host);
    let text = '';
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ text, closed: false });
    }, deadlineMs);
    s.on('data', (c: Buffer) => (text += c.toString('latin1')));
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ text, closed: true });
    });
    s.write(bytes);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Poll until `cond` holds; fails the test at the deadline. */
async function until(cond: () => boolean, what: string, deadlineMs = 5_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

// echo server on every interface, so the host's own (non-loopback) addresses reach it
let echo: net.Server;
let echoPort = 0;
const echoConns = new Set<net.Socket>();
// origin that records the requests it parses
let origin: http.Server;
let originPort = 0;
let seen: { method: string; url: string; headers: http.IncomingHttpHeaders; body: string }[] = [];

before(async () => {
  echo = net.createServer((s) => {
    echoConns.add(s);
    s.on('close', () => echoConns.delete(s));
    s.on('error', () => {});
    s.pipe(s);
  });
  echoPort = await listen(echo, '0.0.0.0');
  origin = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('latin1');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      if (req.url === '/conn-cl') {
        // a hostile origin naming framing headers in Connection
        res.writeHead(200, { Connection: 'content-length, transfer-encoding', 'Content-Length': '5' });
        res.end('hello');
        return;
      }
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end(`ok ${req.url}`);
    });
  });
  originPort = await listen(origin);
});

after(async () => {
  for (const s of sockets) s.destroy();
  await Promise.all(proxies.map((p) => p.close()));
  for (const s of echoConns) s.destroy();
  await closeServer(echo);
  await closeServer(origin);
  rmSync(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------

function ownIPv4(): string | undefined {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return undefined;
}

/** The spellings of one IPv4 address as IPv6: mapped, mapped in hex, compatible. */
function v6Spellings(v4: string): string[] {
  const [a = 0, b = 0, c = 0, d = 0] = v4.split('.').map(Number);
  const hex = `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  return [`::ffff:${v4}`, `::ffff:${hex}`, `::${v4}`, `0:0:0:0:0:ffff:${hex}`];
}

function isPrivateV4(v4: string): boolean {
  const [a = 0, b = 0] = v4.split('.').map(Number);
  return a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 100 && b >= 64 && b <= 127);
}

describe("walls: IPv4-mapped/compatible IPv6 never reaches the host's own addresses", () => {
  const own = ownIPv4();

  it('allowlist entries naming the own address in v6 spellings are refused (host_address)', { skip: own === undefined && 'no non-loopback IPv4 here' }, async () => {
    assert.ok(own);
    const spellings = v6Spellings(own);
    const { tcp } = await startProxy({ policy: { mode: 'allowlist', entries: spellings.map((s) => `[${s}]`) } });
    for (const s of spellings) {
      const c = await connect(tcp, `[${s}]:${echoPort}`);
      assert.equal(c.status, 451, s);
      assert.match(String(c.headers['x-vibebox-egress']), /^blocked; reason=host_address;/, s);
      c.socket.destroy();
    }
  });

  it('blocklist mode refuses the own address in every v6 spelling, also by DNS', { skip: own === undefined && 'no non-loopback IPv4 here' }, async () => {
    assert.ok(own);
    const spellings = v6Spellings(own);
    const { tcp } = await startProxy({
      policy: { mode: 'blocklist', entries: [] },
      lookup: async (host) => (host === 'rebind.test' ? [{ address: `::ffff:${own}`, family: 6 }] : []),
    });
    const expected = isPrivateV4(own) ? /reason=(host_address|private);/ : /reason=host_address;/;
    for (const target of [...spellings.map((s) => `[${s}]`), 'rebind.test']) {
      const c = await connect(tcp, `${target}:${echoPort}`);
      assert.equal(c.status, 451, target);
      assert.match(String(c.headers['x-vibebox-egress']), expected, target);
      c.socket.destroy();
    }
    assert.equal(echoConns.size, 0, 'the echo server on the host was never reached');
  });

  it('checks the address actually connected to (an address that became the host\'s own after the DNS check is refused)', { skip: own === undefined && 'no non-loopback IPv4 here' }, async () => {
    assert.ok(own);
    let calls = 0;
    const { tcp, records } = await startProxy({
      policy: { mode: 'blocklist', entries: [] },
      lookup: async () => [{ address: own, family: 4 }],
      // first asked at the DNS check (not yet own), then at the peer check (own)
      hostAddresses: () => (calls++ === 0 ? [] : [own]),
    });
    const c = await connect(tcp, `peer.test:${echoPort}`);
    assert.equal(c.status, 451);
    assert.match(String(c.headers['x-vibebox-egress']), /reason=host_address;/);
    c.socket.destroy();
    const rec = records.find((r) => r.host === 'peer.test');
    assert.ok(rec);
    assert.equal(rec.decision, 'deny');
    assert.equal(rec.address, own, 'refused after connecting, naming the peer address');
  });
});

describe('walls: Connection never removes framing headers', () => {
  it('Connection: content-length does not unframe a request body (no smuggled second request)', async () => {
    seen = [];
    const { tcp } = await startProxy({ policy: { mode: 'allowlist', entries: ['127.0.0.1'] }, allowLoopbackForTests: true });
    const smuggled = `GET /smuggled HTTP/1.1\r\nHost: 127.0.0.1:${originPort}\r\n\r\n`;
    const r = await raw(
      tcp,
      `GET http://127.0.0.1:${originPort}/front HTTP/1.1\r\nHost: 127.0.0.1:${originPort}\r\nConnection: content-length, host, close\r\n` +
        `Content-Length: ${smuggled.length}\r\n\r\n${smuggled}`,
    );
    assert.match(r.text, /^HTTP\/1\.1 200/);
    await sleep(100);
    assert.deepEqual(seen.map((s) => s.url), ['/front'], 'the origin parsed exactly one request');
    assert.equal(seen[0]?.body, smuggled, 'the body arrived as a body');
    assert.equal(seen[0]?.headers['content-length'], String(smuggled.length));
    assert.equal(seen[0]?.headers.host, `127.0.0.1:${originPort}`);
  });

  it('a chunked request body (Connection: transfer-encoding too) is forwarded framed', async () => {
    seen = [];
    const { tcp } = await startProxy({ policy: { mode: 'allowlist', entries: ['127.0.0.1'] }, allowLoopbackForTests: true });
    const smuggled = `GET /smuggled HTTP/1.1\r\nHost: 127.0.0.1:${originPort}\r\n\r\n`;
    for (const conn of ['close', 'transfer-encoding, close']) {
      const r = await raw(
        tcp,
        `GET http://127.0.0.1:${originPort}/front HTTP/1.1\r\nHost: 127.0.0.1:${originPort}\r\nConnection: ${conn}\r\n` +
          `Transfer-Encoding: chunked\r\n\r\n${smuggled.length.toString(16)}\r\n${smuggled}\r\n0\r\n\r\n`,
      );
      assert.match(r.text, /^HTTP\/1\.1 200/, conn);
    }
    await sleep(100);
    assert.deepEqual(seen.map((s) => s.url), ['/front', '/front'], 'the origin parsed exactly the two front requests');
    for (const s of seen) assert.equal(s.body, smuggled);
  });

  it("an origin's Connection: content-length does not strip the response's Content-Length", async () => {
    const { tcp } = await startProxy({ policy: { mode: 'allowlist', entries: ['127.0.0.1'] }, allowLoopbackForTests: true });
    const r = await raw(tcp, `GET http://127.0.0.1:${originPort}/conn-cl HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    assert.match(r.text, /\r\ncontent-length: 5\r\n/i);
    assert.match(r.text, /\r\n\r\nhello$/);
  });
});

describe('walls: bounded connections, timeouts and logs', () => {
  it('caps concurrent connections at 64 by default: the 65th gets 503 with the reason, a freed slot is reused', async () => {
    const { tcp, records } = await startProxy({ policy: { mode: 'allowlist', entries: ['127.0.0.1'] }, allowLoopbackForTests: true });
    const open: Connected[] = [];
    for (let i = 0; i < 64; i++) {
      const c = await connect(tcp, `127.0.0.1:${echoPort}`);
      assert.equal(c.status, 200, `tunnel ${i + 1}`);
      open.push(c);
    }
    const over = await connect(tcp, `127.0.0.1:${echoPort}`);
    assert.equal(over.status, 503);
    assert.match(String(over.headers['x-vibebox-egress']), /^blocked; reason=too_many_connections/);
    over.socket.destroy();
    assert.ok(records.some((r) => r.reason === 'too_many_connections' && r.decision === 'deny'));
    const freed = open.pop();
    assert.ok(freed);
    freed.socket.destroy();
    await sleep(100);
    const again = await connect(tcp, `127.0.0.1:${echoPort}`);
    assert.equal(again.status, 200, 'a freed slot is used again');
    again.socket.destroy();
    for (const c of open) c.socket.destroy();
  });

  it('closes an idle tunnel, keeps a busy one', async () => {
    const { tcp, records } = await startProxy({ policy: { mode: 'allowlist', entries: ['127.0.0.1'] }, allowLoopbackForTests: true, idleTimeoutMs: 1_000 });
    const idle = await connect(tcp, `127.0.0.1:${echoPort}`);
    const busy = await connect(tcp, `127.0.0.1:${echoPort}`);
    assert.equal(idle.status, 200);
    assert.equal(busy.status, 200);
    let idleClosed = false;
    let busyClosed = false;
    idle.socket.on('close', () => (idleClosed = true));
    busy.socket.on('close', () => (busyClosed = true));
    busy.socket.resume();
    const t0 = Date.now();
    const ticker = setInterval(() => busy.socket.write('x'), 100);
    try {
      await until(() => idleClosed, 'the idle tunnel to close', 5_000);
      assert.ok(Date.now() - t0 >= 900, 'not before the idle timeout');
      await sleep(1_000);
      assert.equal(busyClosed, false, 'a tunnel with traffic stays open');
    } finally {
      clearInterval(ticker);
      busy.socket.destroy();
    }
    await until(() => records.filter((r) => r.decision === 'allow').length === 2, 'both tunnels logged');
  });

  it('closes a connection that does not finish its request headers in time', async () => {
    const { tcp } = await startProxy({ policy: { mode: 'blocklist', entries: [] }, headersTimeoutMs: 300 });
    const t0 = Date.now();
    const [partial, silent] = await Promise.all([raw(tcp, 'GET http://example.com/ HTTP/1.1\r\nHost: exam', 4_000), raw(tcp, '', 4_000)]);
    assert.equal(partial.closed, true, 'partial headers: closed');
    assert.equal(silent.closed, true, 'no bytes at all: closed');
    assert.ok(Date.now() - t0 < 4_000);
  });

  it('writes one line for a burst of identical denials and counts the rest', async () => {
    const logFile = join(dir, 'burst', 'egress.log');
    const { proxy, tcp } = await startProxy({ policy: { mode: 'allowlist', entries: [] }, logFile });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    const one = (): Promise<number> =>
      new Promise((resolve, reject) => {
        const req = http.request({ ...tcp, agent, path: 'http://denied.example/', method: 'GET' }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', reject);
        req.end();
      });
    const n = 2_000;
    const statuses: number[] = [];
    for (let i = 0; i < n; i += 50) statuses.push(...(await Promise.all(Array.from({ length: 50 }, one))));
    agent.destroy();
    assert.ok(statuses.every((s) => s === 451));
    assert.ok(readFileSync(logFile, 'utf8').trimEnd().split('\n').length <= 3, 'the burst did not grow the log line by line');
    await proxy.close();
    const recs = readFileSync(logFile, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as EgressRecord & { repeated?: number });
    assert.ok(recs.length <= 3);
    assert.ok(recs.every((r) => r.host === 'denied.example' && r.reason === 'not_in_allowlist'));
    assert.equal(recs.reduce((sum, r) => sum + (r.repeated ?? 1), 0), n, 'every denial is counted');
  });

  it('rotates egress.log at its size cap, keeping one old file', async () => {
    const logFile = join(dir, 'rotate', 'egress.log');
    const { proxy, tcp } = await startProxy({ policy: { mode: 'allowlist', entries: [] }, logFile, logMaxBytes: 4096 });
    for (let i = 0; i < 150; i++) {
      const c = await connect(tcp, `host-${i}.example:443`);
      assert.equal(c.status, 451);
      c.socket.destroy();
    }
    await proxy.close();
    assert.ok(statSync(logFile).size <= 4096, `egress.log is ${statSync(logFile).size} bytes`);
    assert.ok(statSync(`${logFile}.1`).size <= 4096);
    assert.ok(statSync(`${logFile}.1`).size > 2048, 'the old file was full when it was rotated');
    assert.equal(existsSync(`${logFile}.2`), false);
    const last = readFileSync(logFile, 'utf8').trimEnd().split('\n').pop() ?? '';
    assert.equal((JSON.parse(last) as EgressRecord).host, 'host-149.example');
  });

  it('strips control and format characters from every field before it reaches egress.log', () => {
    const file = join(dir, 'ctl', 'egress.log');
    const log = new EgressLog(file);
    const evil = 'a\u001b[31mb\u009b31mc\u202ed\u2028e\nf\u007fg\u200bh';
    log.write({ ts: new Date().toISOString(), method: 'CONNECT\r\n', host: evil, port: 1, decision: 'deny', reason: 'bad_request', rule: evil, error: evil });
    log.close();
    const line = readFileSync(file, 'utf8');
    assert.equal(line.split('\n').length, 2, 'one line');
    const rec = JSON.parse(line) as EgressRecord;
    assert.equal(rec.host, 'a[31mb31mcdefgh');
    assert.equal(rec.rule, 'a[31mb31mcdefgh');
    assert.equal(rec.method, 'CONNECT');
    assert.doesNotMatch(line.trimEnd(), /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e]/u);
  });
});

describe('walls: a 451 never offers an allow that cannot work', () => {
  /** The 451 for `target` by CONNECT, as raw text (status line, headers, body). */
  async function refusal(tcp: Tcp, target: string): Promise<string> {
    const r = await raw(tcp, `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
    return r.text;
  }

  it('loopback, link-local, reserved: no add-via, and the body says no setting reaches it', async () => {
    const { tcp } = await startProxy({ policy: { mode: 'allowlist', entries: ['127.0.0.1', 'localhost', '169.254.169.254'] } });
    const cases: [string, string][] = [
      ['127.0.0.1:8080', 'loopback'],
      ['localhost:3000', 'loopback'],
      ['[::1]:8080', 'loopback'],
      ['127.1:8080', 'loopback'],
      ['0.0.0.0:80', 'loopback'],
      ['169.254.169.254:80', 'link_local'],
      ['224.0.0.1:80', 'reserved'],
    ];
    for (const [target, reason] of cases) {
      const text = await refusal(tcp, target);
      assert.match(text, /^HTTP\/1\.1 451 /, target);
      const header = /^X-Vibebox-Egress: (.*)$/m.exec(text)?.[1] ?? '';
      assert.equal(header.trimEnd(), `blocked; reason=${reason}; add-via=none`, target);
      assert.doesNotMatch(text, /vibebox allow/, target);
      assert.match(text, /no vibebox setting allows it/, target);
      if (reason === 'loopback') assert.match(text, /a \[\[ports\]\] forward goes from the host into the VM, never back/, target);
    }
  });

  it("the host's own address: no add-via either", { skip: ownIPv4() === undefined && 'no non-loopback IPv4 here' }, async () => {
    const own = ownIPv4()!;
    const { tcp } = await startProxy({ policy: { mode: 'allowlist', entries: ['own.test'] }, lookup: async () => [{ address: own, family: 4 }] });
    const text = await refusal(tcp, `own.test:${echoPort}`);
    assert.match(text, /reason=host_address; add-via=none/);
    assert.doesNotMatch(text, /vibebox allow/);
  });

  it('what an allow does open still offers it (not in the allowlist, in the blocklist)', async () => {
    const { tcp } = await startProxy({ policy: { mode: 'allowlist', entries: [] } });
    assert.match(await refusal(tcp, 'example.com:443'), /add-via='vibebox allow example\.com'[\s\S]*run on the host: vibebox allow example\.com/);
    const block = await startProxy({ policy: { mode: 'blocklist', entries: ['evil.example'] } });
    assert.match(await refusal(block.tcp, 'evil.example:443'), /reason=in_blocklist; add-via='vibebox allow evil\.example'/);
  });

  it('a private address in blocklist mode: `allow` (which removes a blocklist entry) cannot open it, so it is not offered', async () => {
    const block = await startProxy({ policy: { mode: 'blocklist', entries: [] } });
    const text = await refusal(block.tcp, '10.1.2.3:22');
    assert.match(text, /reason=private; add-via=none/);
    assert.doesNotMatch(text, /vibebox allow/);
    assert.match(text, /set \[network\] mode = "allowlist" and list it/);
  });
});
