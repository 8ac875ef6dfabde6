import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { diffManifests, renderDiff } from '../../guest/stack/diff.js';
import { validateManifest, type Manifest } from '../../guest/stack/manifest.js';

function m(services: Record<string, unknown>): Manifest {
  const r = validateManifest({ version: 1, services });
  assert.ok(r.ok, JSON.stringify(!r.ok && r.errors));
  return r.manifest;
}

const live = m({
  redis: { image: 'redis:7.2', env: { MAXMEM: '128mb', KEEP: 'x' }, volumes: { data: '/data' } },
  neo4j: { image: 'neo4j:5.20', cap_add: ['IPC_LOCK'] },
  cache: { image: 'memcached:1.6' },
});

describe('stack diff', () => {
  it('added, removed, changed (with the fields), unchanged', () => {
    const proposed = m({
      redis: { image: 'redis:7.4', env: { KEEP: 'x', APPEND: 'yes' }, volumes: { data: '/data', logs: '/logs' }, resources: { memory: '1g' } },
      postgres: { image: 'postgres:16.4', volumes: { data: '/var/lib/postgresql/data' } },
      cache: { image: 'memcached:1.6' },
    });
    const d = diffManifests(live, proposed);
    assert.deepEqual(d.added, ['postgres']);
    assert.deepEqual(d.removed, ['neo4j']);
    assert.deepEqual(d.changed, ['redis']);
    assert.deepEqual(d.unchanged, ['cache']);
    assert.equal(d.empty, false);
    assert.deepEqual(d.services.map((s) => [s.name, s.kind]), [['redis', 'changed'], ['postgres', 'added'], ['cache', 'unchanged'], ['neo4j', 'removed']]);
    assert.deepEqual(d.services[0]?.changes, [
      { field: 'image', from: 'redis:7.2', to: 'redis:7.4' },
      { field: 'env.APPEND', from: null, to: '"yes"' },
      { field: 'volumes.logs', from: null, to: '/logs' },
      { field: 'resources.memory', from: '512m', to: '1g' },
      { field: 'env.MAXMEM', from: '"128mb"', to: null },
    ]);
    const added = d.services[1]?.changes.map((c) => c.field);
    assert.deepEqual(added, ['image', 'volumes.data', 'healthcheck', 'resources.cpus', 'resources.memory']);
  });

  it('the rendering shows each change, and ${VAR} as written (never a resolved value)', () => {
    const proposed = m({ redis: { image: 'redis:7.4', env: { TZ: '${TZ}' }, volumes: { data: '/data' } }, cache: { image: 'memcached:1.6' } });
    const text = renderDiff(diffManifests(live, proposed));
    assert.equal(
      text,
      [
        'Stack changes: 0 to add, 1 to change, 1 to remove, 1 unchanged',
        '~ redis',
        '    image: redis:7.2 → redis:7.4',
        '    env.TZ: (unset) → "${TZ}"',
        '    env.KEEP: "x" → (unset)',
        '    env.MAXMEM: "128mb" → (unset)',
        '  cache (unchanged)',
        '- neo4j (removed; its volumes are kept until destroy)',
        '',
      ].join('\n'),
    );
  });

  it('a first apply lists every field of every service', () => {
    const d = diffManifests(null, m({ redis: { image: 'redis:7.4', command: ['redis-server', '--appendonly', 'yes'], cap_add: ['SYS_NICE'] } }));
    assert.deepEqual(d.added, ['redis']);
    const text = renderDiff(d);
    assert.match(text, /^Stack changes: 1 to add, 0 to change, 0 to remove, 0 unchanged\n\+ redis \(new\)\n {4}image: redis:7.4\n {4}command: \["redis-server","--appendonly","yes"\]\n {4}healthcheck: redis-cli ping every 2s, timeout 5s, 30 retries \(default\)\n/);
    assert.match(text, /cap_add: SYS_NICE/);
  });

  it('no changes; removing everything', () => {
    const d = diffManifests(live, live);
    assert.equal(d.empty, true);
    assert.equal(renderDiff(d), 'No changes (3 services unchanged).\n');
    const gone = diffManifests(live, null);
    assert.deepEqual(gone.removed, ['redis', 'neo4j', 'cache']);
  });

  it('a healthcheck, a read-only volume, caps and cpus count as changes', () => {
    const a = m({ s: { image: 'nginx:1.27' } });
    const b = m({ s: { image: 'nginx:1.27', healthcheck: { test: 'curl -f localhost', start_period: '10s' }, volumes: ['v:/v:ro'], cap_add: ['NET_BIND_SERVICE'], resources: { cpus: 0.5 } } });
    const fields = diffManifests(a, b).services[0]?.changes;
    assert.deepEqual(fields, [
      { field: 'volumes.v', from: null, to: '/v (ro)' },
      { field: 'healthcheck', from: null, to: 'sh -c "curl -f localhost" every 2s, timeout 5s, 30 retries, start period 10s' },
      { field: 'resources.cpus', from: '1', to: '0.5' },
      { field: 'cap_add', from: null, to: 'NET_BIND_SERVICE' },
    ]);
  });
});
