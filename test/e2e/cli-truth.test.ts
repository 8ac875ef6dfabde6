// The built CLI telling the truth, without a VM: the index never loses or hides a session, a bad
// entry spoils only itself, typos get a suggestion, bad input is one line (exit 2) before anything
// is created, and a declined question exits 1 saying nothing changed.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, beforeEach, describe, it } from 'node:test';
import { v7 as uuidv7 } from 'uuid';
import { writeSessionFile } from '../../src/session/state.js';
import { updateIndex } from '../../src/session/index-store.js';
import { parseIndexEntries, serializeIndex, upsert } from '../../src/session/index-file.js';
import { snapshot } from '../helpers/snapshot.js';
import { spawn as ptySpawn } from 'node-pty';
import { fakeImage } from '../helpers/fake-image.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = join(root, 'dist', 'vibebox.js');

let tmp: string;
let home: string;
let userHome: string;
let project: string;
let savedVbHome: string | undefined;

interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

function vb(args: string[], o: { cwd?: string; env?: Record<string, string>; timeout?: number } = {}): Result {
  const env: NodeJS.ProcessEnv = { ...process.env, VIBEBOX_HOME: home, HOME: userHome, ...o.env };
  delete env['VIBEBOX_DEBUG'];
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: o.cwd ?? project, env, encoding: 'utf8', timeout: o.timeout ?? 60_000, stdio: ['pipe', 'pipe', 'pipe'] });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function assertBadInput(r: Result, ...patterns: RegExp[]): void {
  assert.equal(r.status, 2, `exit 2, got ${r.status}; stderr: ${r.stderr}; stdout: ${r.stdout}`);
  const lines = r.stderr.split('\n').filter((l) => l.length > 0);
  assert.equal(lines.length, 1, `one stderr line, got:\n${r.stderr}`);
  assert.match(lines[0]!, /^vibebox: /);
  assert.doesNotMatch(r.stderr, /\n\s+at |Error:|node:internal|ENOENT|ENOTDIR|EEXIST|EISDIR/);
  for (const p of patterns) assert.match(lines[0]!, p);
}

function unchanged(fn: () => void): void {
  const before = snapshot(home, project, userHome);
  fn();
  assert.deepEqual(snapshot(home, project, userHome), before);
}

async function fakeSession(dir: string, lastActive = new Date()): Promise<string> {
  mkdirSync(join(dir, '.vibebox'), { recursive: true });
  writeFileSync(join(dir, '.vibebox', '.gitignore'), '*\n');
  const id = uuidv7();
  writeSessionFile(dir, { id, created: new Date().toISOString() });
  await updateIndex((idx) => upsert(idx, { id, directory: dir, last_active: lastActive.toISOString() }), home);
  return id;
}

function newProject(name: string): string {
  const d = join(tmp, 'projects', `${name}-${Math.random().toString(16).slice(2, 8)}`);
  mkdirSync(d, { recursive: true });
  return d;
}

before(() => {
  if (process.env['VIBEBOX_TEST_BUILT'] !== '1') {
    const b = spawnSync('npm', ['run', 'build'], { cwd: root, encoding: 'utf8' });
    assert.equal(b.status, 0, `npm run build failed:\n${b.stdout}\n${b.stderr}`);
  }
  assert.ok(existsSync(bin));
  tmp = realpathSync(mkdtempSync(join(tmpdir(), 'vb-truth-')));
  savedVbHome = process.env['VIBEBOX_HOME'];
});
after(() => {
  if (savedVbHome === undefined) delete process.env['VIBEBOX_HOME'];
  else process.env['VIBEBOX_HOME'] = savedVbHome;
  rmSync(tmp, { recursive: true, force: true });
});
beforeEach(() => {
  const t = mkdtempSync(join(tmp, 't-'));
  home = join(t, 'vbhome');
  userHome = join(t, 'home');
  mkdirSync(home);
  mkdirSync(userHome);
  project = newProject('proj');
  process.env['VIBEBOX_HOME'] = home;
});

