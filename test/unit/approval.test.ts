import { test } from 'node:test';
import assert from 'node:assert/strict';
import { widenings, type Grant } from '../../src/approval/diff.js';

const g = (entries: string[], mounts: Grant['mounts'] = [{ host: '/p', guest: '/workspace', mode: 'rw' }], mode: 'allowlist' | 'blocklist' = 'allowlist'): Grant => ({ network: { mode, entries }, mounts });

test('the same or a narrower config needs no approval', () => {
  assert.deepEqual(widenings(g(['a.com', '.b.com']), g(['a.com', '.b.com'])), []);
  assert.deepEqual(widenings(g(['a.com', '.b.com']), g(['a.com'])), []);
  assert.deepEqual(widenings(g(['.b.com']), g(['x.b.com'])), [], 'a host under an approved domain');
  assert.deepEqual(widenings(g([], [{ host: '/h', guest: '/m', mode: 'rw' }]), g([], [{ host: '/h', guest: '/m', mode: 'ro' }])), []);
  assert.deepEqual(widenings(g(['x.com'], [], 'blocklist'), g(['x.com', 'y.com'], [], 'blocklist')), []);
  assert.deepEqual(widenings(g(['x.com'], [], 'blocklist'), g(['y.com'], [], 'allowlist')), []);
  // …but allowing exactly what the approved blocklist blocked is wider.
  assert.equal(widenings(g(['x.com'], [], 'blocklist'), g(['x.com'], [], 'allowlist')).length, 1);
});

test('a new host, a whole domain, blocklist mode, a new or writable mount are wider', () => {
  assert.equal(widenings(g(['a.com']), g(['a.com', 'evil.com'])).length, 1);
  assert.equal(widenings(g(['x.b.com']), g(['.b.com'])).length, 1);
  assert.equal(widenings(g(['a.com']), g([], undefined, 'blocklist')).length, 1);
  assert.equal(widenings(g(['x.com'], [], 'blocklist'), g([], [], 'blocklist')).length, 1);
  assert.equal(widenings(g([]), g([], [{ host: '/p', guest: '/workspace', mode: 'rw' }, { host: '/home/u/.ssh', guest: '/m', mode: 'ro' }])).length, 1);
  assert.equal(widenings(g([], [{ host: '/h', guest: '/m', mode: 'ro' }]), g([], [{ host: '/h', guest: '/m', mode: 'rw' }])).length, 1);
});
