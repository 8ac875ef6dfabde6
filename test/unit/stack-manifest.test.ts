import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BASE_CAPS,
  DEFAULT_POLICY,
  formatPath,
  parseDuration,
  parseImageRef,
  parseMemory,
  splitWords,
  validateManifest,
  type Manifest,
  type ManifestError,
  type StackPolicy,
} from '../../guest/stack/manifest.js';
import { MAX_MANIFEST_BYTES, parseManifestText, validateManifestText } from '../../guest/stack/manifest-text.js';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

function ok(input: unknown, policy?: StackPolicy): Manifest {
  const r = validateManifest(input, policy);
  assert.ok(r.ok, `expected valid, got ${JSON.stringify(!r.ok && r.errors, null, 1)}`);
  return r.manifest;
}

function errors(input: unknown, policy?: StackPolicy): ManifestError[] {
  const r = validateManifest(input, policy);
  assert.ok(!r.ok, 'expected rejection');
  for (const e of r.errors) {
    assert.match(e.code, /^[a-z]+(_[a-z]+)*$/, `snake_case code: ${e.code}`);
    assert.ok(e.message.length > 0 && e.hint_for_agent.length > 0, `message and hint: ${JSON.stringify(e)}`);
    assert.ok(!e.message.includes('\n'), 'one-line message');
  }
  return r.errors;
}

/** The (code, path) pairs of a rejection, in order. */
const pairs = (es: ManifestError[]) => es.map((e) => [e.code, e.path]);

/** One service named `svc` with these settings. */
const one = (settings: Record<string, unknown>) => ({ version: 1, services: { svc: { image: 'redis:7.4', ...settings } } });

/** Assert a single service setting is rejected with exactly this code at this path. */
function rejects(settings: Record<string, unknown>, code: string, path: string, policy?: StackPolicy): ManifestError {
  const es = errors(one(settings), policy);
  assert.deepEqual(pairs(es), [[code, path]], JSON.stringify(es, null, 1));
  return es[0] as ManifestError;
}

