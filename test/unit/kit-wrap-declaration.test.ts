// `export default wrap(runnable, config)`: the config is the kit declaration, read from the
// module's source without running it (only vibebox/kit's wrap is recognised, the config must be
// a literal in the call or a const holding one). Attacks: a config that would need the module to
// run (a call, a spread, a getter, an imported value, a look-alike wrap) is refused, and nothing
// of the module runs on the host while the build says so.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readStaticModule } from '../../src/kit/declaration.js';
import { VibeboxError } from '../../src/errors.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BUILT = existsSync(join(ROOT, 'dist', 'kit-server.mjs'));
const kitErr = (re: RegExp) => (e: unknown) => e instanceof VibeboxError && e.code === 'E_KIT' && re.test(e.message) && !e.message.includes('\n');
const IMPORT = "import { wrap } from 'vibebox/kit';\nimport { agent } from './agent.js';\n";

describe('the wrap declaration, read statically', () => {
  it('a literal config in the call, or a const holding one, is the declaration', () => {
    const a = readStaticModule('k.ts', `${IMPORT}export default wrap(agent, { name: 'lit', version: '2', base: 'docs', packages: { apt: ['jq'] } });\n`);
    assert.deepEqual(a, { kit: { name: 'lit', version: '2', base: 'docs', packages: { apt: ['jq'] } }, hasRun: false, wrapped: true });
    const b = readStaticModule('k.ts', `${IMPORT}const cfg = { name: 'const' };\nexport default wrap(agent, cfg);\n`);
    assert.deepEqual(b.kit, { name: 'const' });
    const c = readStaticModule('k.ts', "import * as vk from 'vibebox/kit';\nimport { agent } from './agent.js';\nexport default vk.wrap(agent, { name: 'ns' });\n");
    assert.deepEqual([c.kit, c.wrapped], [{ name: 'ns' }, true]);
    const d = readStaticModule('k.ts', "import { wrap as w } from 'vibebox/kit';\nimport { agent } from './agent.js';\nconst app = w(agent, { name: 'renamed' });\nexport { app as default };\n");
    assert.deepEqual([d.kit, d.wrapped], [{ name: 'renamed' }, true]);
    const e = readStaticModule('k.ts', `${IMPORT}export default wrap(agent);\n`);
    assert.deepEqual([e.kit, e.wrapped], [undefined, true]);
  });

  it('a config that needs the module to run is refused, naming the key', () => {
    const cases: Array<[string, RegExp]> = [
      ['export default wrap(agent, makeConfig());', /kit: a call is not a literal/],
      ["export default wrap(agent, { name: process.env.NAME });", /kit\.name: a MemberExpression is not a literal/],
      ["const base = { name: 'x' };\nexport default wrap(agent, { ...base });", /kit: a spread is not a literal/],
      ["export default wrap(agent, { get name() { return 'x'; } });", /kit\.name: a getter or setter is not a literal/],
      ["let cfg = { name: 'x' };\ncfg = { name: 'y' };\nexport default wrap(agent, cfg);", /not a const with a value/],
      ["import { cfg } from './cfg.js';\nexport default wrap(agent, cfg);", /another module/],
      ["export default wrap(agent, { name: 'a' }, { name: 'b' });", /wrap\(\) takes the runnable and one config object/],
      ["export default wrap(...args);", /wrap\(\) takes the runnable and one config object/],
      ["export const kit = { name: 'a' };\nexport default wrap(agent, { name: 'b' });", /declare the kit once/],
    ];
    for (const [src, re] of cases) assert.throws(() => readStaticModule('k.ts', `${IMPORT}${src}\n`), kitErr(re), src);
  });

  it('only vibebox/kit\'s wrap counts: a look-alike is not a kit', () => {
    const own = readStaticModule('k.ts', "import { agent } from './agent.js';\nconst wrap = (a, c) => ({ run: a });\nexport default wrap(agent, { name: 'fake' });\n");
    assert.deepEqual([own.kit, own.wrapped, own.hasRun], [undefined, false, false]);
    const other = readStaticModule('k.ts', "import { wrap } from 'not-vibebox';\nimport { agent } from './agent.js';\nexport default wrap(agent, { name: 'x' });\n");
    assert.equal(other.wrapped, false);
    const computed = readStaticModule('k.ts', "import * as vk from 'vibebox/kit';\nimport { agent } from './agent.js';\nexport default vk['wrap'](agent, { name: 'x' });\n");
    assert.equal(computed.wrapped, false);
  });
});

describe('kit build of a wrap module', { skip: !BUILT && 'needs `npm run build` (dist/kit-server.mjs)' }, () => {
  const base = realpathSync(mkdtempSync(join(tmpdir(), 'kit-wrap-')));
  after(() => rmSync(base, { recursive: true, force: true }));

  it('a config that would run code on the host is refused and the code never runs; a literal one builds', async () => {
    const { buildKit } = await import('../../src/kit/build.js');
    const proj = join(base, 'proj');
    const outside = join(base, 'host');
    mkdirSync(proj);
    mkdirSync(outside);
    const marker = join(outside, 'pwned');
    writeFileSync(join(proj, 'agent.ts'), 'export const agent = { processRequest: async () => ({ text: "x" }) } as never;\n');
    writeFileSync(
      join(proj, 'kit.ts'),
      `import { writeFileSync } from 'node:fs';\nimport { wrap } from 'vibebox/kit';\nimport { agent } from './agent.js';\nfunction makeConfig() { writeFileSync(${JSON.stringify(marker)}, 'x'); return { name: 'evil' }; }\nexport default wrap(agent, makeConfig());\n`,
    );
    await assert.rejects(buildKit(join(proj, 'kit.ts'), { out: join(proj, 'dist'), project: proj }), kitErr(/kit: a call is not a literal/));
    assert.ok(!existsSync(marker), 'the config call ran on the host');
    writeFileSync(join(proj, 'kit.ts'), `import { writeFileSync } from 'node:fs';\nimport { wrap } from 'vibebox/kit';\nimport { agent } from './agent.js';\nwriteFileSync(${JSON.stringify(marker)}, 'x');\nexport default wrap(agent, { name: 'wrapped', version: '3' });\n`);
    const r = await buildKit(join(proj, 'kit.ts'), { out: join(proj, 'dist'), project: proj });
    assert.deepEqual([r.name, r.version], ['wrapped', '3']);
    assert.ok(!existsSync(marker), 'the module ran on the host');
    assert.ok(existsSync(join(proj, 'dist', 'server', 'runnable.mjs')));
  });
});
