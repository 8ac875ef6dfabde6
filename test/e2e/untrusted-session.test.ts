// A .vibebox/ vibebox did not make (a cloned repository ships one) is never used, and sessions.toml
// survives any directory name. The built CLI as a user runs it, with the real built image in a
// temporary VIBEBOX_HOME, so code that trusted the folder would really boot it: every refusal
// here is also checked to have started nothing (no supervisor, no QEMU, no run directory) and
// changed nothing.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, before, beforeEach, describe, it } from 'node:test';
import TOML from '@iarna/toml';
import { v7 as uuidv7 } from 'uuid';
import { CLI, ROOT, ensureCachedImage, imageCacheHome, killUnder } from '../helpers/vm.js';
import { writeSessionFile } from '../../src/session/state.js';
import { updateIndex } from '../../src/session/index-store.js';
import { upsert } from '../../src/session/index-file.js';
import { PROTOCOL_VERSION } from '../../guest/protocol.js';
import { snapshot } from '../helpers/snapshot.js';

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };

let image: { name: string; digest: string; rootfs: string };
let base: string;
let home: string;
let userHome: string;
let project: string;

interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

function vb(args: string[], cwd = project): Result {
  const env: NodeJS.ProcessEnv = { ...process.env, VIBEBOX_HOME: home, HOME: userHome, VIBEBOX_ACCEL: 'tcg', VIBEBOX_AUTO_SHUTDOWN_MS: '1000' };
  delete env['VIBEBOX_DEBUG'];
  // Code that trusted the folder would boot a VM here: give it the time to, so the test sees it.
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, env, encoding: 'utf8', timeout: 240_000, stdio: ['ignore', 'pipe', 'pipe'] });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Exit 2, one stderr line `vibebox: …` (no stack), matching every pattern. */
function assertOneLine(r: Result, ...patterns: RegExp[]): void {
  assert.equal(r.status, 2, `exit 2, got ${r.status}; stderr: ${r.stderr}`);
  const lines = r.stderr.split('\n').filter((l) => l.length > 0);
  assert.equal(lines.length, 1, `one stderr line, got:\n${r.stderr}`);
  assert.match(lines[0]!, /^vibebox: /);
  for (const p of patterns) assert.match(lines[0]!, p);
}

/** Nothing was started: no process names the test's directory, no run directory exists. */
function assertNothingStarted(): void {
  assert.equal(killUnder(base), 0, 'a process (supervisor, QEMU, virtiofsd) was started');
  assert.ok(!existsSync(join(home, 'run')), 'a run directory was made');
}

/** What a cloned repository can commit: .vibebox/session.toml naming the host's image. */
function shipSessionToml(dir: string, id: string = uuidv7()): string {
  mkdirSync(join(dir, '.vibebox'), { recursive: true });
  writeFileSync(join(dir, '.vibebox', 'session.toml'), `id = "${id}"\ncreated = "2026-11-01T00:00:00.000Z"\n\n[image]\nname = "${image.name}"\ndigest = "${image.digest}"\n`);
  return id;
}

before(() => {
  ensureCachedImage();
  const list = JSON.parse(execFileSync(process.execPath, [CLI, 'image', 'list', '--json'], { env: { ...process.env, VIBEBOX_HOME: imageCacheHome() }, encoding: 'utf8' })) as { name: string; digest: string; dir: string }[];
  const img = list[list.length - 1]!;
  image = { name: img.name, digest: img.digest, rootfs: join(img.dir, 'rootfs.qcow2') };
});

beforeEach(() => {
  base = mkdtempSync(join(tmpdir(), 'vb-untrusted-'));
  home = join(base, 'vbhome');
  userHome = join(base, 'user');
  project = join(base, 'clone');
  mkdirSync(home);
  mkdirSync(userHome);
  mkdirSync(project);
  symlinkSync(join(imageCacheHome(), 'images'), join(home, 'images'));
  const accel = join(imageCacheHome(), 'accel.json');
  if (existsSync(accel)) symlinkSync(accel, join(home, 'accel.json'));
});

afterEach(() => {
  killUnder(base);
  rmSync(base, { recursive: true, force: true });
});