describe('stack manifest: accepted', () => {
  it('normalizes a redis + postgres stack with defaults', () => {
    const m = ok({
      version: 1,
      services: {
        redis: { image: 'redis:7.4-alpine', volumes: { data: '/data' } },
        postgres: {
          image: 'postgres:16.4',
          env: { POSTGRES_PASSWORD: 'dev', PGPORT: 5432, DEBUG: true },
          volumes: ['pgdata:/var/lib/postgresql/data'],
          resources: { cpus: '0.5', memory: '1g' },
          cap_add: ['cap_ipc_lock', 'CHOWN', 'IPC_LOCK'],
        },
      },
    });
    assert.deepEqual(m.services.map((s) => s.name), ['redis', 'postgres'], 'document order');
    const [redis, pg] = m.services;
    assert.ok(redis && pg);
    assert.deepEqual(redis.image, { ref: 'redis:7.4-alpine', repository: 'docker.io/library/redis', tag: '7.4-alpine', digest: null, local: false });
    assert.deepEqual(redis.volumes, [{ name: 'data', target: '/data', readOnly: false }]);
    assert.equal(redis.cpus, DEFAULT_POLICY.defaultCpus);
    assert.equal(redis.memoryBytes, DEFAULT_POLICY.defaultMemoryBytes);
    assert.deepEqual(redis.healthcheck?.test, ['CMD', 'redis-cli', 'ping']);
    assert.equal(redis.healthcheck?.source, 'default');
    assert.deepEqual(pg.env, { POSTGRES_PASSWORD: 'dev', PGPORT: '5432', DEBUG: 'true' });
    assert.equal(pg.cpus, 0.5);
    assert.equal(pg.memoryBytes, GiB);
    assert.deepEqual(pg.capAdd, ['CHOWN', 'IPC_LOCK'], 'normalized, unique, sorted');
    assert.deepEqual(pg.healthcheck?.test, ['CMD', 'pg_isready', '-q', '-h', '127.0.0.1']);
    assert.equal(pg.command, null);
  });

  it('default healthchecks for redis, postgres, mysql, mariadb (also local builds), none otherwise', () => {
    const test = (image: string) => ok(one({ image })).services[0]?.healthcheck?.test?.[1] ?? null;
    assert.equal(test('redis:7.4'), 'redis-cli');
    assert.equal(test('local/redis:3f2a9c'), 'redis-cli');
    assert.equal(test('local/postgres-16:abc'), 'pg_isready');
    assert.equal(test('mysql:8.4'), 'mysqladmin');
    assert.match(String(test('mariadb:11.4')), /mariadb-admin ping/);
    assert.equal(test('nginx:1.27'), null);
    assert.equal(ok(one({ image: 'nginx:1.27' })).services[0]?.healthcheck, null);
  });

  it('a manifest healthcheck overrides; timing alone keeps the default test; disable and NONE turn it off', () => {
    const h = ok(one({ healthcheck: { test: 'redis-cli -p 6380 ping', interval: '1m30s', timeout: 3, retries: 5, start_period: '500ms' } })).services[0]?.healthcheck;
    assert.deepEqual(h, { test: ['CMD-SHELL', 'redis-cli -p 6380 ping'], intervalMs: 90_000, timeoutMs: 3000, retries: 5, startPeriodMs: 500, source: 'manifest' });
    const t = ok(one({ healthcheck: { interval: '5s' } })).services[0]?.healthcheck;
    assert.deepEqual([t?.test[1], t?.intervalMs, t?.source], ['redis-cli', 5000, 'default']);
    assert.equal(ok(one({ healthcheck: { disable: true } })).services[0]?.healthcheck, null);
    assert.equal(ok(one({ healthcheck: { test: ['NONE'] } })).services[0]?.healthcheck, null);
    assert.deepEqual(ok(one({ image: 'nginx:1.27', healthcheck: { test: ['CMD', 'curl', '-f', 'http://localhost/'] } })).services[0]?.healthcheck?.test, ['CMD', 'curl', '-f', 'http://localhost/']);
  });

  it('images: official, digests, local builds, allowlisted registries', () => {
    assert.equal(ok(one({ image: 'docker.io/library/redis:7.4' })).services[0]?.image.repository, 'docker.io/library/redis');
    assert.equal(ok(one({ image: 'library/postgres:16' })).services[0]?.image.repository, 'docker.io/library/postgres');
    const digest = `redis@sha256:${'a'.repeat(64)}`;
    assert.equal(ok(one({ image: digest })).services[0]?.image.digest, `sha256:${'a'.repeat(64)}`);
    assert.deepEqual(ok(one({ image: 'local/redis:9f8e7d' })).services[0]?.image, { ref: 'local/redis:9f8e7d', repository: 'local/redis', tag: '9f8e7d', digest: null, local: true });
    const policy = { ...DEFAULT_POLICY, registries: ['docker.io/library', 'ghcr.io/acme', 'index.docker.io/bitnami'] };
    assert.equal(ok(one({ image: 'ghcr.io/acme/cache:1.2' }), policy).services[0]?.image.repository, 'ghcr.io/acme/cache');
    assert.equal(ok(one({ image: 'bitnami/redis:7.4' }), policy).services[0]?.image.repository, 'docker.io/bitnami/redis');
  });

  it('command: a list, or a string split like a shell without expansion', () => {
    assert.deepEqual(ok(one({ command: ['redis-server', '--save', ''] })).services[0]?.command, ['redis-server', '--save', '']);
    assert.deepEqual(ok(one({ command: `redis-server --requirepass "a b" --x 'c d' e\\ f $HOME` })).services[0]?.command, ['redis-server', '--requirepass', 'a b', '--x', 'c d', 'e f', '$HOME']);
  });

  it('env: list form, ${VAR} from the allowlist, $$ literal', () => {
    const s = ok(one({ env: ['TZ_COPY=${TZ}', 'PRICE=$$5', 'EMPTY='] })).services[0];
    assert.deepEqual(s?.env, { TZ_COPY: '${TZ}', PRICE: '$$5', EMPTY: '' }, 'kept as written; resolved at apply');
    ok(one({ env: { A: '${FOO}' } }), { ...DEFAULT_POLICY, envVars: ['FOO'] });
  });

  it('version may be quoted; YAML text parses with the core schema', () => {
    ok({ version: '1', services: { redis: { image: 'redis:7.4' } } });
    const r = validateManifestText('version: 1\nservices:\n  redis:\n    image: redis:7.4\n    env:\n      APPENDONLY: yes\n      N: 010\n');
    assert.ok(r.ok, JSON.stringify(r));
    assert.deepEqual(r.manifest.services[0]?.env, { APPENDONLY: 'yes', N: '10' }, 'yes stays a string (YAML 1.2)');
  });

  it('16 services are allowed', () => {
    const services = Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`s${i}`, { image: 'redis:7.4', resources: { memory: '64m' } }]));
    assert.equal(ok({ version: 1, services }).services.length, 16);
  });
});

