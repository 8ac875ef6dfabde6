// The kit CLI's walls on the host: `kit build` never runs project code, never bundles a host file
// from outside the project, never writes or deletes through a link; `kit serve` reads kit.json and
// kit.key as untrusted files (no link, a regular file of the key's exact format, the fingerprint
// required and matching); every declaration string is refused with control characters.
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { VibeboxError } from '../../src/errors.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BUILT = existsSync(join(ROOT, 'dist', 'kit-server.mjs'));
const RUN = 'export async function* run() { return "ok"; }\n';

/** Everything under dir, as text, so a test can say "this secret is nowhere in dist/". */
function allText(dir: string): string {
  let s = '';
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) s += allText(p);
    else if (e.isFile()) s += readFileSync(p, 'latin1');
  }
  return s;
}

const kitErr = (re: RegExp) => (e: unknown) => e instanceof VibeboxError && e.code === 'E_KIT' && re.test(e.message) && !e.message.includes('\n');

describe('kit build walls', { skip: !BUILT && 'needs `npm run build` (dist/kit-server.mjs)' }, () => {
  const base = realpathSync(mkdtempSync(join(tmpdir(), 'kit-walls-')));
  after(() => rmSync(base, { recursive: true, force: true }));
  let n = 0;
  /** A fresh project with the given files; `outside` is a host directory beside it. */
  const project = (files: Record<string, string>): { proj: string; outside: string } => {
    const root = join(base, `c${n++}`);
    const proj = join(root, 'proj');
    const outside = join(root, 'host');
    mkdirSync(proj, { recursive: true });
    mkdirSync(outside);
    for (const [f, t] of Object.entries(files)) {
      mkdirSync(join(proj, f, '..'), { recursive: true });
      writeFileSync(join(proj, f), t);
    }
    return { proj, outside };
  };
  const build = async (proj: string, entry: string, out = 'dist') => {
    const { buildKit } = await import('../../src/kit/build.js');
    return buildKit(join(proj, entry), { out: join(proj, out), project: proj });
  };

  it('project code never runs on the host: top-level writes, execs and an imported module stay unrun', async () => {
    const { proj, outside } = project({});
    const marker = join(outside, 'pwned');
    const marker2 = join(outside, 'pwned-by-import');
    writeFileSync(join(proj, 'helper.ts'), `import { writeFileSync } from 'node:fs';\nwriteFileSync(${JSON.stringify(marker2)}, 'x');\nexport const h = 1;\n`);
    writeFileSync(
      join(proj, 'agent.ts'),
      `import { writeFileSync } from 'node:fs';\nimport { execSync } from 'node:child_process';\nimport { h } from './helper.js';\nwriteFileSync(${JSON.stringify(marker)}, 'x');\nexecSync('touch ${marker}-exec');\nexport const kit = { name: 'evil' };\nexport async function* run() { return String(h); }\n`,
    );
    const r = await build(proj, 'agent.ts');
    assert.equal(r.name, 'evil');
    assert.ok(!existsSync(marker), 'the entry ran on the host');
    assert.ok(!existsSync(`${marker}-exec`), 'the entry exec\'d on the host');
    assert.ok(!existsSync(marker2), 'an imported module ran on the host');
  });

  it('a declaration that is not a literal is one line naming the key path', async () => {
    const cases: Array<[string, RegExp]> = [
      ["const n = 'x';\nexport const kit = { name: n };", /kit\.name: .*literal/],
      ["export const kit = { env: { A: { default: String(1) } } };", /kit\.env\.A\.default: .*literal/],
      ["const e = {};\nexport const kit = { env: { ...e } };", /kit\.env: .*literal/],
      ["const k = 'name';\nexport const kit = { [k]: 'x' };", /kit: .*literal/],
      ["export const kit = { get name() { return 'x'; } };", /kit\.name: .*literal/],
      ['export const kit = { version: `${1}` };', /kit\.version: .*literal/],
      ["export { kit } from './other.js';", /kit.*another module/],
      ["export const kit = (() => ({ name: 'x' }))();", /kit: .*literal/],
    ];
    for (const [decl, re] of cases) {
      const { proj } = project({ 'agent.ts': `${decl}\n${RUN}`, 'other.ts': "export const kit = { name: 'o' };\n" });
      await assert.rejects(build(proj, 'agent.ts'), kitErr(re), decl);
    }
    // Literals of every allowed kind pass: as const, negative numbers, templates without expressions.
    const { proj } = project({ 'agent.ts': "export const kit = { name: `lit`, version: '1', limits: { promptTimeoutMs: 0 }, env: { A: { required: false, default: 'x' } } } as const;\nconst ok = -1;\n" + RUN });
    assert.equal((await build(proj, 'agent.ts')).name, 'lit');
    const noRun = project({ 'agent.ts': "export const run = 1;\nexport const kit = {};\n" });
    await assert.rejects(build(noRun.proj, 'agent.ts'), kitErr(/exports no run/));
    const dflt = project({ 'agent.ts': "export default { kit: { name: 'dflt' }, async *run() { return 'x'; } };\n" });
    assert.equal((await build(dflt.proj, 'agent.ts')).name, 'dflt');
    const cjs = project({ 'agent.js': "module.exports = { kit: { name: 'cjs' }, run: async function* () { return 'x'; } };\n" });
    assert.equal((await build(cjs.proj, 'agent.js')).name, 'cjs');
    const named = project({ 'agent.ts': "const kit = { name: 'named' };\nasync function* go() { return 'x'; }\nexport { kit, go as run };\n" });
    assert.equal((await build(named.proj, 'agent.ts')).name, 'named');
  });

  it('bundling reads no host file outside the project: absolute imports, loaders, symlinks, tsconfig', async () => {
    const { proj: p0, outside } = project({});
    rmSync(p0, { recursive: true });
    const secret = join(outside, 'id_ed25519');
    writeFileSync(secret, 'HOST-SECRET-0123456789\n');
    writeFileSync(join(outside, 'mod.js'), "export const s = 'HOST-SECRET-MODULE';\n");
    writeFileSync(join(outside, 'tsconfig.json'), JSON.stringify({ compilerOptions: { paths: { '#s/*': [`${outside}/*`] } } }));
    const attempts: Array<[string, Record<string, string>, (proj: string) => void]> = [
      ['absolute text import', { 'agent.ts': `import s from ${JSON.stringify(secret)} with { type: 'text' };\nexport const x = s;\n${RUN}` }, () => undefined],
      ['absolute module', { 'agent.ts': `import { s } from ${JSON.stringify(join(outside, 'mod.js'))};\nexport const x = s;\n${RUN}` }, () => undefined],
      ['relative escape', { 'agent.ts': `import { s } from '../host/mod.js';\nexport const x = s;\n${RUN}` }, () => undefined],
      ['symlinked file', { 'agent.ts': `import { s } from './link.js';\nexport const x = s;\n${RUN}` }, (p) => symlinkSync(join(outside, 'mod.js'), join(p, 'link.js'))],
      ['symlinked directory', { 'agent.ts': `import { s } from './ld/mod.js';\nexport const x = s;\n${RUN}` }, (p) => symlinkSync(outside, join(p, 'ld'))],
      ['symlinked package', { 'agent.ts': `import { s } from 'pkg';\nexport const x = s;\n${RUN}` }, (p) => {
        mkdirSync(join(p, 'node_modules'));
        writeFileSync(join(outside, 'package.json'), '{"name":"pkg","main":"mod.js"}');
        symlinkSync(outside, join(p, 'node_modules', 'pkg'));
      }],
      ['tsconfig extends and paths', { 'agent.ts': `import { s } from '#s/mod.js';\nexport const x = s;\n${RUN}`, 'tsconfig.json': JSON.stringify({ extends: join(outside, 'tsconfig.json') }) }, () => undefined],
      ['dynamic import', { 'agent.ts': `export async function* run() { return String(await import(${JSON.stringify(join(outside, 'mod.js'))})); }\n` }, () => undefined],
      ['require', { 'agent.ts': `const h = require(${JSON.stringify(secret)});\nexport const x = h;\n${RUN}` }, () => undefined],
      ['symlinked entry', { 'keep.ts': '' }, (p) => symlinkSync(join(outside, 'mod.js'), join(p, 'agent.ts'))],
    ];
    for (const [what, files, prep] of attempts) {
      const { proj } = project(files);
      // Point the escapes at this case's own host directory.
      for (const f of Object.keys(files)) writeFileSync(join(proj, f), files[f]!.split(outside).join(join(proj, '..', 'host')));
      writeFileSync(join(proj, '..', 'host', 'id_ed25519'), 'HOST-SECRET-0123456789\n');
      writeFileSync(join(proj, '..', 'host', 'mod.js'), "export const s = 'HOST-SECRET-MODULE'; export async function* run() {}\n");
      writeFileSync(join(proj, '..', 'host', 'tsconfig.json'), JSON.stringify({ compilerOptions: { paths: { '#s/*': [`${join(proj, '..', 'host')}/*`] } } }));
      prep(proj);
      await assert.rejects(build(proj, 'agent.ts'), (e: unknown) => e instanceof VibeboxError && e.code === 'E_KIT' && !e.message.includes('\n'), what);
      if (existsSync(join(proj, 'dist'))) assert.doesNotMatch(allText(join(proj, 'dist')), /HOST-SECRET/, what);
    }
  });

  it('never writes or deletes through a link: a symlinked dist, dist/server, kit.json, kit.key, a link above dist', async () => {
    // A symlinked dist: its target's server/ is not deleted, nothing is written there.
    const a = project({ 'agent.ts': RUN });
    mkdirSync(join(a.outside, 'server'));
    writeFileSync(join(a.outside, 'server', 'precious'), 'keep');
    symlinkSync(a.outside, join(a.proj, 'dist'));
    await assert.rejects(build(a.proj, 'agent.ts'), kitErr(/link/));
    assert.equal(readFileSync(join(a.outside, 'server', 'precious'), 'utf8'), 'keep');
    assert.deepEqual(readdirSync(a.outside).sort(), ['server']);
    // A link above the output directory, inside the project.
    const b = project({ 'agent.ts': RUN });
    symlinkSync(b.outside, join(b.proj, 'out'));
    await assert.rejects(build(b.proj, 'agent.ts', 'out/kit'), kitErr(/link/));
    assert.deepEqual(readdirSync(b.outside), []);
    // Links planted inside a real dist: replaced by files, their targets untouched.
    const c = project({ 'agent.ts': RUN });
    mkdirSync(join(c.proj, 'dist'));
    mkdirSync(join(c.outside, 'srv'));
    writeFileSync(join(c.outside, 'srv', 'precious'), 'keep');
    symlinkSync(join(c.outside, 'srv'), join(c.proj, 'dist', 'server'));
    for (const f of ['kit.json', '.env.example', 'Dockerfile', 'nixpacks.toml', '.dockerignore']) {
      writeFileSync(join(c.outside, f), 'host file');
      symlinkSync(join(c.outside, f), join(c.proj, 'dist', f));
    }
    await build(c.proj, 'agent.ts');
    assert.equal(readFileSync(join(c.outside, 'srv', 'precious'), 'utf8'), 'keep');
    for (const f of ['kit.json', '.env.example', 'Dockerfile', 'nixpacks.toml', '.dockerignore']) {
      assert.equal(readFileSync(join(c.outside, f), 'utf8'), 'host file', f);
      assert.ok(lstatSync(join(c.proj, 'dist', f)).isFile(), f);
    }
    assert.ok(lstatSync(join(c.proj, 'dist', 'server')).isDirectory());
    // A symlinked kit.key (to a host key, 0600) is refused, never read as the kit's key.
    const d = project({ 'agent.ts': RUN });
    mkdirSync(join(d.proj, 'dist'));
    writeFileSync(join(d.outside, 'id'), `${'A'.repeat(43)}\n`, { mode: 0o600 });
    symlinkSync(join(d.outside, 'id'), join(d.proj, 'dist', 'kit.key'));
    await assert.rejects(build(d.proj, 'agent.ts'), kitErr(/kit\.key.*link/));
    assert.equal(readFileSync(join(d.outside, 'id'), 'utf8'), `${'A'.repeat(43)}\n`);
    assert.equal(statSync(join(d.outside, 'id')).mode & 0o777, 0o600);
  });

  it('control characters in any declaration string are refused; .env.example gets no extra line', async () => {
    const cases = [
      "export const kit = { env: { A: { default: 'x\\nEVIL=1' } } };",
      "export const kit = { env: { A: { description: 'a\\u001b[2Jb' } } };",
      "export const kit = { version: '1\\u202e2' };",
      "export const kit = { base: 'x\\rFROM evil' };",
    ];
    for (const decl of cases) {
      const { proj } = project({ 'agent.ts': `${decl}\n${RUN}` });
      await assert.rejects(build(proj, 'agent.ts'), kitErr(/control|invisible/), decl);
      assert.ok(!existsSync(join(proj, 'dist', '.env.example')), decl);
    }
  });
});