describe('a project directory that is briefly missing', () => {
  it('is listed as missing (text and --json), kept in the index, and its own again when it is back', async () => {
    const id = await fakeSession(project);
    const away = `${project}-unmounted`;
    renameSync(project, away);
    const j = vb(['list', '--json'], { cwd: tmp });
    assert.equal(j.status, 0, j.stderr);
    assert.deepEqual(JSON.parse(j.stdout), [{ id, directory: project, last_active: (JSON.parse(j.stdout) as { last_active: string }[])[0]!.last_active, state: 'missing', refs: 0 }]);
    const t = vb(['list'], { cwd: tmp });
    assert.equal(t.status, 0, t.stderr);
    assert.match(t.stdout, new RegExp(`${id}.*missing \\(directory not found\\)`));
    assert.match(t.stdout, /vibebox delete <id>/);
    assert.deepEqual(parseIndexEntries(readFileSync(join(home, 'sessions.toml'), 'utf8')).entries.map((e) => e.id), [id]);
    renameSync(away, project);
    const e = vb(['explain', '--json']);
    assert.equal(e.status, 0, e.stderr);
    assert.equal((JSON.parse(e.stdout) as { session: string }).session, id);
    const l = vb(['list', '--json']);
    assert.equal((JSON.parse(l.stdout) as { state: string }[])[0]!.state, 'stopped');
  });
  it('vibebox delete <id> still forgets it, and says its .vibebox/ was not there to delete', async () => {
    const id = await fakeSession(project);
    renameSync(project, `${project}-away`);
    const r = vb(['delete', id, '-y'], { cwd: tmp });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`forgot session ${id}`));
    assert.deepEqual(parseIndexEntries(readFileSync(join(home, 'sessions.toml'), 'utf8')).entries, []);
  });
  it('a .vibebox/ the index lost but whose disk vibebox recorded is never answered with rm', async () => {
    const id = await fakeSession(project);
    mkdirSync(join(home, 'disks'), { recursive: true });
    writeFileSync(join(home, 'disks', `${id}.json`), '{}\n');
    writeFileSync(join(home, 'sessions.toml'), serializeIndex([]));
    const r = vb(['explain']);
    assertBadInput(r, /not made by vibebox/, /run `vibebox` here to take it back/);
    assert.doesNotMatch(r.stderr, /rm -r/);
  });
});

