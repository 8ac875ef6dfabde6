// Port forwarding and the kit runtime, end to end from the host: real QEMU (TCG here),
// QEMU hostfwd on 127.0.0.1 onto the guest agent's relay, real Docker in the VM for the agent
// container and the kit container, and the SDK imported by the package's own name. One session.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bootedSession, spawnVb, until, vb, type RunResult, type TestEnv } from '../helpers/vm.js';
import type * as Sdk from '../../guest/kit/sdk.js';
import { freePort } from '../../src/net/free-port.js';

const LONG = { timeoutMs: 900_000 };
const INLINE_BOUND = 64 * 1024;
const BIG = 200 * 1024;


async function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string } | { error: string }> {
  try {
    const r = await fetch(url, { headers, signal: AbortSignal.timeout(20_000) });
    return { status: r.status, body: await r.text() };
  } catch (e) {
    const c = (e as { cause?: { code?: string } }).cause;
    return { error: c?.code ?? (e as Error).message };
  }
}

const KIT_MODULE = `
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
export const kit = {
  name: 'testkit',
  version: '0.0.1',
  storage: { outputs: { rules: [{ kind: 'inline', below: ${INLINE_BOUND} }, { kind: 'localServer', ttl: '1h' }] } },
};
export async function* run(p, ctx) {
  if (p.text === 'sleep') {
    yield { event_type: 'started', data: null };
    await new Promise((resolve, reject) => {
      const t = setTimeout(resolve, 300000);
      ctx.signal.addEventListener('abort', () => { clearTimeout(t); reject(ctx.signal.reason); });
    });
    return 'slept';
  }
  const input = await readFile(join(ctx.inputDir, 'in.txt'), 'utf8');
  yield { event_type: 'text_delta', data: { text: 'read ' + input.length } };
  await writeFile(join(ctx.outputDir, 'small.txt'), input.toUpperCase());
  await writeFile(join(ctx.outputDir, 'big.bin'), Buffer.alloc(${BIG}, 7));
  return 'done: ' + p.inputs.join(',');
}
`;