describe('kit serve reads dist/ as untrusted', () => {
  const base = realpathSync(mkdtempSync(join(tmpdir(), 'kit-serve-walls-')));
  after(() => rmSync(base, { recursive: true, force: true }));
  const KEY = 'Z'.repeat(43);
  let n = 0;
  const dist = async (o: { fingerprint?: string | null; key?: (dir: string, host: string) => void; json?: (dir: string, host: string) => void; name?: string } = {}) => {
    const { keyFingerprint } = await import('../../guest/kit/auth.js');
    const root = join(base, `d${n++}`);
    const dir = join(root, 'dist');
    const host = join(root, 'host');
    mkdirSync(dir, { recursive: true });
    mkdirSync(host);
    const m: Record<string, unknown> = { name: o.name ?? 'k', version: '1' };
    if (o.fingerprint !== null) m['key_fingerprint'] = o.fingerprint ?? keyFingerprint(KEY);
    if (o.json) o.json(dir, host);
    else writeFileSync(join(dir, 'kit.json'), JSON.stringify(m));
    if (o.key) o.key(dir, host);
    else writeFileSync(join(dir, 'kit.key'), `${KEY}\n`, { mode: 0o600 });
    return dir;
  };
  const refused = (re: RegExp) => (e: unknown) => e instanceof VibeboxError && e.exitCode === 2 && re.test(e.message) && !e.message.includes('\n');

  it('a kit.key linked to a host key (0600) is never read, with or without a fingerprint', async () => {
    const { readDist } = await import('../../src/cli/kit.js');
    const hostKey = (dir: string, host: string) => {
      writeFileSync(join(host, 'id_ed25519'), '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n', { mode: 0o600 });
      symlinkSync(join(host, 'id_ed25519'), join(dir, 'kit.key'));
    };
    assert.throws(() => readDist(dist_sync(hostKey, null)), refused(/kit\.key|key/));
    assert.throws(() => readDist(dist_sync(hostKey)), refused(/link/));
    // The same host key copied in as a regular 0600 file: not the key's format.
    const copied = (dir: string) => writeFileSync(join(dir, 'kit.key'), '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n', { mode: 0o600 });
    assert.throws(() => readDist(dist_sync(copied, null)), refused(/key/));
    function dist_sync(key: (d: string, h: string) => void, fingerprint?: null): string {
      const root = join(base, `s${n++}`);
      const dir = join(root, 'dist');
      const host = join(root, 'host');
      mkdirSync(dir, { recursive: true });
      mkdirSync(host);
      writeFileSync(join(dir, 'kit.json'), JSON.stringify({ name: 'k', version: '1', ...(fingerprint === null ? {} : { key_fingerprint: 'sha256:' + '0'.repeat(64) }) }));
      key(dir, host);
      return dir;
    }
  });

  it('the fingerprint is required and must match; kit.json is a capped regular file; the name is checked', async () => {
    const { readDist } = await import('../../src/cli/kit.js');
    assert.equal(readDist(await dist()).key, KEY);
    const noFp = await dist({ fingerprint: null });
    assert.throws(() => readDist(noFp), refused(/key_fingerprint/));
    const wrongFp = await dist({ fingerprint: 'sha256:' + 'a'.repeat(64) });
    assert.throws(() => readDist(wrongFp), refused(/match/));
    const linkedJson = await dist({ json: (dir, host) => {
      writeFileSync(join(host, 'kit.json'), JSON.stringify({ name: 'k', version: '1' }));
      symlinkSync(join(host, 'kit.json'), join(dir, 'kit.json'));
    } });
    assert.throws(() => readDist(linkedJson), refused(/link/));
    const huge = await dist({ json: (dir) => writeFileSync(join(dir, 'kit.json'), `{"name":"k","version":"1","x":"${'a'.repeat(2 * 1024 * 1024)}"}`) });
    assert.throws(() => readDist(huge), refused(/bytes/));
    const fifo = await dist({ key: (dir) => execFileSync('mkfifo', [join(dir, 'kit.key')]) });
    assert.throws(() => readDist(fifo), refused(/regular/));
    const open = await dist({ key: (dir) => writeFileSync(join(dir, 'kit.key'), `${KEY}\n`, { mode: 0o644 }) });
    assert.throws(() => readDist(open), refused(/readable by others/));
    const evilName = await dist({ name: 'k\u001b]0;pwned\u0007' });
    assert.throws(() => readDist(evilName), (e: unknown) => e instanceof VibeboxError && !/[\u0000-\u001f]/.test(e.message) && /\\e/.test(e.message));
  });
});

describe('kit output is escaped', () => {
  it('kit ls shows the VM\'s list field by field, escaped; serve and build errors escape what kit.json or the entry named', async () => {
    const { kitLsText } = await import('../../src/cli/kit.js');
    const raw = 'testkit\trunning\nev\u001b[2J\u001b]0;pwned\u0007il\trunning\u202e\n';
    const t = kitLsText(raw);
    assert.equal(t.split('\n')[0], 'testkit\trunning');
    assert.doesNotMatch(t, /[\u001b\u0007\u202e]/);
    assert.match(t, /ev\\e\[2J\\e\]0;pwned\\x07il\trunning\\u202e\n$/);
    // An entry name with escapes, in a build error.
    const { buildKit } = await import('../../src/kit/build.js');
    const dir = realpathSync(mkdtempSync(join(tmpdir(), 'kit-shown-')));
    try {
      await assert.rejects(buildKit(join(dir, 'a\u001b[31m.ts'), { project: dir }), (e: unknown) => e instanceof VibeboxError && !/\u001b/.test(e.message) && /\\e\[31m/.test(e.message));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
