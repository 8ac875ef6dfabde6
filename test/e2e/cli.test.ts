// The built CLI (dist/vibebox.js) as a user runs it. No VM: only commands that never boot one.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, beforeEach, describe, it } from 'node:test';
import { v7 as uuidv7 } from 'uuid';
import { writeSessionFile } from '../../src/session/state.js';
import { readIndex, updateIndex } from '../../src/session/index-store.js';
import { parseIndex, upsert } from '../../src/session/index-file.js';
import { DEFAULT_ALLOWLIST } from '../../proxy/policy.js';
import { snapshot } from '../helpers/snapshot.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = join(root, 'dist', 'vibebox.js');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };

let tmp: string;
let home: string; // VIBEBOX_HOME
let userHome: string; // HOME
let project: string;
let savedVbHome: string | undefined;

interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

function vb(args: string[], o: { cwd?: string; env?: Record<string, string> } = {}): Result {
  const env: NodeJS.ProcessEnv = { ...process.env, VIBEBOX_HOME: home, HOME: userHome, ...o.env };
  delete env['VIBEBOX_DEBUG'];
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: o.cwd ?? project, env, encoding: 'utf8', timeout: 60_000, stdio: ['pipe', 'pipe', 'pipe'] });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A bad-input answer: exit 2, exactly one stderr line `vibebox: …`, no stack trace. */
function assertBadInput(r: Result, ...patterns: RegExp[]): void {
  assert.equal(r.status, 2, `exit 2, got ${r.status}; stderr: ${r.stderr}; stdout: ${r.stdout}`);
  const lines = r.stderr.split('\n').filter((l) => l.length > 0);
  assert.equal(lines.length, 1, `one stderr line, got:\n${r.stderr}`);
  assert.match(lines[0]!, /^vibebox: /);
  assert.doesNotMatch(r.stderr, /\n\s+at |Error:|node:internal/);
  for (const p of patterns) assert.match(lines[0]!, p);
}

/** Run a bad input and check that nothing on disk changed. */
function unchanged(fn: () => void): void {
  const before = snapshot(home, project, userHome);
  fn();
  assert.deepEqual(snapshot(home, project, userHome), before);
}

/** A session as `vibebox` would leave it: <dir>/.vibebox/session.toml and an index entry. */
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

/** The shortest prefix of id that no other id shares. */
function uniquePrefix(id: string, others: string[]): string {
  for (let n = 4; n <= id.length; n++) {
    const p = id.slice(0, n);
    if (!others.some((o) => o !== id && o.startsWith(p))) return p;
  }
  return id;
}

function commonPrefix(a: string, b: string): string {
  let i = 0;
  while (i < a.length && a[i] === b[i]) i++;
  return a.slice(0, i);
}

before(() => {
  // Run alone, the file builds; under the test runner (npm test) the build is done and dist/
  // may not be writable by the user the suites run as.
  if (process.env['VIBEBOX_TEST_BUILT'] !== '1') {
    const b = spawnSync('npm', ['run', 'build'], { cwd: root, encoding: 'utf8' });
    assert.equal(b.status, 0, `npm run build failed:\n${b.stdout}\n${b.stderr}`);
  }
  assert.ok(existsSync(bin));
  tmp = realpathSync(mkdtempSync(join(tmpdir(), 'vb-cli-')));
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
  // The in-process helpers (fakeSession) use the same VIBEBOX_HOME as the CLI.
  process.env['VIBEBOX_HOME'] = home;
});

describe('vibebox CLI: version and help', () => {
  it('--version prints the package version', () => {
    for (const flag of ['--version', '-V']) {
      const r = vb([flag]);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout.trim(), pkg.version);
    }
  });
  it('--help works on the program and on every command, and changes nothing', () => {
    const r = vb(['--help']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^Usage: vibebox/);
    for (const c of ['list', 'delete', 'explain', 'doctor', 'stop', 'exec', 'image', 'allow', 'deny', 'approve', 'logs']) assert.match(r.stdout, new RegExp(`\\b${c}\\b`), c);
    unchanged(() => {
      for (const cmd of [['list'], ['delete'], ['explain'], ['doctor'], ['stop'], ['exec'], ['image', 'build'], ['image'], ['allow'], ['deny'], ['approve'], ['logs']]) {
        const h = vb([...cmd, '--help']);
        assert.equal(h.status, 0, `${cmd.join(' ')} --help: ${h.stderr}`);
        assert.match(h.stdout, new RegExp(`^Usage: vibebox ${cmd.join(' ')}`), cmd.join(' '));
        assert.equal(h.stderr, '');
      }
    });
  });
  it('an unknown command or option is exit 2 with one line', () => {
    unchanged(() => {
      assertBadInput(vb(['frobnicate']));
      assertBadInput(vb(['list', '--bogus']), /--bogus/);
      assertBadInput(vb(['delete']), /session-id/);
    });
  });
});