describe('a bad entry in sessions.toml', () => {
  it('spoils only itself: the others work, one warning line names it, the file keeps it, no copy', async () => {
    const id = await fakeSession(project);
    const file = join(home, 'sessions.toml');
    const bad = '[[session]]\nid = "01890a5d-ac96-774b-bcce-b302099a8057"\ndirectory = "relative/path"\nlast_active = "2025-01-01T00:00:00Z"\n';
    writeFileSync(file, `${readFileSync(file, 'utf8')}\n${bad}`);
    for (let i = 0; i < 2; i++) {
      const r = vb(['list', '--json']);
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual((JSON.parse(r.stdout) as { id: string }[]).map((x) => x.id), [id]);
      const lines = r.stderr.split('\n').filter((l) => l);
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0]!, /^vibebox: warning: .*sessions\.toml: session 2 \(line \d+, id 01890a5d-ac96-774b-bcce-b302099a8057\): directory: must be an absolute path; skipped/);
    }
    const e = vb(['explain', '--json']);
    assert.equal(e.status, 0, e.stderr);
    assert.equal((JSON.parse(e.stdout) as { session: string }).session, id);
    // A command that rewrites the index keeps the bad entry as written.
    const other = newProject('other');
    await fakeSession(other);
    assert.ok(readFileSync(file, 'utf8').includes(bad.trimEnd()));
    assert.deepEqual(readdirSync(home).filter((f) => f.includes('corrupt')), []);
  });
  it("a folder whose own entry is the bad one: told which line to mend, never rm; list says entries were skipped", async () => {
    const id = await fakeSession(project);
    const file = join(home, 'sessions.toml');
    writeFileSync(file, readFileSync(file, 'utf8').replace(/last_active = .*/, 'last_active = "yesterday"'));
    const r = vb(['explain']);
    assert.equal(r.status, 2, r.stderr);
    const lines = r.stderr.split('\n').filter((l) => l);
    assert.equal(lines.length, 2, r.stderr);
    assert.match(lines[0]!, /^vibebox: warning: /);
    assert.match(lines[1]!, new RegExp(`^vibebox: the index entry of this folder's session cannot be read: session 1 \\(line \\d+, id ${id}\\): last_active: `));
    assert.doesNotMatch(r.stderr, /rm -r/);
    const l = vb(['list']);
    assert.equal(l.status, 0, l.stderr);
    assert.match(l.stdout, /no sessions vibebox can read \(1 entry of sessions\.toml skipped/);
  });
  it('a file unreadable as a whole: one line, exit 2, and one copy however many runs', () => {
    const file = join(home, 'sessions.toml');
    writeFileSync(file, '[[session]]\nid = "oops\n');
    for (let i = 0; i < 3; i++) assertBadInput(vb(['list']), /sessions\.toml is corrupted/, /a copy was kept at/);
    assert.equal(readdirSync(home).filter((f) => f.startsWith('sessions.toml.corrupt-')).length, 1);
    assert.equal(readFileSync(file, 'utf8'), '[[session]]\nid = "oops\n');
  });
});

/** The CLI on a terminal, answering `answer` to its question; resolves with the exit code and all output. */
function onTerminal(args: string[], answer: string): Promise<{ code: number; out: string }> {
  return new Promise((res) => {
    const env: Record<string, string> = { ...(process.env as Record<string, string>), VIBEBOX_HOME: home, HOME: userHome };
    delete env['VIBEBOX_DEBUG'];
    const p = ptySpawn(process.execPath, [bin, ...args], { cwd: project, env, cols: 200, rows: 30 });
    let out = '';
    let answered = false;
    p.onData((d) => {
      out += d;
      if (!answered && /\[y\/N\]/.test(out)) {
        answered = true;
        p.write(`${answer}\r`);
      }
    });
    p.onExit(({ exitCode }) => res({ code: exitCode, out }));
  });
}

describe('declining a question', () => {
  it('delete, answered no: exit 1, "nothing changed", the session still there', async () => {
    const id = await fakeSession(project);
    const before = snapshot(home, project, userHome);
    const r = await onTerminal(['delete', id], 'n');
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, new RegExp(`vibebox: nothing changed: session ${id} was not deleted \\(you answered no\\)`));
    assert.deepEqual(snapshot(home, project, userHome), before);
  });
  it('approve of a widened vibebox.toml, answered no: exit 1, "nothing changed", no session left behind', async () => {
    writeFileSync(join(project, 'vibebox.toml'), '[vm]\nmemory = "8GiB"\n');
    const before = snapshot(home, project, userHome);
    const r = await onTerminal(['approve'], 'n');
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /vibebox: nothing changed: vibebox\.toml's changes were not approved \(.*vm\.memory.*\) \(you answered no/);
    assert.ok(!existsSync(join(project, '.vibebox')));
    assert.deepEqual(parseIndexEntries(readFileSync(join(home, 'sessions.toml'), 'utf8')).entries, []);
    // Only bookkeeping remains: the (now empty) index and the project-lock directory.
    const mine = (f: string): boolean => !f.includes('sessions.toml') && !f.endsWith('/locks/');
    assert.deepEqual(snapshot(home, project, userHome).filter(mine), before.filter(mine));
  });
  it('reset, answered no: exit 1, "nothing changed", no session created', async () => {
    const before = snapshot(home, project, userHome);
    const r = await onTerminal(['reset'], 'n');
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /vibebox: nothing changed: the container's changes were kept \(you answered no\)/);
    assert.deepEqual(snapshot(home, project, userHome), before);
  });
});

