import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateManifest, type Manifest } from '../../guest/stack/manifest.js';
import {
  LABEL_SERVICE,
  LABEL_SPEC,
  LABEL_STACK,
  MAX_WAIT_MS,
  containerSpec,
  describeStep,
  planApply,
  planDestroy,
  planDown,
  planReconcile,
  planReset,
  planRollback,
  planStart,
  planStop,
  resolveEnv,
  stackNames,
  type LiveContainer,
  type LiveState,
  type PlanResult,
  type Step,
} from '../../guest/stack/plan.js';

function m(services: Record<string, unknown>): Manifest {
  const r = validateManifest({ version: 1, services });
  assert.ok(r.ok, JSON.stringify(!r.ok && r.errors));
  return r.manifest;
}

const names = stackNames();
const empty: LiveState = { networks: [], volumes: [], images: [], containers: [], agent: null };
const stack = m({
  redis: { image: 'redis:7.4', volumes: { data: '/data' } },
  postgres: { image: 'local/postgres:ab12', env: { POSTGRES_PASSWORD: 'dev', TZ: '${TZ}' }, volumes: { data: '/var/lib/postgresql/data' } },
  web: { image: 'nginx:1.27' },
});

const steps = (r: PlanResult): Step[] => {
  assert.ok(r.ok, JSON.stringify(r));
  return r.steps;
};
const brief = (ss: Step[]) => ss.map(describeStep);

/** What Docker would hold after the given manifest was applied fully. */
function liveAfter(manifest: Manifest, o: { running?: boolean; vars?: Record<string, string> } = {}): LiveState {
  const containers: LiveContainer[] = manifest.services.map((s) => {
    const spec = containerSpec(s, names, o.vars ?? {});
    return { name: spec.name, running: o.running ?? true, labels: spec.labels };
  });
  return {
    networks: [{ name: names.network, internal: true }],
    volumes: manifest.services.flatMap((s) => s.volumes.map((v) => names.volume(s.name, v.name))),
    images: manifest.services.map((s) => s.image.ref),
    containers,
    agent: { name: 'vibebox-agent', attached: true },
  };
}

