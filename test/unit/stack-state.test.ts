import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateManifestText } from '../../guest/stack/manifest-text.js';
import { EMPTY_STATE, parseStackState, waitOutcome, type StackState } from '../../guest/stack/state.js';

const text = 'version: 1\nservices:\n  redis:\n    image: redis:7.4\n    volumes: {data: /data}\n  postgres:\n    image: local/postgres:ab12\n    env: {POSTGRES_PASSWORD: dev}\n';

function manifest() {
  const r = validateManifestText(text);
  assert.ok(r.ok);
  return r.manifest;
}

describe('stack state', () => {
  it('a state with a live manifest and a proposal round-trips through JSON', () => {
    const state: StackState = {
      version: 1,
      live: manifest(),
      proposed: { manifest: manifest(), text, time: '2026-11-29T19:00:00.000Z' },
      last_apply: { status: 'applied', reason: '', time: '2026-11-29T19:01:00.000Z' },
      down: false,
    };
    const r = parseStackState(JSON.stringify(state));
    assert.ok(r.ok, !r.ok ? r.message : '');
    assert.deepEqual(r.state, state);
    assert.deepEqual(parseStackState(JSON.stringify(EMPTY_STATE)), { ok: true, state: EMPTY_STATE });
  });

  it('a corrupt or tampered file is an error, not an empty stack', () => {
    assert.match((parseStackState('{') as { message: string }).message, /not JSON/);
    const live = manifest();
    const tampered = { ...EMPTY_STATE, live: { ...live, services: [{ ...live.services[0], privileged: true }] } };
    const r = parseStackState(JSON.stringify(tampered));
    assert.ok(!r.ok);
    assert.match(r.message, /live\.services\.0/);
    assert.ok(!parseStackState(JSON.stringify({ ...EMPTY_STATE, last_apply: { status: 'maybe', reason: '', time: 'now' } })).ok);
  });

  it('wait: pending until an apply at or after the proposal; then applied, or rejected/rolled_back with why', () => {
    const since = '2026-11-29T19:00:00.000Z';
    assert.deepEqual(waitOutcome(EMPTY_STATE, since), { state: 'pending' });
    const older = { ...EMPTY_STATE, last_apply: { status: 'applied' as const, reason: '', time: '2026-11-29T18:00:00.000Z' } };
    assert.deepEqual(waitOutcome(older, since), { state: 'pending' });
    assert.deepEqual(waitOutcome({ ...older, last_apply: { ...older.last_apply, time: since } }, since), { state: 'applied' });
    const rolled = { ...EMPTY_STATE, last_apply: { status: 'rolled_back' as const, reason: 'redis: healthcheck failed 30 times', time: '2026-11-29T19:02:00.000Z' } };
    assert.deepEqual(waitOutcome(rolled, since), { state: 'rolled_back', reason: 'redis: healthcheck failed 30 times', errors: [] });
    const errors = [{ code: 'image_registry_not_allowed' as const, path: 'services.x.image', message: 'm', hint_for_agent: 'h' }];
    const rejected = { ...EMPTY_STATE, last_apply: { status: 'rejected' as const, reason: 'the manifest no longer validates', time: '2026-11-29T19:02:00.000Z', errors } };
    assert.deepEqual(waitOutcome(rejected, since), { state: 'rejected', reason: 'the manifest no longer validates', errors });
  });
});