describe('stack manifest: each rule has its code and path', () => {
  it('unknown keys, with a hint for compose keys', () => {
    for (const key of ['privileged', 'network_mode', 'build', 'devices', 'pid', 'ipc', 'volumes_from', 'ports', 'environment', 'user', 'entrypoint', 'x-foo']) {
      const e = rejects({ [key]: 'x' }, 'unknown_key', key === 'x-foo' ? 'services.svc.x-foo' : `services.svc.${key}`);
      assert.match(e.hint_for_agent, /image, command, env/, key);
    }
    assert.match(rejects({ ports: ['6379:6379'] }, 'unknown_key', 'services.svc.ports').hint_for_agent, /by its name/);
    assert.match(rejects({ build: '.' }, 'unknown_key', 'services.svc.build').hint_for_agent, /local\/<name>:<tag>/);
    rejects({ healthcheck: { test: 'true', start_interval: '1s' } }, 'unknown_key', 'services.svc.healthcheck.start_interval');
    rejects({ resources: { memory: '1g', swap: '1g' } }, 'unknown_key', 'services.svc.resources.swap');
    const top = errors({ version: 1, services: { redis: { image: 'redis:7.4' } }, volumes: { data: {} } });
    assert.deepEqual(pairs(top), [['unknown_key', 'volumes']]);
    assert.match(top[0]?.hint_for_agent ?? '', /per service/);
  });

  it('images', () => {
    rejects({ image: 'redis' }, 'image_tag_missing', 'services.svc.image');
    rejects({ image: 'redis:latest' }, 'image_tag_latest', 'services.svc.image');
    rejects({ image: 'local/redis:latest' }, 'image_tag_latest', 'services.svc.image');
    rejects({ image: 'local/redis' }, 'image_tag_missing', 'services.svc.image');
    rejects({ image: 'local/a/b:1' }, 'image_local_invalid', 'services.svc.image');
    const e = rejects({ image: 'ghcr.io/evil/miner:1.0' }, 'image_registry_not_allowed', 'services.svc.image');
    assert.match(e.hint_for_agent, /vibebox stack image/);
    rejects({ image: 'someuser/redis:7' }, 'image_registry_not_allowed', 'services.svc.image');
    rejects({ image: 'docker.io/libraryx/redis:7' }, 'image_registry_not_allowed', 'services.svc.image');
    rejects({ image: 'quay.io/x/y:latest' }, 'image_tag_latest', 'services.svc.image');
    rejects({ image: 'Redis:7' }, 'image_invalid', 'services.svc.image');
    rejects({ image: 'redis:7 --privileged' }, 'image_invalid', 'services.svc.image');
    rejects({ image: 'redis@sha256:abc' }, 'image_invalid', 'services.svc.image');
    rejects({ image: 7 }, 'type_invalid', 'services.svc.image');
    assert.deepEqual(pairs(errors({ version: 1, services: { svc: { env: {} } } })), [['key_missing', 'services.svc.image']]);
  });

  it('volumes: named only', () => {
    rejects({ volumes: ['/var/run/docker.sock:/var/run/docker.sock'] }, 'volume_host_bind', 'services.svc.volumes[0]');
    rejects({ volumes: ['./data:/data'] }, 'volume_host_bind', 'services.svc.volumes[0]');
    rejects({ volumes: ['../x:/data'] }, 'volume_host_bind', 'services.svc.volumes[0]');
    rejects({ volumes: ['~/x:/data'] }, 'volume_host_bind', 'services.svc.volumes[0]');
    rejects({ volumes: ['${HOME}:/data'] }, 'volume_host_bind', 'services.svc.volumes[0]');
    rejects({ volumes: [{ type: 'bind', source: '/', target: '/host' }] }, 'volume_host_bind', 'services.svc.volumes[0]');
    rejects({ volumes: { '/etc': '/etc' } }, 'volume_host_bind', 'services.svc.volumes["/etc"]');
    rejects({ volumes: ['/data'] }, 'volume_host_bind', 'services.svc.volumes[0]');
    rejects({ volumes: ['data'] }, 'volume_target_invalid', 'services.svc.volumes[0]');
    rejects({ volumes: { data: 'relative' } }, 'volume_target_invalid', 'services.svc.volumes.data');
    rejects({ volumes: { data: '/proc/x' } }, 'volume_target_invalid', 'services.svc.volumes.data');
    rejects({ volumes: { data: '/a/../b' } }, 'volume_target_invalid', 'services.svc.volumes.data');
    rejects({ volumes: ['data:/data:z'] }, 'volume_invalid', 'services.svc.volumes[0]');
    rejects({ volumes: ['Data!:/data'] }, 'volume_name_invalid', 'services.svc.volumes[0]');
    rejects({ volumes: ['a:/data', 'b:/data/'] }, 'volume_target_duplicate', 'services.svc.volumes[1]');
    rejects({ volumes: 'data:/data' }, 'type_invalid', 'services.svc.volumes');
    assert.equal(ok(one({ volumes: ['cache:/cache:ro'] })).services[0]?.volumes[0]?.readOnly, true);
  });

  it('env', () => {
    const e = rejects({ env: { KEY: '${ANTHROPIC_API_KEY}' } }, 'env_var_not_allowed', 'services.svc.env.KEY');
    assert.match(e.message, /ANTHROPIC_API_KEY/);
    rejects({ env: { KEY: 'x${TZ}y${HOME}' } }, 'env_var_not_allowed', 'services.svc.env.KEY');
    rejects({ env: ['KEY=${HOME}'] }, 'env_var_not_allowed', 'services.svc.env[0]');
    rejects({ env: { KEY: '$HOME' } }, 'env_interpolation_invalid', 'services.svc.env.KEY');
    rejects({ env: { KEY: '${TZ:-UTC}' } }, 'env_interpolation_invalid', 'services.svc.env.KEY');
    rejects({ env: { KEY: '${TZ' } }, 'env_interpolation_invalid', 'services.svc.env.KEY');
    rejects({ env: { '1BAD': 'x' } }, 'env_key_invalid', 'services.svc.env["1BAD"]');
    rejects({ env: ['A=1', 'A=2'] }, 'env_key_duplicate', 'services.svc.env[1]');
    rejects({ env: ['NOVALUE'] }, 'env_value_invalid', 'services.svc.env[0]');
    rejects({ env: { PI: 3.14 } }, 'env_value_invalid', 'services.svc.env.PI');
    rejects({ env: { PASSTHROUGH: null } }, 'env_value_invalid', 'services.svc.env.PASSTHROUGH');
    rejects({ env: { NESTED: { a: 1 } } }, 'env_value_invalid', 'services.svc.env.NESTED');
    rejects({ env: 'A=1' }, 'type_invalid', 'services.svc.env');
  });

  it('cap_add: only the safe set', () => {
    for (const cap of ['SYS_ADMIN', 'NET_ADMIN', 'SYS_PTRACE', 'NET_RAW', 'DAC_READ_SEARCH', 'SYS_RESOURCE', 'MKNOD', 'ALL', 'cap_sys_module']) {
      rejects({ cap_add: [cap] }, 'cap_not_allowed', 'services.svc.cap_add[0]');
    }
    rejects({ cap_add: [7] }, 'cap_not_allowed', 'services.svc.cap_add[0]');
    rejects({ cap_add: 'IPC_LOCK' }, 'type_invalid', 'services.svc.cap_add');
    const e = rejects({ cap_add: ['CHOWN', 'NET_ADMIN'] }, 'cap_not_allowed', 'services.svc.cap_add[1]');
    assert.match(e.hint_for_agent, /IPC_LOCK/);
    for (const cap of [...BASE_CAPS, 'NET_BIND_SERVICE', 'IPC_LOCK', 'SYS_NICE', 'KILL', 'FSETID']) ok(one({ cap_add: [cap] }));
  });

  it('resources: bounded', () => {
    rejects({ resources: { cpus: 3 } }, 'cpus_out_of_range', 'services.svc.resources.cpus');
    rejects({ resources: { cpus: 0 } }, 'cpus_out_of_range', 'services.svc.resources.cpus');
    rejects({ resources: { cpus: 'two' } }, 'cpus_invalid', 'services.svc.resources.cpus');
    rejects({ resources: { memory: '64q' } }, 'memory_invalid', 'services.svc.resources.memory');
    const e = rejects({ resources: { memory: 512 } }, 'memory_out_of_range', 'services.svc.resources.memory');
    assert.match(e.hint_for_agent, /512m/);
    rejects({ resources: { memory: '3g' } }, 'memory_out_of_range', 'services.svc.resources.memory');
    rejects({ resources: '1g' }, 'type_invalid', 'services.svc.resources');
    const three = { version: 1, services: { a: { image: 'redis:7.4', resources: { memory: '2g' } }, b: { image: 'redis:7.4', resources: { memory: '2g' } }, c: { image: 'redis:7.4' } } };
    assert.deepEqual(pairs(errors(three)), [['resources_total_exceeded', 'services']]);
    const bigger = { ...DEFAULT_POLICY, maxTotalMemoryBytes: 8 * GiB, maxCpus: 4 };
    ok(three, bigger);
    assert.equal(ok(one({ resources: { cpus: 4 } }), bigger).services[0]?.cpus, 4);
  });

  it('healthcheck', () => {
    rejects({ image: 'nginx:1.27', healthcheck: { interval: '5s' } }, 'healthcheck_test_missing', 'services.svc.healthcheck');
    rejects({ healthcheck: { test: ['CMD'] } }, 'healthcheck_test_invalid', 'services.svc.healthcheck.test');
    rejects({ healthcheck: { test: ['CMD-SHELL', 'a', 'b'] } }, 'healthcheck_test_invalid', 'services.svc.healthcheck.test');
    rejects({ healthcheck: { test: ['curl', 'x'] } }, 'healthcheck_test_invalid', 'services.svc.healthcheck.test');
    rejects({ healthcheck: { test: '' } }, 'healthcheck_test_invalid', 'services.svc.healthcheck.test');
    rejects({ healthcheck: { interval: '5 seconds' } }, 'duration_invalid', 'services.svc.healthcheck.interval');
    rejects({ healthcheck: { interval: '100ms' } }, 'value_out_of_range', 'services.svc.healthcheck.interval');
    rejects({ healthcheck: { timeout: '1h' } }, 'value_out_of_range', 'services.svc.healthcheck.timeout');
    rejects({ healthcheck: { retries: 0 } }, 'value_out_of_range', 'services.svc.healthcheck.retries');
    rejects({ healthcheck: { retries: 1.5 } }, 'type_invalid', 'services.svc.healthcheck.retries');
    rejects({ healthcheck: { disable: 'yes' } }, 'type_invalid', 'services.svc.healthcheck.disable');
  });

  it('command', () => {
    rejects({ command: 'redis-server "unclosed' }, 'command_invalid', 'services.svc.command');
    rejects({ command: [] }, 'command_invalid', 'services.svc.command');
    rejects({ command: ['a', 1] }, 'command_invalid', 'services.svc.command[1]');
  });

  it('document shape, version, services count and names', () => {
    assert.deepEqual(pairs(errors(null)), [['type_invalid', '']]);
    assert.deepEqual(pairs(errors(['a'])), [['type_invalid', '']]);
    assert.deepEqual(pairs(errors({})), [['key_missing', 'version'], ['key_missing', 'services']]);
    assert.deepEqual(pairs(errors({ version: 2, services: { redis: { image: 'redis:7.4' } } })), [['version_unsupported', 'version']]);
    assert.deepEqual(pairs(errors({ version: 1, services: {} })), [['services_empty', 'services']]);
    assert.deepEqual(pairs(errors({ version: 1, services: ['redis'] })), [['type_invalid', 'services']]);
    const services = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`s${i}`, { image: 'redis:7.4', resources: { memory: '64m' } }]));
    assert.deepEqual(pairs(errors({ version: 1, services })), [['services_too_many', 'services']]);
    for (const name of ['My-DB', 'db_1', '-db', 'db-', '1db', 'a'.repeat(33), 'd.b']) {
      const es = errors({ version: 1, services: { [name]: { image: 'redis:7.4' } } });
      assert.deepEqual(es.map((e) => e.code), ['service_name_invalid'], name);
      assert.equal(es[0]?.path, formatPath(['services', name]));
    }
    const hint = errors({ version: 1, services: { db_main: { image: 'redis:7.4' } } })[0]?.hint_for_agent;
    assert.match(hint ?? '', /"db-main"/);
    assert.deepEqual(pairs(errors({ version: 1, services: { localhost: { image: 'redis:7.4' } } })), [['service_name_reserved', 'services.localhost']]);
    assert.deepEqual(pairs(errors({ version: 1, services: { redis: 'redis:7.4' } })), [['type_invalid', 'services.redis']]);
  });
});

