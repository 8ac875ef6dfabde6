// The host-side walls of a share without a VM: the launcher's real seccomp filter (python3 runs it
// in a fraction of a second) and the git metadata found for read-only binds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launcherArgv } from '../../qemu/virtiofsd-launcher.js';
import { ConfigSchema } from '../../src/config/schema.js';
import { findVirtiofsd, findPython, gitWallSteps, gitWallsIn, virtiofsdArgv, NO_GIT_WALLS } from '../../qemu/virtiofsd.js';

const python = findPython();

/** Run a shell script behind the launcher; returns its stdout. */
function behindLauncher(dir: string, script: string): string {
  const a = launcherArgv(python!, join(dir, 'fs.sock'), ['sh', '-c', script]);
  const r = spawnSync(a[0]!, a.slice(1), { cwd: dir, encoding: 'utf8', timeout: 10_000 });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

test('the launcher refuses setuid/setgid modes and device nodes, allows the rest, listens on fd 3', { skip: !python || !['x64', 'arm64'].includes(process.arch) }, () => {
  const d = mkdtempSync(join(tmpdir(), 'vblaunch-'));
  try {
    const out = behindLauncher(d, [
      'touch f; chmod 6755 f; echo "chmod6755:$?"',
      'chmod 2755 f; echo "chmod2755:$?"',
      'chmod 0755 f; echo "chmod755:$?"',
      'mkdir -m 2755 g 2>/dev/null; echo "mkdir-sgid:$?"',
      'mkdir h; echo "mkdir:$?"',
      'mknod n c 1 3 2>/dev/null; echo "mknod:$?"',
      'mkfifo p; echo "mkfifo:$?"',
      `${python} -c "import os; os.open('o', os.O_CREAT|os.O_WRONLY, 0o4755)" 2>/dev/null; echo "open-suid:$?"`,
      `${python} -c "import os; os.close(os.open('o2', os.O_CREAT|os.O_WRONLY, 0o644))"; echo "open:$?"`,
      `${python} -c "import os; os.setgroups([])"; echo "setgroups0:$?"`,
      'test -S /proc/self/fd/3 || test -e /proc/self/fd/3; echo "fd3:$?"',
      'grep -E "^(Seccomp|NoNewPrivs):" /proc/self/status | tr -s "\\t " " "',
    ].join('; '));
    assert.match(out, /chmod6755:[1-9]/);
    assert.match(out, /chmod2755:[1-9]/);
    assert.match(out, /chmod755:0/);
    assert.match(out, /mkdir:0/);
    assert.match(out, /mknod:[1-9]/);
    assert.match(out, /mkfifo:0/);
    assert.match(out, /open-suid:[1-9]/);
    assert.match(out, /open:0/);
    assert.match(out, /setgroups0:0/);
    assert.match(out, /fd3:0/);
    assert.match(out, /Seccomp: 2/);
    assert.equal(statSync(join(d, 'f')).mode & 0o7777, 0o755);
    assert.equal(existsSync(join(d, 'n')), false);
    assert.equal(existsSync(join(d, 'o')), false);
    if (existsSync(join(d, 'g'))) assert.equal(statSync(join(d, 'g')).mode & 0o6000, 0);
    assert.ok(statSync(join(d, 'fs.sock')).isSocket());
    assert.equal(statSync(join(d, 'fs.sock')).mode & 0o077, 0, 'the socket is the user\'s only');
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('git metadata of the share and one level down is found; a missing hooks directory is created, then bound read-only', () => {
  const d = mkdtempSync(join(tmpdir(), 'vbgit-'));
  try {
    mkdirSync(join(d, '.git', 'hooks'), { recursive: true });
    writeFileSync(join(d, '.git', 'config'), '[core]\n');
    mkdirSync(join(d, 'a', '.git'), { recursive: true });
    writeFileSync(join(d, 'a', '.git', 'config'), '');
    mkdirSync(join(d, 'wt'));
    writeFileSync(join(d, 'wt', '.git'), 'gitdir: /elsewhere\n');
    mkdirSync(join(d, 'deep', 'er', '.git'), { recursive: true });
    const w = gitWallsIn(d);
    assert.deepEqual(w.gitDirs.sort(), [join(d, '.git'), join(d, 'a', '.git')].sort());
    assert.deepEqual(w.missingHooks, [join(d, 'a', '.git', 'hooks')]);
    assert.deepEqual(w.readonly.sort(), [join(d, '.git', 'config'), join(d, '.git', 'hooks'), join(d, 'a', '.git', 'config'), join(d, 'a', '.git', 'hooks'), join(d, 'wt', '.git')].sort());
    assert.deepEqual(gitWallsIn(join(d, 'none')), NO_GIT_WALLS);
    const spec = { virtiofsd: { binary: 'v', flavour: 'c', readonlyFlag: false } as const, python: 'p', socket: 's', hide: [], guestUid: 1000, guestGid: 1000 };
    const script = virtiofsdArgv({ ...spec, shared: d, readonly: false, git: w }).at(-1)!;
    const at = (s: string) => script.indexOf(s);
    const q = (p: string) => `'${p}'`;
    assert.ok(at(`mkdir -p ${q(join(d, 'a', '.git', 'hooks'))}`) >= 0);
    assert.ok(at(`mount --bind ${q(join(d, '.git'))} ${q(join(d, '.git'))}`) >= 0);
    assert.ok(at(`mount -o remount,bind,ro ${q(join(d, '.git', 'config'))}`) > at(`mount --bind ${q(join(d, '.git'))} ${q(join(d, '.git'))}`));
    assert.ok(at(`mount -o remount,bind,ro ${q(join(d, 'wt', '.git'))}`) >= 0);
    assert.ok(at(`mount -o remount,bind,ro ${q(join(d, 'a', '.git', 'hooks'))}`) > at(`mkdir -p ${q(join(d, 'a', '.git', 'hooks'))}`));
    // A read-only share is read-only as a whole: no git binds needed.
    assert.doesNotMatch(virtiofsdArgv({ ...spec, shared: d, readonly: true, git: w }).at(-1)!, /\.git/);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('[workspace] writable_git_config: a boolean, off unless set; unknown keys in [workspace] refused', () => {
  assert.equal(ConfigSchema.parse({}).workspace?.writable_git_config ?? false, false);
  assert.equal(ConfigSchema.parse({ workspace: {} }).workspace?.writable_git_config, false);
  assert.equal(ConfigSchema.parse({ workspace: { writable_git_config: true } }).workspace?.writable_git_config, true);
  assert.equal(ConfigSchema.safeParse({ workspace: { writable_git_config: 'yes' } }).success, false);
  assert.equal(ConfigSchema.safeParse({ workspace: { other: 1 } }).success, false);
});

test('findVirtiofsd tells the flavours apart by running --help (and the C one, which cannot run it unprivileged, by its binary)', () => {
  const d = mkdtempSync(join(tmpdir(), 'vbfsd-'));
  const old = process.env['VIBEBOX_VIRTIOFSD'];
  try {
    const rust = join(d, 'virtiofsd-rust');
    writeFileSync(rust, '#!/bin/sh\necho "Usage: virtiofsd [OPTIONS]"; echo "      --shared-dir <shared-dir>"; echo "      --readonly"\n');
    chmodSync(rust, 0o755);
    process.env['VIBEBOX_VIRTIOFSD'] = rust;
    assert.deepEqual(findVirtiofsd(), { binary: rust, flavour: 'rust', readonlyFlag: true });
    // Like QEMU 7.2's as an ordinary user: --help fails, the usage text is in the file.
    const c = join(d, 'virtiofsd-c');
    writeFileSync(c, '#!/bin/sh\necho "setgroups() failed with error=1" >&2; exit 1\n# -o source=PATH             shared directory tree\n');
    chmodSync(c, 0o755);
    process.env['VIBEBOX_VIRTIOFSD'] = c;
    assert.deepEqual(findVirtiofsd(), { binary: c, flavour: 'c', readonlyFlag: false });
    process.env['VIBEBOX_VIRTIOFSD'] = join(d, 'missing');
    assert.equal(findVirtiofsd(), null);
  } finally {
    if (old === undefined) delete process.env['VIBEBOX_VIRTIOFSD'];
    else process.env['VIBEBOX_VIRTIOFSD'] = old;
    rmSync(d, { recursive: true, force: true });
  }
});

// Layouts host git reads config, hooks and code from, built with real host git in a temp dir
// (our own repositories: no hostile config is ever run here).
const hostGit = (cwd: string, ...args: string[]) =>
  execFileSync('git', ['-c', 'user.email=h@example.com', '-c', 'user.name=h', '-c', 'init.defaultBranch=main', '-c', 'protocol.file.allow=always', ...args], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** A source repository at `dir` with one commit (and submodules added from `subs`: path → source). */
function repo(dir: string, subs: Record<string, string> = {}) {
  mkdirSync(dir, { recursive: true });
  hostGit(dir, 'init', '-q');
  hostGit(dir, 'commit', '-q', '--allow-empty', '-m', 'first');
  for (const [path, src] of Object.entries(subs)) hostGit(dir, 'submodule', 'add', '-q', src, path);
  if (Object.keys(subs).length) hostGit(dir, 'commit', '-q', '-m', 'subs');
}

/** The steps' script and the position of each bind in it. */
function stepsOf(d: string, w: ReturnType<typeof gitWallsIn>) {
  const spec = { virtiofsd: { binary: 'v', flavour: 'c', readonlyFlag: false } as const, python: 'p', socket: 's', hide: [], guestUid: 1000, guestGid: 1000 };
  const script = virtiofsdArgv({ ...spec, shared: d, readonly: false, git: w }).at(-1)!;
  return { script, bind: (p: string) => script.indexOf(`mount --bind '${p}' '${p}'`), ro: (p: string) => script.indexOf(`mount -o remount,bind,ro '${p}'`) };
}

test('submodules: every config and hooks under .git/modules (nested too) and every pointer, at any depth, is walled; the paths to them are pinned', () => {
  const d = mkdtempSync(join(tmpdir(), 'vbsub-'));
  try {
    repo(join(d, 'src', 'inner'));
    repo(join(d, 'src', 'sub'), { inner: join(d, 'src', 'inner') });
    repo(join(d, 'src', 'deep'));
    const p = join(d, 'proj');
    repo(p, { sub: join(d, 'src', 'sub'), 'libs/x/deep': join(d, 'src', 'deep') });
    hostGit(p, 'submodule', 'update', '-q', '--init', '--recursive');
    const g = join(p, '.git');
    const w = gitWallsIn(p);
    for (const m of [join(g, 'modules', 'sub'), join(g, 'modules', 'sub', 'modules', 'inner'), join(g, 'modules', 'libs', 'x', 'deep')]) {
      assert.ok(w.readonly.includes(join(m, 'config')), `${m}/config walled`);
      assert.ok(w.readonly.includes(join(m, 'hooks')), `${m}/hooks walled`);
      assert.ok(w.gitDirs.includes(m), `${m} pinned`);
    }
    for (const ptr of ['sub/.git', 'sub/inner/.git', 'libs/x/deep/.git']) assert.ok(w.readonly.includes(join(p, ptr)), `${ptr} walled`);
    // A rename of any directory above a wall would let the guest put a planted one in its place.
    for (const dir of ['libs', 'libs/x', 'libs/x/deep', 'sub', 'sub/inner', '.git/modules', '.git/modules/libs', '.git/modules/libs/x', '.git/modules/sub/modules']) {
      assert.ok([...w.pinned, ...w.gitDirs].includes(join(p, dir)), `${dir} pinned`);
    }
    const s = stepsOf(p, w);
    // Parents are bound before what is below them (a later bind of a parent would hide it).
    assert.ok(s.bind(join(p, 'libs')) >= 0 && s.bind(join(p, 'libs')) < s.bind(join(p, 'libs', 'x')));
    assert.ok(s.bind(join(g, 'modules', 'sub')) < s.ro(join(g, 'modules', 'sub', 'config')));
    assert.ok(s.bind(join(g, 'modules', 'sub', 'modules', 'inner')) < s.ro(join(g, 'modules', 'sub', 'modules', 'inner', 'hooks')));
    assert.ok(s.ro(join(p, 'libs', 'x', 'deep', '.git')) > s.bind(join(p, 'libs', 'x', 'deep')));
    // Objects, refs, index, HEAD and logs stay writable: never bound read-only.
    assert.ok(!w.readonly.some((r) => /\/(objects|refs|logs|index|HEAD)$/.test(r)), w.readonly.join('\n'));
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('a submodule not checked out (a clone without --recursive) gets an empty read-only cover: no planted .git in it', () => {
  const d = mkdtempSync(join(tmpdir(), 'vbsub-'));
  try {
    repo(join(d, 'src', 'sub'));
    repo(join(d, 'src', 'proj'), { 'a/sub': join(d, 'src', 'sub') });
    hostGit(d, 'clone', '-q', join(d, 'src', 'proj'), 'p');
    const p = join(d, 'p');
    const w = gitWallsIn(p);
    assert.deepEqual(w.empty, [join(p, 'a', 'sub')]);
    assert.ok(w.pinned.includes(join(p, 'a')));
    assert.match(stepsOf(p, w).script, new RegExp(`mount -t tmpfs -o ro,size=4k,mode=0555 vibebox-hidden '${join(p, 'a', 'sub')}'`));
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('a nested repository staged as a gitlink (no .gitmodules) is walled like a submodule, found from the index', () => {
  const d = mkdtempSync(join(tmpdir(), 'vbsub-'));
  try {
    const p = join(d, 'p');
    repo(p);
    repo(join(p, 'x', 'nested'));
    hostGit(p, 'add', 'x/nested');
    hostGit(p, 'commit', '-q', '-m', 'gitlink');
    for (const v of ['2', '3', '4']) {
      hostGit(p, 'update-index', '--index-version', v);
      const w = gitWallsIn(p);
      assert.ok(w.readonly.includes(join(p, 'x', 'nested', '.git', 'config')), `index v${v}: ${w.readonly.join(' ')}`);
      assert.ok(w.gitDirs.includes(join(p, 'x', 'nested', '.git')));
      assert.ok(w.pinned.includes(join(p, 'x')) && w.pinned.includes(join(p, 'x', 'nested')));
    }
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('linked worktrees and worktree config: config.worktree (made when the extension is on), commondir, the worktree\'s pointer', () => {
  const d = mkdtempSync(join(tmpdir(), 'vbwt-'));
  try {
    const p = join(d, 'p');
    repo(p);
    hostGit(p, 'config', 'extensions.worktreeConfig', 'true');
    hostGit(p, 'worktree', 'add', '-q', join(p, 'trees', 'in'));
    hostGit(p, 'worktree', 'add', '-q', join(d, 'outside'));
    const g = join(p, '.git');
    const w = gitWallsIn(p);
    for (const wt of ['in', 'outside']) {
      assert.ok(w.readonly.includes(join(g, 'worktrees', wt, 'commondir')), `${wt}/commondir`);
      assert.ok(w.readonly.includes(join(g, 'worktrees', wt, 'config.worktree')), `${wt}/config.worktree`);
      assert.ok(w.missingFiles.includes(join(g, 'worktrees', wt, 'config.worktree')));
      assert.ok(w.gitDirs.includes(join(g, 'worktrees', wt)) && w.pinned.includes(join(g, 'worktrees')));
    }
    assert.ok(w.readonly.includes(join(g, 'config.worktree')) && w.missingFiles.includes(join(g, 'config.worktree')));
    assert.ok(w.readonly.includes(join(p, 'trees', 'in', '.git')) && w.pinned.includes(join(p, 'trees', 'in')));
    assert.match(stepsOf(p, w).script, new RegExp(`touch '${join(g, 'config.worktree')}'`));
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('core.hooksPath and include.path into the project, an existing .git/commondir, a pointer to a gitdir planted inside the project', () => {
  const d = mkdtempSync(join(tmpdir(), 'vbhp-'));
  try {
    const p = join(d, 'p');
    repo(p);
    hostGit(p, 'config', 'core.hooksPath', '.githooks');
    hostGit(p, 'config', 'include.path', '../team.gitconfig');
    hostGit(p, 'config', 'includeIf.onbranch:main.path', join(p, 'cfg', 'extra'));
    mkdirSync(join(p, 'cfg'));
    // A repository whose .git is a pointer to a gitdir kept inside the project, with a commondir.
    mkdirSync(join(p, 'r'));
    mkdirSync(join(p, '.store', 'common', 'hooks'), { recursive: true });
    hostGit(join(p, '.store'), 'init', '-q', '--bare', 'common');
    mkdirSync(join(p, '.store', 'wt'));
    writeFileSync(join(p, '.store', 'wt', 'HEAD'), 'ref: refs/heads/main\n');
    writeFileSync(join(p, '.store', 'wt', 'commondir'), '../common\n');
    writeFileSync(join(p, 'r', '.git'), 'gitdir: ../.store/wt\n');
    const w = gitWallsIn(p);
    assert.ok(w.missingHooks.includes(join(p, '.githooks')) && w.readonly.includes(join(p, '.githooks')));
    assert.ok(w.missingFiles.includes(join(p, 'team.gitconfig')) && w.readonly.includes(join(p, 'team.gitconfig')));
    assert.ok(w.missingFiles.includes(join(p, 'cfg', 'extra')) && w.readonly.includes(join(p, 'cfg', 'extra')));
    assert.ok(w.readonly.includes(join(p, 'r', '.git')));
    assert.ok(w.readonly.includes(join(p, '.store', 'wt', 'commondir')));
    assert.ok(w.readonly.includes(join(p, '.store', 'common', 'config')) && w.readonly.includes(join(p, '.store', 'common', 'hooks')));
    assert.ok(w.pinned.includes(join(p, '.store')));
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('hostile layouts: symlinked metadata is refused, not followed; pointers and paths out of the share are ignored; walks are bounded', () => {
  const d = mkdtempSync(join(tmpdir(), 'vbhost-'));
  try {
    const p = join(d, 'p');
    repo(p);
    rmSync(join(p, '.git', 'hooks'), { recursive: true, force: true });
    symlinkSync(join(d, 'elsewhere'), join(p, '.git', 'hooks'));
    mkdirSync(join(p, '.git', 'modules'));
    symlinkSync(join(d), join(p, '.git', 'modules', 'loop'));
    mkdirSync(join(p, 'a'));
    writeFileSync(join(p, 'a', '.git'), 'gitdir: ../../../etc\n');
    writeFileSync(join(p, '.gitmodules'), '[submodule "x"]\n\tpath = ../../outside\n[submodule "y"]\n\tpath = a\n');
    let deep = join(p, '.git', 'modules');
    for (let i = 0; i < 40; i++) mkdirSync((deep = join(deep, `n${i}`)));
    const w = gitWallsIn(p);
    assert.deepEqual(w.refused, [join(p, '.git', 'hooks')]);
    assert.ok(!w.readonly.includes(join(p, '.git', 'hooks')));
    assert.ok(w.readonly.includes(join(p, 'a', '.git')));
    assert.ok([...w.readonly, ...w.pinned, ...w.gitDirs, ...w.empty].every((x) => x.startsWith(`${p}/`)), 'nothing outside the share');
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('the walls hold in a real mount namespace, as virtiofsd sees the tree: config, hooks, pointers and the paths to them cannot be changed; git still commits in the submodule', { skip: spawnSync('unshare', ['--user', '--map-root-user', '--mount', 'true']).status !== 0 }, () => {
  const d = mkdtempSync(join(tmpdir(), 'vbns-'));
  try {
    repo(join(d, 'src', 'inner'));
    repo(join(d, 'src', 'sub'), { inner: join(d, 'src', 'inner') });
    const p = join(d, 'p');
    repo(p, { 'libs/sub': join(d, 'src', 'sub'), 'a/unfetched': join(d, 'src', 'inner') });
    hostGit(p, 'submodule', 'update', '-q', '--init', '--recursive', 'libs/sub');
    // As `git submodule deinit` leaves it: the gitdir kept in .git/modules, the directory empty.
    rmSync(join(p, 'a', 'unfetched'), { recursive: true });
    mkdirSync(join(p, 'a', 'unfetched'));
    const marker = join(d, 'pwned');
    const m = join(p, '.git', 'modules', 'libs', 'sub');
    const attacks: Record<string, string> = {
      'sub-config': `printf '[core]\\n\\tfsmonitor = touch ${marker}; false\\n' >> ${m}/config`,
      'nested-config': `printf '[core]\\n\\tfsmonitor = touch ${marker}\\n' >> ${m}/modules/inner/config`,
      'sub-hook': `echo '#!/bin/sh' > ${m}/hooks/post-checkout`,
      'pointer-rewrite': `echo 'gitdir: ../../evil' > ${p}/libs/sub/.git`,
      'pointer-removed': `rm -f ${p}/libs/sub/.git`,
      'parent-renamed': `mv ${p}/libs ${p}/libs2`,
      'modules-renamed': `mv ${p}/.git/modules ${p}/.git/m2`,
      'gitdir-renamed': `mv ${m} ${m}2`,
      'unfetched-planted': `echo 'gitdir: ../../evil' > ${p}/a/unfetched/.git`,
      'unfetched-renamed': `mv ${p}/a/unfetched ${p}/a/u2`,
    };
    const steps = gitWallSteps(gitWallsIn(p));
    const script = ['set -e', ...steps, 'set +e', ...Object.entries(attacks).map(([k, c]) => `(${c}) 2>/dev/null && echo "BROKEN:${k}"`),
      `git -C ${p}/libs/sub -c user.email=v@example.com -c user.name=v commit -q --allow-empty -m in-guest && echo SUB-COMMIT-OK`,
      // `git submodule update` rewrites core.worktree in the submodule's config each time (same
      // value), which a read-only config refuses; checking out the recorded commits is the same update.
      `git -C ${p}/libs/sub checkout -q -b guest-branch && git -C ${p} submodule foreach -q --recursive 'git checkout -q $sha1' && git -C ${p}/libs/sub status | grep -q 'HEAD detached' && echo SUB-UPDATE-OK`,
      `git -C ${p} -c user.email=v@example.com -c user.name=v commit -q -am in-guest && echo COMMIT-OK`].join('\n');
    const r = spawnSync('unshare', ['--user', '--map-root-user', '--mount', '--propagation', 'private', 'bash', '-c', script], { encoding: 'utf8', timeout: 30_000 });
    assert.doesNotMatch(r.stdout, /BROKEN/, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /SUB-COMMIT-OK/, r.stderr);
    assert.match(r.stdout, /SUB-UPDATE-OK/, r.stderr);
    assert.match(r.stdout, /COMMIT-OK/, r.stderr);
    // Host git, as an editor runs it: nothing the walls kept out runs.
    hostGit(p, 'status');
    assert.equal(existsSync(marker), false);
    assert.equal(existsSync(join(p, 'a', 'unfetched', '.git')), false);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('a share that is a subdirectory of a repository, or a linked worktree of one: the submodule pointers inside it are walled', () => {
  const d = mkdtempSync(join(tmpdir(), 'vbup-'));
  try {
    repo(join(d, 'src', 'sub'));
    const r = join(d, 'r');
    repo(r, { 'pkg/libs/sub': join(d, 'src', 'sub') });
    // The share is r/pkg: the repository (and .git/modules) is above it, out of the guest's reach.
    const share = join(r, 'pkg');
    let w = gitWallsIn(share);
    assert.ok(w.readonly.includes(join(share, 'libs', 'sub', '.git')), w.readonly.join(' '));
    assert.ok(w.pinned.includes(join(share, 'libs')) && w.pinned.includes(join(share, 'libs', 'sub')));
    assert.ok(!w.readonly.some((x) => !x.startsWith(`${share}/`)));
    // The share is a linked worktree of r with the submodule checked out in it.
    const lw = join(d, 'lw');
    hostGit(r, 'worktree', 'add', '-q', lw);
    hostGit(lw, 'submodule', 'update', '-q', '--init');
    w = gitWallsIn(lw);
    assert.ok(w.readonly.includes(join(lw, '.git')));
    assert.ok(w.readonly.includes(join(lw, 'pkg', 'libs', 'sub', '.git')), w.readonly.join(' '));
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('a submodule gitdir reached through a symbolic link refuses the share', () => {
  const d = mkdtempSync(join(tmpdir(), 'vblnk-'));
  try {
    repo(join(d, 'src', 'sub'));
    const p = join(d, 'p');
    repo(p, { sub: join(d, 'src', 'sub') });
    // The gitdir moved into the project, .git/modules/sub a link to it: the guest could write it.
    execFileSync('mv', [join(p, '.git', 'modules', 'sub'), join(p, 'planted')]);
    symlinkSync('../../planted', join(p, '.git', 'modules', 'sub'));
    const w = gitWallsIn(p);
    assert.ok(w.refused.includes(join(p, '.git', 'modules', 'sub')), w.refused.join(' '));
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('in a real mount namespace: worktree config, a linked worktree\'s commondir and pointer, core.hooksPath in the project cannot be changed; git still commits in the linked worktree', { skip: spawnSync('unshare', ['--user', '--map-root-user', '--mount', 'true']).status !== 0 }, () => {
  const d = mkdtempSync(join(tmpdir(), 'vbns-'));
  try {
    const p = join(d, 'p');
    repo(p);
    hostGit(p, 'config', 'extensions.worktreeConfig', 'true');
    hostGit(p, 'config', 'core.hooksPath', '.githooks');
    hostGit(p, 'worktree', 'add', '-q', join(p, 'trees', 'in'));
    const marker = join(d, 'pwned');
    const g = join(p, '.git');
    const fsm = `printf '[core]\\n\\tfsmonitor = touch ${marker}; false\\n'`;
    const attacks: Record<string, string> = {
      'main-config-worktree': `${fsm} >> ${g}/config.worktree`,
      'wt-config-worktree': `${fsm} >> ${g}/worktrees/in/config.worktree`,
      'wt-commondir': `mkdir -p ${p}/evil/objects ${p}/evil/refs && ${fsm} > ${p}/evil/config && echo ../../../evil > ${g}/worktrees/in/commondir`,
      'wt-admin-renamed': `mv ${g}/worktrees/in ${g}/worktrees/in2`,
      'wt-pointer': `echo 'gitdir: ../../evil' > ${p}/trees/in/.git`,
      'wt-parent-renamed': `mv ${p}/trees ${p}/trees2`,
      'hookspath-hook': `mkdir -p ${p}/.githooks; printf '#!/bin/sh\\ntouch ${marker}\\n' > ${p}/.githooks/post-commit && chmod +x ${p}/.githooks/post-commit`,
      'hookspath-renamed': `mv ${p}/.githooks ${p}/.githooks2`,
    };
    const script = ['set -e', ...gitWallSteps(gitWallsIn(p)), 'set +e', ...Object.entries(attacks).map(([k, c]) => `(${c}) 2>/dev/null && echo "BROKEN:${k}"`),
      `git -C ${p}/trees/in -c user.email=v@example.com -c user.name=v commit -q --allow-empty -m in-guest && echo WT-COMMIT-OK`].join('\n');
    const r = spawnSync('unshare', ['--user', '--map-root-user', '--mount', '--propagation', 'private', 'bash', '-c', script], { encoding: 'utf8', timeout: 30_000 });
    assert.doesNotMatch(r.stdout, /BROKEN/, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /WT-COMMIT-OK/, r.stderr);
    hostGit(join(p, 'trees', 'in'), 'status');
    hostGit(p, 'status');
    hostGit(p, 'commit', '-q', '--allow-empty', '-m', 'host');
    assert.equal(existsSync(marker), false);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('a .gitmodules path is a hint, never a cover: a planted `path = src` does not hide src from the guest', () => {
  const d = mkdtempSync(join(tmpdir(), 'vbgm-'));
  try {
    const p = join(d, 'p');
    repo(p);
    mkdirSync(join(p, 'src'));
    writeFileSync(join(p, 'src', 'main.ts'), '');
    writeFileSync(join(p, '.gitmodules'), '[submodule "x"]\n\tpath = src\n');
    assert.deepEqual(gitWallsIn(p).empty, []);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('a share given through a symbolic link: absolute paths git wrote (a linked worktree\'s gitdir) still match', () => {
  const d = mkdtempSync(join(tmpdir(), 'vbreal-'));
  try {
    const p = join(d, 'real', 'p');
    repo(p);
    hostGit(p, 'worktree', 'add', '-q', join(p, 'trees', 'in'));
    symlinkSync(join(d, 'real'), join(d, 'alias'));
    const w = gitWallsIn(join(d, 'alias', 'p'));
    assert.ok(w.readonly.includes(join(p, 'trees', 'in', '.git')), w.readonly.join(' '));
    assert.ok(w.pinned.includes(join(p, 'trees')));
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});
