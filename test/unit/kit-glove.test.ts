// A real glove-core agent wrapped as a kit, in process: the server drives processRequest, the
// subscriber events arrive 1:1 and in order, a display slot is resolved by the client, /output
// tags a file of the work dir (and nothing outside the kit's dirs, links included), the
// injections and the environment block are there. The model is scripted (no provider is
// reachable here): test/fixtures/glove-kit/model.mjs.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { z } from 'zod';
import { Glove } from 'glove-core/glove';
import { Displaymanager } from 'glove-core/display-manager';
import { KitClient } from '../../guest/kit/client.js';
import { wrap } from '../../guest/kit/glove.js';
import { ENV_BLOCK_HEAD, environmentBlock, outputPathsOf } from '../../guest/kit/glove-injections.js';
import { startKitServer, type RunningKit } from '../../guest/kit/server.js';
import type { EnvironmentInfo } from '../../guest/kit/kit-protocol.js';
// @ts-expect-error plain JS fixture (it is bundled into the VM test's kit as the author's file)
import { scriptedModel } from '../fixtures/glove-kit/model.mjs';

const KEY = 'g'.repeat(32);

function agent() {
  return new Glove({ model: scriptedModel(), displayManager: new Displaymanager(), systemPrompt: 'You write reports.', compaction_config: { compaction_instructions: 'Summarise.' } })
    .fold({
      name: 'write_file',
      description: 'Write a text file.',
      inputSchema: z.object({ path: z.string(), text: z.string() }),
      async do(input) {
        await writeFile(input.path, input.text);
        return { status: 'success', data: `wrote ${input.path}` };
      },
    })
    .fold({
      name: 'confirm',
      description: 'Ask a yes/no question.',
      inputSchema: z.object({ question: z.string() }),
      async do(input, display) {
        return { status: 'success', data: await display.pushAndWait({ renderer: 'confirm', input: { question: input.question } }) };
      },
    })
    .fold({
      name: 'progress',
      description: 'Shows progress, then takes it down.',
      inputSchema: z.object({}),
      async do(_i, display) {
        const id = await display.pushAndForget({ renderer: 'progress', input: { pct: 50 } });
        display.removeSlot(id);
        return { status: 'success', data: 'shown' };
      },
    })
    .fold({
      name: 'slow',
      description: 'Takes five minutes.',
      inputSchema: z.object({}),
      async do(_i, _d, _g, signal) {
        await new Promise((resolve, reject) => {
          const t = setTimeout(resolve, 300_000);
          signal?.addEventListener('abort', () => (clearTimeout(t), reject(new Error('aborted'))));
        });
        return { status: 'success', data: 'slept' };
      },
    })
    .build();
}

