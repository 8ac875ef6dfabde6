// The kit server and the client SDK end to end on loopback: real sockets, real sqlite, real dirs.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { verifyBearer } from '../../guest/kit/auth.js';
import { KitClient, KitClientError, type KitBox } from '../../guest/kit/client.js';
import { KitError } from '../../guest/kit/errors.js';
import type { ServerMessage } from '../../guest/kit/kit-protocol.js';
import { loadRunnable, type KitEvent, type KitPrompt, type RunContext } from '../../guest/kit/runnable.js';
import { startKitServer, type RunningKit } from '../../guest/kit/server.js';
import { composite, rule } from '../../guest/kit/storage/policy.js';
import { S3Storage } from '../../guest/kit/storage/s3.js';

const KEY = 'k'.repeat(40);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** Every wait in these tests has a deadline. */
function within<T>(p: Promise<T>, ms = 5000, what = 'operation'): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<never>((_, rej) => (t = setTimeout(() => rej(new Error(`${what} did not finish within ${ms} ms`)), ms)))]).finally(() => clearTimeout(t));
}
const rejectsWith = (p: Promise<unknown>, code: string): Promise<void> =>
  assert.rejects(within(p), (e: unknown) => e instanceof KitClientError && e.code === code);

/** What the test runnable saw, for assertions about order and abort. */
const log: string[] = [];
const seenAbort = new Set<string>();
const bucket = new Map<string, Buffer>();

async function* testRunnable(p: KitPrompt, ctx: RunContext): AsyncGenerator<KitEvent, string | undefined> {
  const [verb, arg] = p.text.split(' ');
  switch (verb) {
    case 'echo':
      yield { event_type: 'text_delta', data: { text: p.text } };
      return `echo:${p.text}`;
    case 'copy': {
      // Every input comes back as an output of the same bytes.
      for (const name of p.inputs) await writeFile(join(ctx.outputDir, `copy-${name.replace(/\//g, '_')}`), await readFile(join(ctx.inputDir, name)));
      yield { event_type: 'inputs', data: { names: p.inputs, listed: (await readdir(ctx.inputDir)).sort() } };
      return 'copied';
    }
    case 'big':
      await writeFile(join(ctx.outputDir, 'big.bin'), Buffer.alloc(Number(arg), 0x61));
      await writeFile(join(ctx.outputDir, 'small.txt'), 'tiny');
      return 'wrote';
    case 'order': {
      log.push(`start ${arg}`);
      await sleep(Number(arg));
      log.push(`end ${arg}`);
      return arg;
    }
    case 'slow':
      for (let i = 0; ; i++) {
        if (ctx.signal.aborted) {
          seenAbort.add(p.id);
          return 'stopped';
        }
        yield { event_type: 'tick', data: i };
        await sleep(10);
      }
    case 'stubborn':
      yield { event_type: 'tick', data: 0 };
      await sleep(3000); // ignores the signal entirely (longer than the 200 ms grace)
      return 'never';
    case 'fail':
      throw new Error('boom from the runnable');
    case 'display': {
      const value = await ctx.display.push({ renderer: 'confirm', data: { q: 'go?' } });
      return `got ${String(value)}`;
    }
    case 'symlink':
      writeFileSync(join(ctx.workDir, 'secret'), 'do not ship');
      symlinkSync(join(ctx.workDir, 'secret'), join(ctx.outputDir, 'leak'));
      await writeFile(join(ctx.outputDir, 'ok.txt'), 'fine');
      return 'linked';
    case 'badname':
      await writeFile(join(ctx.outputDir, 'back\\slash'), 'x');
      return 'x';
    case 'badevent':
      yield { event_type: '' };
      return 'x';
  }
  return 'unknown verb';
}

