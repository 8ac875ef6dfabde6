// Files a guest can write in the project (it can mkfifo /workspace/vibebox.toml, or link it to
// /dev/zero) read by the built CLI as a user runs it: every command refuses them at once, in one
// line, exit 2; none blocks on a FIFO or reads a device without end. No VM.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { v7 as uuidv7 } from 'uuid';
import { writeSessionFile } from '../../src/session/state.js';
import { updateIndex } from '../../src/session/index-store.js';
import { upsert } from '../../src/session/index-file.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = join(root, 'dist', 'vibebox.js');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };

let base: string;
let home: string;
let project: string;

interface Result {
  status: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  ms: number;
}

function vb(args: string[]): Result {
  const env: NodeJS.ProcessEnv = { ...process.env, VIBEBOX_HOME: home, HOME: join(base, 'user') };
  delete env['VIBEBOX_DEBUG'];
  const t0 = Date.now();
  // A command that blocks on the FIFO is killed here (and the test fails on its signal).
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: project, env, encoding: 'utf8', timeout: 15_000, killSignal: 'SIGKILL', stdio: ['ignore', 'pipe', 'pipe'] });
  return { status: r.status, signal: r.signal, stderr: r.stderr, ms: Date.now() - t0 };
}

/** Exit 2 within a few seconds, exactly one stderr line `vibebox: …` matching every pattern. */
function assertRefusedAtOnce(r: Result, ...patterns: RegExp[]): void {
  assert.equal(r.signal, null, `killed after ${r.ms} ms: it blocked or read without end`);
  assert.equal(r.status, 2, `exit 2, got ${r.status}; stderr: ${r.stderr}`);
  assert.ok(r.ms < 10_000, `took ${r.ms} ms`);
  const lines = r.stderr.split('\n').filter((l) => l.length > 0);
  assert.equal(lines.length, 1, `one stderr line, got:\n${r.stderr}`);
  assert.match(lines[0]!, /^vibebox: /);
  assert.doesNotMatch(r.stderr, /EISDIR|\n\s+at |node:internal/);
  for (const p of patterns) assert.match(lines[0]!, p);
}

beforeEach(() => {
  base = mkdtempSync(join(tmpdir(), 'vb-hostile-'));
  home = join(base, 'vbhome');
  project = join(base, 'proj');
  for (const d of [home, join(base, 'user'), project]) mkdirSync(d);
});
afterEach(() => rmSync(base, { recursive: true, force: true }));

describe('a hostile vibebox.toml', () => {
  const cases: [string, (f: string) => void, RegExp][] = [
    ['a FIFO', (f) => execFileSync('mkfifo', [f]), /vibebox\.toml is not a regular file/],
    ['a symlink to /dev/zero', (f) => symlinkSync('/dev/zero', f), /vibebox\.toml is a symbolic link/],
    ['a directory', (f) => mkdirSync(f), /vibebox\.toml is a directory/],
    ['a file of 64 MiB', (f) => writeFileSync(f, Buffer.alloc(64 * 1024 * 1024, 0x23)), /vibebox\.toml is \d+ bytes, more than/],
  ];
  for (const [what, make, re] of cases) {
    it(`${what}: explain and exec exit 2 at once with one line`, () => {
      make(join(project, 'vibebox.toml'));
      assertRefusedAtOnce(vb(['explain']), re);
      assertRefusedAtOnce(vb(['explain', '--json']), re);
      assertRefusedAtOnce(vb(['exec', '--', 'true']), re);
    });
  }
});

describe('a hostile .vibebox/session.toml of a session the host knows', () => {
  const cases: [string, (f: string) => void][] = [
    ['a FIFO', (f) => execFileSync('mkfifo', [f])],
    ['a symlink to /dev/zero', (f) => symlinkSync('/dev/zero', f)],
  ];
  for (const [what, make] of cases) {
    it(`${what}: exec and explain refuse the folder at once`, async () => {
      const id = uuidv7();
      mkdirSync(join(project, '.vibebox'));
      writeSessionFile(project, { id, created: new Date().toISOString(), vibebox_version: pkg.version });
      await updateIndex((idx) => upsert(idx, { id, directory: project, last_active: new Date().toISOString() }), home);
      rmSync(join(project, '.vibebox', 'session.toml'));
      make(join(project, '.vibebox', 'session.toml'));
      assertRefusedAtOnce(vb(['exec', '--', 'true']), /was not made by vibebox/);
      assertRefusedAtOnce(vb(['explain']), /was not made by vibebox/);
    });
  }
});
