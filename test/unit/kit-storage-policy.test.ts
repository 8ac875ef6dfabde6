import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { KitError } from '../../guest/kit/errors.js';
import { base64Length, InlineStorage, UrlStorage } from '../../guest/kit/storage/adapter.js';
import {
  composite,
  DEFAULT_OUTPUTS,
  isTerminal,
  parseDuration,
  parseSize,
  pickRule,
  rule,
  validateInputsPolicy,
  validateOutputsPolicy,
} from '../../guest/kit/storage/policy.js';
import { S3Storage, type S3Hooks } from '../../guest/kit/storage/s3.js';

const registry = { inline: { writable: true }, url: { writable: false }, localServer: { writable: true } };
const MB = 1024 * 1024;

describe('kit storage policy: sizes and durations', () => {
  it('parses human sizes in binary units', () => {
    assert.equal(parseSize('512B'), 512);
    assert.equal(parseSize('256KB'), 256 * 1024);
    assert.equal(parseSize('1MB'), MB);
    assert.equal(parseSize('1.5 mb'), 1.5 * MB);
    assert.equal(parseSize('2GB'), 2 * 1024 ** 3);
    assert.equal(parseSize(7), 7);
    assert.throws(() => parseSize('1 TB'), KitError);
  });
  it('parses durations (a bare number is seconds)', () => {
    assert.equal(parseDuration('1h'), 3_600_000);
    assert.equal(parseDuration('15m'), 900_000);
    assert.equal(parseDuration('250ms'), 250);
    assert.equal(parseDuration(2), 2000);
    assert.throws(() => parseDuration('soon'), KitError);
  });
});

describe('kit storage policy: first match wins, at and around each bound', () => {
  const p = composite([rule.inline({ below: '1KB' }), rule.s3({ bucket: 'b', above: '1MB' }), rule.localServer({ ttl: '1h' })]);
  const at = (n: number): string | undefined => pickRule(p, n)?.kind;
  it('below is exclusive', () => {
    assert.equal(at(0), 'inline');
    assert.equal(at(1023), 'inline');
    assert.equal(at(1024), 'localServer');
    assert.equal(at(1025), 'localServer');
  });
  it('above is exclusive', () => {
    assert.equal(at(MB - 1), 'localServer');
    assert.equal(at(MB), 'localServer');
    assert.equal(at(MB + 1), 's3');
  });
  it('a rule with both bounds matches only between them', () => {
    const q = composite([rule.inline({ above: '10B', below: '20B' }), rule.localServer()]);
    assert.deepEqual([10, 11, 19, 20].map((n) => pickRule(q, n)?.kind), ['localServer', 'inline', 'inline', 'localServer']);
  });
  it('earlier rules shadow later ones', () => {
    const q = composite([rule.localServer(), rule.inline({ below: '1MB' })]);
    assert.equal(pickRule(q, 1)?.kind, 'localServer');
  });
  it('the default outputs policy: under 1 MB inline, from 1 MB on the server', () => {
    assert.equal(pickRule(DEFAULT_OUTPUTS, MB - 1)?.kind, 'inline');
    assert.equal(pickRule(DEFAULT_OUTPUTS, MB)?.kind, 'localServer');
  });
  it('terminal: no bounds, or always', () => {
    assert.equal(isTerminal(rule.inline()), true);
    assert.equal(isTerminal(rule.inline({ below: '1KB' })), false);
    assert.equal(isTerminal(rule.inline({ below: '1KB', always: true })), true);
  });
});

describe('kit storage policy: boot validation', () => {
  const fails = (policy: unknown, re: RegExp): void => {
    assert.throws(() => validateOutputsPolicy(policy, registry), (e: unknown) => e instanceof KitError && e.code === 'E_POLICY_INVALID' && re.test(e.message));
  };
  it('accepts the default and a valid custom policy', () => {
    assert.ok(validateOutputsPolicy(DEFAULT_OUTPUTS, registry));
    assert.ok(validateOutputsPolicy(composite([rule.inline({ below: '1KB' }), rule.s3({ bucket: 'b' })]), { ...registry, s3: { writable: true } }));
  });
  it('url is never an output', () => fails(composite([rule.url(), rule.inline()]), /url adapter is read-only/));
  it('every adapter must be registered', () => fails(composite([rule.s3({ bucket: 'b' })]), /no "s3" adapter is registered/));
  it('a read-only custom adapter is refused', () =>
    assert.throws(() => validateOutputsPolicy(composite([rule.localServer()]), { localServer: { writable: false } }), /read-only/));
  it('a terminal rule must be present', () => fails(composite([rule.inline({ below: '1MB' }), rule.localServer({ above: '2MB' })]), /no terminal rule/));
  it('bad sizes and TTLs are named', () => {
    fails({ rules: [{ kind: 'inline', below: 'big' }] }, /rules\.0\.below: bad size/);
    fails(composite([rule.localServer({ ttl: 'forever' })]), /rules\.0\.ttl: bad duration/);
  });
  it('an empty or malformed policy fails', () => {
    fails({ rules: [] }, /outputs policy/);
    fails('inline', /outputs policy/);
  });
  it('lists every problem at once', () => fails(composite([rule.url({ below: '1KB' }), rule.s3({ bucket: 'b', below: '1MB' })]), /read-only.*s3.*terminal/));
  it('inputs policy: adapters must be registered', () => {
    assert.ok(validateInputsPolicy(composite([rule.url(), rule.inline()]), registry));
    assert.throws(() => validateInputsPolicy(composite([rule.s3({ bucket: 'b' })]), registry), /no adapter registered for s3/);
  });
});