describe('kit server + SDK on loopback', () => {
  let dir: string;
  let kit: RunningKit;
  let client: KitClient;
  let box: KitBox;
  let fileSrv: http.Server;
  let fileBase: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kit-e2e-'));
    kit = await startKitServer({
      runnable: testRunnable,
      key: KEY,
      manifest: { name: 'test-kit', version: '1.2.3', packages: { apt: ['jq'] } },
      fs: { input: join(dir, 'input'), output: join(dir, 'output'), work: join(dir, 'work') },
      stateDir: join(dir, 'state'),
      storage: { outputs: composite([rule.inline({ below: '1KB' }), rule.localServer({ ttl: '1h' })]) },
      adapters: {
        // In-memory fake standing in for an S3 bucket: the kit's S3 support is hooks the host supplies.
        s3: new S3Storage({
          uploadObject: async (o) => void bucket.set(`${o.bucket}/${o.key}`, o.body),
          downloadObject: async (o) => bucket.get(`${o.bucket}/${o.key}`) ?? Buffer.alloc(0),
        }),
      },
      limits: { maxInputBytes: 4096, maxTotalInputBytes: 6000, maxInputFiles: 3, abortGraceMs: 200 },
    });
    client = KitClient.make({
      endpoints: { t: { url: kit.url, key: KEY }, bad: { url: kit.url, key: 'x'.repeat(40) } },
      s3Download: async (o) => bucket.get(`${o.bucket}/${o.key}`) ?? Buffer.alloc(0),
      // The caller reads only the bucket it configured the kit with (a kit chooses the refs it returns).
      allowRefs: { s3: (o) => o.bucket === 'bk' },
    });
    box = client.box('t');
    fileSrv = http.createServer((req, res) => res.end(req.url === '/in.txt' ? 'from a url' : Buffer.alloc(5000)));
    await new Promise<void>((r) => fileSrv.listen(0, '127.0.0.1', r));
    fileBase = `http://127.0.0.1:${(fileSrv.address() as AddressInfo).port}`;
  });
  after(async () => {
    await client.close();
    await kit.close();
    fileSrv.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const get = (path: string, key?: string): Promise<{ status: number; body: string }> =>
    within(
      fetch(`${kit.httpUrl}${path}`, key === undefined ? {} : { headers: { authorization: `Bearer ${key}` } }).then(async (r) => ({ status: r.status, body: await r.text() })),
    );

  describe('auth', () => {
    it('verifyBearer: exact key only, any length, constant-time path', () => {
      assert.equal(verifyBearer(`Bearer ${KEY}`, KEY), true);
      assert.equal(verifyBearer(`bearer ${KEY}`, KEY), true);
      for (const h of [undefined, '', 'Bearer', `Bearer ${KEY}x`, `Bearer ${KEY.slice(1)}`, `Basic ${KEY}`, KEY, 'Bearer ' + 'k'.repeat(39) + 'j', ['Bearer ' + KEY]])
        assert.equal(verifyBearer(h, KEY), false, String(h));
    });

    it('/health is public; /environment and /files need the key', async () => {
      assert.deepEqual(JSON.parse((await get('/health')).body), { ok: true, name: 'test-kit', version: '1.2.3' });
      for (const key of [undefined, 'wrong', 'k'.repeat(39) + 'j']) {
        assert.equal((await get('/environment', key)).status, 401);
        assert.equal((await get('/files/abc', key)).status, 401);
      }
      const env = JSON.parse((await get('/environment', KEY)).body);
      assert.equal(env.name, 'test-kit');
      assert.equal(env.protocol_version, 1);
      assert.deepEqual(env.packages, { apt: ['jq'] });
      assert.equal(env.limits.max_input_bytes, 4096);
      const viaSdk = await box.environment();
      assert.equal(viaSdk.fs['output']?.path, join(dir, 'output'));
    });

    it('a wrong key on the upgrade gets 401 before any frame, and the SDK does not retry it', async () => {
      await rejectsWith(client.box('bad').prompt('echo hi').message, 'E_UNAUTHORIZED');
      // Raw: the reply to the upgrade is a plain 401 and the socket closes; no 101, no frame.
      for (const auth of ['', `Authorization: Bearer wrong\r\n`, `Authorization: Bearer ${'k'.repeat(39)}j\r\n`]) {
        const reply = await within(
          new Promise<string>((resolve, reject) => {
            const s = net.connect(kit.port, '127.0.0.1', () =>
              s.write(`GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${auth}\r\n`),
            );
            let got = '';
            s.on('data', (d) => (got += d.toString('latin1')));
            s.on('close', () => resolve(got));
            s.on('error', reject);
          }),
        );
        assert.match(reply, /^HTTP\/1\.1 401 /);
        assert.doesNotMatch(reply, /101 Switching/);
        assert.equal(reply.split('\r\n\r\n')[1], '', 'nothing after the 401 headers');
      }
    });
  });

  describe('prompts', () => {
    it('streams events and completes with the message', async () => {
      const h = box.prompt('echo hello');
      const events = [];
      for await (const e of h.events) events.push(e);
      assert.deepEqual(events.map((e) => [e.event_type, e.data]), [['text_delta', { text: 'echo hello' }]]);
      assert.equal(await within(h.message), 'echo:echo hello');
      assert.deepEqual(await h.outputs, {});
      assert.ok((await box.ping()) >= 0);
    });

    it('inputs land in the input dir; outputs come back by the policy (inline below 1KB, server from 1KB)', async () => {
      const h = box.prompt('copy', { files: { 'a.txt': { bytes: Buffer.from('alpha'), mime: 'text/plain' }, 'd/b.bin': { bytes: Buffer.alloc(1024, 9) } } });
      const [ev] = await (async () => {
        const all = [];
        for await (const e of h.events) all.push(e);
        return all;
      })();
      assert.deepEqual(ev?.data, { names: ['a.txt', 'd/b.bin'], listed: ['a.txt', 'd'] });
      const outs = await within(h.outputs);
      assert.equal(outs['copy-a.txt']?.kind, 'inline');
      assert.equal(outs['copy-d_b.bin']?.kind, 'server', 'exactly 1 KiB is not below 1KB');
      assert.equal((await h.read('copy-a.txt')).toString(), 'alpha');
      assert.deepEqual(await h.read('copy-d_b.bin'), Buffer.alloc(1024, 9));
    });

    it('a url input is fetched into the input dir', async () => {
      const h = box.prompt('copy', { files: { 'in.txt': { kind: 'url', url: `${fileBase}/in.txt` } } });
      assert.equal((await within(h.read('copy-in.txt'))).toString(), 'from a url');
    });

    it('/files: streams, ?consume=1 deletes after read, then 410; unknown is 404; expired is 410', async () => {
      const h = box.prompt('big 5000');
      const outs = await within(h.outputs);
      const ref = outs['big.bin'];
      assert.ok(ref?.kind === 'server');
      assert.equal(outs['small.txt']?.kind, 'inline');
      const plain = await get(`/files/${ref.id}`, KEY);
      assert.equal(plain.status, 200);
      assert.equal(plain.body, 'a'.repeat(5000));
      const head = await within(fetch(`${kit.httpUrl}/files/${ref.id}?consume=1`, { method: 'HEAD', headers: { authorization: `Bearer ${KEY}` } }));
      assert.equal(head.status, 200);
      assert.equal(head.headers.get('content-length'), '5000');
      assert.equal(existsSync(join(dir, 'state', 'files', ref.id)), true, 'HEAD does not consume');
      assert.equal((await h.read('big.bin', { consume: true })).length, 5000);
      assert.equal(existsSync(join(dir, 'state', 'files', ref.id)), false);
      assert.equal((await get(`/files/${ref.id}`, KEY)).status, 410);
      await rejectsWith(h.read('big.bin'), 'E_GONE');
      assert.equal((await get('/files/00000000-0000-0000-0000-000000000000', KEY)).status, 404);
      assert.equal((await get('/files/..%2F..%2Fetc%2Fpasswd', KEY)).status, 404);
      // The prompt's own outputs policy: a 1 ms TTL has passed by the time we ask.
      const h2 = box.prompt('big 2000', { outputsPolicy: composite([rule.localServer({ ttl: '1ms' })]) });
      const r2 = (await within(h2.outputs))['big.bin'];
      assert.ok(r2?.kind === 'server');
      await sleep(5);
      assert.equal((await get(`/files/${r2.id}`, KEY)).status, 410);
    });

    it('an s3 outputs policy goes through the host-supplied hooks (in-memory fake bucket)', async () => {
      const h = box.prompt('big 3000', { outputsPolicy: composite([rule.inline({ below: '1KB' }), rule.s3({ bucket: 'bk', prefix: 'p' })]) });
      const outs = await within(h.outputs);
      assert.equal(outs['big.bin']?.kind, 's3');
      assert.equal((await h.read('big.bin')).length, 3000);
    });

    it('a prompt outputs policy with url as an output is refused', async () => {
      await rejectsWith(box.prompt('echo x', { outputsPolicy: composite([rule.url()]) }).message, 'E_POLICY_INVALID');
    });

    it('an output whose name the protocol refuses fails the prompt instead of hanging the client', async () => {
      await rejectsWith(box.prompt('badname').message, 'E_OUTPUT_FAILED');
    });

    it('symlinks in the output dir are not shipped', async () => {
      const outs = await within(box.prompt('symlink').outputs);
      assert.deepEqual(Object.keys(outs), ['ok.txt']);
    });

    it('prompts on one connection run in order, never overlapping', async () => {
      log.length = 0;
      const hs = [box.prompt('order 80'), box.prompt('order 10'), box.prompt('order 40')];
      const done: string[] = [];
      await within(Promise.all(hs.map((h) => h.message.then((m) => void done.push(m)))));
      assert.deepEqual(done, ['80', '10', '40']);
      assert.deepEqual(log, ['start 80', 'end 80', 'start 10', 'end 10', 'start 40', 'end 40']);
    });

    it('a duplicate in-flight id is refused', async () => {
      const raw = await rawSocket();
      try {
        raw.ws.send(JSON.stringify({ type: 'prompt', id: 'dup', text: 'order 50' }));
        raw.ws.send(JSON.stringify({ type: 'prompt', id: 'dup', text: 'echo x' }));
        const first = await raw.next();
        assert.deepEqual(first, { type: 'error', id: 'dup', error: { code: 'E_DUPLICATE_ID', message: 'prompt dup is already queued or running' } });
        assert.equal((await raw.next()).type, 'complete');
      } finally {
        raw.ws.close();
      }
    });

    it('display slots reach the client and its answer reaches the runnable', async () => {
      const h = box.prompt('display');
      for await (const d of h.display) {
        if (d.type === 'push' && d.slot.renderer === 'confirm') h.resolve(d.slot.id, 'yes');
      }
      assert.equal(await within(h.message), 'got yes');
    });
  });

  describe('abort', () => {
    it('cancels the running prompt through its AbortSignal; the next prompt still runs', async () => {
      const h = box.prompt('slow');
      for await (const e of h.events) {
        if (e.event_type === 'tick' && e.data === 2) h.abort();
      }
      await rejectsWith(h.message, 'E_ABORTED');
      assert.equal(await within(box.prompt('echo after').message), 'echo:echo after');
      assert.ok(seenAbort.has(h.id), 'the runnable saw signal.aborted');
    });

    it('cancels a queued prompt before it starts', async () => {
      log.length = 0;
      const first = box.prompt('order 100');
      const queued = box.prompt('order 1');
      queued.abort();
      assert.equal(await within(first.message), '100');
      await rejectsWith(queued.message, 'E_ABORTED');
      assert.deepEqual(log, ['start 100', 'end 100']);
    });

    it('ends the turn even if the runnable ignores the signal (after the grace period)', async () => {
      const h = box.prompt('stubborn');
      for await (const e of h.events) if (e.event_type === 'tick') h.abort();
      await rejectsWith(h.message, 'E_ABORTED');
      const t0 = Date.now();
      assert.equal(await within(box.prompt('echo next').message), 'echo:echo next');
      assert.ok(Date.now() - t0 < 2000);
    });

    it('a dropped connection fails the in-flight prompt and aborts the runnable; the next prompt reconnects', async () => {
      const h = box.prompt('slow');
      for await (const e of h.events) if (e.event_type === 'tick') box.disconnect();
      await rejectsWith(h.message, 'E_DISCONNECTED');
      const deadline = Date.now() + 5000;
      while (!seenAbort.has(h.id)) {
        assert.ok(Date.now() < deadline, 'server did not abort the runnable of a closed connection');
        await sleep(10);
      }
      assert.equal(await within(box.prompt('echo again').message), 'echo:echo again');
    });
  });

  describe('bad input never crashes the server', () => {
    it('malformed frames each get an error and the connection stays usable', async () => {
      const raw = await rawSocket();
      try {
        const cases: Array<[string | Buffer, string | null]> = [
          ['{not json', null],
          [Buffer.from([1, 2, 3]), null],
          [JSON.stringify({ type: 'launch' }), null],
          [JSON.stringify({ type: 'prompt', id: 'm1' }), 'm1'],
          [JSON.stringify({ type: 'prompt', id: 'm2', text: 'x', inputs: { '../escape': { kind: 'inline', data: '' } } }), 'm2'],
          [JSON.stringify({ type: 'display_resolve', slot_id: 'nope', value: 1 }), null],
          ['null', null],
          ['[]', null],
        ];
        for (const [frame, id] of cases) {
          raw.ws.send(frame, { binary: Buffer.isBuffer(frame) });
          const m = await raw.next();
          assert.equal(m.type, 'error', String(frame));
          assert.ok(m.type === 'error' && m.id === id && m.error.code === 'E_BAD_FRAME', JSON.stringify(m));
        }
        raw.ws.send(JSON.stringify({ type: 'ping', ts: 42 }));
        assert.deepEqual(await raw.next(), { type: 'pong', ts: 42 });
      } finally {
        raw.ws.close();
      }
    });

    it('input limits: per file, in total, file count, and kinds outside the inputs policy', async () => {
      await rejectsWith(box.prompt('copy', { files: { a: { bytes: Buffer.alloc(4097) } } }).message, 'E_INPUT_TOO_LARGE');
      await rejectsWith(box.prompt('copy', { files: { a: { bytes: Buffer.alloc(4000) }, b: { bytes: Buffer.alloc(2001) } } }).message, 'E_INPUT_TOO_LARGE');
      await rejectsWith(box.prompt('copy', { files: { a: { bytes: Buffer.alloc(1) }, b: { bytes: Buffer.alloc(1) }, c: { bytes: Buffer.alloc(1) }, d: { bytes: Buffer.alloc(1) } } }).message, 'E_INPUT_TOO_LARGE');
      await rejectsWith(box.prompt('copy', { files: { big: { kind: 'url', url: `${fileBase}/big` } } }).message, 'E_INPUT_TOO_LARGE');
      await rejectsWith(box.prompt('copy', { files: { s: { kind: 'server', id: 'abc', url: 'http://x/files/abc' } } }).message, 'E_INPUT_REJECTED');
      await rejectsWith(box.prompt('copy', { files: { a: { bytes: Buffer.from('x') }, 'a/b': { bytes: Buffer.from('y') } } }).message, 'E_INPUT_REJECTED');
      assert.equal(await within(box.prompt('copy', { files: { a: { bytes: Buffer.alloc(4096) } } }).message), 'copied');
    });

    it('a throwing runnable or a bad event is an error for that prompt only', async () => {
      await assert.rejects(within(box.prompt('fail').message), (e: KitClientError) => e.code === 'E_RUN_FAILED' && /boom from the runnable/.test(e.message));
      await rejectsWith(box.prompt('badevent').message, 'E_RUN_FAILED');
      assert.equal(await within(box.prompt('echo still').message), 'echo:echo still');
    });
  });

  /** A raw ws with a message queue, for frames the SDK would never send. */
  async function rawSocket(): Promise<{ ws: WebSocket; next: () => Promise<ServerMessage> }> {
    const ws = new WebSocket(kit.url, { headers: { authorization: `Bearer ${KEY}` } });
    const queue: ServerMessage[] = [];
    const waiters: Array<(m: ServerMessage) => void> = [];
    ws.on('message', (d) => {
      const m = JSON.parse(d.toString()) as ServerMessage;
      const w = waiters.shift();
      if (w) w(m);
      else queue.push(m);
    });
    await within(new Promise((r, j) => (ws.once('open', r), ws.once('error', j))));
    return { ws, next: () => within(queue.length ? Promise.resolve(queue.shift()!) : new Promise<ServerMessage>((r) => waiters.push(r)), 5000, 'next frame') };
  }
});

