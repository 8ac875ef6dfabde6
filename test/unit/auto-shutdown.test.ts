// auto_shutdown_ms: bounded where a Node timer still works (2^31-1 ms), or "never".
import assert from 'node:assert/strict';
import { mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { VibeboxError } from '../../src/errors.js';
import { loadConfig, parseConfigText } from '../../src/config/load.js';
import { MAX_TIMER_MS } from '../../src/config/size.js';
import { readGrant, writeGrant, defaultGrant } from '../../src/approval/store.js';
import { widenings } from '../../src/approval/diff.js';

let tmp = '';
let saved: string | undefined;
before(() => {
  tmp = realpathSync(mkdtempSync(join(tmpdir(), 'vb-shutdown-')));
  saved = process.env['VIBEBOX_HOME'];
  process.env['VIBEBOX_HOME'] = join(tmp, 'home');
});
after(() => {
  if (saved === undefined) delete process.env['VIBEBOX_HOME'];
  else process.env['VIBEBOX_HOME'] = saved;
  rmSync(tmp, { recursive: true, force: true });
});

const invalid = (fn: () => unknown, ...patterns: RegExp[]) =>
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof VibeboxError, String(e));
    assert.equal(e.exitCode, 2);
    assert.doesNotMatch(e.toLine(), /\n/);
    for (const p of patterns) assert.match(e.toLine(), p);
    return true;
  });

describe('session.auto_shutdown_ms', () => {
  it('refuses what a timer cannot wait (it would fire after 1 ms), naming the key and "never"', () => {
    invalid(() => parseConfigText('[session]\nauto_shutdown_ms = 99999999999\n'), /session\.auto_shutdown_ms: must be at most 2147483647/, /"never"/);
    invalid(() => parseConfigText(`[session]\nauto_shutdown_ms = ${MAX_TIMER_MS + 1}\n`), /session\.auto_shutdown_ms/);
    invalid(() => parseConfigText('[session]\nauto_shutdown_ms = 1.5\n'), /session\.auto_shutdown_ms: must be a whole number/);
    invalid(() => parseConfigText('[session]\nauto_shutdown_ms = "soon"\n'), /session\.auto_shutdown_ms/);
    assert.equal(parseConfigText(`[session]\nauto_shutdown_ms = ${MAX_TIMER_MS}\n`).session.auto_shutdown_ms, MAX_TIMER_MS);
    assert.equal(parseConfigText('[session]\nauto_shutdown_ms = 0\n').session.auto_shutdown_ms, 0);
  });
  it('"never" is Infinity (the supervisor arms no timer)', () => {
    assert.equal(parseConfigText('[session]\nauto_shutdown_ms = "never"\n').session.auto_shutdown_ms, Number.POSITIVE_INFINITY);
  });
  it('VIBEBOX_AUTO_SHUTDOWN_MS: the same bound and "never"', () => {
    const p = mkdtempSync(join(tmp, 'p-'));
    writeFileSync(join(p, 'vibebox.toml'), '[session]\nauto_shutdown_ms = 5\n');
    invalid(() => loadConfig(p, { VIBEBOX_AUTO_SHUTDOWN_MS: '99999999999' }), /^vibebox: VIBEBOX_AUTO_SHUTDOWN_MS must be at most 2147483647/);
    assert.equal(loadConfig(p, { VIBEBOX_AUTO_SHUTDOWN_MS: 'never' }).session.auto_shutdown_ms, Number.POSITIVE_INFINITY);
    assert.equal(loadConfig(p, { VIBEBOX_AUTO_SHUTDOWN_MS: String(MAX_TIMER_MS) }).session.auto_shutdown_ms, MAX_TIMER_MS);
  });
  it('"never" is approved like any raise and survives the grant file (JSON has no Infinity)', () => {
    const id = '01900000-0000-7000-8000-0000000000c1';
    const g = defaultGrant('/p');
    const never = { ...g, resources: { ...g.resources!, auto_shutdown_ms: Number.POSITIVE_INFINITY } };
    assert.deepEqual(widenings(g, never), ['+ session.auto_shutdown_ms: 30000 → never']);
    writeGrant(id, never);
    assert.equal(readGrant(id)?.resources?.auto_shutdown_ms, Number.POSITIVE_INFINITY);
    assert.deepEqual(widenings(readGrant(id)!, never), []);
  });
});
