// The launcher as a real process: env + kit.json in, a listening server out, clear refusals.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { keyFingerprint } from '../../guest/kit/auth.js';
import { KitClient } from '../../guest/kit/client.js';

const MAIN = fileURLToPath(new URL('../../guest/kit/main.ts', import.meta.url));
const KEY = 'z'.repeat(32);

function launch(env: Record<string, string>): { out: Promise<{ code: number | null; stdout: string; stderr: string }>; firstLine: Promise<string>; kill: () => void } {
  const p = spawn(process.execPath, ['--import', 'tsx', MAIN], { env: { PATH: process.env['PATH'] ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let resolveLine!: (l: string) => void;
  const firstLine = new Promise<string>((r) => (resolveLine = r));
  p.stdout.on('data', (d) => {
    stdout += d;
    if (stdout.includes('\n')) resolveLine(stdout.split('\n')[0]!);
  });
  p.stderr.on('data', (d) => (stderr += d));
  const timer = setTimeout(() => p.kill('SIGKILL'), 20_000); // every wait has a deadline
  const out = new Promise<{ code: number | null; stdout: string; stderr: string }>((r) =>
    p.on('exit', (code) => {
      clearTimeout(timer);
      resolveLine(stdout);
      r({ code, stdout, stderr });
    }),
  );
  return { out, firstLine, kill: () => p.kill('SIGTERM') };
}

describe('kit launcher (guest/kit/main.ts)', () => {
  let dir: string;
  let env: Record<string, string>;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'kit-main-'));
    writeFileSync(join(dir, 'agent.mjs'), 'import { writeFile } from "node:fs/promises";\nexport async function* run(p, ctx) { await writeFile(ctx.outputDir + "/o.txt", p.text.toUpperCase()); yield { event_type: "done" }; return "ok"; }\n');
    writeFileSync(join(dir, 'kit.json'), JSON.stringify({ name: 'launched', version: '0.0.1', key_fingerprint: keyFingerprint(KEY) }));
    env = {
      VIBEBOX_KIT_KEY: KEY,
      VIBEBOX_KIT_MANIFEST: join(dir, 'kit.json'),
      VIBEBOX_KIT_RUNNABLE: join(dir, 'agent.mjs'),
      VIBEBOX_KIT_PORT: '0',
      VIBEBOX_KIT_HOST: '127.0.0.1',
      VIBEBOX_KIT_STATE: join(dir, 'state'),
      VIBEBOX_KIT_INPUT: join(dir, 'input'),
      VIBEBOX_KIT_OUTPUT: join(dir, 'output'),
      VIBEBOX_KIT_WORK: join(dir, 'work'),
    };
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('boots from env + kit.json, serves a prompt, stops on SIGTERM', async () => {
    const k = launch(env);
    const line = await k.firstLine;
    const m = /^kit launched 0\.0\.1 listening on (http:\/\/127\.0\.0\.1:\d+)$/.exec(line);
    assert.ok(m, line);
    assert.ok(!line.includes(KEY));
    const client = KitClient.make({ endpoints: { l: { url: m[1]!.replace('http', 'ws') + '/', key: KEY } } });
    const h = client.box('l').prompt('shout');
    assert.equal(await h.message, 'ok');
    assert.equal((await h.read('o.txt')).toString(), 'SHOUT');
    await client.close();
    k.kill();
    assert.equal((await k.out).code, 0);
  });

  it('refuses a key that does not match the manifest fingerprint', async () => {
    const r = await launch({ ...env, VIBEBOX_KIT_KEY: 'y'.repeat(32) }).out;
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^vibebox-kit: E_KEY_INVALID: VIBEBOX_KIT_KEY does not match key_fingerprint/);
  });

  it('refuses a missing key and an invalid outputs policy with one-line errors', async () => {
    const { VIBEBOX_KIT_KEY: _k, ...noKey } = env;
    const r1 = await launch(noKey).out;
    assert.equal(r1.code, 2);
    assert.match(r1.stderr, /E_CONFIG_INVALID/);
    writeFileSync(join(dir, 'bad.json'), JSON.stringify({ name: 'b', version: '1', storage: { outputs: { rules: [{ kind: 'url' }] } } }));
    const r2 = await launch({ ...env, VIBEBOX_KIT_MANIFEST: join(dir, 'bad.json') }).out;
    assert.equal(r2.code, 2);
    assert.match(r2.stderr, /^vibebox-kit: E_POLICY_INVALID: outputs policy: rule 0: the url adapter is read-only/);
    assert.equal(r2.stderr.trim().split('\n').length, 1);
  });
});
