// The stack, end to end: services built from Debian packages in the VM, proposed by the
// agent from its container, reviewed and applied from the host, used by name from the agent
// container; rollback, reset, reconcile after a restart, and the host-only walls. Real QEMU (TCG
// here), real Docker in it, the real egress proxy and Debian archive. One booted session.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bootedSession, vb, type RunResult, type TestEnv } from '../helpers/vm.js';

const LONG = { timeoutMs: 1_200_000 };

/** Postgres over its wire protocol from the agent container (node is in the agent base): startup as
 * postgres (trust), one simple query, print its first value. */
const PG_QUERY = `
const net = require('node:net');
const [host, sql] = process.argv.slice(2);
const s = net.connect(5432, host);
const str = (x) => Buffer.from(x + '\\0');
const params = Buffer.concat([str('user'), str('postgres'), str('database'), str('postgres'), Buffer.from([0])]);
const head = Buffer.alloc(8); head.writeInt32BE(8 + params.length); head.writeInt32BE(196608, 4);
s.write(Buffer.concat([head, params]));
let buf = Buffer.alloc(0); let sent = false;
const t = setTimeout(() => { console.error('timeout'); process.exit(3); }, 20000);
s.on('data', (d) => {
  buf = Buffer.concat([buf, d]);
  while (buf.length >= 5) {
    const type = String.fromCharCode(buf[0]); const len = buf.readInt32BE(1);
    if (buf.length < 1 + len) break;
    const body = buf.subarray(5, 1 + len); buf = buf.subarray(1 + len);
    if (type === 'E') { console.error('error: ' + body.toString()); process.exit(1); }
    if (type === 'Z' && !sent) { sent = true; const q = str(sql); const h = Buffer.alloc(5); h.write('Q'); h.writeInt32BE(4 + q.length, 1); s.write(Buffer.concat([h, q])); }
    else if (type === 'D') { const n = body.readInt32BE(2); console.log(body.subarray(6, 6 + n).toString()); clearTimeout(t); s.end(); process.exit(0); }
  }
});
s.on('error', (e) => { console.error(e.message); process.exit(2); });
`;

/** One redis command over bash's /dev/tcp: the raw reply. */
const redis = (cmd: string) => `exec 3<>/dev/tcp/redis/6379 && printf '${cmd}\\r\\n' >&3 && timeout 3 cat <&3 | head -n 1; true`;

