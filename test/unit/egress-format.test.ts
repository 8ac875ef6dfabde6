import assert from 'node:assert/strict';
import { test } from 'node:test';
import { egressJson, egressText } from '../../src/cli/egress-format.js';

test('vibebox logs egress: a request line of an intercepted host, a tunnel line, --json', () => {
  const req = JSON.stringify({ ts: '2026-01-01T00:00:00.000Z', method: 'POST', host: 'api.anthropic.com', port: 443, path: '/v1/messages', decision: 'allow', reason: 'in_allowlist', rule: 'api.anthropic.com', status: 200, bytes_up: 10, bytes_down: 99, duration_ms: 5, injected: 'anthropic' });
  assert.equal(egressText(req), '2026-01-01T00:00:00.000Z POST api.anthropic.com/v1/messages 200 10B up 99B down 5ms allow (in_allowlist: api.anthropic.com) key injected by rule anthropic');
  const tun = JSON.stringify({ ts: 't', method: 'CONNECT', host: 'example.com', port: 8443, decision: 'deny', reason: 'not_in_allowlist', status: 451 });
  assert.equal(egressText(tun), 't CONNECT example.com:8443 451 deny (not_in_allowlist)');
  assert.deepEqual(JSON.parse(egressJson(req)!), JSON.parse(req));
});

test('a line a guest wrote into .vibebox/egress.log: no control character reaches the terminal, junk is skipped', () => {
  const evil = JSON.stringify({ ts: 't', method: 'GET', host: 'a\x1b]0;pwned\x07', decision: 'allow', reason: 'x' });
  assert.ok(!/[\x00-\x1f]/.test(egressText(evil)!));
  assert.ok(!/[\x00-\x1f]/.test(egressJson(evil)!));
  assert.equal(egressText('not json'), null);
  assert.equal(egressJson('[1]'), null);
});
