// Hostile text and hostile files on the host: the escaping every prompt and listing uses, and the
// reader for files a project or guest can write (FIFO, link, device, size).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, symlinkSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasUnsafeText, shown, shownQuoted } from '../../guest/shown.js';
import { readUntrusted } from '../../src/fs/read-untrusted.js';
import { VibeboxError } from '../../src/errors.js';

describe('shown', () => {
  it('leaves plain text alone', () => {
    assert.equal(shown('apt-get clean'), 'apt-get clean');
    assert.equal(shown('C:\\path'), 'C:\\path');
    assert.equal(shown('héllo ✓'), 'héllo ✓');
  });
  it('makes every escape visible: ESC, CR, LF, BEL, DEL, C1, bidi', () => {
    assert.equal(shown('a\x1b[1A\x1b[2Kb'), 'a\\e[1A\\e[2Kb');
    assert.equal(shown('x\ry'), 'x\\ry');
    assert.equal(shown('x\ny\tz'), 'x\\ny\\tz');
    assert.equal(shown('\x07\x7f\x9b'), '\\x07\\x7f\\x9b');
    assert.equal(shown('abc\u202Edef'), 'abc\\u202edef');
    assert.equal(shown('zero\u200Bwidth'), 'zero\\u200bwidth');
  });
  it('doubles backslashes once something is escaped, so a written "\\e" cannot pass for one vibebox made', () => {
    assert.equal(shown('\\e[2K\x1b'), '\\\\e[2K\\e');
  });
  it('quotes what it escaped', () => {
    assert.equal(shownQuoted('plain'), 'plain');
    assert.equal(shownQuoted('a"\rb'), '"a\\"\\rb"');
  });
  it('hasUnsafeText', () => {
    assert.equal(hasUnsafeText('ok'), false);
    assert.equal(hasUnsafeText('no\x1bpe'), true);
    assert.equal(hasUnsafeText('\u2066'), true);
  });
});

describe('readUntrusted', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vb-untrusted-'));
  const what = 'vibebox.toml';
  it('reads a regular file; null when missing', () => {
    writeFileSync(join(dir, 'ok'), 'a = 1\n');
    assert.equal(readUntrusted(join(dir, 'ok'), { maxBytes: 100, what })?.text, 'a = 1\n');
    assert.equal(readUntrusted(join(dir, 'none'), { maxBytes: 100, what }), null);
  });
  it('refuses a FIFO at once (no blocking open)', () => {
    execFileSync('mkfifo', [join(dir, 'fifo')]);
    const t0 = Date.now();
    assert.throws(() => readUntrusted(join(dir, 'fifo'), { maxBytes: 100, what }), (e: unknown) => e instanceof VibeboxError && /not a regular file/.test(e.message));
    assert.ok(Date.now() - t0 < 2000);
  });
  it('refuses a symlink to /dev/zero and to a host file', () => {
    symlinkSync('/dev/zero', join(dir, 'zero'));
    writeFileSync(join(dir, 'secret'), 'key');
    symlinkSync(join(dir, 'secret'), join(dir, 'link'));
    for (const f of ['zero', 'link']) assert.throws(() => readUntrusted(join(dir, f), { maxBytes: 100, what }), (e: unknown) => e instanceof VibeboxError && /symbolic link/.test(e.message));
  });
  it('refuses a directory, a device and a file over the cap', () => {
    mkdirSync(join(dir, 'd'));
    assert.throws(() => readUntrusted(join(dir, 'd'), { maxBytes: 100, what }), /directory/);
    assert.throws(() => readUntrusted('/dev/null', { maxBytes: 100, what }), /not a regular file/);
    writeFileSync(join(dir, 'big'), 'x'.repeat(101));
    assert.throws(() => readUntrusted(join(dir, 'big'), { maxBytes: 100, what }), /more than the 100/);
  });
  it('escapes the path in its messages', () => {
    const bad = join(dir, 'e\x1b[2Kvil');
    symlinkSync('/dev/zero', bad);
    assert.throws(() => readUntrusted(bad, { maxBytes: 100, what }), (e: unknown) => e instanceof Error && !e.message.includes('\x1b') && e.message.includes('\\e[2K'));
  });
  it('cleans up', () => rmSync(dir, { recursive: true, force: true }));
});
