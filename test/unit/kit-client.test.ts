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