describe('a wrapped Glove agent, served', () => {
  let dir: string;
  let kit: RunningKit;
  let client: KitClient;
  const fs = () => ({ input: join(dir, 'in'), output: join(dir, 'out'), work: join(dir, 'work') });
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kit-glove-'));
    kit = await startKitServer({
      runnable: wrap(agent(), { name: 'ignored-at-run-time' }),
      key: KEY,
      manifest: { name: 'glovekit', version: '1.0.0', packages: { apt: ['jq'] } },
      fs: fs(),
      stateDir: join(dir, 'state'),
      storage: { outputs: { rules: [{ kind: 'inline', below: 16 }, { kind: 'localServer', ttl: '1h' }] } },
    });
    client = KitClient.make({ endpoints: { k: { url: kit.url, key: KEY } } });
  });
  after(async () => {
    await client.close();
    await kit.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a prompt runs the agent: the workspace skill, a display slot, a file in /output and one tagged in /work', async () => {
    const work = fs().work;
    const run = client.box('k').prompt(`/output ${work}/notes.txt write the report`);
    const display: string[] = [];
    const resolving = (async () => {
      for await (const d of run.display) {
        display.push(d.type === 'push' ? `push ${d.slot?.renderer} ${JSON.stringify(d.slot?.['data'])}` : d.type);
        if (d.type === 'push' && d.slot) run.resolve(d.slot.id, true);
      }
    })();
    const events: string[] = [];
    for await (const ev of run.events) events.push(ev.event_type === 'tool_use' ? `tool_use ${(ev.data as { name: string }).name}` : ev.event_type);
    await resolving;
    assert.equal(await run.message, 'Report written.');
    assert.deepEqual(display, ['push confirm {"question":"Write the report?"}']);
    // In the order the runnable's subscribers saw them (hook, model turns, tool results).
    assert.deepEqual(events.filter((e) => !['token_consumption', 'model_response_complete'].includes(e)), [
      'hook_invoked',
      'text_delta',
      'tool_use glove_invoke_skill',
      'skill_invoked',
      'tool_use_result',
      'text_delta',
      'tool_use confirm',
      'tool_use_result',
      'tool_use write_file',
      'tool_use write_file',
      'tool_use_result',
      'tool_use_result',
      'text_delta',
    ]);
    const outputs = await run.outputs;
    assert.deepEqual(Object.keys(outputs).sort(), ['report.md', 'work/notes.txt']);
    assert.equal(outputs['report.md']?.kind, 'inline');
    assert.equal(outputs['work/notes.txt']?.kind, 'server');
    assert.equal((await run.read('report.md')).toString(), '# Report\n');
    assert.equal((await run.read('work/notes.txt')).toString(), 'notes kept in work\n');
  });

  it('a slot the agent pushes and takes down reaches the client as display_push then display_clear', async () => {
    const run = client.box('k').prompt('show progress');
    const seen: string[] = [];
    for await (const d of run.display) seen.push(d.type === 'push' ? `push ${d.slot?.renderer} ${JSON.stringify(d.slot?.['data'])}` : `clear ${d.type === 'clear' ? d.slot_id : ''}`);
    assert.equal(await run.message, 'Progress shown.');
    assert.equal(seen.length, 2, seen.join('; '));
    assert.equal(seen[0], 'push progress {"pct":50}');
    assert.match(seen[1]!, /^clear slot_\d+$/);
  });

  it('the system prompt starts with the environment block (the model sees it)', async () => {
    const run = client.box('k').prompt('what is your system prompt?');
    assert.equal(await run.message, ENV_BLOCK_HEAD);
  });

  it('the environment skill and block carry the manifest, not the wrap call', async () => {
    const env = await client.box('k').environment();
    const block = environmentBlock(env);
    assert.match(block, /^## Kit environment\nYou run inside the kit glovekit 1\.0\.0/);
    assert.match(block, /Installed packages: apt: jq\./);
  });

  it('/clear-workspace empties the work dir and needs no model turn', async () => {
    writeFileSync(join(fs().work, 'left.txt'), 'x');
    mkdirSync(join(fs().work, 'sub'), { recursive: true });
    const run = client.box('k').prompt('/clear-workspace');
    const events: string[] = [];
    for await (const ev of run.events) events.push(ev.event_type);
    assert.equal(await run.message, 'The work directory is empty.');
    assert.deepEqual(events, ['hook_invoked']);
    assert.deepEqual(readdirSync(fs().work), []);
  });

  it('/output refuses paths outside the kit dirs, links out, and directories', async () => {
    const work = fs().work;
    symlinkSync('/etc/passwd', join(work, 'passwd-link'));
    symlinkSync('/etc', join(work, 'etc-dir'));
    mkdirSync(join(work, 'adir'));
    const key = join(dir, 'state', 'secret.key');
    writeFileSync(key, 'secret');
    for (const [path, why] of [
      ['/etc/passwd', /outside the kit's input and work directories/],
      [`${work}/../state/secret.key`, /outside the kit's input and work directories/],
      [key, /outside/],
      ['relative/x', /not an absolute path/],
      [`${work}/passwd-link`, /symbolic link/],
      [`${work}/etc-dir/passwd`, /leads outside the kit's work directory/],
      [`${work}/adir`, /not a regular file/],
      [`${work}/missing`, /no such file/],
    ] as const) {
      const run = client.box('k').prompt(`/output ${path} hello`);
      await assert.rejects(run.message, (e: Error & { code?: string }) => e.code === 'E_OUTPUT_FAILED' && why.test(e.message), path);
    }
  });

  it('abort mid-tool stops the turn; the next prompt works', async () => {
    const run = client.box('k').prompt('sleep');
    for await (const ev of run.events) if (ev.event_type === 'tool_use') break;
    const t0 = Date.now();
    run.abort();
    await assert.rejects(run.message, (e: Error & { code?: string }) => e.code === 'E_ABORTED');
    assert.ok(Date.now() - t0 < 5000);
    assert.equal(await client.box('k').prompt('hello').message, 'You said: hello');
  });
});

describe('injections, pure parts', () => {
  const env: EnvironmentInfo = {
    name: 'k',
    version: '1',
    base: 'docs',
    fs: { input: { path: '/input', writable: false }, output: { path: '/output', writable: true }, work: { path: '/work', writable: true } },
    packages: {},
    limits: {},
    protocol_version: 1,
  };
  it('the environment block is static and names the three dirs', () => {
    const b = environmentBlock(env);
    assert.ok(b.startsWith(`${ENV_BLOCK_HEAD}\n`));
    assert.match(b, /^- \/input: .*read-only/m);
    assert.match(b, /^- \/output: write your results here/m);
    assert.match(b, /^- \/work: scratch space/m);
    assert.match(b, /Installed packages: the base image only\./);
    assert.equal(b, environmentBlock(env));
  });
  it('/output paths are read where glove-core binds the directive', () => {
    assert.deepEqual(outputPathsOf('/output /work/a.txt and /output /work/b'), { paths: ['/work/a.txt', '/work/b'], bare: 0 });
    assert.deepEqual(outputPathsOf('save to /output/x.txt'), { paths: [], bare: 0 });
    assert.deepEqual(outputPathsOf('just /output'), { paths: [], bare: 1 });
  });
});