describe('stack manifest: all errors at once, in a stable document order', () => {
  const draft = {
    version: 1,
    services: {
      web_app: {
        image: 'nginx',
        ports: ['80:80'],
        volumes: ['/srv:/usr/share/nginx/html', 'cache:/cache'],
      },
      redis: {
        privileged: true,
        image: 'redis:latest',
        env: { PASS: '${AWS_SECRET_ACCESS_KEY}', OK: 'fine' },
        cap_add: ['IPC_LOCK', 'SYS_ADMIN', 'NET_RAW'],
        resources: { cpus: 8, memory: '16g' },
      },
      db: {
        image: 'ghcr.io/someone/postgres:16',
        healthcheck: { interval: 'often' },
        network_mode: 'host',
      },
    },
    networks: { default: {} },
  };
  const expected = [
    ['service_name_invalid', 'services.web_app'],
    ['image_tag_missing', 'services.web_app.image'],
    ['unknown_key', 'services.web_app.ports'],
    ['volume_host_bind', 'services.web_app.volumes[0]'],
    ['unknown_key', 'services.redis.privileged'],
    ['image_tag_latest', 'services.redis.image'],
    ['env_var_not_allowed', 'services.redis.env.PASS'],
    ['cap_not_allowed', 'services.redis.cap_add[1]'],
    ['cap_not_allowed', 'services.redis.cap_add[2]'],
    ['cpus_out_of_range', 'services.redis.resources.cpus'],
    ['memory_out_of_range', 'services.redis.resources.memory'],
    ['image_registry_not_allowed', 'services.db.image'],
    ['duration_invalid', 'services.db.healthcheck.interval'],
    ['unknown_key', 'services.db.network_mode'],
    ['unknown_key', 'networks'],
  ];

  it('reports every error of a many-error draft in document order', () => {
    assert.deepEqual(pairs(errors(draft)), expected);
  });

  it('the same list for the same draft, every time, and from YAML text', () => {
    const a = errors(draft);
    assert.deepEqual(errors(structuredClone(draft)), a);
    const yaml = `version: 1
services:
  web_app:
    image: nginx
    ports: ["80:80"]
    volumes:
      - /srv:/usr/share/nginx/html
      - cache:/cache
  redis:
    privileged: true
    image: redis:latest
    env:
      PASS: \${AWS_SECRET_ACCESS_KEY}
      OK: fine
    cap_add: [IPC_LOCK, SYS_ADMIN, NET_RAW]
    resources: {cpus: 8, memory: 16g}
  db:
    image: ghcr.io/someone/postgres:16
    healthcheck: {interval: often}
    network_mode: host
networks:
  default: {}
`;
    const r = validateManifestText(yaml);
    assert.ok(!r.ok);
    assert.deepEqual(r.errors, a);
  });

  it('order follows the document, not the schema: reordering keys reorders errors', () => {
    const es = errors({ version: 1, services: { svc: { cap_add: ['SYS_ADMIN'], image: 'redis' } } });
    assert.deepEqual(pairs(es), [['cap_not_allowed', 'services.svc.cap_add[0]'], ['image_tag_missing', 'services.svc.image']]);
    const es2 = errors({ services: { svc: { image: 'redis', cap_add: ['SYS_ADMIN'] } }, version: 3 });
    assert.deepEqual(pairs(es2), [['image_tag_missing', 'services.svc.image'], ['cap_not_allowed', 'services.svc.cap_add[0]'], ['version_unsupported', 'version']]);
  });

  it('a healthcheck without a test is reported even when the same service has other errors', () => {
    const es = errors(one({ image: 'nginx:1.27', env: { A: '$HOME' }, healthcheck: { interval: '5s' } }));
    assert.deepEqual(pairs(es), [['env_interpolation_invalid', 'services.svc.env.A'], ['healthcheck_test_missing', 'services.svc.healthcheck']]);
  });

  it('NUL bytes in env values and command words are refused (Docker would cut or reject them)', () => {
    assert.deepEqual(pairs(errors(one({ env: { A: 'x\u0000y' }, command: ['a\u0000b'] }))), [['env_value_invalid', 'services.svc.env.A'], ['command_invalid', 'services.svc.command[0]']]);
  });

  it('__proto__ as a service name or key from YAML is a plain, rejected name', () => {
    const r = validateManifestText('version: 1\nservices:\n  __proto__:\n    image: redis:7.4\n  redis:\n    image: redis:7.4\n    __proto__: {privileged: true}\n');
    assert.ok(!r.ok);
    assert.deepEqual(pairs(r.errors), [['service_name_invalid', 'services.__proto__'], ['unknown_key', 'services.redis.__proto__']]);
    assert.equal(({} as Record<string, unknown>)['privileged'], undefined);
  });

  it('a total that is too big is reported with the other errors, not after them', () => {
    const es = errors({ version: 1, services: { a: { image: 'redis', resources: { memory: '2g' } }, b: { image: 'redis:7.4', resources: { memory: '2g' } }, c: { image: 'redis:7.4' } } });
    assert.deepEqual(pairs(es), [['resources_total_exceeded', 'services'], ['image_tag_missing', 'services.a.image']]);
  });
});

