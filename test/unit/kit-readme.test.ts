// The SDK example in guest/kit/README.md runs, as written, against a live kit on loopback.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { KitEvent, KitPrompt, RunContext } from '../../guest/kit/runnable.js';
import { startKitServer } from '../../guest/kit/server.js';

const README = fileURLToPath(new URL('../../guest/kit/README.md', import.meta.url));
const CLIENT = fileURLToPath(new URL('../../guest/kit/client.ts', import.meta.url));
const KEY = 'r'.repeat(32);

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
