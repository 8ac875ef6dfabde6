import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, existsSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cleanLine, CleanLines, cleanText, GuestLog, RateLimit } from '../../src/supervisor/guest-text.js';
import { RotatingLog } from '../../src/supervisor/rotating-log.js';
import { mountSpecFor } from '../../qemu/qemu-driver.js';

describe('guest text', () => {
  it('strips escape sequences and control characters, keeps text', () => {
    assert.equal(cleanLine('ok\x1b[2J\x1b]0;pwned\x07 done\r\nfake line\x7f\x9b'), 'ok done??fake line??');
    assert.equal(cleanText('a\r\nb\x1b[31mred\x1b[0m\n\x07c'), 'a\nbred\n?c');
  });
  it('caps a line', () => {
    const l = cleanLine('x'.repeat(5000), 100);
    assert.ok(l.startsWith('x'.repeat(100)) && l.length < 150, l);
  });
  it('rate-limits with a burst and counts the dropped', () => {
    let now = 0;
    const r = new RateLimit(10, 5, () => now);
    let ok = 0;
    for (let i = 0; i < 100; i++) if (r.take()) ok++;
    assert.equal(ok, 5);
    now += 1000;
    for (let i = 0; i < 100; i++) if (r.take()) ok++;
    assert.equal(ok, 10, "refilled up to the burst");
    assert.equal(r.takeDropped(), 190);
  });
});

describe('console text in chunks', () => {
  it('an escape sequence split across chunks leaves nothing behind, wherever the split falls', () => {
    const text = 'console-mark \x1b]0;pwned\x07\x1b[2J end\nnext \x1b[31mred\x1b[0m\n';
    for (let i = 0; i <= text.length; i++) {
      const c = new CleanLines();
      const out = c.push(text.slice(0, i)) + c.push(text.slice(i)) + c.flush();
      assert.equal(out, 'console-mark  end\nnext red\n', `split at ${i}`);
    }
  });
  it('a line without a newline is held, then passed on when it grows too long or at the end', () => {
    const c = new CleanLines(16);
    assert.equal(c.push('abc'), '');
    assert.equal(c.flush(), 'abc');
    assert.equal(c.push('x'.repeat(20)), 'x'.repeat(20));
  });
});

describe('agent log frames', () => {
  it('20,000 frames of 100 KB with escapes become a bounded, clean log', () => {
    let now = 0;
    const lines: string[] = [];
    const g = new GuestLog((l) => lines.push(l), { now: () => now });
    const evil = `\x1b[2J\nfake line\n${'A'.repeat(100_000)}`;
    for (let i = 0; i < 20_000; i++) {
      g.frame('warn', evil);
      if (i % 1000 === 0) now += 1000;
    }
    const bytes = lines.reduce((n, l) => n + l.length, 0);
    assert.ok(lines.length < 700, `${lines.length} lines`);
    assert.ok(bytes < 1_000_000, `${bytes} bytes`);
    assert.ok(lines.every((l) => !/[\x00-\x1f]/.test(l)));
    assert.ok(lines.some((l) => /log lines dropped/.test(l)));
  });
});

describe('rotating log', () => {
  it('keeps the file under its cap with one old file', () => {
    const d = mkdtempSync(join(tmpdir(), 'vb-log-'));
    const f = join(d, 'x.log');
    const log = new RotatingLog(f, 10_000);
    for (let i = 0; i < 2000; i++) log.write(`line ${i} ${'y'.repeat(40)}`);
    assert.ok(statSync(f).size <= 10_000);
    assert.ok(statSync(`${f}.1`).size <= 10_000);
    assert.ok(!existsSync(`${f}.2`));
    assert.match(readFileSync(f, 'utf8'), /line 1999 /);
    rmSync(d, { recursive: true, force: true });
  });
});

describe('mount specs', () => {
  it('a mount source that is gone is left out, not a crash', () => {
    const r = mountSpecFor({ host: '/nonexistent/vibebox-test', guest: '/data', readonly: false }, 'vb1', 'virtiofs');
    assert.ok('skip' in r && /ENOENT/.test(r.skip));
    const ok = mountSpecFor({ host: tmpdir(), guest: '/data', readonly: true }, 'vb1', 'virtiofs');
    assert.deepEqual(ok, { spec: { tag: 'vb1', guest: '/data', ro: true, fs: 'virtiofs' } });
  });
});
