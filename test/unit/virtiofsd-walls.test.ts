// The host-side walls of a share without a VM: the launcher's real seccomp filter (python3 runs it
// in a fraction of a second) and the git metadata found for read-only binds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launcherArgv } from '../../qemu/virtiofsd-launcher.js';
import { ConfigSchema } from '../../src/config/schema.js';
import { findVirtiofsd, findPython, gitWallsIn, virtiofsdArgv, NO_GIT_WALLS } from '../../qemu/virtiofsd.js';

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
