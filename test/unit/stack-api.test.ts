// The stack-controller's API surface, pure: which listener serves which route (the
// agent never reaches apply/down/destroy), the argv of both CLIs, the service container body.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AGENT_ROUTES, ApplyRequest, HOST_ONLY_ROUTES, hostArgv, parseAgentArgv, parseHostArgv, portsFor, route, type HostCommand } from '../../guest/stack/api.js';
import { serviceContainerBody } from '../../guest/stack/engine-body.js';
import { containerSpec, stackNames } from '../../guest/stack/plan.js';
import { validateManifest } from '../../guest/stack/manifest.js';
import { controllerBody } from '../../guest/stack/controller-container.js';
import { renderStatus } from '../../guest/stack/status-text.js';
import { needsConfirm } from '../../src/cli/stack.js';

describe('stack API routes', () => {
  it('the agent listener refuses every host-only route with 403, whatever the method', () => {
    for (const name of HOST_ONLY_ROUTES) {
      for (const method of ['GET', 'POST', 'DELETE']) {
        const r = route('agent', method, `/v1/${name}`);
        assert.equal(r.ok, false);
        assert.equal(!r.ok && r.status, 403, `${method} ${name}`);
        assert.match(!r.ok ? r.message : '', /host-only/);
      }
    }
    assert.equal(route('agent', 'POST', '/v1/apply?dryRun=1').ok, false);
    assert.equal(route('agent', 'POST', '/v1/destroy/redis').ok, false);
  });

  it('the host listener serves everything; the agent listener the agent routes', () => {
    const methods: Record<string, string> = { propose: 'POST', start: 'POST', stop: 'POST', reset: 'POST', apply: 'POST', down: 'POST', destroy: 'POST' };
    for (const name of [...AGENT_ROUTES, ...HOST_ONLY_ROUTES]) {
      const svc = ['start', 'stop', 'reset', 'logs'].includes(name) ? '/redis' : '';
      const r = route('host', methods[name] ?? 'GET', `/v1/${name}${svc}`);
      assert.ok(r.ok, name);
      if ((AGENT_ROUTES as readonly string[]).includes(name)) assert.ok(route('agent', methods[name] ?? 'GET', `/v1/${name}${svc}`).ok, name);
    }
    assert.deepEqual(route('agent', 'GET', '/v1/logs/redis?follow=1'), { ok: true, name: 'logs', service: 'redis' });
  });

  it('unknown paths, bad service names and wrong methods are refused', () => {
    const status = (l: 'agent' | 'host', m: string, u: string) => {
      const r = route(l, m, u);
      return r.ok ? 200 : r.status;
    };
    assert.equal(status('host', 'GET', '/v1/nope'), 404);
    assert.equal(status('host', 'GET', '/v2/status'), 404);
    assert.equal(status('host', 'GET', '/v1/status/extra'), 404);
    assert.equal(status('host', 'POST', '/v1/reset'), 404);
    assert.equal(status('host', 'POST', '/v1/reset/..'), 404);
    assert.equal(status('host', 'POST', '/v1/reset/Redis'), 404);
    assert.equal(status('host', 'GET', '/v1/apply'), 405);
    assert.equal(status('agent', 'GET', '/v1/propose'), 405);
  });

  it('apply requests are strict', () => {
    assert.deepEqual(ApplyRequest.parse({}), { dryRun: false });
    assert.equal(ApplyRequest.safeParse({ dryRun: true, force: true }).success, false);
    assert.equal(ApplyRequest.safeParse({ expect: 'not-a-hash' }).success, false);
  });
});

