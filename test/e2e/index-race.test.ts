// Eight processes edit one VIBEBOX_HOME at once through the real index-store module: the index
// must stay valid TOML and lose nothing (docs/architecture.md, Files on disk).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import TOML from '@iarna/toml';
import { parseIndex } from '../../src/session/index-file.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const worker = join(root, 'test', 'fixtures', 'index-worker.ts');
const WORKERS = 8;
const N = 30;

function run(home: string, base: string, name: string): Promise<string[]> {
  return new Promise((res, rej) => {
    const p = spawn(process.execPath, ['--import', 'tsx', worker, base, name, String(N)], {
      cwd: root,
      env: { ...process.env, VIBEBOX_HOME: home },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    p.stdout.on('data', (b: Buffer) => (out += b.toString()));
    p.stderr.on('data', (b: Buffer) => (err += b.toString()));
    p.on('error', rej);
    p.on('close', (code) => {
      if (code !== 0) return rej(new Error(`worker ${name} exited ${code}: ${err}`));
      try {
        res(JSON.parse(out) as string[]);
      } catch (e) {
        rej(new Error(`worker ${name} printed ${JSON.stringify(out)} (${String(e)}); stderr: ${err}`));
      }
    });
  });
}

describe('index race', () => {
  let tmp: string;
  before(() => {
    tmp = realpathSync(mkdtempSync(join(tmpdir(), 'vb-race-')));
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it(`${WORKERS} processes adding and removing ${N} entries each leave a valid index with nothing lost`, { timeout: 120_000 }, async () => {
    const home = join(tmp, 'home');
    const base = join(tmp, 'projects');
    mkdirSync(base);
    const kept = await Promise.all(Array.from({ length: WORKERS }, (_, w) => run(home, base, `w${w}`)));
    const expected = kept.flat().sort();
    assert.equal(expected.length, WORKERS * Math.ceil(N / 2));
    assert.equal(new Set(expected).size, expected.length);

    const text = readFileSync(join(home, 'sessions.toml'), 'utf8');
    assert.doesNotThrow(() => TOML.parse(text));
    const index = parseIndex(text);
    assert.deepEqual(index.map((s) => s.id).sort(), expected);
    // One entry per directory, each its worker's own directory.
    assert.equal(new Set(index.map((s) => s.directory)).size, index.length);
    for (const s of index) assert.match(s.directory, new RegExp(`^${base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/w\\d+-\\d+$`));
    // No temp file or lock left behind.
    assert.deepEqual(readdirSync(home), ['sessions.toml']);
  });
});
