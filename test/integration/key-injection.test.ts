// Keys never enter the VM, end to end, in one booted session. A key of ~/.vibebox/.env with an
// injection rule reaches the agent container as a placeholder; the host proxy terminates the
// request to the rule's host with the vibebox CA (trusted in the container), puts the real key in,
// and logs the request with the rule that did, never the key.
//
// The model provider is a stand-in: this machine cannot reach api.anthropic.com, so a TLS server
// on host loopback plays it (and github.com for git, and registry.npmjs.org, "another allowed host"), with
// certificates of a test CA. The proxy reaches it through its test-only upstream override
// (proxy/test-upstream.ts), which this file turns on with NODE_ENV=test, VIBEBOX_TEST_UPSTREAM=1
// and a temporary VIBEBOX_HOME; the test CA is trusted for upstreams in that mode only.
//
// The key's value is then looked for in the VM while a streamed answer is held open (so a request
// is in flight), and after: in every process's environment, in `docker inspect`, in the guest's
// files, on the VM disk and in the saved guest RAM.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, existsSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import type http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VibeboxCa } from '../../proxy/ca.js';
import { pidsMatching, spawnVb, testEnv, until, vb, within, type TestEnv } from '../helpers/vm.js';

const LONG = { timeoutMs: 600_000 };
const SECRET = `sk-ant-api03-vibebox-real-key-${Date.now()}-never-in-the-vm`;
const GH_SECRET = `ghp_vibebox-real-key-${Date.now()}-never-in-the-vm`;
/** Matches SECRET (any digits where its timestamp is) without containing it: the search in the VM must not carry the key in. */
const NEEDLE = 'vibebox-real-key-[0-9]+-never-in-the-vm';

/** Whether `needle` occurs in the file (read in chunks, overlapping by the needle's length). */
function fileHas(file: string, needle: string): boolean {
  const n = Buffer.from(needle);
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(8 * 1024 * 1024 + n.length);
    let carry = 0;
    for (;;) {
      const got = readSync(fd, buf, carry, buf.length - carry, null);
      if (got === 0) return false;
      const len = carry + got;
      if (buf.subarray(0, len).indexOf(n) >= 0) return true;
      carry = Math.min(n.length - 1, len);
      buf.copy(buf, 0, len - carry, len);
    }
  } finally {
    closeSync(fd);
  }
}

/** The search for the key in the running VM (as root): process environments, docker inspect, files. */
const SEARCH = `cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | grep -cE '${NEEDLE}' || true; docker inspect vibebox-agent | grep -cE '${NEEDLE}' || true; grep -rlE '${NEEDLE}' /etc /home /root /tmp /var/lib/docker /workspace 2>/dev/null | wc -l`;

type Seen = { host: string; url: string; headers: http.IncomingHttpHeaders };