describe('vibebox list', () => {
  it('with no sessions: a message, and [] as JSON', () => {
    const t = vb(['list']);
    assert.equal(t.status, 0, t.stderr);
    assert.match(t.stdout, /no sessions/);
    const j = vb(['list', '--json']);
    assert.equal(j.status, 0, j.stderr);
    assert.deepEqual(JSON.parse(j.stdout), []);
  });
  it('shows a session as stopped, with its directory and last activity', async () => {
    const id = await fakeSession(project, new Date(Date.now() - 3 * 60_000));
    const j = vb(['list', '--json']);
    assert.equal(j.status, 0, j.stderr);
    const rows = JSON.parse(j.stdout) as { id: string; directory: string; state: string; last_active: string }[];
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.id, id);
    assert.equal(rows[0]!.directory, project);
    assert.equal(rows[0]!.state, 'stopped');
    const t = vb(['list']);
    assert.equal(t.status, 0, t.stderr);
    assert.match(t.stdout, /^ID\s+DIRECTORY\s+LAST ACTIVE\s+STATE/);
    assert.ok(t.stdout.includes(id));
    assert.ok(t.stdout.includes(project));
    assert.match(t.stdout, /3 minutes ago\s+stopped/);
    assert.equal(vb(['ls', '--json']).stdout, j.stdout);
  });
  it('a directory name with escape sequences is listed escaped (table and --json)', async () => {
    const dir = join(tmp, 'p\x1b[1A\x1b[2K\r\u202efake');
    mkdirSync(dir);
    await fakeSession(dir);
    const t = vb(['list']);
    assert.equal(t.status, 0, t.stderr);
    assert.doesNotMatch(t.stdout, /[\x1b\r\u202e]/);
    assert.ok(t.stdout.includes('p\\e[1A\\e[2K\\r\\u202efake'), t.stdout);
    const j = vb(['list', '--json']);
    assert.doesNotMatch(j.stdout, /[\x1b\r\u202e]/);
    assert.ok((JSON.parse(j.stdout) as { directory: string }[]).some((r) => r.directory === dir), 'the same value as JSON');
    rmSync(dir, { recursive: true, force: true });
  });
  it('drops a session whose .vibebox/ was deleted by hand', async () => {
    const keep = await fakeSession(project);
    const gone = newProject('gone');
    await fakeSession(gone);
    rmSync(join(gone, '.vibebox'), { recursive: true });
    const j = vb(['list', '--json']);
    assert.equal(j.status, 0, j.stderr);
    assert.deepEqual((JSON.parse(j.stdout) as { id: string }[]).map((r) => r.id), [keep]);
    assert.deepEqual(parseIndex(readFileSync(join(home, 'sessions.toml'), 'utf8')).map((s) => s.id), [keep]);
  });
  it('a corrupted sessions.toml: exit 2, one line, the file kept as is plus a backup', async () => {
    const file = join(home, 'sessions.toml');
    writeFileSync(file, '[[session]]\nid = "oops\n');
    const r = vb(['list']);
    assertBadInput(r, /sessions\.toml/, /corrupt/);
    assert.equal(readFileSync(file, 'utf8'), '[[session]]\nid = "oops\n');
    const backups = readdirSync(home).filter((f) => f.startsWith('sessions.toml.corrupt-'));
    assert.equal(backups.length, 1);
    assert.equal(readFileSync(join(home, backups[0]!), 'utf8'), '[[session]]\nid = "oops\n');
  });
});