describe('kit boot', () => {
  it('refuses an invalid outputs policy before listening, with a clear error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kit-boot-'));
    try {
      await assert.rejects(
        startKitServer({
          runnable: testRunnable,
          key: KEY,
          manifest: { name: 'x', version: '0' },
          fs: { input: join(dir, 'i'), output: join(dir, 'o'), work: join(dir, 'w') },
          stateDir: join(dir, 's'),
          storage: { outputs: composite([rule.inline({ below: '1MB' }), rule.s3({ bucket: 'b' })]) },
        }),
        (e: unknown) => e instanceof KitError && e.code === 'E_POLICY_INVALID' && /no "s3" adapter is registered/.test(e.message),
      );
      await assert.rejects(
        startKitServer({ runnable: testRunnable, key: 'short', manifest: { name: 'x', version: '0' }, fs: { input: dir, output: dir, work: dir }, stateDir: dir }),
        (e: unknown) => e instanceof KitError && e.code === 'E_KEY_INVALID',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a prompt over its time limit ends with E_TIMEOUT and the runnable sees the signal', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kit-timeout-'));
    const kit = await startKitServer({
      runnable: testRunnable,
      key: KEY,
      manifest: { name: 't', version: '0' },
      fs: { input: join(dir, 'i'), output: join(dir, 'o'), work: join(dir, 'w') },
      stateDir: join(dir, 's'),
      limits: { promptTimeoutMs: 100 },
    });
    const client = KitClient.make({ endpoints: { t: { url: kit.url, key: KEY } } });
    try {
      const h = client.box('t').prompt('slow');
      await rejectsWith(h.message, 'E_TIMEOUT');
      const deadline = Date.now() + 5000;
      while (!seenAbort.has(h.id)) {
        assert.ok(Date.now() < deadline, 'runnable never saw the timeout');
        await sleep(10);
      }
      assert.equal(await within(client.box('t').prompt('echo ok').message), 'echo:echo ok');
    } finally {
      await client.close();
      await kit.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('loads a runnable module from disk and refuses one without run()', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kit-mod-'));
    try {
      writeFileSync(join(dir, 'agent.mjs'), 'export async function* run(p) { yield { event_type: "hi", data: p.text }; return "ok"; }\n');
      writeFileSync(join(dir, 'nope.mjs'), 'export const x = 1;\n');
      const run = await loadRunnable(join(dir, 'agent.mjs'));
      const kit = await startKitServer({
        runnable: run,
        key: KEY,
        manifest: { name: 'm', version: '0' },
        fs: { input: join(dir, 'i'), output: join(dir, 'o'), work: join(dir, 'w') },
        stateDir: join(dir, 's'),
      });
      const client = KitClient.make({ endpoints: { m: { url: kit.url, key: KEY } } });
      try {
        assert.equal(await within(client.box('m').prompt('yo').message), 'ok');
      } finally {
        await client.close();
        await kit.close();
      }
      await assert.rejects(loadRunnable(join(dir, 'nope.mjs')), (e: unknown) => e instanceof KitError && e.code === 'E_RUNNABLE_INVALID');
      assert.ok(readFileSync(join(dir, 'agent.mjs')));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