describe('keys stay on the host (a fake provider on host loopback stands in for the real one)', () => {
  let t: TestEnv;
  let proj: string;
  let dir: string;
  let fake: https.Server;
  const seen: Seen[] = [];
  let release: () => void = () => undefined;
  let streamSent = 0;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vbt-keys-ca-'));
    const testCa = VibeboxCa.loadOrCreate(join(dir, 'ca'), 'fake public CA');
    writeFileSync(join(dir, 'test-ca.pem'), testCa.certPem);
    fake = https.createServer({ SNICallback: (name, cb) => cb(null, testCa.leaf(name).context) }, (req, res) => {
      seen.push({ host: req.headers.host ?? '', url: req.url ?? '', headers: req.headers });
      req.resume();
      if ((req.url ?? '').includes('/info/refs')) {
        // git's first request goes without credentials; the 401 makes it ask its helper
        if (req.headers.authorization === undefined) {
          res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="fake"', 'Content-Type': 'text/plain' });
          return void res.end('auth\n');
        }
        res.writeHead(403, { 'Content-Type': 'text/plain' });
        return void res.end('seen\n');
      }
      if (req.url === '/v1/messages') {
        // the first event at once, the second only when the test has searched the VM (or after 5 min)
        res.writeHead(200, { 'Content-Type': 'text/event-stream' });
        res.write('data: first\n\n');
        streamSent = 1;
        const end = () => {
          if (streamSent === 2) return;
          streamSent = 2;
          res.end('data: second\n\n');
        };
        const timer = setTimeout(end, 300_000);
        release = () => {
          clearTimeout(timer);
          end();
        };
        return;
      }
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end(`ok ${req.headers.host ?? ''}\n`);
    });
    await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r));
    const port = (fake.address() as { port: number }).port;
    t = testEnv({
      NODE_ENV: 'test',
      VIBEBOX_TEST_UPSTREAM: '1',
      VIBEBOX_TEST_UPSTREAM_PORTS: `api.anthropic.com=${port},registry.npmjs.org=${port},github.com=${port}`,
      VIBEBOX_TEST_UPSTREAM_CA: join(dir, 'test-ca.pem'),
    });
    // a user rule whose host the network policy does not allow: the run says so in one line
    writeFileSync(join(t.home, 'inject.toml'), '[[inject]]\nenv = "MYTOOL_KEY"\nhost = "api.mytool.example"\nheader = "x-mytool-key"\n', { mode: 0o644 });
    writeFileSync(join(t.home, '.env'), `ANTHROPIC_API_KEY=${SECRET}\nGH_TOKEN=${GH_SECRET}\nMYTOOL_KEY=mytool-value-0123456789\n`, { mode: 0o600 });
    proj = t.project('keys');
    const r = await vb(t, proj, ['exec', '--', 'true'], LONG);
    assert.equal(r.code, 0, `the session did not start: ${r.stderr}`);
  });
  after(async () => {
    release();
    t?.cleanup();
    await new Promise<void>((r) => (fake ? fake.close(() => r()) : r()));
    fake?.closeAllConnections();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the agent gets a placeholder; the provider gets the real key, another host the placeholder; a stream arrives chunk by chunk, and while it is open the key is nowhere in the VM', { timeout: 900_000 }, async () => {
    const script = [
      'printenv ANTHROPIC_API_KEY',
      // the rule's host, terminated by the host proxy (the certificate the container sees is the vibebox CA's)
      'curl -sS -v --max-time 120 -o /dev/null -w "status=%{http_code}\\n" -H "x-api-key: $ANTHROPIC_API_KEY" "https://api.anthropic.com/v1/models?limit=1" 2>&1 | grep -E "issuer:|^status="',
      // another allowed host: a plain tunnel to the fake (whose test CA the container does not trust: -k)
      'curl -sS -k --max-time 120 -o /dev/null -w "other=%{http_code}\\n" -H "x-api-key: $ANTHROPIC_API_KEY" https://registry.npmjs.org/some-package',
      // git push over HTTPS: git asks the credential helper of the run's env, which hands it the placeholder
      '(cd /tmp && rm -rf r && git init -q r && cd r && git -c user.email=a@b.c -c user.name=a commit -q --allow-empty -m x && GIT_TERMINAL_PROMPT=0 git push https://github.com/vibebox/test.git HEAD:main >/dev/null 2>&1; echo "git=$?")',
      // a streamed answer, line by line as it comes
      'curl -sS -N --max-time 400 -H "x-api-key: $ANTHROPIC_API_KEY" -d "{}" https://api.anthropic.com/v1/messages | while IFS= read -r l; do if [ -n "$l" ]; then echo "got:$l"; fi; done',
    ].join('; ');
    const run = spawnVb(t, proj, ['run', '--', 'sh', '-c', script]);
    let out = '';
    let err = '';
    run.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    run.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    run.stdin!.end();
    const exited = new Promise<number | null>((r) => run.on('close', (code) => r(code)));
    try {
      await until(() => out.includes('got:data: first') || run.exitCode !== null, 480_000, 'the first event of the stream in the container');
      assert.ok(out.includes('got:data: first'), `stdout: ${out}\nstderr: ${err}`);
      // the second event is not sent yet: the first came through on its own, and a request is in flight
      assert.equal(streamSent, 1);
      assert.ok(!out.includes('got:data: second'));
      const during = await vb(t, proj, ['exec', '--user', 'root', '--', 'sh', '-c', SEARCH], LONG);
      assert.equal(during.code, 0, during.stderr);
      assert.deepEqual(during.stdout.trim().split('\n'), ['0', '0', '0'], 'the key is in the VM while a request is in flight (environ, docker inspect, files)');
      assert.equal(streamSent, 1, 'the stream was still open during the search');
      release();
      assert.equal(await within(exited, 120_000, 'the run to end'), 0, err);
    } finally {
      if (run.exitCode === null) run.kill('SIGKILL');
    }
    const lines = out.trim().split('\n');
    const placeholder = lines[0] ?? '';
    assert.match(placeholder, /^sk-ant-api03-[A-Za-z0-9]{95}$/);
    assert.ok(!out.includes(SECRET));
    assert.match(out, /issuer:.*vibebox local CA/, out);
    assert.match(out, /^status=200$/m, out);
    assert.match(out, /^other=200$/m, out);
    assert.deepEqual(lines.filter((l) => l.startsWith('got:')), ['got:data: first', 'got:data: second']);
    // what arrived upstream
    const models = seen.find((s) => s.url.startsWith('/v1/models'));
    const stream = seen.find((s) => s.url === '/v1/messages');
    const other = seen.find((s) => s.url === '/some-package');
    assert.equal(models?.headers['x-api-key'], SECRET, 'the rule host gets the real key');
    assert.equal(models?.host, 'api.anthropic.com');
    assert.equal(stream?.headers['x-api-key'], SECRET);
    assert.equal(other?.host, 'registry.npmjs.org');
    assert.equal(other?.headers['x-api-key'], placeholder, 'another host gets the placeholder as it was sent');
    // git: the helper's placeholder went in as the password, the real token came out at github.com
    const git = seen.find((s) => s.host === 'github.com' && s.headers.authorization !== undefined);
    assert.equal(git?.headers.authorization, `Basic ${Buffer.from(`x-access-token:${GH_SECRET}`).toString('base64')}`, 'git push reaches github.com with the real token');
    assert.match(out, /^git=[1-9]/m, 'the fake refuses the push after it has seen the token');
    // the rule whose host the policy does not allow: one line at the run
    const warn = err.split('\n').filter((l) => l.includes('MYTOOL_KEY'));
    assert.deepEqual(warn, ['vibebox: MYTOOL_KEY: api.mytool.example is not allowed by the network policy, so the key is never put in there (vibebox allow api.mytool.example)'], err);
    // the record: one line per request, the rule that injected, never the key, the placeholder or the query
    const log = await vb(t, proj, ['logs', 'egress', '--json'], LONG);
    const recs = log.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.ok(recs.some((l) => l['host'] === 'api.anthropic.com' && l['path'] === '/v1/models' && l['injected'] === 'anthropic' && l['status'] === 200), log.stdout);
    assert.ok(recs.some((l) => l['host'] === 'api.anthropic.com' && l['path'] === '/v1/messages' && l['injected'] === 'anthropic'), log.stdout);
    assert.ok(recs.some((l) => l['host'] === 'registry.npmjs.org' && l['method'] === 'CONNECT' && l['injected'] === undefined && Number(l['bytes_down']) > 0), log.stdout);
    assert.ok(recs.some((l) => l['host'] === 'github.com' && l['injected'] === 'github-git'), log.stdout);
    assert.ok(!log.stdout.includes(SECRET) && !log.stdout.includes(GH_SECRET) && !log.stdout.includes(placeholder) && !log.stdout.includes('limit=1'));
    const explain = await vb(t, proj, ['explain'], LONG);
    assert.match(explain.stdout, /ANTHROPIC_API_KEY: injected by the host proxy for api\.anthropic\.com/);
    assert.match(explain.stdout, /MYTOOL_KEY: .*not for api\.mytool\.example: not allowed by the network policy/);
  });

  it('after the requests the value is in no process environment, not in docker inspect, not in the files, not on the VM disk, not in the saved RAM', { timeout: 900_000 }, async () => {
    const check = await vb(t, proj, ['exec', '--user', 'root', '--', 'sh', '-c', `${SEARCH}; grep -c 'BEGIN CERTIFICATE' /etc/vibebox/host-cas.pem`], LONG);
    assert.equal(check.code, 0, check.stderr);
    const [envs, inspect, files, cas] = check.stdout.trim().split('\n');
    assert.equal(envs, '0');
    assert.equal(inspect, '0');
    assert.equal(files, '0');
    assert.ok(Number(cas) >= 1, 'the vibebox CA is installed in the guest');
    const stop = await vb(t, proj, ['stop', '--suspend'], LONG);
    assert.equal(stop.code, 0, stop.stderr);
    const state = join(proj, '.vibebox', 'saved-state');
    await until(() => existsSync(`${state}.ram`) && pidsMatching(t.home, 'qemu-system').length === 0, 300_000, 'the suspend to save the RAM');
    for (const key of [SECRET, GH_SECRET]) {
      assert.ok(!fileHas(`${state}.ram`, key), 'the key is in the saved guest RAM');
      assert.ok(!fileHas(state, key), 'the key is in the saved device state');
      assert.ok(!fileHas(join(proj, '.vibebox', 'disk.qcow2'), key), 'the key is on the VM disk');
    }
  });
});
