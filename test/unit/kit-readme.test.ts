// The SDK example in guest/kit/README.md runs, as written, against a live kit on loopback.
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { KitEvent, KitPrompt, RunContext } from '../../guest/kit/runnable.js';
import { startKitServer } from '../../guest/kit/server.js';
import { installGlovePeers } from '../helpers/glove-kit.js';

const README = fileURLToPath(new URL('../../guest/kit/README.md', import.meta.url));
const CLIENT = fileURLToPath(new URL('../../guest/kit/client.ts', import.meta.url));
const KEY = 'r'.repeat(32);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

it('the README SDK example runs against a live kit', async () => {
  const block = /```ts\n([\s\S]*?)```/.exec(readFileSync(README, 'utf8'))?.[1];
  assert.ok(block, 'README has a ts block');
  assert.ok(block.split('\n').filter((l) => l.trim()).length <= 10, 'the example is at most ten lines');
  const dir = mkdtempSync(join(tmpdir(), 'kit-readme-'));
  const kit = await startKitServer({
    runnable: async function* (p: KitPrompt, ctx: RunContext): AsyncGenerator<KitEvent, string> {
      const notes = await readFile(join(ctx.inputDir, 'notes.txt'), 'utf8');
      yield { event_type: 'text_delta', data: { text: 'reading' } };
      await writeFile(join(ctx.outputDir, 'summary.md'), `# ${notes.split('\n')[0]}\n`);
      return `summarised ${p.inputs.join(',')}`;
    },
    key: KEY,
    manifest: { name: 'readme', version: '0' },
    fs: { input: join(dir, 'in'), output: join(dir, 'out'), work: join(dir, 'work') },
    stateDir: join(dir, 'state'),
  });
  try {
    writeFileSync(join(dir, 'notes.txt'), 'first line\nsecond\n');
    // 'vibebox/kit' is the package export (needs a build; kit-build.test.ts imports it by that name): here, the source.
    writeFileSync(join(dir, 'example.mts'), block.replace("'vibebox/kit'", JSON.stringify(CLIENT)));
    const out = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, ['--import', import.meta.resolve('tsx'), 'example.mts'], { cwd: dir, timeout: 20_000, env: { ...process.env, KIT_URL: kit.url, KIT_KEY: KEY } }, (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
      ),
    );
    assert.equal(out, 'text_delta {"text":"reading"}\nsummarised notes.txt\n');
    assert.equal(readFileSync(join(dir, 'summary.md'), 'utf8'), '# first line\n');
  } finally {
    await kit.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

it('the repository README shows the same SDK example (the one run above)', () => {
  const root = readFileSync(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8');
  const shown = /<!-- kit-sdk-example[^>]*-->\n```ts\n([\s\S]*?)```/.exec(root)?.[1];
  const tested = /```ts\n([\s\S]*?)```/.exec(readFileSync(README, 'utf8'))?.[1];
  assert.ok(shown && tested);
  assert.equal(shown, tested);
});

// The README's Glove example: the module is built as `vibebox kit build` builds it (buildKit,
// glove-core from the project's node_modules), started with the launcher the kit container runs
// (dist/server/index.mjs; `kit serve` in the VM is test/integration/glove-kit.test.ts), and the
// client block runs against it as written. Its `./model.js` is the scripted model adapter (no
// model provider is reachable here).
it('the README Glove example: the module builds, serves, and the client block gets the answer', { skip: !existsSync(join(ROOT, 'dist', 'kit-server.mjs')) && 'needs `npm run build`' }, async () => {
  const root = readFileSync(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8');
  const mod = /<!-- kit-glove-example[^>]*-->\n```ts\n([\s\S]*?)```/.exec(root)?.[1];
  const cli = /<!-- kit-glove-client[^>]*-->\n```ts\n([\s\S]*?)```/.exec(root)?.[1];
  assert.ok(mod && cli, 'README has the Glove module and client blocks');
  assert.match(mod, /export default wrap\(agent, \{ name: 'helper'/);
  const proj = realpathSync(mkdtempSync(join(tmpdir(), 'kit-readme-glove-')));
  let server: ChildProcess | undefined;
  try {
    installGlovePeers(proj);
    writeFileSync(join(proj, 'helper.ts'), mod);
    copyFileSync(join(ROOT, 'test', 'fixtures', 'glove-kit', 'model.mjs'), join(proj, 'scripted.mjs'));
    writeFileSync(join(proj, 'model.ts'), "// @ts-nocheck\nimport { scriptedModel } from './scripted.mjs';\nexport const model = scriptedModel();\n");
    const { buildKit } = await import('../../src/kit/build.js');
    const built = await buildKit(join(proj, 'helper.ts'), { out: join(proj, 'dist'), project: proj });
    assert.equal(built.name, 'helper');
    const key = readFileSync(built.keyFile, 'utf8').trim();
    const st = join(proj, 'state');
    server = spawn(process.execPath, [join(proj, 'dist', 'server', 'index.mjs')], {
      env: {
        ...process.env,
        VIBEBOX_KIT_KEY: key,
        VIBEBOX_KIT_MANIFEST: join(proj, 'dist', 'kit.json'),
        VIBEBOX_KIT_RUNNABLE: join(proj, 'dist', 'server', 'runnable.mjs'),
        VIBEBOX_KIT_HOST: '127.0.0.1',
        VIBEBOX_KIT_PORT: '0',
        VIBEBOX_KIT_STATE: join(st, 'files'),
        VIBEBOX_KIT_INPUT: join(st, 'in'),
        VIBEBOX_KIT_OUTPUT: join(st, 'out'),
        VIBEBOX_KIT_WORK: join(st, 'work'),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const s = server;
    const url = await new Promise<string>((resolve, reject) => {
      let err = '';
      const timer = setTimeout(() => reject(new Error(`the kit did not listen within 20 s: ${err}`)), 20_000);
      s.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      s.stdout!.on('data', (d: Buffer) => {
        const m = /listening on http:\/\/(\S+)/.exec(d.toString());
        if (m) {
          clearTimeout(timer);
          resolve(`ws://${m[1]}/`);
        }
      });
      s.once('exit', (code) => reject(new Error(`the kit exited (${code}): ${err}`)));
    });
    writeFileSync(join(proj, 'client.mts'), cli.replace("'vibebox/kit'", JSON.stringify(CLIENT)));
    const out = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, ['--import', import.meta.resolve('tsx'), 'client.mts'], { cwd: proj, timeout: 20_000, env: { ...process.env, KIT_URL: url, KIT_KEY: key } }, (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
      ),
    );
    assert.equal(out, 'You said: hello\nYou said: hello\n');
  } finally {
    server?.kill();
    rmSync(proj, { recursive: true, force: true });
  }
});