describe('ports and kits', () => {
  let t: TestEnv;
  let proj: string;
  let vmPort: number;
  let ctrPort: number;
  let kitPort: number;
  let kitKey: string;
  let sdk: typeof Sdk;
  const cli = (args: string[], o: { timeoutMs?: number } = {}): Promise<RunResult> => vb(t, proj, args, { ...LONG, ...o });

  before(async () => {
    ({ t, proj } = await bootedSession('kit'));
    // By the package's own name, as a user's program imports it (package.json "exports").
    const spec = 'vibebox/kit';
    sdk = (await import(spec)) as typeof Sdk;
  });
  after(() => t?.cleanup());

  it('vibebox port reaches a server in the VM, bound to its loopback', { timeout: 300_000 }, async () => {
    // Started in the background; the exec returns once it listens (node starts slowly under TCG).
    const s = await cli(['exec', '--', 'bash', '-c', `setsid -f node -e "require('http').createServer((q,s)=>s.end('vm-ok')).listen(3000,'127.0.0.1')" >/dev/null 2>&1
      for i in $(seq 240); do (echo > /dev/tcp/127.0.0.1/3000) 2>/dev/null && exit 0; sleep 0.5; done; echo 'the server did not listen within 120 s' >&2; exit 1`]);
    assert.equal(s.code, 0, s.stderr);
    vmPort = await freePort();
    const t0 = Date.now();
    const p = await cli(['port', '3000', String(vmPort)]);
    const openMs = Date.now() - t0;
    assert.equal(p.code, 0, p.stderr);
    assert.match(p.stdout, new RegExp(`127\\.0\\.0\\.1:${vmPort} → guest port 3000`));
    const t1 = Date.now();
    const r = await get(`http://127.0.0.1:${vmPort}/`);
    process.stderr.write(`# measured: vibebox port ${openMs} ms; first request through the forward ${Date.now() - t1} ms\n`);
    assert.deepEqual(r, { status: 200, body: 'vm-ok' });
  });

  it('a forward reaches a server in the agent container when nothing in the VM listens', { timeout: 900_000 }, async () => {
    // As a user would: a dev server running in the foreground of a `vibebox run`, opened from the host.
    // The first run on a fresh VM disk imports the agent base image (minutes under TCG): its own step.
    const first = await cli(['run', '--', 'true']);
    assert.equal(first.code, 0, first.stderr);
    ctrPort = await freePort();
    const p = await cli(['port', '4000', String(ctrPort)]);
    assert.equal(p.code, 0, p.stderr);
    const server = spawnVb(t, proj, ['run', '--', 'node', '-e', "require('http').createServer((q,s)=>s.end('container-ok')).listen(4000,'0.0.0.0')"]);
    let out = '';
    server.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    server.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    let exited: number | null | undefined;
    server.on('exit', (code) => (exited = code));
    let last: unknown;
    try {
      await until(
        async () => {
          last = await get(`http://127.0.0.1:${ctrPort}/`);
          if (exited !== undefined) throw new Error(`vibebox run exited (${exited}): ${out}`);
          return typeof last === 'object' && last !== null && 'status' in last;
        },
        180_000,
        `the container's server through 127.0.0.1:${ctrPort}`,
      ).catch((e: Error) => {
        throw new Error(`${e.message}; last answer ${JSON.stringify(last)}; vibebox run output: ${out}`);
      });
      assert.deepEqual(last, { status: 200, body: 'container-ok' });
    } finally {
      server.kill('SIGTERM');
    }
  });

  it('a host port in use is a one-line error naming it (exit 1); explain and `vibebox port` list the forwards', { timeout: 120_000 }, async () => {
    const busy: Server = await new Promise((r) => {
      const srv = createServer();
      srv.listen(0, '127.0.0.1', () => r(srv));
    });
    const port = (busy.address() as { port: number }).port;
    try {
      const p = await cli(['port', '3000', String(port)]);
      assert.equal(p.code, 1, p.stderr);
      assert.equal(p.stderr.trim().split('\n').length, 1, p.stderr);
      assert.match(p.stderr, new RegExp(`^vibebox: host port 127\\.0\\.0\\.1:${port} is in use \\(`));
    } finally {
      busy.close();
    }
    const ex = await cli(['explain']);
    assert.match(ex.stdout, new RegExp(`127\\.0\\.0\\.1:${vmPort} → 3000 \\[session\\]`));
    assert.match(ex.stdout, new RegExp(`127\\.0\\.0\\.1:${ctrPort} → 4000 \\[session\\]`));
    assert.doesNotMatch(ex.stdout, new RegExp(`127\\.0\\.0\\.1:${port}`));
    const ls = await cli(['port', '--json']);
    const fs = JSON.parse(ls.stdout) as { host: number; state: string }[];
    assert.deepEqual(fs.map((f) => [f.host, f.state]).sort(), [[vmPort, 'open'], [ctrPort, 'open']].sort());
  });

  it('kit build writes dist/ (0600 key, fingerprint in kit.json); kit serve runs it in the VM behind a forward', { timeout: 900_000 }, async () => {
    mkdirSync(join(proj, 'kitsrc'));
    writeFileSync(join(proj, 'kitsrc', 'agent.mjs'), KIT_MODULE);
    const b = await cli(['kit', 'build', 'kitsrc/agent.mjs', '--out', 'kitdist']);
    assert.equal(b.code, 0, b.stderr);
    assert.equal(statSync(join(proj, 'kitdist', 'kit.key')).mode & 0o777, 0o600);
    kitPort = await freePort();
    const t0 = Date.now();
    const s = await cli(['kit', 'serve', 'kitdist', '--port', String(kitPort)]);
    assert.equal(s.code, 0, s.stderr);
    process.stderr.write(`# measured: kit serve ${Date.now() - t0} ms (base image already imported by the run before)\n`);
    assert.match(s.stdout, new RegExp(`serving at ws://127\\.0\\.0\\.1:${kitPort}/ \\(key: .*kitdist/kit\\.key\\)`));
    const { readFileSync } = await import('node:fs');
    kitKey = readFileSync(join(proj, 'kitdist', 'kit.key'), 'utf8').trim();
    const ls = await cli(['kit', 'ls']);
    assert.match(ls.stdout, /^testkit\trunning$/m);
    assert.match(ls.stdout, new RegExp(`127\\.0\\.0\\.1:${kitPort} → guest 8080 \\(vibebox-kit-testkit\\) \\[kit\\]`));
    // The key and the secrets are on the VM's tmpfs (0600, the vibe uid), nowhere on the VM disk.
    const where = await cli(['exec', '--user', 'root', '--', 'sh', '-c', `f=/run/vibebox/kits/testkit/secrets.json; stat -c '%a %U' "$f" && findmnt -n -o FSTYPE --target "$f" && grep -c -F -e "$1" "$f" && ! grep -r -l -F -e "$1" /var/lib/vibebox/kits`, 'sh', kitKey]);
    assert.equal(where.code, 0, where.stdout + where.stderr);
    assert.deepEqual(where.stdout.trim().split('\n'), ['600 vibe', 'tmpfs', '1']);
  });

  it('the SDK sends a prompt with an inline input; a big output comes back as a server FileRef and reads back', { timeout: 300_000 }, async () => {
    const client = sdk.KitClient.make({ endpoints: { k: { url: `ws://127.0.0.1:${kitPort}/`, key: kitKey } } });
    try {
      const t0 = Date.now();
      const run = client.box('k').prompt('shout', { files: { 'in.txt': { bytes: Buffer.from('hello kit') } } });
      const events: string[] = [];
      for await (const ev of run.events) events.push(`${ev.event_type} ${JSON.stringify(ev.data)}`);
      assert.equal(await run.message, 'done: in.txt');
      process.stderr.write(`# measured: prompt round trip (connect, input, 2 outputs) ${Date.now() - t0} ms\n`);
      assert.deepEqual(events, ['text_delta {"text":"read 9"}']);
      const outputs = await run.outputs;
      assert.equal(outputs['small.txt']?.kind, 'inline');
      assert.equal(outputs['big.bin']?.kind, 'server', 'an output above the inline bound is parked on the kit');
      assert.equal((await run.read('small.txt')).toString(), 'HELLO KIT');
      const t1 = Date.now();
      const big = await run.read('big.bin');
      process.stderr.write(`# measured: read a ${BIG}-byte server FileRef ${Date.now() - t1} ms\n`);
      assert.equal(big.length, BIG);
      assert.ok(big.every((b) => b === 7));
    } finally {
      await client.close();
    }
  });

  it('a wrong key is refused on every route but /health', { timeout: 120_000 }, async () => {
    const base = `http://127.0.0.1:${kitPort}`;
    const wrong = { authorization: `Bearer ${'x'.repeat(43)}` };
    assert.deepEqual(await get(`${base}/health`), { status: 200, body: '{"ok":true,"name":"testkit","version":"0.0.1"}' });
    for (const path of ['/environment', '/files/00000000-0000-0000-0000-000000000000', '/files/x?consume=1']) {
      const r = await get(`${base}${path}`, wrong);
      assert.ok('status' in r && r.status === 401, `${path}: ${JSON.stringify(r)}`);
      const none = await get(`${base}${path}`);
      assert.ok('status' in none && none.status === 401, `${path} without a key: ${JSON.stringify(none)}`);
    }
    const bad = sdk.KitClient.make({ endpoints: { k: { url: `ws://127.0.0.1:${kitPort}/`, key: 'x'.repeat(43) } }, connectAttempts: 1 });
    const run = bad.box('k').prompt('shout', { files: { 'in.txt': { bytes: Buffer.from('x') } } });
    await assert.rejects(run.message, (e: Error & { code?: string }) => e.code === 'E_UNAUTHORIZED');
    await bad.close();
    const ok = await get(`${base}/environment`, { authorization: `Bearer ${kitKey}` });
    assert.ok('status' in ok && ok.status === 200, JSON.stringify(ok));
    assert.equal((JSON.parse(ok.body) as { protocol_version: number }).protocol_version, 1);
  });

  it('abort stops a long prompt', { timeout: 120_000 }, async () => {
    const client = sdk.KitClient.make({ endpoints: { k: { url: `ws://127.0.0.1:${kitPort}/`, key: kitKey } } });
    try {
      const run = client.box('k').prompt('sleep');
      const it = run.events[Symbol.asyncIterator]();
      const first = await it.next();
      assert.equal(first.value?.event_type, 'started');
      const t0 = Date.now();
      run.abort();
      await assert.rejects(run.message, (e: Error & { code?: string }) => e.code === 'E_ABORTED');
      const ms = Date.now() - t0;
      process.stderr.write(`# measured: abort → error frame ${ms} ms\n`);
      assert.ok(ms < 30_000, `abort took ${ms} ms`);
      // The connection still serves the next prompt.
      const next = client.box('k').prompt('shout', { files: { 'in.txt': { bytes: Buffer.from('again') } } });
      assert.equal(await next.message, 'done: in.txt');
    } finally {
      await client.close();
    }
  });

  it('kit stop removes the kit and its forward', { timeout: 300_000 }, async () => {
    const s = await cli(['kit', 'stop', 'testkit']);
    assert.equal(s.code, 0, s.stderr);
    const r = await get(`http://127.0.0.1:${kitPort}/health`);
    assert.ok('error' in r, `the kit still answers: ${JSON.stringify(r)}`);
    const ls = await cli(['kit', 'ls']);
    assert.doesNotMatch(ls.stdout, /testkit/);
    // Its secrets left with it: no file, and the key nowhere in the kit directories of the VM.
    const gone = await cli(['exec', '--user', 'root', '--', 'sh', '-c', `test ! -e /run/vibebox/kits/testkit && test ! -e /var/lib/vibebox/kits/testkit/secrets.json && ! grep -r -l -F -e "$1" /run/vibebox/kits /var/lib/vibebox/kits`, 'sh', kitKey]);
    assert.equal(gone.code, 0, `the kit's secrets are still in the VM after kit stop: ${gone.stdout}${gone.stderr}`);
  });

  it('the forwards are gone after vibebox stop', { timeout: 300_000 }, async () => {
    assert.equal((await cli(['stop'])).code, 0);
    for (const p of [vmPort, ctrPort]) {
      const r = await get(`http://127.0.0.1:${p}/`);
      assert.ok('error' in r, `127.0.0.1:${p} still answers after stop: ${JSON.stringify(r)}`);
      // and the port is free again on the host
      await new Promise<void>((res, rej) => {
        const srv = createServer();
        srv.once('error', rej);
        srv.listen(p, '127.0.0.1', () => srv.close(() => res()));
      });
    }
  });
});
