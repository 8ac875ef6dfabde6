import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { rule } from '../../guest/kit/storage/policy.js';
import { DEFAULT_TTL_MS, LocalServerStorage } from '../../guest/kit/storage/local-server.js';

describe('kit LocalServer storage (real sqlite file)', () => {
  let dir: string;
  let src: string;
  let clock: number;
  const now = (): number => clock;
  const open = (): LocalServerStorage => new LocalServerStorage({ dir: join(dir, 'state'), baseUrl: () => 'http://kit.test', now });

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'kit-ls-'));
    src = join(dir, 'src.txt');
    writeFileSync(src, 'payload');
    clock = 1_000_000;
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const put = (s: LocalServerStorage, ttl?: string) => s.put({ name: 'src.txt', path: src, size: 7, mime: 'text/plain' }, ttl ? rule.localServer({ ttl }) : undefined);

  it('keeps its index in WAL mode and mints server refs', async () => {
    const s = open();
    try {
      assert.equal(s.journalMode(), 'wal');
      const ref = await put(s);
      assert.equal(ref.kind, 'server');
      assert.ok(ref.kind === 'server' && ref.url === `http://kit.test/files/${ref.id}` && ref.expires_at === clock + DEFAULT_TTL_MS);
      assert.ok(existsSync(join(dir, 'state', 'index.sqlite-wal')));
    } finally {
      s.close();
    }
  });

  it("honours the rule's TTL: ok until it passes, then gone (410) even before the sweeper runs", async () => {
    const s = open();
    try {
      const ref = await put(s, '30s');
      assert.ok(ref.kind === 'server');
      clock += 29_999;
      assert.equal(s.lookup(ref.id).status, 'ok');
      clock += 1;
      assert.deepEqual(s.lookup(ref.id), { status: 'gone', reason: 'expired' });
      assert.equal((await s.open(ref.id, false)).status, 'gone');
    } finally {
      s.close();
    }
  });

  it('the sweeper deletes expired files, leaves a tombstone (410), then purges it (404)', async () => {
    const s = new LocalServerStorage({ dir: join(dir, 'state'), baseUrl: () => 'http://kit.test', now, tombstoneMs: 60_000 });
    try {
      const short = await put(s, '1s');
      const long = await put(s, '1h');
      assert.ok(short.kind === 'server' && long.kind === 'server');
      assert.equal(readdirSync(join(dir, 'state', 'files')).length, 2);
      clock += 1000;
      assert.equal(await s.sweep(), 1);
      assert.deepEqual(readdirSync(join(dir, 'state', 'files')), [long.id]);
      assert.deepEqual(s.lookup(short.id), { status: 'gone', reason: 'expired' });
      assert.equal(s.lookup(long.id).status, 'ok');
      clock += 60_000;
      await s.sweep();
      assert.deepEqual(s.lookup(short.id), { status: 'unknown' });
      assert.equal(s.lookup('never-existed').status, 'unknown');
      assert.equal(s.lookup('../../etc/passwd').status, 'unknown');
    } finally {
      s.close();
    }
  });

  it('the timer-driven sweeper runs on its own (real clock, 50 ms TTL)', async () => {
    const s = new LocalServerStorage({ dir: join(dir, 'state'), baseUrl: () => 'http://kit.test' });
    try {
      const ref = await s.put({ name: 'src.txt', path: src, size: 7 }, rule.localServer({ ttl: '50ms' }));
      assert.ok(ref.kind === 'server');
      s.startSweeper(20);
      const deadline = Date.now() + 5000;
      while (existsSync(join(dir, 'state', 'files', ref.id))) {
        assert.ok(Date.now() < deadline, 'sweeper did not remove the file within 5 s');
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(s.lookup(ref.id).status, 'gone');
    } finally {
      s.close();
    }
  });

  it('the index survives a restart (close, reopen on the same dir)', async () => {
    const s1 = open();
    const ref = await put(s1, '1h');
    const expired = await put(s1, '1s');
    s1.close();
    clock += 2000;
    const s2 = open();
    try {
      assert.ok(ref.kind === 'server' && expired.kind === 'server');
      const o = await s2.open(ref.id, false);
      assert.equal(o.status, 'ok');
      assert.equal(o.status === 'ok' ? await text(o.stream) : '', 'payload');
      assert.equal(s2.lookup(expired.id).status, 'gone');
    } finally {
      s2.close();
    }
  });

  it('consume: one reader gets the bytes, the file is unlinked, later reads are 410', async () => {
    const s = open();
    try {
      const ref = await put(s);
      assert.ok(ref.kind === 'server');
      const [a, b] = await Promise.all([s.open(ref.id, true), s.open(ref.id, true)]);
      const winners = [a, b].filter((o) => o.status === 'ok');
      assert.equal(winners.length, 1, 'exactly one consumer wins');
      const w = winners[0]!;
      assert.equal(w.status === 'ok' ? await text(w.stream) : '', 'payload');
      assert.equal(existsSync(join(dir, 'state', 'files', ref.id)), false);
      assert.deepEqual(s.lookup(ref.id), { status: 'gone', reason: 'consumed' });
    } finally {
      s.close();
    }
  });
});