// A PATH with node only: were a check to come too late, a build or a boot fails at once instead of running.
const nodeOnly = { PATH: dirname(process.execPath) };

describe('a mistyped command', () => {
  it('gets a suggestion, exit 2, one line, and opens no shell', () => {
    unchanged(() => {
      assertBadInput(vb(['lst'], { env: nodeOnly }), /^vibebox: unknown command 'lst' \(did you mean list\?\)$/);
      assertBadInput(vb(['lsit', '--json'], { env: nodeOnly }), /unknown command 'lsit' \(did you mean list\?\)/);
      assertBadInput(vb(['-p', project, 'delet', 'x'], { env: nodeOnly }), /unknown command 'delet' \(did you mean delete\?\)/);
      assertBadInput(vb(['exce', 'ls'], { env: nodeOnly }), /did you mean exec\?/);
      assertBadInput(vb(['frobnicate'], { env: nodeOnly }), /unknown command 'frobnicate' \(see `vibebox --help`; to run a command in the VM: vibebox exec -- <command>\)/);
      assertBadInput(vb(['--bogus'], { env: nodeOnly }), /unknown option '--bogus'/);
      // A subcommand's suggestion (commander's own) is one line too.
      assertBadInput(vb(['image', 'bild'], { env: nodeOnly }), /^vibebox: unknown command 'bild' \(did you mean build\?\)$/);
      assertBadInput(vb(['list', '--jsn'], { env: nodeOnly }), /unknown option '--jsn' \(did you mean --json\?\)/);
    });
  });
});

