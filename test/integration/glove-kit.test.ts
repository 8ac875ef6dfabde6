// A real Glove agent as a kit, end to end from the host, one booted session: real QEMU (TCG
// here), real Docker in the VM, the kit built on the host with `vibebox kit build` and served in
// the VM with `vibebox kit serve`, called through the SDK by the package's own name. The agent
// is a real glove-core runnable; its model adapter is scripted (test/fixtures/glove-kit/model.mjs)
// because no model provider is reachable here. Then a kit on the `docs` base family converts
// Markdown to PDF with pandoc: the family's Debian packages are installed in the VM through the
// egress proxy on first use, and found by their tag on the next serve.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bootedSession, vb, type RunResult, type TestEnv } from '../helpers/vm.js';
import { gloveKitProject, RUN_KIT } from '../helpers/glove-kit.js';
import type * as Sdk from '../../guest/kit/sdk.js';
import { freePort } from '../../src/net/free-port.js';

const LONG = { timeoutMs: 900_000 };
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

const DOCS_KIT = `
import { execFile } from 'node:child_process';
import { join } from 'node:path';
export const kit = { name: 'docskit', version: '1.0.0', base: 'docs' };
export async function* run(p, ctx) {
  const out = join(ctx.outputDir, 'doc.pdf');
  yield { event_type: 'converting', data: { inputs: p.inputs } };
  await new Promise((resolve, reject) =>
    execFile('pandoc', [join(ctx.inputDir, 'doc.md'), '--pdf-engine=weasyprint', '-o', out], { signal: ctx.signal, cwd: ctx.workDir }, (err, _o, stderr) => (err ? reject(new Error(stderr || err.message)) : resolve(undefined))),
  );
  return 'converted';
}
`;