describe('vibebox stack argv (host → guest)', () => {
  it('round-trips every command', () => {
    const cmds: HostCommand[] = [
      { cmd: 'diff' },
      { cmd: 'apply', dryRun: true, confirm: false },
      { cmd: 'apply', dryRun: false, confirm: true },
      { cmd: 'down' },
      { cmd: 'destroy', confirm: true },
      { cmd: 'status' },
      { cmd: 'logs', service: 'redis', follow: true },
      { cmd: 'image', name: 'redis', apt: ['redis-server', 'redis-tools=5:7.0.15-1~deb12u1'], run: ['mkdir -p /data', 'chown vibe /data'] },
    ];
    for (const c of cmds) assert.deepEqual(parseHostArgv(hostArgv(c)), { ok: true, value: c });
  });

  it('refuses what it does not know, in one message', () => {
    const bad = (argv: string[], re: RegExp) => {
      const r = parseHostArgv(argv);
      assert.equal(r.ok, false, argv.join(' '));
      assert.match(!r.ok ? r.message : '', re);
    };
    bad([], /unknown stack command/);
    bad(['apply', '--force'], /unexpected --force/);
    bad(['down', 'now'], /no arguments/);
    bad(['logs'], /one service name/);
    bad(['logs', 'Bad_Name'], /one service name/);
    bad(['image', 'Redis', '--apt', 'x'], /lower-case/);
    bad(['image', 'redis'], /--apt/);
    bad(['image', 'redis', '--apt', 'bad;rm'], /not a Debian package/);
    bad(['image', 'redis', '--run'], /needs a command/);
    bad(['image', 'redis', 'stray'], /unexpected stray/);
  });

  it('apply and destroy need -y without a terminal; with one they ask', () => {
    assert.throws(() => needsConfirm(undefined, 'apply', false), /stack apply needs confirmation/);
    assert.throws(() => needsConfirm(false, 'destroy', false), (e: Error & { exitCode?: number }) => e.exitCode === 2);
    assert.equal(needsConfirm(true, 'apply', false), false);
    assert.equal(needsConfirm(undefined, 'apply', true), true);
  });
});

describe('vibebox-stack argv (agent)', () => {
  it('parses each command', () => {
    assert.deepEqual(parseAgentArgv(['propose', 'stack.yml']), { ok: true, value: { cmd: 'propose', file: 'stack.yml' } });
    assert.deepEqual(parseAgentArgv(['wait']), { ok: true, value: { cmd: 'wait', timeoutS: 600 } });
    assert.deepEqual(parseAgentArgv(['wait', '--timeout', '30']), { ok: true, value: { cmd: 'wait', timeoutS: 30 } });
    assert.deepEqual(parseAgentArgv(['wait', '--timeout=5']), { ok: true, value: { cmd: 'wait', timeoutS: 5 } });
    assert.deepEqual(parseAgentArgv(['reset', 'redis']), { ok: true, value: { cmd: 'reset', service: 'redis' } });
    assert.deepEqual(parseAgentArgv(['logs', '-f', 'redis']), { ok: true, value: { cmd: 'logs', service: 'redis', follow: true } });
    assert.deepEqual(parseAgentArgv(['info']), { ok: true, value: { cmd: 'info' } });
  });

  it('has no apply, down or destroy', () => {
    for (const c of ['apply', 'down', 'destroy']) assert.equal(parseAgentArgv([c]).ok, false, c);
    assert.equal(parseAgentArgv(['wait', '--timeout', 'x']).ok, false);
    assert.equal(parseAgentArgv(['start']).ok, false);
    assert.equal(parseAgentArgv(['propose']).ok, false);
  });

  it('info ports: the image\'s exposed ports, else the well-known one', () => {
    assert.deepEqual(portsFor('local/redis', []), [6379]);
    assert.deepEqual(portsFor('docker.io/library/postgres', []), [5432]);
    assert.deepEqual(portsFor('local/thing', ['8080/tcp', '80/tcp']), [80, 8080]);
    assert.deepEqual(portsFor('local/thing', []), []);
  });
});

