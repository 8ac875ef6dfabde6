// `npm run build && node --import tsx bench/kit-glove.ts`: a Glove agent as a kit against the
// run() shape, on loopback without a VM (the launcher the kit container runs, dist/server/index.mjs,
// started as a process): cold start to listening, and the first prompt's round trip through the
// SDK (connect, prompt, events, complete with one output). The Glove agent is the test fixture
// with its scripted model (no provider is reachable). The VM figures (kit serve in the VM, the
// same prompt through the forward) are printed by test/integration/glove-kit.test.ts.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KitClient } from '../guest/kit/client.js';
import { buildKit } from '../src/kit/build.js';
import { gloveKitProject, RUN_KIT } from '../test/helpers/glove-kit.js';

const RUNS = Number(process.env['BENCH_RUNS'] ?? 7);
const base = realpathSync(mkdtempSync(join(tmpdir(), 'vibebox-bench-kit-')));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function once(dist: string, key: string, n: number): Promise<{ start: number; first: number }> {
  const st = join(base, `state-${n}-${Math.random().toString(36).slice(2)}`);
  const t0 = performance.now();
  const p = spawn(process.execPath, [join(dist, 'server', 'index.mjs')], {
    env: { ...process.env, VIBEBOX_KIT_KEY: key, VIBEBOX_KIT_MANIFEST: join(dist, 'kit.json'), VIBEBOX_KIT_RUNNABLE: join(dist, 'server', 'runnable.mjs'), VIBEBOX_KIT_HOST: '127.0.0.1', VIBEBOX_KIT_PORT: '0', VIBEBOX_KIT_STATE: join(st, 'files'), VIBEBOX_KIT_INPUT: join(st, 'in'), VIBEBOX_KIT_OUTPUT: join(st, 'out'), VIBEBOX_KIT_WORK: join(st, 'work') },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no listening line within 30 s')), 30_000);
      p.stdout!.on('data', (d: Buffer) => {
        const m = /listening on http:\/\/(\S+)/.exec(d.toString());
        if (m) {
          clearTimeout(timer);
          resolve(`ws://${m[1]}/`);
        }
      });
    });
    const start = performance.now() - t0;
    const c = KitClient.make({ endpoints: { k: { url, key } } });
    const t1 = performance.now();
    const run = c.box('k').prompt('hello');
    for await (const _ of run.events) void _;
    if ((await run.message) !== 'You said: hello') throw new Error('unexpected answer');
    const first = performance.now() - t1;
    await c.close();
    return { start, first };
  } finally {
    p.kill();
  }
}

try {
  const gEntry = gloveKitProject(join(base, 'glove'));
  const g = await buildKit(gEntry, { out: join(base, 'glove', 'dist'), project: join(base, 'glove') });
  mkdirSync(join(base, 'run'));
  writeFileSync(join(base, 'run', 'agent.mjs'), RUN_KIT);
  const r = await buildKit(join(base, 'run', 'agent.mjs'), { out: join(base, 'run', 'dist'), project: join(base, 'run') });
  for (const [shape, b] of [
    ['Glove agent (wrap)', g],
    ['run() shape', r],
  ] as const) {
    const key = readFileSync(b.keyFile, 'utf8').trim();
    const xs: Array<{ start: number; first: number }> = [];
    for (let i = 0; i < RUNS; i++) xs.push(await once(b.out, key, i));
    const fmt = (v: number[]): string => `${median(v).toFixed(0)} ms (min ${Math.min(...v).toFixed(0)}, max ${Math.max(...v).toFixed(0)})`;
    process.stdout.write(`${shape}: kit cold start to listening ${fmt(xs.map((x) => x.start))}; first prompt round trip ${fmt(xs.map((x) => x.first))}; n=${RUNS}\n`);
  }
} finally {
  rmSync(base, { recursive: true, force: true });
}
