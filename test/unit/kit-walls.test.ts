// The kit CLI's walls on the host: `kit build` never runs project code, never bundles a host file
// from outside the project, never writes or deletes through a link; `kit serve` reads kit.json and
// kit.key as untrusted files (no link, a regular file of the key's exact format, the fingerprint
// required and matching); every declaration string is refused with control characters.
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
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
    for (const f of ['kit.json', '.env.example', 'Dockerfile', '.dockerignore']) {
      writeFileSync(join(c.outside, f), 'host file');
      symlinkSync(join(c.outside, f), join(c.proj, 'dist', f));
    }
    await build(c.proj, 'agent.ts');
    assert.equal(readFileSync(join(c.outside, 'srv', 'precious'), 'utf8'), 'keep');
    for (const f of ['kit.json', '.env.example', 'Dockerfile', '.dockerignore']) {
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