describe('container bodies', () => {
  it('a service: caps dropped, no-new-privileges, limits, volumes only, its alias on the internal stack network', () => {
    const m = validateManifest({ version: 1, services: { redis: { image: 'local/redis:abc', command: ['redis-server'], volumes: { data: '/data' } } } });
    assert.ok(m.ok);
    const b = serviceContainerBody(containerSpec(m.manifest.services[0]!, stackNames(), {}));
    const hc = b['HostConfig'] as Record<string, unknown>;
    assert.deepEqual(hc['CapDrop'], ['ALL']);
    assert.deepEqual(hc['SecurityOpt'], ['no-new-privileges:true']);
    assert.equal(hc['Privileged'], false);
    assert.equal(hc['NetworkMode'], 'vibebox-stack');
    assert.equal(hc['Binds'], undefined);
    assert.deepEqual(hc['Mounts'], [{ Type: 'volume', Source: 'vibebox-stack-redis_data', Target: '/data', ReadOnly: false }]);
    assert.equal(hc['Memory'], hc['MemorySwap']);
    assert.ok((hc['PidsLimit'] as number) > 0);
    assert.deepEqual(b['NetworkingConfig'], { EndpointsConfig: { 'vibebox-stack': { Aliases: ['redis'] } } });
    assert.deepEqual(b['Cmd'], ['redis-server']);
    assert.deepEqual((b['Healthcheck'] as { Test: string[] }).Test, ['CMD', 'redis-cli', 'ping']);
  });

  it('the controller: the Docker socket, but no capability and only the internal network', () => {
    const b = controllerBody('vibebox/agent:base');
    const hc = b['HostConfig'] as Record<string, unknown>;
    assert.deepEqual(hc['CapDrop'], ['ALL']);
    assert.equal(hc['NetworkMode'], 'vibebox-internal');
    assert.equal(hc['ReadonlyRootfs'], true);
    assert.ok((hc['Binds'] as string[]).includes('/run/docker.sock:/run/docker.sock'));
    assert.deepEqual(b['NetworkingConfig'], { EndpointsConfig: { 'vibebox-internal': { Aliases: ['stack-controller'] } } });
  });
});

describe('stack status text', () => {
  it('shows services, the last apply and a waiting proposal', () => {
    const t = renderStatus({
      live: true,
      down: false,
      services: [{ name: 'redis', image: 'local/redis:1', state: 'running', health: 'healthy' }],
      last_apply: { status: 'applied', reason: '', time: '2026-01-01T00:00:00.000Z' },
      proposed: { time: '2026-01-01T00:01:00.000Z', hash: '0123456789abcdef' },
    });
    assert.match(t, /redis\s+healthy\s+local\/redis:1/);
    assert.match(t, /Last apply: applied/);
    assert.match(t, /Proposal 0123456789abcdef .* is waiting/);
    assert.equal(renderStatus({ live: false, down: false, services: [], last_apply: null, proposed: null }), 'No stack applied.\n');
  });
});

describe(':explain stack section', () => {
  it('says none, or the live services, the last apply and a waiting proposal', async () => {
    const { stackSummary } = await import('../../guest/stack/summary.js');
    assert.match(stackSummary(null), /none proposed or applied/);
    assert.match(stackSummary('{'), /unreadable/);
    const m = validateManifest({ version: 1, services: { redis: { image: 'local/redis:abc' } } });
    assert.ok(m.ok);
    const state = { version: 1, live: m.manifest, proposed: { manifest: m.manifest, text: 'x', time: '2026-01-01T00:01:00.000Z' }, last_apply: { status: 'rolled_back', reason: 'redis is unhealthy', time: '2026-01-01T00:02:00.000Z' }, down: false };
    const t = stackSummary(JSON.stringify(state));
    assert.match(t, /services: redis \(local\/redis:abc\)/);
    assert.match(t, /last apply: rolled_back at .*: redis is unhealthy/);
    assert.match(t, /proposal from 2026-01-01T00:01:00.000Z: redis/);
  });
});