describe('stack plan: apply', () => {
  it('first apply: network → volumes → images → containers → health waits → attach the agent', () => {
    const ss = steps(planApply({ ...empty, agent: { name: 'vibebox-agent', attached: false } }, stack, null, { vars: { TZ: 'Europe/Paris' } }));
    assert.deepEqual(brief(ss), [
      'create internal network vibebox-stack',
      'create volume vibebox-stack-redis_data',
      'create volume vibebox-stack-postgres_data',
      'pull redis:7.4',
      'check local image local/postgres:ab12',
      'pull nginx:1.27',
      'create vibebox-stack-redis (redis:7.4, alias redis)',
      'start vibebox-stack-redis',
      'create vibebox-stack-postgres (local/postgres:ab12, alias postgres)',
      'start vibebox-stack-postgres',
      'create vibebox-stack-web (nginx:1.27, alias web)',
      'start vibebox-stack-web',
      'wait up to 212s for redis to be healthy',
      'wait up to 212s for postgres to be healthy',
      'wait up to 30s for web to run',
      'attach vibebox-agent to vibebox-stack',
    ]);
    const net = ss[0];
    assert.deepEqual(net, { kind: 'create_network', network: 'vibebox-stack', internal: true, labels: { [LABEL_STACK]: 'vibebox-stack' } });
  });

  it('containers are hardened, capped, named by service, env resolved', () => {
    const ss = steps(planApply(empty, stack, null, { vars: { TZ: 'Europe/Paris' } }));
    const pg = ss.find((s) => s.kind === 'create_container' && s.spec.service === 'postgres');
    assert.ok(pg && pg.kind === 'create_container');
    const spec = pg.spec;
    assert.equal(spec.name, 'vibebox-stack-postgres');
    assert.deepEqual(spec.aliases, ['postgres']);
    assert.equal(spec.hostname, 'postgres');
    assert.equal(spec.network, 'vibebox-stack');
    assert.deepEqual(spec.env, { POSTGRES_PASSWORD: 'dev', TZ: 'Europe/Paris' });
    assert.deepEqual(spec.capDrop, ['ALL']);
    assert.deepEqual(spec.capAdd, ['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'SETGID', 'SETUID']);
    assert.deepEqual(spec.securityOpt, ['no-new-privileges:true']);
    assert.equal(spec.nanoCpus, 1e9);
    assert.equal(spec.memoryBytes, 512 * 1024 ** 2);
    assert.equal(spec.memorySwapBytes, spec.memoryBytes);
    assert.ok(spec.pidsLimit > 0);
    assert.deepEqual(spec.mounts, [{ volume: 'vibebox-stack-postgres_data', target: '/var/lib/postgresql/data', readOnly: false }]);
    assert.deepEqual(spec.healthcheck, { test: ['CMD', 'pg_isready', '-q', '-h', '127.0.0.1'], intervalNs: 2e9, timeoutNs: 5e9, retries: 30, startPeriodNs: 0 });
    assert.equal(spec.labels[LABEL_SERVICE], 'postgres');
    assert.match(spec.labels[LABEL_SPEC] ?? '', /^[0-9a-f]{16}$/);
  });

  it('nothing to do when Docker already has the applied stack', () => {
    assert.deepEqual(steps(planApply(liveAfter(stack), stack, stack)), []);
  });

  it('a changed service is replaced (old removed, remembered for rollback); unchanged ones are left alone', () => {
    const next = m({
      redis: { image: 'redis:7.4', volumes: { data: '/data', aof: '/aof' } },
      postgres: { image: 'local/postgres:ab12', env: { POSTGRES_PASSWORD: 'dev', TZ: '${TZ}' }, volumes: { data: '/var/lib/postgresql/data' } },
      web: { image: 'nginx:1.27' },
    });
    const ss = steps(planApply(liveAfter(stack), next, stack));
    assert.deepEqual(brief(ss), [
      'create volume vibebox-stack-redis_aof',
      'remove vibebox-stack-redis',
      'create vibebox-stack-redis (redis:7.4, alias redis)',
      'start vibebox-stack-redis',
      'wait up to 212s for redis to be healthy',
    ]);
    const rm = ss[1];
    assert.ok(rm?.kind === 'remove_container');
    assert.equal(rm.restore?.labels[LABEL_SPEC], containerSpec(stack.services[0]!, names, {}).labels[LABEL_SPEC], 'restores the old spec');
    assert.equal(rm.restoreRunning, true);
  });

  it('a changed ${VAR} value recreates the service (the spec hash covers resolved env)', () => {
    const ss = steps(planApply(liveAfter(stack, { vars: { TZ: 'UTC' } }), stack, stack, { vars: { TZ: 'Asia/Tokyo' } }));
    assert.deepEqual(brief(ss).filter((l) => l.startsWith('create vibebox')), ['create vibebox-stack-postgres (local/postgres:ab12, alias postgres)']);
  });

  it('a dropped service is removed last, after the waits; its volumes stay', () => {
    const next = m({ redis: { image: 'redis:7.4', volumes: { data: '/data' } }, web: { image: 'nginx:1.28' } });
    const ss = steps(planApply(liveAfter(stack), next, stack));
    assert.deepEqual(brief(ss), [
      'pull nginx:1.28',
      'remove vibebox-stack-web',
      'create vibebox-stack-web (nginx:1.28, alias web)',
      'start vibebox-stack-web',
      'wait up to 30s for web to run',
      'remove vibebox-stack-postgres',
    ]);
    assert.ok(!ss.some((s) => s.kind === 'remove_volume'));
  });

  it('a stopped service is started; containers of other stacks or none are never touched', () => {
    const live = liveAfter(stack);
    live.containers = live.containers.map((c) => (c.name === 'vibebox-stack-web' ? { ...c, running: false } : c));
    live.containers.push({ name: 'vibebox-stack-controller', running: true, labels: {} });
    live.containers.push({ name: 'other', running: true, labels: { [LABEL_STACK]: 'other-stack', [LABEL_SERVICE]: 'x' } });
    assert.deepEqual(brief(steps(planApply(live, stack, stack))), ['start vibebox-stack-web', 'wait up to 30s for web to run']);
  });

  it('an existing network that is not internal is refused, not reused', () => {
    const r = planApply({ ...empty, networks: [{ name: 'vibebox-stack', internal: false }] }, stack, null);
    assert.ok(!r.ok);
    assert.equal(r.code, 'network_not_internal');
  });

  it('health waits follow the healthcheck and are capped', () => {
    const slow = m({ s: { image: 'nginx:1.27', healthcheck: { test: 'true', interval: '5m', timeout: '5m', retries: 100 } } });
    const wait = steps(planApply(empty, slow, null)).find((s) => s.kind === 'wait_healthy');
    assert.ok(wait?.kind === 'wait_healthy');
    assert.equal(wait.timeoutMs, MAX_WAIT_MS);
    const quick = m({ s: { image: 'nginx:1.27', healthcheck: { test: 'true', interval: '1s', timeout: '1s', retries: 2 } } });
    const w2 = steps(planApply(empty, quick, null, { maxWaitMs: 5000 })).find((s) => s.kind === 'wait_healthy');
    assert.ok(w2?.kind === 'wait_healthy');
    assert.equal(w2.timeoutMs, 5000);
  });
});

describe('stack plan: rollback', () => {
  it('a failed first apply undoes everything it created, in reverse order', () => {
    const ss = steps(planApply({ ...empty, agent: { name: 'vibebox-agent', attached: false } }, stack, null));
    const failedAt = ss.findIndex((s) => s.kind === 'wait_healthy' && s.service === 'postgres');
    const undo = planRollback(ss.slice(0, failedAt), ss[failedAt]);
    assert.deepEqual(brief(undo), [
      'remove vibebox-stack-web',
      'remove vibebox-stack-postgres',
      'remove vibebox-stack-redis',
      'remove volume vibebox-stack-postgres_data',
      'remove volume vibebox-stack-redis_data',
      'remove network vibebox-stack',
    ]);
  });

  it('a failure after attaching the agent detaches it before the network goes', () => {
    const ss = steps(planApply({ ...empty, agent: { name: 'vibebox-agent', attached: false } }, m({ web: { image: 'nginx:1.27' } }), null));
    const undo = planRollback(ss);
    assert.deepEqual(brief(undo), ['detach vibebox-agent from vibebox-stack', 'remove vibebox-stack-web', 'remove network vibebox-stack']);
  });

  it('a half-done create is undone too; pulls and waits have no undo', () => {
    const ss = steps(planApply(empty, m({ web: { image: 'nginx:1.27' } }), null));
    const createAt = ss.findIndex((s) => s.kind === 'create_container');
    assert.deepEqual(brief(planRollback(ss.slice(0, createAt), ss[createAt])), ['remove vibebox-stack-web', 'remove network vibebox-stack']);
    const pullAt = ss.findIndex((s) => s.kind === 'pull_image');
    assert.deepEqual(brief(planRollback(ss.slice(0, pullAt), ss[pullAt])), ['remove network vibebox-stack']);
  });

  it('a replaced service comes back as it was; a service only started is stopped again', () => {
    const next = m({
      redis: { image: 'redis:7.4', volumes: { data: '/data' }, resources: { memory: '256m' } },
      postgres: { image: 'local/postgres:ab12', env: { POSTGRES_PASSWORD: 'dev', TZ: '${TZ}' }, volumes: { data: '/var/lib/postgresql/data' } },
      web: { image: 'nginx:1.27' },
    });
    const live = liveAfter(stack);
    live.containers = live.containers.map((c) => (c.name === 'vibebox-stack-web' ? { ...c, running: false } : c));
    const ss = steps(planApply(live, next, stack));
    assert.deepEqual(brief(ss), [
      'remove vibebox-stack-redis',
      'create vibebox-stack-redis (redis:7.4, alias redis)',
      'start vibebox-stack-redis',
      'start vibebox-stack-web',
      'wait up to 212s for redis to be healthy',
      'wait up to 30s for web to run',
    ]);
    const undo = planRollback(ss.slice(0, 5), ss[5]);
    assert.deepEqual(brief(undo), ['stop vibebox-stack-web', 'remove vibebox-stack-redis', 'create vibebox-stack-redis (redis:7.4, alias redis)', 'start vibebox-stack-redis']);
    const recreated = undo[2];
    assert.ok(recreated?.kind === 'create_container');
    assert.equal(recreated.spec.memoryBytes, 512 * 1024 ** 2, 'the old spec, not the proposed one');
  });

  it('a failure while removing a dropped service restores the ones already removed', () => {
    const next = m({ web: { image: 'nginx:1.27' } });
    const ss = steps(planApply(liveAfter(stack), next, stack));
    assert.deepEqual(brief(ss), ['remove vibebox-stack-redis', 'remove vibebox-stack-postgres']);
    const undo = planRollback(ss.slice(0, 1), ss[1]);
    assert.deepEqual(brief(undo), ['create vibebox-stack-redis (redis:7.4, alias redis)', 'start vibebox-stack-redis']);
  });

  it('nothing completed, nothing to undo', () => {
    assert.deepEqual(planRollback([]), []);
  });
});

describe('stack plan: reconcile after a reboot', () => {
  it('recreates what is missing and starts what is stopped, re-attaches the agent, removes nothing', () => {
    const live = liveAfter(stack);
    live.networks = [];
    live.containers = live.containers.filter((c) => c.name !== 'vibebox-stack-redis').map((c) => ({ ...c, running: false }));
    live.containers.push({ name: 'vibebox-stack-leftover', running: true, labels: { [LABEL_STACK]: 'vibebox-stack', [LABEL_SERVICE]: 'leftover' } });
    live.agent = { name: 'vibebox-agent', attached: false };
    assert.deepEqual(brief(steps(planReconcile(live, stack))), [
      'create internal network vibebox-stack',
      'create vibebox-stack-redis (redis:7.4, alias redis)',
      'start vibebox-stack-redis',
      'start vibebox-stack-postgres',
      'start vibebox-stack-web',
      'wait up to 212s for redis to be healthy',
      'wait up to 212s for postgres to be healthy',
      'wait up to 30s for web to run',
      'attach vibebox-agent to vibebox-stack',
    ]);
  });

  it('a `docker rm`ed service with its image gone and its volume gone comes back whole', () => {
    const live = liveAfter(stack);
    live.containers = live.containers.filter((c) => c.name !== 'vibebox-stack-postgres');
    live.volumes = live.volumes.filter((v) => v !== 'vibebox-stack-postgres_data');
    live.images = live.images.filter((i) => i !== 'local/postgres:ab12');
    assert.deepEqual(brief(steps(planReconcile(live, stack))), [
      'create volume vibebox-stack-postgres_data',
      'check local image local/postgres:ab12',
      'create vibebox-stack-postgres (local/postgres:ab12, alias postgres)',
      'start vibebox-stack-postgres',
      'wait up to 212s for postgres to be healthy',
    ]);
  });

  it('an intact stack needs nothing', () => {
    assert.deepEqual(steps(planReconcile(liveAfter(stack), stack)), []);
  });
});

describe('stack plan: down, destroy, names, env', () => {
  it('down keeps volumes, destroy removes them; only this stack', () => {
    const live = liveAfter(stack);
    live.volumes.push('vibebox-state', 'unrelated');
    live.containers.push({ name: 'vibebox-agent', running: true, labels: {} });
    assert.deepEqual(brief(planDown(live)), [
      'detach vibebox-agent from vibebox-stack',
      'remove vibebox-stack-redis',
      'remove vibebox-stack-postgres',
      'remove vibebox-stack-web',
      'remove network vibebox-stack',
    ]);
    assert.deepEqual(brief(planDestroy(live)).slice(5), ['remove volume vibebox-stack-redis_data', 'remove volume vibebox-stack-postgres_data']);
  });

  it('volume names cannot collide across services', () => {
    assert.notEqual(names.volume('a', 'b-c'), names.volume('a-b', 'c'));
  });

  it('resolveEnv substitutes ${VAR} (unset → empty) and unescapes $$', () => {
    assert.deepEqual(resolveEnv({ A: '${TZ}/x', B: '$$5 ${NOPE}', C: 'plain $ sign' }, { TZ: 'UTC' }), { A: 'UTC/x', B: '$5 ', C: 'plain $ sign' });
  });
});

describe('stack plan: the agent operates applied services only', () => {
  it('reset wipes the service\'s volumes and recreates it empty', () => {
    assert.deepEqual(brief(planReset(liveAfter(stack), stack, 'redis') ?? []), [
      'remove vibebox-stack-redis',
      'remove volume vibebox-stack-redis_data',
      'create volume vibebox-stack-redis_data',
      'create vibebox-stack-redis (redis:7.4, alias redis)',
      'start vibebox-stack-redis',
      'wait up to 212s for redis to be healthy',
    ]);
    assert.equal(planReset(liveAfter(stack), stack, 'mongo'), null, 'not in the applied manifest');
  });

  it('start recreates or starts one service; stop stops it; unknown names are refused', () => {
    const live = liveAfter(stack);
    live.containers = live.containers.filter((c) => c.name !== 'vibebox-stack-web');
    live.agent = { name: 'vibebox-agent', attached: false };
    assert.deepEqual(brief(steps(planStart(live, stack, 'web') ?? { ok: true, steps: [] })), [
      'create vibebox-stack-web (nginx:1.27, alias web)',
      'start vibebox-stack-web',
      'wait up to 30s for web to run',
    ]);
    assert.deepEqual(steps(planStart(liveAfter(stack), stack, 'web') ?? { ok: true, steps: [] }), []);
    assert.equal(planStart(live, stack, 'evil'), null);
    assert.deepEqual(brief(planStop(liveAfter(stack), stack, 'redis') ?? []), ['stop vibebox-stack-redis']);
    assert.deepEqual(planStop(liveAfter(stack, { running: false }), stack, 'redis'), []);
    assert.equal(planStop(liveAfter(stack), stack, 'evil'), null);
  });
});