describe('kit storage adapters', () => {
  let dir: string;
  let srv: http.Server;
  let base: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kit-adapters-'));
    srv = http.createServer((req, res) => {
      if (req.url === '/small') return res.end('small body');
      if (req.url === '/big') return res.end(Buffer.alloc(5000, 1));
      if (req.url === '/chunked-big') {
        // No Content-Length: the cap must hold while streaming.
        res.write(Buffer.alloc(3000, 2));
        res.end(Buffer.alloc(3000, 2));
        return;
      }
      if (req.url === '/auth') return res.end(req.headers['x-token'] === 't' ? 'yes' : 'no');
      res.statusCode = 404;
      res.end();
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  });
  after(() => {
    srv.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('inline: round trip, and an oversized ref is refused before decoding', async () => {
    const a = new InlineStorage();
    const p = join(dir, 'x.txt');
    writeFileSync(p, 'hello');
    const ref = await a.put({ name: 'x.txt', path: p, size: 5 });
    assert.equal(ref.kind, 'inline');
    assert.equal((await a.get(ref, { maxBytes: 5 })).toString(), 'hello');
    await assert.rejects(a.get(ref, { maxBytes: 4 }), (e: KitError) => e.code === 'E_INPUT_TOO_LARGE');
    for (const n of [0, 1, 2, 3, 4, 100]) assert.equal(base64Length(Buffer.alloc(n).toString('base64')), n);
  });

  it('url: fetches with headers, refuses 404 and bodies over the cap (declared or streamed)', async () => {
    const u = new UrlStorage();
    assert.equal((await u.get({ kind: 'url', url: `${base}/small` }, { maxBytes: 100 })).toString(), 'small body');
    assert.equal((await u.get({ kind: 'url', url: `${base}/auth`, headers: { 'x-token': 't' } }, { maxBytes: 100 })).toString(), 'yes');
    await assert.rejects(u.get({ kind: 'url', url: `${base}/missing` }, { maxBytes: 100 }), (e: KitError) => e.code === 'E_INPUT_REJECTED' && /404/.test(e.message));
    await assert.rejects(u.get({ kind: 'url', url: `${base}/big` }, { maxBytes: 4999 }), (e: KitError) => e.code === 'E_INPUT_TOO_LARGE');
    await assert.rejects(u.get({ kind: 'url', url: `${base}/chunked-big` }, { maxBytes: 4000 }), (e: KitError) => e.code === 'E_INPUT_TOO_LARGE');
    assert.equal(u.writable, false);
  });

  // S3 is hooks the host supplies; here an in-memory fake stands in for a bucket (no S3 is reachable).
  it('s3: uploads through the hooks under the rule prefix and downloads back (fake in-memory bucket)', async () => {
    const bucket = new Map<string, Buffer>();
    const hooks: S3Hooks = {
      async uploadObject(o) {
        bucket.set(`${o.bucket}/${o.key}`, o.body);
      },
      async downloadObject(o) {
        const b = bucket.get(`${o.bucket}/${o.key}`);
        if (!b) throw new Error('NoSuchKey');
        return b;
      },
    };
    const s3 = new S3Storage(hooks);
    const p = join(dir, 'out.bin');
    writeFileSync(p, Buffer.alloc(2048, 7));
    const ref = await s3.put({ name: 'out.bin', path: p, size: 2048 }, rule.s3({ bucket: 'bk', prefix: 'v1', region: 'eu-west-1' }));
    assert.equal(ref.kind, 's3');
    assert.ok(ref.kind === 's3' && ref.key.startsWith('v1/') && ref.key.endsWith('/out.bin') && ref.region === 'eu-west-1');
    assert.equal(bucket.size, 1);
    assert.deepEqual(await s3.get(ref, { maxBytes: 4096 }), Buffer.alloc(2048, 7));
    await assert.rejects(s3.get(ref, { maxBytes: 100 }), (e: KitError) => e.code === 'E_INPUT_TOO_LARGE');
  });
});