describe('a .vibebox/ that vibebox did not make', () => {
  it('a shipped session.toml with a crafted disk.qcow2 (external data file → a host file): refused, nothing started, nothing deleted', () => {
    const victim = join(userHome, 'authorized_keys');
    const id = shipSessionToml(project);
    // The crafted overlay: the host's real rootfs as backing, guest writes going to `victim`.
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', `data_file=${victim}`, '-F', 'qcow2', '-b', image.rootfs, join(project, '.vibebox', 'disk.qcow2'), '20G']);
    writeFileSync(victim, 'ssh-ed25519 AAAA… the user\n');
    const before = snapshot(project, userHome);
    for (const args of [['exec', '--', 'true'], ['approve', '--yes'], ['explain'], ['stop']]) {
      const r = vb(args);
      assertOneLine(r, /\/clone\/\.vibebox was not made by vibebox for this folder/, new RegExp(`session ${id} is not in `), /rm -r '.*\/clone\/\.vibebox'/);
      assertNothingStarted();
    }
    assert.deepEqual(snapshot(project, userHome), before, 'the files are still there, unchanged');
    assert.ok(!existsSync(join(home, 'sessions.toml')) || !readFileSync(join(home, 'sessions.toml'), 'utf8').includes(id));
    assert.ok(!existsSync(join(home, 'approved')), 'no grant was written for the shipped id');
  });

  it('a shipped session id that is a path (../../escape) never becomes one', () => {
    mkdirSync(join(project, '.vibebox'));
    writeFileSync(join(project, '.vibebox', 'session.toml'), `id = "../../escape"\ncreated = "2026-11-01T00:00:00.000Z"\n`);
    for (const args of [['approve', '--yes'], ['exec', '--', 'true'], ['explain']]) {
      assertOneLine(vb(args), /\.vibebox was not made by vibebox for this folder \(its session\.toml is not one vibebox wrote\)/);
      assertNothingStarted();
    }
    assert.deepEqual(readdirSync(base).sort(), ['clone', 'user', 'vbhome']);
    assert.ok(!existsSync(join(home, 'approved')));
  });

  it('a shipped .vibebox/ without session.toml (a log file linked to ~/.bashrc): refused, the target untouched', () => {
    const bashrc = join(userHome, '.bashrc');
    writeFileSync(bashrc, '# my shell\n');
    mkdirSync(join(project, '.vibebox'));
    symlinkSync(bashrc, join(project, '.vibebox', 'supervisor.log'));
    const before = snapshot(project, userHome);
    assertOneLine(vb(['exec', '--', 'true']), /\.vibebox was not made by vibebox for this folder \(it holds files but no session\.toml\)/);
    assertNothingStarted();
    assert.deepEqual(snapshot(project, userHome), before);
    assert.equal(readFileSync(bashrc, 'utf8'), '# my shell\n');
  });

  it('a shipped .vibebox that is a symbolic link: refused', () => {
    const elsewhere = join(userHome, 'dotssh');
    mkdirSync(elsewhere);
    symlinkSync(elsewhere, join(project, '.vibebox'));
    assertOneLine(vb(['exec', '--', 'true']), /\.vibebox was not made by vibebox for this folder \(it is a symbolic link\)/);
    assertNothingStarted();
    assert.deepEqual(readdirSync(elsewhere), []);
  });

  it('a copy of a real session folder in another directory: refused, naming the directory it belongs to', () => {
    const a = vb(['approve', '--yes']); // creates the session (and its index entry) without booting
    assert.equal(a.status, 0, a.stderr);
    const copy = join(base, 'copy');
    cpSync(project, copy, { recursive: true });
    const before = snapshot(copy, project);
    assertOneLine(vb(['exec', '--', 'true'], copy), /\/copy\/\.vibebox was not made by vibebox for this folder \(its session [0-9a-f-]{36} belongs to .*\/clone\)/);
    assertNothingStarted();
    assert.deepEqual(snapshot(copy, project), before);
  });
});

describe('sessions.toml with any directory name', () => {
  it('a project path with DEL and a newline gets a session entry, and `vibebox list --json` still works', async () => {
    const weird = join(base, 'p\x7fq\nr\x1b[0m');
    mkdirSync(weird);
    // As `vibebox` records a session for it (the same index write the client does).
    mkdirSync(join(weird, '.vibebox'));
    const id = uuidv7();
    writeSessionFile(weird, { id, created: new Date().toISOString() });
    await updateIndex((idx) => upsert(idx, { id, directory: weird, last_active: new Date().toISOString() }), home);
    const l = vb(['list', '--json']);
    assert.equal(l.status, 0, l.stderr);
    assert.deepEqual((JSON.parse(l.stdout) as { id: string; directory: string }[]).map((r) => [r.id, r.directory]), [[id, weird]]);
    // And through the CLI alone: another such project gets its session and entry.
    const other = join(base, 'x\x7f\ny');
    mkdirSync(other);
    const a = vb(['approve', '--yes'], other);
    assert.equal(a.status, 0, a.stderr);
    const l2 = vb(['list', '--json']);
    assert.equal(l2.status, 0, l2.stderr);
    assert.deepEqual((JSON.parse(l2.stdout) as { directory: string }[]).map((r) => r.directory).sort(), [weird, other].sort());
    assert.equal(vb(['explain', '--json'], other).status, 0);
  });

  it('last_active written as a TOML datetime (a hand edit) reads', () => {
    mkdirSync(join(project, '.vibebox'));
    const id = uuidv7();
    writeSessionFile(project, { id, created: new Date().toISOString() });
    writeFileSync(join(home, 'sessions.toml'), `[[session]]\nid = "${id}"\ndirectory = "${project}"\nlast_active = 2026-11-20T10:00:00Z\n`);
    const l = vb(['list', '--json']);
    assert.equal(l.status, 0, l.stderr);
    assert.deepEqual((JSON.parse(l.stdout) as { last_active: string }[]).map((r) => r.last_active), ['2026-11-20T10:00:00.000Z']);
  });
});

describe('session.toml records who created the session', () => {
  it('vibebox version and guest protocol version', () => {
    const a = vb(['approve', '--yes']);
    assert.equal(a.status, 0, a.stderr);
    const s = TOML.parse(readFileSync(join(project, '.vibebox', 'session.toml'), 'utf8'));
    assert.equal(s['vibebox_version'], pkg.version);
    assert.equal(s['guest_protocol'], PROTOCOL_VERSION);
  });
});