describe('vibebox delete', () => {
  it('delete <prefix> -y removes .vibebox/ and the index entry, and nothing else', async () => {
    writeFileSync(join(project, 'keep.txt'), 'mine');
    const other = newProject('other');
    const otherId = await fakeSession(other);
    const id = await fakeSession(project);
    const prefix = uniquePrefix(id, [otherId]);
    assert.ok(prefix.length < id.length);
    const r = vb(['delete', prefix, '-y']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`deleted session ${id}`));
    assert.ok(!existsSync(join(project, '.vibebox')));
    assert.equal(readFileSync(join(project, 'keep.txt'), 'utf8'), 'mine');
    assert.deepEqual((await readIndex(home)).map((s) => s.id), [otherId]);
    assert.ok(existsSync(join(other, '.vibebox', 'session.toml')));
    const j = vb(['list', '--json']);
    assert.deepEqual((JSON.parse(j.stdout) as { id: string }[]).map((s) => s.id), [otherId]);
  });
  it('accepts the full id, with or without dashes (rm alias, --yes)', async () => {
    const id = await fakeSession(project);
    const r = vb(['rm', id.replace(/-/g, '').toUpperCase(), '--yes']);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(!existsSync(join(project, '.vibebox')));
    assert.deepEqual(await readIndex(home), []);
  });
  it('without -y on a non-terminal: exit 2, nothing deleted', async () => {
    const id = await fakeSession(project);
    unchanged(() => assertBadInput(vb(['delete', id]), /confirm/, /-y/));
    assert.ok(existsSync(join(project, '.vibebox', 'session.toml')));
  });
  it('an unknown id, a non-id, or an ambiguous prefix: exit 2, one line, nothing changed', async () => {
    const a = await fakeSession(project);
    const b = await fakeSession(newProject('b'));
    const common = commonPrefix(a, b);
    assert.ok(common.length >= 1);
    unchanged(() => {
      assertBadInput(vb(['delete', 'ffffffff', '-y']), /no session with id ffffffff/);
      assertBadInput(vb(['delete', uuidv7(), '-y']), /no session/);
      assertBadInput(vb(['delete', 'not-an-id', '-y']), /not a session id/);
      assertBadInput(vb(['delete', common, '-y']), /ambiguous/);
    });
  });
});

