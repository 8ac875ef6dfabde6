// `vibebox kit build` and `kit serve`'s pure parts: the manifest, .env.example, the
// Dockerfile, the kit container's hardening, the secrets file, the dist path in the VM; then a
// real build (esbuild) in a temp dir, and the SDK imported by the package name with its types.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { keyFingerprint } from '../../guest/kit/auth.js';
import { KitManifestFile } from '../../guest/kit/main-schema.js';
import { kitContainerBody, kitSecrets } from '../../guest/containers/kit.js';
import { dockerfile, envExample, kitManifest } from '../../src/kit/plan.js';
import { guestPathOf } from '../../src/cli/kit.js';
import { VibeboxError } from '../../src/errors.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BUILT = existsSync(join(ROOT, 'dist', 'kit-server.mjs')) && existsSync(join(ROOT, 'dist', 'kit.js'));
const KEY = 'k'.repeat(43);

describe('kit manifest', () => {
  it('carries the key fingerprint, the defaults and the protocol version, and the launcher accepts it', () => {
    const m = kitManifest({ env: { API: { required: true, secret: true } } }, { name: 'a', version: '1.0.0', key: KEY });
    assert.equal(m.key_fingerprint, keyFingerprint(KEY));
    assert.equal(m.base, 'vibebox/agent:base');
    assert.equal(m.protocol_version, 1);
    assert.deepEqual(m.fs?.['input'], { path: '/input', writable: false });
    assert.deepEqual(KitManifestFile.parse(JSON.parse(JSON.stringify(m))), m);
    assert.ok(!JSON.stringify(m).includes(KEY), 'the key itself is never in the manifest');
  });
  it('an outputs policy without a home for every size, or with url, fails the build', () => {
    const bad = (outputs: unknown) =>
      assert.throws(() => kitManifest({ storage: { outputs } } as never, { name: 'a', version: '1', key: KEY }), (e: unknown) => e instanceof VibeboxError && e.code === 'E_KIT');
    bad({ rules: [{ kind: 'inline', below: '1MB' }] });
    bad({ rules: [{ kind: 'url' }] });
    bad({ rules: [{ kind: 's3', bucket: 'b' }] }); // s3 needs hooks the launcher cannot have
  });
  it('.env.example lists every variable; secrets never get a value', () => {
    const t = envExample({ TOKEN: { required: true, secret: true, default: 'leak' }, MODE: { default: 'fast', description: 'speed' } });
    assert.match(t, /^VIBEBOX_KIT_KEY=$/m);
    assert.match(t, /# optional, speed\nMODE=fast\n/);
    assert.match(t, /# required, secret\nTOKEN=\n/);
    assert.ok(!t.includes('leak'));
  });
  it('the Dockerfile starts FROM the base, installs the packages, runs unprivileged, never copies the key', () => {
    const m = kitManifest({ packages: { apt: ['jq'], npm: ['left-pad'] } }, { name: 'a', version: '1', key: KEY });
    const d = dockerfile(m);
    assert.match(d, /^FROM vibebox\/agent:base$/m);
    assert.match(d, /apt-get install -y --no-install-recommends jq/);
    assert.match(d, /npm install -g left-pad/);
    assert.match(d, /^USER 10001:10001$/m);
    assert.doesNotMatch(d, /kit\.key"?\s*\/|COPY \. /);
  });
});

describe('kit container', () => {
  it('has the agent container\'s hardening, a read-only root, the internal network, and no secret in its config', () => {
    const b = kitContainerBody({ name: 'a', dir: '/workspace/dist', state: '/var/lib/vibebox/kits/a', secrets: '/run/vibebox/kits/a', who: { uid: 1000, gid: 1000 } });
    const hc = b['HostConfig'] as Record<string, unknown>;
    assert.deepEqual(hc['CapDrop'], ['ALL']);
    assert.deepEqual(hc['SecurityOpt'], ['no-new-privileges']);
    assert.equal(hc['ReadonlyRootfs'], true);
    assert.equal(hc['NetworkMode'], 'vibebox-internal');
    assert.equal(hc['Privileged'], false);
    assert.equal(b['User'], '1000:1000');
    assert.ok((hc['Binds'] as string[]).includes('/workspace/dist:/opt/kit:ro'));
    assert.ok(!(hc['Binds'] as string[]).some((x) => x.includes('docker.sock')));
    const env = b['Env'] as string[];
    assert.ok(env.some((e) => e.startsWith('HTTPS_PROXY=')), 'egress through the relay');
    assert.ok(!env.some((e) => e.startsWith('VIBEBOX_KIT_KEY=')), 'the key is in the 0600 secrets file, not the config');
    // The secrets file is on the VM's tmpfs, bound read-only, not in the state on the VM disk.
    assert.ok((hc['Binds'] as string[]).includes('/run/vibebox/kits/a:/run/vibebox-kit:ro'));
    assert.ok(env.includes('VIBEBOX_KIT_SECRETS=/run/vibebox-kit/secrets.json'));
  });
  it('the secrets file takes the key and only the passed names', () => {
    assert.deepEqual(kitSecrets({ VIBEBOX_KIT_KEY: KEY, A: '1', B: '2' }, ['VIBEBOX_KIT_KEY', 'A']), { VIBEBOX_KIT_KEY: KEY, A: '1' });
    assert.throws(() => kitSecrets({ VIBEBOX_KIT_KEY: 'short' }, []), /kit key/);
  });
  it('the dist must be inside the project: its path in the VM is under /workspace', () => {
    assert.equal(guestPathOf('/home/u/p', '/home/u/p/out/kit'), '/workspace/out/kit');
    assert.throws(() => guestPathOf('/home/u/p', '/home/u/other'), /outside the project/);
    assert.throws(() => guestPathOf('/home/u/p', '/home/u/p'), /outside the project/);
  });
});

describe('kit build (esbuild, real files)', { skip: !BUILT && 'needs `npm run build` (dist/kit-server.mjs)' }, () => {
  it('writes server/, kit.json, a 0600 key kept across rebuilds, .env.example, Dockerfile; refuses a module without run', async () => {
    const { buildKit } = await import('../../src/kit/build.js');
    const dir = mkdtempSync(join(tmpdir(), 'kit-build-'));
    try {
      writeFileSync(join(dir, 'agent.ts'), "export const kit = { name: 'demo', version: '2.0.0', env: { T: { secret: true } } };\nexport async function* run(p: { text: string }) { yield { event_type: 'x', data: p.text }; return 'ok'; }\n");
      const r = await buildKit(join(dir, 'agent.ts'), { out: join(dir, 'dist'), project: dir });
      assert.equal(r.name, 'demo');
      assert.equal(r.keyReused, false);
      const key = readFileSync(r.keyFile, 'utf8').trim();
      assert.equal(statSync(r.keyFile).mode & 0o777, 0o600);
      const m = KitManifestFile.parse(JSON.parse(readFileSync(join(dir, 'dist', 'kit.json'), 'utf8')));
      assert.equal(m.key_fingerprint, keyFingerprint(key));
      for (const f of ['server/index.mjs', 'server/runnable.mjs', 'server/node_modules/@photostructure/sqlite/prebuilds/linux-' + process.arch + '/@photostructure+sqlite.glibc.node', '.env.example', 'Dockerfile', '.dockerignore'])
        assert.ok(existsSync(join(dir, 'dist', f)), f);
      assert.match(readFileSync(join(dir, 'dist', '.dockerignore'), 'utf8'), /^kit\.key$/m);
      const again = await buildKit(join(dir, 'agent.ts'), { out: join(dir, 'dist'), version: '2.0.1', project: dir });
      assert.equal(again.keyReused, true);
      assert.equal(readFileSync(r.keyFile, 'utf8').trim(), key);
      writeFileSync(join(dir, 'norun.mjs'), 'export const x = 1;\n');
      await assert.rejects(buildKit(join(dir, 'norun.mjs'), { out: join(dir, 'd2'), project: dir }), /exports no run/);
      writeFileSync(join(dir, 'badkit.mjs'), "export const kit = { nam: 'x' };\nexport async function* run() {}\n");
      await assert.rejects(buildKit(join(dir, 'badkit.mjs'), { out: join(dir, 'd3'), project: dir }), /kit\./);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the SDK as a package export', { skip: !BUILT && 'needs `npm run build` (dist/kit.js)' }, () => {
  it("import { KitClient } from 'vibebox/kit' resolves by the package name, with types a consumer typechecks against", async () => {
    const spec = 'vibebox/kit';
    const mod = (await import(spec)) as Record<string, unknown>;
    for (const k of ['KitClient', 'KitBox', 'KitClientError', 'rule', 'composite', 'KIT_PROTOCOL_VERSION']) assert.ok(k in mod, k);
    // A consumer project: node_modules/vibebox is this package; tsc must accept the typed usage and refuse a wrong one.
    const dir = mkdtempSync(join(tmpdir(), 'kit-consumer-'));
    try {
      mkdirSync(join(dir, 'node_modules'));
      symlinkSync(ROOT, join(dir, 'node_modules', 'vibebox'));
      writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
      const ok = "import { KitClient, type FileRef } from 'vibebox/kit';\nconst c = KitClient.make({ endpoints: { a: { url: 'ws://127.0.0.1:1/', key: 'k' } } });\nconst r = c.box('a').prompt('x', { files: { 'a.txt': { bytes: new Uint8Array(1) } } });\nexport const m: Promise<string> = r.message;\nexport const o: Promise<Record<string, FileRef>> = r.outputs;\n";
      writeFileSync(join(dir, 'ok.ts'), ok);
      writeFileSync(join(dir, 'bad.ts'), "import { KitClient } from 'vibebox/kit';\nexport const n: number = KitClient.make({ endpoints: {} }).box('a').prompt('x').message;\n");
      const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
      const args = ['--ignoreConfig', '--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--skipLibCheck', '--types', 'node', '--typeRoots', join(ROOT, 'node_modules', '@types')];
      execFileSync(process.execPath, [tsc, ...args, 'ok.ts'], { cwd: dir, stdio: 'pipe' });
      let out = '';
      try {
        execFileSync(process.execPath, [tsc, ...args, 'bad.ts'], { cwd: dir, stdio: 'pipe' });
      } catch (e) {
        out = String((e as { stdout?: Buffer }).stdout ?? '');
      }
      assert.match(out, /bad\.ts.*TS2322.*Promise<string>.*number/s, 'a wrong use of the SDK types is a type error');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