describe('the stack', () => {
  let t: TestEnv;
  let proj: string;
  let redisImage = '';
  let pgImage = '';
  const times: Record<string, number> = {};
  const timed = async <T>(name: string, f: () => Promise<T>): Promise<T> => {
    const t0 = Date.now();
    try {
      return await f();
    } finally {
      times[name] = Math.round((Date.now() - t0) / 100) / 10;
    }
  };
  const host = (args: string[], input?: string): Promise<RunResult> => vb(t, proj, args, { ...LONG, ...(input !== undefined ? { input } : {}) });
  const agent = (cmd: string): Promise<RunResult> => vb(t, proj, ['run', '--', 'bash', '-c', cmd], LONG);
  const root = (cmd: string): Promise<RunResult> => vb(t, proj, ['exec', '--user', 'root', '--', 'sh', '-c', cmd], LONG);
  const leftovers = async () => (await root('docker ps -aq --filter label=vibebox.stack; docker volume ls -q --filter label=vibebox.stack; docker network inspect vibebox-stack >/dev/null 2>&1 && echo network-left')).stdout.trim();

  before(async () => {
    ({ t, proj } = await bootedSession('stack'));
    writeFileSync(join(proj, 'pg.js'), PG_QUERY);
  });
  after(() => {
    process.stderr.write(`stack test timings (s): ${JSON.stringify(times)}\n`);
    t?.cleanup();
  });

  it('builds redis and postgres images from Debian packages, through the proxy', { timeout: 2_400_000 }, async () => {
    const r = await timed('image redis', () => host(['stack', 'image', 'redis', '--apt', 'redis-server', '--run', 'mkdir -p /data && chown vibe:vibe /data']));
    assert.equal(r.code, 0, r.stderr);
    redisImage = r.stdout.trim();
    assert.match(redisImage, /^local\/redis:[0-9a-f]{16}$/);
    const p = await timed('image postgres', () => host(['stack', 'image', 'postgres', '--apt', 'postgresql', '--run', 'mkdir -p /data && chown vibe:vibe /data && ln -s /usr/lib/postgresql/*/bin /usr/local/pgbin']));
    assert.equal(p.code, 0, p.stderr);
    pgImage = p.stdout.trim();
    assert.match(pgImage, /^local\/postgres:[0-9a-f]{16}$/);
    // Built already: found by its content hash, not rebuilt.
    const again = await host(['stack', 'image', 'redis', '--apt', 'redis-server', '--run', 'mkdir -p /data && chown vibe:vibe /data']);
    assert.equal(again.stdout.trim(), redisImage);
    assert.match(again.stderr, /built already/);
  });

  it('a service whose healthcheck fails rolls back: no container, volume or network left; wait says rolled_back and why', { timeout: 900_000 }, async () => {
    writeFileSync(join(proj, 'broken.yml'), `version: 1\nservices:\n  broken:\n    image: ${redisImage}\n    command: ["sleep", "3600"]\n    volumes:\n      data: /data\n    healthcheck:\n      test: ["CMD", "false"]\n      interval: 1s\n      retries: 2\n`);
    const pr = await agent('vibebox-stack propose /workspace/broken.yml');
    assert.equal(pr.code, 0, pr.stderr);
    const ap = await timed('apply (rolled back)', () => host(['stack', 'apply', '-y']));
    assert.equal(ap.code, 1, ap.stdout + ap.stderr);
    assert.match(ap.stderr, /rolled_back: .*broken is unhealthy/);
    assert.equal(await leftovers(), '', 'the rollback left something behind');
    const w = await agent('vibebox-stack wait --timeout 30');
    assert.equal(w.code, 1, w.stdout + w.stderr);
    assert.match(w.stdout, /"state":"rolled_back"/);
    assert.match(w.stderr, /rolled_back: .*unhealthy/);
  });

  it('propose (agent) → diff → apply (host) → the agent uses redis and postgres by name', { timeout: 1_200_000 }, async () => {
    const pgCmd = 'test -s /data/PG_VERSION || { /usr/local/pgbin/initdb -D /data -U postgres --auth=trust >/dev/null && echo "host all all 0.0.0.0/0 trust" >> /data/pg_hba.conf; }; exec /usr/local/pgbin/postgres -D /data -c listen_addresses=\'*\' -k /tmp';
    writeFileSync(
      join(proj, 'stack.yml'),
      `version: 1\nservices:\n  redis:\n    image: ${redisImage}\n    command: ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--dir", "/data"]\n    volumes:\n      data: /data\n  postgres:\n    image: ${pgImage}\n    command: ["sh", "-c", ${JSON.stringify(pgCmd)}]\n    volumes:\n      data: /data\n`,
    );
    const pr = await timed('propose', () => agent('vibebox-stack propose /workspace/stack.yml'));
    assert.equal(pr.code, 0, pr.stderr);
    assert.match(pr.stdout, /\+ redis \(new\)/);
    const diff = await host(['stack', 'diff']);
    assert.equal(diff.code, 0, diff.stderr);
    assert.match(diff.stdout, /2 to add/);
    assert.match(diff.stdout, /\+ postgres \(new\)/);
    // Without a terminal, apply must be told -y.
    const ask = await host(['stack', 'apply']);
    assert.equal(ask.code, 2);
    assert.match(ask.stderr, /^vibebox: stack apply needs confirmation/m);
    const ap = await timed('apply', () => host(['stack', 'apply', '-y']));
    assert.equal(ap.code, 0, ap.stdout + ap.stderr);
    assert.match(ap.stdout, /applied: redis, postgres/);
    const w = await timed('wait', () => agent('vibebox-stack wait --timeout 300'));
    assert.equal(w.code, 0, w.stdout + w.stderr);
    const info = await agent('vibebox-stack info');
    const map = JSON.parse(info.stdout) as Record<string, { address: string }>;
    assert.equal(map['redis']?.address, 'redis:6379');
    assert.equal(map['postgres']?.address, 'postgres:5432');
    const ping = await agent(redis('PING'));
    assert.equal(ping.stdout.trim(), '+PONG', ping.stderr);
    const q = await agent('node /workspace/pg.js postgres "select 40 + 2"');
    assert.equal(q.code, 0, q.stderr);
    assert.equal(q.stdout.trim(), '42');
    const st = await host(['stack', 'status']);
    assert.match(st.stdout, /redis\s+healthy/);
    assert.match(st.stdout, /postgres\s+healthy/);
    const logs = await host(['stack', 'logs', 'redis']);
    assert.match(logs.stdout, /Ready to accept connections/);
  });

  it('an agent container cannot apply, down or destroy: refused, and nothing changed', { timeout: 600_000 }, async () => {
    // A fresh proposal is waiting; the agent tries to apply it, and to tear the stack down.
    writeFileSync(join(proj, 'more.yml'), `version: 1\nservices:\n  cache:\n    image: ${redisImage}\n    command: ["redis-server"]\n`);
    assert.equal((await agent('vibebox-stack propose /workspace/more.yml')).code, 0);
    const tries = await agent(
      'for r in apply destroy down proposal; do curl -s --noproxy "*" -o /dev/null -w "$r %{http_code}\\n" -X POST http://stack-controller:7000/v1/$r; done; ls /run/vibebox-stack /run/docker.sock 2>&1 | grep -c "No such file"; vibebox-stack apply; echo "cli $?"',
    );
    assert.match(tries.stdout, /^apply 403\ndestroy 403\ndown 403\nproposal 403\n2\ncli 2\n$/, tries.stdout + tries.stderr);
    const st = await host(['stack', 'status']);
    assert.match(st.stdout, /redis\s+healthy/);
    assert.match(st.stdout, /postgres\s+healthy/);
    assert.doesNotMatch(st.stdout, /cache/);
    assert.match(st.stdout, /Proposal [0-9a-f]{16} .* is waiting/);
    assert.equal((await agent(redis('PING'))).stdout.trim(), '+PONG');
    // Proposing the live stack again leaves nothing pending: wait answers ready.
    assert.equal((await agent('vibebox-stack propose /workspace/stack.yml && vibebox-stack wait --timeout 60')).code, 0);
  });

  it('reset redis wipes its volume; the agent can stop and start an approved service only', { timeout: 600_000 }, async () => {
    assert.match((await agent(redis('SET k v'))).stdout, /\+OK/);
    assert.match((await agent(redis('SAVE'))).stdout, /\+OK/);
    const vol = '/var/lib/docker/volumes/vibebox-stack-redis_data/_data';
    assert.equal((await root(`ls ${vol}`)).stdout.trim(), 'dump.rdb');
    const r = await timed('reset', () => agent('vibebox-stack reset redis'));
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await root(`ls ${vol}`)).stdout.trim(), '');
    assert.equal((await agent(redis('GET k'))).stdout.trim(), '$-1');
    const unknown = await agent('vibebox-stack start cache');
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /not a service of the applied stack/);
    assert.equal((await agent('vibebox-stack stop redis')).code, 0);
    assert.match((await root('docker inspect -f "{{.State.Running}}" vibebox-stack-redis')).stdout, /false/);
    assert.equal((await agent('vibebox-stack start redis')).code, 0);
    assert.equal((await agent(redis('PING'))).stdout.trim(), '+PONG');
  });

  it('a removed service comes back after a VM restart (reconcile), and the agent reaches it again', { timeout: 1_200_000 }, async () => {
    assert.equal((await root('docker rm -f vibebox-stack-redis >/dev/null && echo removed')).stdout.trim(), 'removed');
    assert.equal((await host(['stop'])).code, 0);
    const t0 = Date.now();
    assert.equal((await host(['exec', '--', 'true'])).code, 0);
    const w = await agent('vibebox-stack wait --timeout 600');
    times['restart → ready'] = Math.round((Date.now() - t0) / 100) / 10;
    assert.equal(w.code, 0, w.stdout + w.stderr);
    assert.equal((await agent(redis('PING'))).stdout.trim(), '+PONG');
    assert.equal((await agent('node /workspace/pg.js postgres "select 1"')).stdout.trim(), '1');
  });

  it('destroy -y removes services, network and volumes', { timeout: 600_000 }, async () => {
    const noTerm = await host(['stack', 'destroy']);
    assert.equal(noTerm.code, 2);
    const d = await host(['stack', 'destroy', '-y']);
    assert.equal(d.code, 0, d.stderr);
    assert.equal(await leftovers(), '');
  });
});