describe('vibebox explain', () => {
  it('--json: the /workspace rw mount, the allowlist, and the storage paths', () => {
    const r = vb(['explain', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const e = JSON.parse(r.stdout) as {
      project: string;
      session: string | null;
      mounts: { host: string; guest: string; mode: string }[];
      network: { mode: string; entries: string[] };
      storage: { config: string; state: string };
    };
    assert.equal(e.project, project);
    assert.equal(e.session, null);
    assert.deepEqual(e.mounts, [{ host: project, guest: '/workspace', mode: 'rw' }]);
    assert.equal(e.network.mode, 'allowlist');
    assert.deepEqual(e.network.entries, [...DEFAULT_ALLOWLIST]);
    assert.deepEqual(e.storage, { config: 'vibebox.toml', state: '.vibebox/' });
    // Read-only: explain writes nothing, not even the default vibebox.toml.
    assert.ok(!existsSync(join(project, 'vibebox.toml')));
    assert.ok(!existsSync(join(project, '.vibebox')));
  });
  it('text output names the same things; --project works from elsewhere', () => {
    const r = vb(['explain', '--project', project], { cwd: tmp });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(r.stdout.includes(`${project} → /workspace (rw)`));
    assert.match(r.stdout, /network: allowlist/);
    assert.match(r.stdout, /config: vibebox\.toml/);
    assert.match(r.stdout, /state:\s+\.vibebox\//);
  });
  it('shows extra mounts resolved (relative to the project, ~ to HOME)', () => {
    mkdirSync(join(project, 'data'));
    writeFileSync(join(userHome, '.gitconfig'), '[user]\n');
    writeFileSync(
      join(project, 'vibebox.toml'),
      '[[mounts]]\nhost = "data"\nguest = "/mnt/data"\nmode = "rw"\n\n[[mounts]]\nhost = "~/.gitconfig"\nguest = "/home/vibe/.gitconfig"\n',
    );
    const r = vb(['explain', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const e = JSON.parse(r.stdout) as { mounts: { host: string; guest: string; mode: string }[] };
    assert.deepEqual(e.mounts, [
      { host: project, guest: '/workspace', mode: 'rw' },
      { host: join(project, 'data'), guest: '/mnt/data', mode: 'rw' },
      { host: join(userHome, '.gitconfig'), guest: '/home/vibe/.gitconfig', mode: 'ro' },
    ]);
  });
  it('a broken vibebox.toml: exit 2, one line naming the key or the line, nothing changed', () => {
    const cases: [string, RegExp[]][] = [
      ['[vm]\ncpus = 2\nbogus = 1\n', [/vibebox\.toml/, /vm: unknown key "bogus"/]],
      ['surprise = true\n', [/unknown key "surprise"/]],
      ['[vm]\ncpus = "many"\n', [/vibebox\.toml/, /vm\.cpus/]],
      ['[vm]\nmemory = "lots"\n', [/vm\.memory/]],
      ['[network]\nmode = "open"\n', [/network\.mode/]],
      ['[vm]\ncpus = 2\n\nmemory = = "2GiB"\n', [/vibebox\.toml:4:10: unexpected "="/]],
      ['[vm\n', [/vibebox\.toml:1:4: /]],
      ['[[mounts]]\nhost = "./missing"\nguest = "/mnt/m"\n', [/\.\/missing/, /does not exist/]],
      ['[[mounts]]\nhost = "."\nguest = "/etc"\n', [/system path/]],
      // a control character anywhere (the approval-prompt attack): the key named, printed escaped
      ['[image]\nrun = ["\\u001b[1A\\u001b[2K\\r+ image.run: apt-get clean"]\n', [/image\.run\[0\] contains a control character \(\\e\): "\\e\[1A/]],
      ['[[mounts]]\nhost = "/tmp"\nguest = "/mnt/x\\r"\n', [/mounts\[0\]\.guest contains a control character \(\\r\)/]],
      // an entry the proxy would skip, refused as `vibebox allow` refuses it
      ['[network]\nentries = ["host:0"]\n', [/network\.entries\[0\]: "host:0": port must be a number from 1 to 65535/]],
      ['[network]\nentries = ["010.1.1.1"]\n', [/network\.entries\[0\]: .*8\.1\.1\.1/]],
    ];
    for (const [text, patterns] of cases) {
      writeFileSync(join(project, 'vibebox.toml'), text);
      unchanged(() => {
        assertBadInput(vb(['explain']), ...patterns);
        assertBadInput(vb(['explain', '--json']), ...patterns);
      });
      assert.doesNotMatch(vb(['explain']).stderr, /[\x1b\r]/, 'nothing raw reaches the terminal');
    }
  });
  it('a mount exposing VIBEBOX_HOME is refused', () => {
    writeFileSync(join(project, 'vibebox.toml'), `[[mounts]]\nhost = ${JSON.stringify(home)}\nguest = "/mnt/h"\n`);
    unchanged(() => assertBadInput(vb(['explain']), /expose/));
  });
  it('cwd = / or the home directory: exit 2, nothing changed', () => {
    unchanged(() => {
      assertBadInput(vb(['explain'], { cwd: '/' }), /refusing to use \/ as a project/);
      assertBadInput(vb(['explain'], { cwd: userHome }), /refusing to use/);
      assertBadInput(vb(['explain', '--project', join(project, 'nope')]), /does not exist/);
    });
  });
  it('shows what waits for approval, marked, and the VM size (text and --json); approve -y lists what it approved', async () => {
    await fakeSession(project);
    const none = vb(['approve', '--yes']);
    assert.equal(none.status, 0, none.stderr);
    assert.equal(none.stdout, 'vibebox.toml asks for nothing beyond what you approved: no change\n');
    mkdirSync(join(project, 'data'));
    const entries = [...DEFAULT_ALLOWLIST, 'new.example.com'].map((e) => JSON.stringify(e)).join(', ');
    writeFileSync(join(project, 'vibebox.toml'), `[vm]\ncpus = 3\nmemory = "4GiB"\n\n[[mounts]]\nhost = "data"\nguest = "/mnt/data"\nmode = "rw"\n\n[network]\nentries = [${entries}]\n`);
    type E = {
      vm: { cpus: number; memory: string; disk: string };
      mounts: { host: string; guest: string; mode: string }[];
      network: { entries: string[] };
      pending: { items: string[]; mounts: { host: string; guest: string; mode: string }[]; network: { entries: string[] }; vm: { cpus?: number; memory?: string } };
    };
    const r = vb(['explain', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const e = JSON.parse(r.stdout) as E;
    assert.deepEqual(e.vm, { cpus: 2, memory: '2GiB', disk: '20GiB', auto_shutdown: '30000 ms' });
    assert.deepEqual(e.pending.vm, { cpus: 3, memory: '4GiB' });
    const data = { host: join(project, 'data'), guest: '/mnt/data', mode: 'rw' };
    // The top-level lists are what the VM gets (scripts read them so); the rest is in `pending`.
    assert.deepEqual(e.mounts, [{ host: project, guest: '/workspace', mode: 'rw' }]);
    assert.deepEqual(e.pending.mounts, [data]);
    assert.equal(e.network.entries.includes('new.example.com'), false);
    assert.deepEqual(e.pending.network.entries, ['new.example.com']);
    assert.equal(e.pending.items.length, 4, e.pending.items.join('\n'));
    const t = vb(['explain']).stdout;
    assert.match(t, /^vm: 2 cpus, 2GiB memory, 20GiB disk; stops 30000 ms after the last client leaves$/m);
    assert.match(t, /^ {2}asks for 3 cpus, 4GiB memory {2}\+ pending approval$/m);
    assert.ok(t.includes(`  ${join(project, 'data')} → /mnt/data (rw)  + pending approval\n`), t);
    assert.ok(t.includes('  new.example.com  + pending approval\n'), t);
    assert.match(t, /^pending approval \(vibebox\.toml asks for it; not applied until `vibebox approve`\):$/m);
    const a = vb(['approve', '--yes']);
    assert.equal(a.status, 0, a.stderr);
    assert.equal(a.stdout, `approved:\n${e.pending.items.map((i) => `  ${i}\n`).join('')}`);
    const after = JSON.parse(vb(['explain', '--json']).stdout) as E;
    assert.deepEqual(after.pending.items, []);
    assert.deepEqual(after.vm, { cpus: 3, memory: '4GiB', disk: '20GiB', auto_shutdown: '30000 ms' });
    assert.doesNotMatch(vb(['explain']).stdout, /pending approval/);
  });
  it('a session in the project is shown', async () => {
    const id = await fakeSession(project);
    const r = vb(['explain', '--json']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { session: string }).session, id);
  });
});

describe('vibebox allow / deny', () => {
  const entries = () => (JSON.parse(vb(['explain', '--json']).stdout) as { network: { entries: string[] } }).network.entries;
  it('allow adds a host to vibebox.toml, deny removes it', () => {
    const a = vb(['allow', 'example.org']);
    assert.equal(a.status, 0, a.stderr);
    assert.match(a.stdout, /allowed example\.org/);
    assert.ok(entries().includes('example.org'));
    assert.ok(readFileSync(join(project, 'vibebox.toml'), 'utf8').includes('"example.org"'));
    // The rest of the defaults is still there.
    for (const h of DEFAULT_ALLOWLIST) assert.ok(entries().includes(h), h);
    const again = vb(['allow', 'example.org']);
    assert.equal(again.status, 0);
    assert.match(again.stdout, /no change/);
    assert.equal(entries().filter((e) => e === 'example.org').length, 1);
    const d = vb(['deny', 'example.org']);
    assert.equal(d.status, 0, d.stderr);
    assert.match(d.stdout, /denied example\.org/);
    assert.ok(!entries().includes('example.org'));
  });
  it('keeps the comments of an existing vibebox.toml', () => {
    writeFileSync(join(project, 'vibebox.toml'), '# my settings\n[vm]\ncpus = 3 # three\n\n[network]\n# only these\nentries = ["a.example.com"]\n');
    assert.equal(vb(['allow', '.example.org']).status, 0);
    const text = readFileSync(join(project, 'vibebox.toml'), 'utf8');
    for (const keep of ['# my settings', 'cpus = 3 # three', '# only these']) assert.ok(text.includes(keep), text);
    assert.deepEqual(entries(), ['a.example.com', '.example.org']);
  });
  it('an invalid host: exit 2, nothing written', () => {
    unchanged(() => {
      assertBadInput(vb(['allow', 'not a host']), /not a host entry/);
      assertBadInput(vb(['deny', 'bad/host']), /not a host entry/);
      assertBadInput(vb(['allow', '']), /not a host entry/);
    });
    assert.ok(!existsSync(join(project, 'vibebox.toml')));
  });
  it('a broken vibebox.toml is never edited', () => {
    writeFileSync(join(project, 'vibebox.toml'), '[vm]\nbogus = 1\n');
    unchanged(() => assertBadInput(vb(['allow', 'example.org']), /bogus/));
  });
  it('seven `allow` processes at once: every host lands in vibebox.toml and in the approved grant', async () => {
    const id = await fakeSession(project);
    const hosts = Array.from({ length: 7 }, (_, i) => `h${i}.example.com`);
    const env: NodeJS.ProcessEnv = { ...process.env, VIBEBOX_HOME: home, HOME: userHome };
    delete env['VIBEBOX_DEBUG'];
    const runs = hosts.map(
      (h) =>
        new Promise<Result>((resolve) => {
          const c = spawn(process.execPath, [bin, 'allow', h], { cwd: project, env, stdio: ['ignore', 'pipe', 'pipe'] });
          let stdout = '';
          let stderr = '';
          c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
          c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
          c.on('close', (status) => resolve({ status, stdout, stderr }));
        }),
    );
    const results = await Promise.all(runs);
    for (const [i, r] of results.entries()) {
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, `allowed ${hosts[i]}\n`);
    }
    const file = entries();
    const grant = (JSON.parse(readFileSync(join(home, 'approved', `${id}.json`), 'utf8')) as { network: { entries: string[] } }).network.entries;
    for (const h of hosts) {
      assert.ok(file.includes(h), `${h} in vibebox.toml: ${file.join(', ')}`);
      assert.ok(grant.includes(h), `${h} in the approved grant: ${grant.join(', ')}`);
    }
    assert.deepEqual([...grant].sort(), [...file].sort(), 'the grant and the file agree');
    assert.deepEqual(readdirSync(join(home, 'approved')).filter((f) => f.endsWith('.tmp')), [], 'no temp file left');
  });
});

describe('vibebox doctor', () => {
  it('prints a table with a row for every check', () => {
    const r = vb(['doctor']);
    assert.ok(r.status === 0 || r.status === 1, `doctor exits 0 (all ok) or 1 (something missing): ${r.status} ${r.stderr}`);
    const lines = r.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^CHECK\s+STATUS\s+FOUND\s+FIX/);
    for (const name of ['node', 'qemu-system', 'qemu-img', 'accelerator', 'virtiofsd', 'python3', 'socat', 'mmdebstrap', 'disk space']) {
      const row = lines.find((l) => l.startsWith(`${name} `));
      assert.ok(row, `a row for ${name}:\n${r.stdout}`);
      assert.match(row, /\s(ok|MISSING)\s/);
    }
    // What a non-root run needs (KVM access is a warning: tcg still runs).
    for (const name of ['kvm', 'user namespaces', 'subuid', 'subgid', 'uidmap', 'image build']) {
      const row = lines.find((l) => l.startsWith(`${name} `));
      assert.ok(row, `a row for ${name}:\n${r.stdout}`);
      assert.match(row, /\s(ok|warn|MISSING)\s/);
    }
    assert.match(lines.find((l) => l.startsWith('node '))!, new RegExp(`ok\\s+${process.version.replace(/\./g, '\\.')}`));
    assert.ok(r.stdout.includes(home), 'disk space is measured in VIBEBOX_HOME');
    // Anything missing says how to fix it.
    for (const l of lines.slice(1)) if (/\sMISSING\s/.test(l)) assert.match(l, /install|free|enable|sudo|chmod|mkdir/);
  });
  it('--json lists the same checks', () => {
    const r = vb(['doctor', '--json']);
    const checks = JSON.parse(r.stdout) as { name: string; ok: boolean }[];
    assert.deepEqual(checks.map((c) => c.name), ['node', 'qemu-system', 'qemu-img', 'kvm', 'accelerator', 'virtiofsd', 'python3', 'socat', 'mmdebstrap', 'user namespaces', 'subuid', 'subgid', 'uidmap', 'image build', 'disk space']);
    assert.equal(r.status, checks.every((c) => c.ok) ? 0 : 1);
  });
});

describe('vibebox logs', () => {
  it('prints the egress log (the default), and the supervisor and serial logs', async () => {
    await fakeSession(project);
    const line = JSON.stringify({ ts: '2026-11-22T00:00:00Z', method: 'CONNECT', host: 'example.com', port: 443, decision: 'deny', reason: 'not_in_allowlist' });
    writeFileSync(join(project, '.vibebox', 'egress.log'), `${line}\n`);
    writeFileSync(join(project, '.vibebox', 'supervisor.log'), 'supervisor line\n');
    const r = vb(['logs']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, '2026-11-22T00:00:00Z CONNECT example.com - deny (not_in_allowlist)\n');
    const j = vb(['logs', 'egress', '--json']);
    assert.equal(j.status, 0, j.stderr);
    assert.equal(j.stdout, `${line}\n`);
    unchanged(() => assertBadInput(vb(['logs', 'supervisor', '--json']), /--json is for the egress log/));
    assert.equal(vb(['logs', 'supervisor']).stdout, 'supervisor line\n');
    assert.equal(vb(['logs', 'serial']).stdout, '');
  });

  it('an unknown log name: exit 2, one line', () => {
    unchanged(() => assertBadInput(vb(['logs', 'kernel']), /unknown log "kernel"/));
  });
});