describe('a Glove agent as a kit', () => {
  let t: TestEnv;
  let proj: string;
  let sdk: typeof Sdk;
  let glovePort: number;
  let gloveKey: string;
  let runPort: number;
  let runKey: string;
  const cli = (args: string[], o: { timeoutMs?: number } = {}): Promise<RunResult> => vb(t, proj, args, { ...LONG, ...o });
  const client = (port: number, key: string) => sdk.KitClient.make({ endpoints: { k: { url: `ws://127.0.0.1:${port}/`, key } } });

  before(async () => {
    ({ t, proj } = await bootedSession('glovekit'));
    const spec = 'vibebox/kit';
    sdk = (await import(spec)) as typeof Sdk;
  });
  after(() => t?.cleanup());

  it('kit build bundles the agent with glove-core from the project; dist has the Dockerfile and nixpacks.toml; kit serve runs it', { timeout: 1_200_000 }, async () => {
    gloveKitProject(join(proj, 'gkit'));
    const b = await cli(['kit', 'build', 'gkit/agent.mjs', '--out', 'gdist']);
    assert.equal(b.code, 0, b.stderr);
    for (const f of ['Dockerfile', 'nixpacks.toml', 'kit.json', 'server/runnable.mjs']) assert.ok(existsSync(join(proj, 'gdist', f)), f);
    mkdirSync(join(proj, 'rkit'));
    writeFileSync(join(proj, 'rkit', 'agent.mjs'), RUN_KIT);
    assert.equal((await cli(['kit', 'build', 'rkit/agent.mjs', '--out', 'rdist'])).code, 0);
    gloveKey = readFileSync(join(proj, 'gdist', 'kit.key'), 'utf8').trim();
    runKey = readFileSync(join(proj, 'rdist', 'kit.key'), 'utf8').trim();
    glovePort = await freePort();
    runPort = await freePort();
    const t0 = Date.now();
    const s = await cli(['kit', 'serve', 'gdist', '--port', String(glovePort)]);
    assert.equal(s.code, 0, s.stderr);
    process.stderr.write(`# measured: first kit serve (imports the agent base) ${Date.now() - t0} ms\n`);
    assert.equal((await cli(['kit', 'serve', 'rdist', '--port', String(runPort)])).code, 0);
  });

  it('bench: kit serve with the image present and the first prompt, Glove agent against the run() shape', { timeout: 1_800_000 }, async () => {
    const rows: Record<string, { serve: number[]; first: number[] }> = { glove: { serve: [], first: [] }, run: { serve: [], first: [] } };
    for (let i = 0; i < 3; i++) {
      for (const [shape, dist, port, key, name] of [
        ['glove', 'gdist', glovePort, gloveKey, 'glovekit'],
        ['run', 'rdist', runPort, runKey, 'runkit'],
      ] as const) {
        assert.equal((await cli(['kit', 'stop', name])).code, 0);
        const t0 = Date.now();
        const s = await cli(['kit', 'serve', dist, '--port', String(port)]);
        assert.equal(s.code, 0, s.stderr);
        rows[shape]!.serve.push(Date.now() - t0);
        const c = client(port, key);
        try {
          const t1 = Date.now();
          assert.equal(await c.box('k').prompt('hello').message, 'You said: hello');
          rows[shape]!.first.push(Date.now() - t1);
        } finally {
          await c.close();
        }
      }
    }
    for (const [shape, r] of Object.entries(rows))
      process.stderr.write(`# measured: ${shape} kit: serve (image present) median ${median(r.serve)} ms [${r.serve.join(', ')}]; first prompt round trip median ${median(r.first)} ms [${r.first.join(', ')}]\n`);
  });

  it('a prompt: subscriber events in order, a display slot the client resolves, a file in /output and one tagged in /work', { timeout: 300_000 }, async () => {
    const c = client(glovePort, gloveKey);
    try {
      const env = await c.box('k').environment();
      assert.equal(env.fs['work']?.path, '/work');
      const run = c.box('k').prompt('/output /work/notes.txt write the report');
      const display: string[] = [];
      const resolving = (async () => {
        for await (const d of run.display) {
          if (d.type !== 'push' || !d.slot) continue;
          display.push(`${d.slot.renderer} ${JSON.stringify(d.slot['data'])}`);
          run.resolve(d.slot.id, true);
        }
      })();
      const events: string[] = [];
      for await (const ev of run.events) events.push(ev.event_type === 'tool_use' ? `tool_use ${(ev.data as { name: string }).name}` : ev.event_type);
      await resolving;
      assert.equal(await run.message, 'Report written.');
      assert.deepEqual(display, ['confirm {"question":"Write the report?"}']);
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
      assert.equal(outputs['report.md']?.kind, 'inline');
      assert.equal(outputs['work/notes.txt']?.kind, 'server', 'above the 16-byte inline bound: parked on the kit');
      assert.equal((await run.read('report.md')).toString(), '# Report\n');
      assert.equal((await run.read('work/notes.txt')).toString(), 'notes kept in work\n');
      // A tag outside the kit's dirs is refused, in the VM as in the unit tests.
      await assert.rejects(c.box('k').prompt('/output /opt/kit/kit.json hi').message, (e: Error & { code?: string }) => e.code === 'E_OUTPUT_FAILED');
    } finally {
      await c.close();
    }
  });

  it('the system prompt starts with the environment block; /clear-workspace empties /work', { timeout: 300_000 }, async () => {
    const c = client(glovePort, gloveKey);
    try {
      assert.equal(await c.box('k').prompt('what is your system prompt?').message, '## Kit environment');
      const before = await cli(['exec', '--user', 'root', '--', 'ls', '-A', '/var/lib/vibebox/kits/glovekit/work']);
      assert.match(before.stdout, /notes\.txt/);
      assert.equal(await c.box('k').prompt('/clear-workspace').message, 'The work directory is empty.');
      const after = await cli(['exec', '--user', 'root', '--', 'ls', '-A', '/var/lib/vibebox/kits/glovekit/work']);
      assert.equal(after.code, 0, after.stderr);
      assert.equal(after.stdout.trim(), '');
    } finally {
      await c.close();
    }
  });

  it('abort mid-tool stops the turn; the next prompt works', { timeout: 300_000 }, async () => {
    const c = client(glovePort, gloveKey);
    try {
      const run = c.box('k').prompt('sleep');
      for await (const ev of run.events) if (ev.event_type === 'tool_use') break;
      const t0 = Date.now();
      run.abort();
      await assert.rejects(run.message, (e: Error & { code?: string }) => e.code === 'E_ABORTED');
      process.stderr.write(`# measured: Glove kit abort mid-tool → error ${Date.now() - t0} ms\n`);
      assert.equal(await c.box('k').prompt('hello again').message, 'You said: hello again');
    } finally {
      await c.close();
    }
  });

  it('a docs kit converts Markdown to PDF with pandoc; the family layer is built once, then found by its tag', { timeout: 3_600_000 }, async () => {
    mkdirSync(join(proj, 'dkit'));
    writeFileSync(join(proj, 'dkit', 'agent.mjs'), DOCS_KIT);
    assert.equal((await cli(['kit', 'build', 'dkit/agent.mjs', '--out', 'ddist'])).code, 0);
    const port = await freePort();
    const t0 = Date.now();
    const s = await cli(['kit', 'serve', 'ddist', '--port', String(port)], { timeoutMs: 3_500_000 });
    assert.equal(s.code, 0, s.stderr);
    assert.match(s.stdout + s.stderr, /building the kit image layer family docs/);
    process.stderr.write(`# measured: docs family layer built and kit served ${Date.now() - t0} ms\n`);
    const key = readFileSync(join(proj, 'ddist', 'kit.key'), 'utf8').trim();
    const c = client(port, key);
    try {
      const t1 = Date.now();
      const run = c.box('k').prompt('convert', { files: { 'doc.md': { bytes: Buffer.from('# Title\n\nSome *Markdown* text.\n') } } });
      assert.equal(await run.message, 'converted');
      const pdf = await run.read('doc.pdf');
      process.stderr.write(`# measured: Markdown → PDF through the docs kit ${Date.now() - t1} ms (${pdf.length} bytes)\n`);
      assert.equal(pdf.subarray(0, 5).toString(), '%PDF-');
      assert.ok(pdf.length > 1000);
    } finally {
      await c.close();
    }
    const again = await cli(['kit', 'serve', 'ddist', '--port', String(port)]);
    assert.equal(again.code, 0, again.stderr);
    assert.doesNotMatch(again.stdout + again.stderr, /building the kit image layer/);
  });
});