describe('stack manifest text (YAML)', () => {
  it('syntax errors carry a line', () => {
    const r = parseManifestText('version: 1\nservices:\n  redis: {image: redis:7.4\n');
    assert.ok(!r.ok);
    assert.equal(r.errors[0]?.code, 'yaml_invalid');
    assert.match(r.errors[0]?.message ?? '', /line \d+/);
  });

  it('duplicate keys, several documents, an empty text, an oversized text are rejected', () => {
    const dup = parseManifestText('version: 1\nversion: 1\nservices: {}\n');
    assert.ok(!dup.ok);
    assert.match(dup.errors[0]?.message ?? '', /unique/);
    const two = parseManifestText('version: 1\n---\nversion: 1\n');
    assert.ok(!two.ok);
    assert.match(two.errors[0]?.message ?? '', /2 YAML documents/);
    const empty = validateManifestText('');
    assert.ok(!empty.ok);
    assert.equal(empty.errors[0]?.code, 'yaml_invalid');
    const big = validateManifestText(`version: 1\n# ${'x'.repeat(MAX_MANIFEST_BYTES)}\n`);
    assert.ok(!big.ok);
    assert.deepEqual(pairs(big.errors), [['manifest_too_large', '']]);
  });

  it('deep nesting is refused before validation, with a few errors, not thousands', () => {
    const deep = validateManifestText(`version: 1\nservices:\n  a:\n    image: redis:7.4\n    command: ${'['.repeat(40)}x${']'.repeat(40)}\n`);
    assert.ok(!deep.ok);
    assert.deepEqual(deep.errors.map((e) => e.code), ['yaml_invalid']);
    assert.match(deep.errors[0]?.message ?? '', /deeper than 16/);
    const bomb = validateManifestText('['.repeat(30000));
    assert.ok(!bomb.ok);
    assert.ok(bomb.errors.length <= 10, `${bomb.errors.length} errors`);
  });

  it('a billion-laughs alias bomb is refused, not expanded', () => {
    const lines = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]'];
    for (let i = 1; i < 9; i++) lines.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10).fill(`*${String.fromCharCode(96 + i)}`).join(',')}]`);
    const r = parseManifestText(lines.join('\n'));
    assert.ok(!r.ok);
    assert.equal(r.errors[0]?.code, 'yaml_invalid');
  });
});

describe('stack manifest helpers', () => {
  it('parseImageRef canonicalizes Docker Hub spellings', () => {
    const r = parseImageRef('index.docker.io/library/redis:7', { ...DEFAULT_POLICY });
    assert.ok(r.ok);
    assert.equal(r.image.repository, 'docker.io/library/redis');
    const port = parseImageRef('localhost:5000/x:1', { ...DEFAULT_POLICY, registries: ['localhost:5000'] });
    assert.ok(port.ok);
    assert.equal(port.image.repository, 'localhost:5000/x');
  });

  it('parseDuration, parseMemory, splitWords', () => {
    assert.equal(parseDuration('1h2m3s4ms'), 3_723_004);
    assert.equal(parseDuration(1.5), 1500);
    assert.equal(parseDuration('5'), null);
    assert.equal(parseMemory('512m'), 512 * MiB);
    assert.equal(parseMemory('1.5GiB'), 1.5 * GiB);
    assert.equal(parseMemory('1t'), null);
    assert.deepEqual(splitWords(`a "b \\" c" 'd'"e"`), ['a', 'b " c', 'de']);
    assert.equal(splitWords(`a 'b`), null);
  });
});
