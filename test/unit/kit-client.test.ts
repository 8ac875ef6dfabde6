// SDK connection behaviour and the server's edges: lazy connect, backoff while the server is not
// up yet, refusal of unknown upgrade paths and odd /files ids.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import WebSocket from 'ws';
import { KitClient, KitClientError } from '../../guest/kit/client.js';
import type { KitEvent } from '../../guest/kit/runnable.js';
import { startKitServer, type RunningKit } from '../../guest/kit/server.js';

const KEY = 'q'.repeat(32);
function within<T>(p: Promise<T>, ms = 5000): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<never>((_, j) => (t = setTimeout(() => j(new Error(`no result within ${ms} ms`)), ms)))]).finally(() => clearTimeout(t));
}
async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('kit SDK connection and server edges', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kit-client-'));
  const kits: RunningKit[] = [];
  after(async () => {
    for (const k of kits) await k.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const start = async (port: number, sub: string, maxFrameBytes?: number): Promise<RunningKit> => {
    const k = await startKitServer({
      runnable: async function* (): AsyncGenerator<KitEvent, string> {
        yield { event_type: 'x' };
        return 'up';
      },
      key: KEY,
      port,
      manifest: { name: 'c', version: '0' },
      fs: { input: join(dir, sub, 'i'), output: join(dir, sub, 'o'), work: join(dir, sub, 'w') },
      stateDir: join(dir, sub, 's'),
      ...(maxFrameBytes ? { limits: { maxFrameBytes } } : {}),
    });
    kits.push(k);
    return k;
  };

  it('is lazy: no connection until the first prompt', async () => {
    const k = await start(0, 'lazy');
    const client = KitClient.make({ endpoints: { a: { url: k.url, key: KEY } } });
    client.box('a');
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(k.connections(), 0);
    assert.equal(await within(client.box('a').prompt('go').message), 'up');
    assert.equal(k.connections(), 1);
    await client.close();
    assert.throws(() => client.box('nope'), (e: KitClientError) => e.code === 'E_NO_ENDPOINT');
  });

  it('retries with backoff until the server comes up; gives up with E_CONNECT when it never does', async () => {
    const port = await freePort();
    const client = KitClient.make({ endpoints: { a: { url: `ws://127.0.0.1:${port}/`, key: KEY } }, connectAttempts: 6, backoffMs: 50 });
    const h = client.box('a').prompt('go');
    await new Promise((r) => setTimeout(r, 120)); // a few attempts fail first
    await start(port, 'late');
    assert.equal(await within(h.message), 'up');
    await client.close();

    const dead = await freePort();
    const c2 = KitClient.make({ endpoints: { a: { url: `ws://127.0.0.1:${dead}/`, key: KEY } }, connectAttempts: 3, backoffMs: 20 });
    const t0 = Date.now();
    await assert.rejects(within(c2.box('a').prompt('go').message), (e: KitClientError) => e.code === 'E_CONNECT');
    assert.ok(Date.now() - t0 >= 60, 'waited 20 + 40 ms between the three attempts');
  });

  it('an upgrade on another path is 404 even with the key; odd /files ids are 404', async () => {
    const k = await start(0, 'edges');
    const status = await within(
      new Promise<number>((resolve, reject) => {
        const ws = new WebSocket(`${k.url}other`, { headers: { authorization: `Bearer ${KEY}` } });
        ws.on('unexpected-response', (_q, res) => resolve(res.statusCode ?? 0));
        ws.on('open', () => reject(new Error('upgrade on /other was accepted')));
        ws.on('error', () => undefined);
      }),
    );
    assert.equal(status, 404);
    for (const id of ['%E0%A4%A', 'a%2Fb', 'x'.repeat(65)]) {
      const r = await within(fetch(`${k.httpUrl}/files/${id}`, { headers: { authorization: `Bearer ${KEY}` } }));
      assert.equal(r.status, 404, id);
    }
    const post = await within(fetch(`${k.httpUrl}/health`, { method: 'POST' }));
    assert.equal(post.status, 405);
  });

  it('a frame over the size limit closes that socket only; the kit keeps serving', async () => {
    const k = await start(0, 'frame', 4096);
    const client = KitClient.make({ endpoints: { a: { url: k.url, key: KEY } } });
    await assert.rejects(within(client.box('a').prompt('go', { files: { big: { bytes: Buffer.alloc(8192) } } }).message), (e: KitClientError) => e.code === 'E_DISCONNECTED');
    assert.equal(await within(client.box('a').prompt('go').message), 'up');
    await client.close();
  });

  it('server refs are read from the endpoint itself: the key never goes where a ref points', async () => {
    const k = await start(0, 'leak');
    const seen: Array<string | undefined> = [];
    const evil = http.createServer((req, res) => {
      seen.push(req.headers.authorization);
      res.end('evil');
    });
    await new Promise<void>((r) => evil.listen(0, '127.0.0.1', r));
    const evilUrl = `http://127.0.0.1:${(evil.address() as AddressInfo).port}`;
    const client = KitClient.make({ endpoints: { a: { url: k.url, key: KEY } } });
    try {
      await assert.rejects(
        within(client.box('a').readRef({ kind: 'server', id: '00000000-0000-0000-0000-000000000000', url: `${evilUrl}/files/x` })),
        (e: KitClientError) => e.code === 'E_NOT_FOUND',
      );
      assert.deepEqual(seen, []);
    } finally {
      await client.close();
      evil.close();
    }
  });
});

describe('url and s3 refs a kit returns are not fetched by the host unless the caller allows them', () => {
  /** A hostile kit: answers every prompt with the given outputs (no key check needed for the test). */
  const hostileKit = async (outputs: Record<string, unknown>): Promise<{ url: string; close: () => Promise<void> }> => {
    const { WebSocketServer } = await import('ws');
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    wss.on('connection', (ws) =>
      ws.on('message', (d) => {
        const m = JSON.parse(d.toString()) as { type: string; id: string };
        if (m.type === 'prompt') ws.send(JSON.stringify({ type: 'complete', id: m.id, message: 'done', outputs }));
      }),
    );
    return { url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/`, close: () => new Promise((r) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => r());
      }) };
  };
  /** Stands for a service on the host's loopback (a database admin page, cloud metadata). */
  const loopbackService = async (): Promise<{ origin: string; hits: Array<{ path: string; headers: http.IncomingHttpHeaders }>; close: () => void }> => {
    const hits: Array<{ path: string; headers: http.IncomingHttpHeaders }> = [];
    const s = http.createServer((req, res) => {
      hits.push({ path: req.url ?? '', headers: req.headers });
      if (req.url === '/redirect') {
        res.writeHead(302, { location: `http://127.0.0.1:${(s.address() as AddressInfo).port}/secret` });
        res.end();
        return;
      }
      res.end('host-secret');
    });
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    return { origin: `http://127.0.0.1:${(s.address() as AddressInfo).port}`, hits, close: () => s.close() };
  };

  it('refused by default (E_REF_REFUSED, no request made); fetched only when allowRefs.url says yes; no redirect followed', async () => {
    const svc = await loopbackService();
    const kit = await hostileKit({
      'a.txt': { kind: 'url', url: `${svc.origin}/secret`, headers: { 'metadata-flavor': 'Google' } },
      'b.txt': { kind: 'url', url: `${svc.origin}/redirect` },
      'c.bin': { kind: 's3', bucket: 'victim', key: 'backup.tar' },
    });
    try {
      const s3calls: string[] = [];
      const s3Download = async (o: { bucket: string; key: string }) => {
        s3calls.push(`${o.bucket}/${o.key}`);
        return Buffer.from('s3');
      };
      const dflt = KitClient.make({ endpoints: { a: { url: kit.url, key: KEY } }, s3Download });
      const run = dflt.box('a').prompt('go');
      assert.equal(await within(run.message), 'done');
      await assert.rejects(within(run.read('a.txt')), (e: KitClientError) => e.code === 'E_REF_REFUSED' && e.message.includes('allowRefs'));
      await assert.rejects(within(run.read('c.bin')), (e: KitClientError) => e.code === 'E_REF_REFUSED');
      assert.equal(svc.hits.length, 0, 'the host fetched a URL the kit chose');
      assert.deepEqual(s3calls, [], 'the host read an s3 object the kit chose');
      await dflt.close();

      // Allowed: only what the caller's own predicate accepts, and a redirect is not followed.
      const seen: string[] = [];
      const allowing = KitClient.make({
        endpoints: { a: { url: kit.url, key: KEY } },
        s3Download,
        allowRefs: { url: (u) => (seen.push(u.pathname), u.pathname !== '/nope'), s3: (o) => o.bucket === 'victim' },
      });
      const run2 = allowing.box('a').prompt('go');
      assert.equal((await within(run2.read('a.txt'))).toString(), 'host-secret');
      assert.equal(svc.hits[0]?.headers['metadata-flavor'], 'Google');
      await assert.rejects(within(run2.read('b.txt')), (e: KitClientError) => e.code === 'E_HTTP');
      assert.deepEqual(svc.hits.map((h) => h.path), ['/secret', '/redirect'], 'the redirect target was fetched');
      assert.equal((await within(run2.read('c.bin'))).toString(), 's3');
      await allowing.close();
      const narrow = KitClient.make({ endpoints: { a: { url: kit.url, key: KEY } }, allowRefs: { url: (u) => u.hostname === 'files.example.com' } });
      await assert.rejects(within(narrow.box('a').prompt('go').read('a.txt')), (e: KitClientError) => e.code === 'E_REF_REFUSED');
      assert.equal(svc.hits.length, 2);
      await narrow.close();
    } finally {
      await kit.close();
      svc.close();
    }
  });
});