describe('checks before work', () => {
  it('run <unknown agent>: exit 2 naming the agent, nothing created or built', () => {
    unchanged(() => assertBadInput(vb(['run', 'claud'], { env: nodeOnly }), /unknown agent claud \(did you mean claude\? known: claude, codex/));
    unchanged(() => assertBadInput(vb(['run', '--root', 'nope', '--flag'], { env: nodeOnly }), /unknown agent nope/));
    unchanged(() => assertBadInput(vb(['update', 'nope'], { env: nodeOnly }), /unknown agent nope/));
    assert.ok(!existsSync(join(project, '.vibebox')));
    assert.ok(!existsSync(join(project, 'vibebox.toml')));
  });
  it('port with a bad argument says so, whether or not a session runs', () => {
    unchanged(() => {
      assertBadInput(vb(['port', 'abc']), /guest port "abc" is not a port number/);
      assertBadInput(vb(['port', '8080', 'x']), /host port "x" is not a port number/);
      assertBadInput(vb(['port', '--close', '0']), /host port "0" is not a port number/);
      assertBadInput(vb(['port', '80', '--close', '81']), /--close takes no guest port/);
      assertBadInput(vb(['port', '8080']), /no running session/);
    });
  });
  it('agents never boots a VM: without a running session it lists the known agents, versions unknown', async () => {
    unchanged(() => {
      const t = vb(['agents'], { env: nodeOnly });
      assert.equal(t.status, 0, t.stderr);
      assert.match(t.stdout, /^AGENT\s+PACKAGE\s+INSTALLED\nclaude\s+@anthropic-ai\/claude-code\s+unknown \(not running\)/);
      assert.match(t.stderr, /^vibebox: no session here yet: installed versions are shown while it runs/);
      const j = vb(['agents', '--json'], { env: nodeOnly });
      assert.equal(j.status, 0, j.stderr);
      const rows = JSON.parse(j.stdout) as { name: string; version: null; running: boolean }[];
      assert.ok(rows.some((r) => r.name === 'claude' && r.version === null && r.running === false));
    });
    await fakeSession(project);
    unchanged(() => assert.match(vb(['agents'], { env: nodeOnly }).stderr, /the session is not running/));
  });
});

describe('raw errors become one line', () => {
  it('logs (and -f) without a session: exit 2, "no session", not ENOENT from watch', () => {
    unchanged(() => {
      assertBadInput(vb(['logs', '-f'], { timeout: 10_000 }), /no session in /);
      assertBadInput(vb(['logs', 'serial']), /no session in /);
    });
  });
  it('a bad VIBEBOX_HOME: a file, a path under a file, a relative path', () => {
    const file = join(tmp, `file-${Math.random().toString(16).slice(2)}`);
    writeFileSync(file, 'x');
    for (const cmd of [['list'], ['explain'], ['exec', '--', 'true'], ['delete', '0189', '-y']]) {
      assertBadInput(vb(cmd, { env: { ...nodeOnly, VIBEBOX_HOME: file } }), /VIBEBOX_HOME .* is not a directory/);
      assertBadInput(vb(cmd, { env: { ...nodeOnly, VIBEBOX_HOME: join(file, 'sub') } }), /VIBEBOX_HOME .* is inside a file, not a directory/);
      assertBadInput(vb(cmd, { env: { ...nodeOnly, VIBEBOX_HOME: 'relative/home' } }), /VIBEBOX_HOME "relative\/home" is not an absolute path/);
    }
    assert.equal(vb(['--version'], { env: { VIBEBOX_HOME: file } }).status, 0);
    assert.ok(!existsSync(join(project, 'relative')));
  });
  it('sessions.toml that is a directory is one line', () => {
    mkdirSync(join(home, 'sessions.toml'));
    assertBadInput(vb(['list']), /sessions\.toml is a directory, not the session index/);
  });
  it('a deleted current directory is one line; an absolute --project still works', () => {
    const gone = newProject('gone');
    const script = `process.chdir(${JSON.stringify(gone)}); require('node:fs').rmdirSync(${JSON.stringify(gone)}); process.argv = [process.argv[0], ${JSON.stringify(bin)}, ...JSON.parse(process.env.ARGS)]; import(${JSON.stringify(bin)});`;
    const inGone = (args: string[]): Result => {
      const r = spawnSync(process.execPath, ['-e', script], { cwd: tmp, env: { ...process.env, ...nodeOnly, VIBEBOX_HOME: home, HOME: userHome, ARGS: JSON.stringify(args) }, encoding: 'utf8', timeout: 30_000 });
      return { status: r.status, stdout: r.stdout, stderr: r.stderr };
    };
    assertBadInput(inGone(['explain']), /the current directory was deleted or moved away/);
    mkdirSync(gone);
    assertBadInput(inGone(['exec', '--', 'true']), /the current directory was deleted or moved away/);
    mkdirSync(gone);
    const ok = inGone(['explain', '--json', '-p', project]);
    assert.equal(ok.status, 0, ok.stderr);
  });
});

describe('images of a session whose directory is missing', () => {
  it('image prune keeps them, and image rm refuses, while the directory cannot be read', async () => {
    const digest = 'abcdef0123456789';
    await fakeImage(home, 'default', digest);
    const id = await fakeSession(project);
    writeSessionFile(project, { id, created: new Date().toISOString(), image: { name: 'default', digest } });
    renameSync(project, `${project}-unmounted`);
    const p = vb(['image', 'prune'], { cwd: tmp, env: nodeOnly });
    assert.equal(p.status, 0, p.stderr);
    assert.match(p.stderr, new RegExp(`kept every image: the image of session ${id}`));
    assert.ok(existsSync(join(home, 'images', 'default', digest, 'image.json')));
    assertBadInput(vb(['image', 'rm', digest], { cwd: tmp, env: nodeOnly }), new RegExp(`cannot tell whether session ${id} uses this image`));
    assert.ok(existsSync(join(home, 'images', 'default', digest, 'image.json')));
    renameSync(`${project}-unmounted`, project);
    assertBadInput(vb(['image', 'rm', digest], { env: nodeOnly }), /is used by a session/);
  });
});
