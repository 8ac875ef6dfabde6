// The mount walls against the guest for whoever runs vibebox: run this file
// as root and as an ordinary user. Real QEMU (TCG here), the real image, the real virtiofsd.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pidsMatching, sh, testEnv, vb, type TestEnv } from '../helpers/vm.js';

/** Run a shell snippet in the guest (as vibe). */

const git = (cwd: string, ...args: string[]) =>
  execFileSync('git', ['-c', 'user.email=host@example.com', '-c', 'user.name=host', '-c', 'init.defaultBranch=main', ...args], { cwd, encoding: 'utf8' });

/** Every path under `dir` (not following symlinks), with its lstat. */
function walk(dir: string, out: { path: string; mode: number; uid: number; gid: number; dev: boolean }[] = []) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = lstatSync(p);
    out.push({ path: p, mode: st.mode, uid: st.uid, gid: st.gid, dev: st.isCharacterDevice() || st.isBlockDevice() });
    if (st.isDirectory()) walk(p, out);
  }
  return out;
}

describe('mount walls', () => {
  let t: TestEnv;
  let proj: string;
  let hostConfig: string;
  let subConfig: string;
  /** Host copies, before boot, of the submodule metadata the guest attacks. */
  const before_: Record<string, string> = {};
  const SM = '.git/modules/mods/sm';
  const SUBMODULE_FILES = [`${SM}/config`, `${SM}/modules/inner/config`, 'mods/sm/.git', 'mods/sm/inner/.git', 'vendor/lib/.git/config'];
  before(async () => {
    t = testEnv();
    proj = t.project('mounts');
    // Repositories made on the host before the session starts: the project's own and one a level
    // down (its hooks directory missing: the guest must not be able to create it).
    git(proj, 'init', '-q');
    execFileSync('sh', ['-c', 'echo hello > README && mkdir -p sub && cd sub && git init -q && rm -rf .git/hooks'], { cwd: proj });
    // A submodule two levels down (its gitdir in .git/modules/mods/sm) with a nested submodule of
    // its own, and a nested repository staged as a gitlink without .gitmodules.
    const inner = t.project('mounts-inner-src');
    const smSrc = t.project('mounts-sm-src');
    for (const r of [inner, smSrc]) {
      git(r, 'init', '-q');
      git(r, 'commit', '-q', '--allow-empty', '-m', 'src');
    }
    git(smSrc, '-c', 'protocol.file.allow=always', 'submodule', 'add', '-q', inner, 'inner');
    git(smSrc, 'commit', '-q', '-m', 'inner');
    git(proj, '-c', 'protocol.file.allow=always', 'submodule', 'add', '-q', smSrc, 'mods/sm');
    git(proj, '-c', 'protocol.file.allow=always', 'submodule', 'update', '-q', '--init', '--recursive');
    execFileSync('sh', ['-c', 'mkdir -p vendor/lib && cd vendor/lib && git init -q && git -c user.email=h@example.com -c user.name=h commit -q --allow-empty -m lib'], { cwd: proj });
    git(proj, 'add', 'vendor/lib');
    for (const f of SUBMODULE_FILES) before_[f] = readFileSync(join(proj, f), 'utf8');
    git(proj, 'add', 'README');
    git(proj, 'commit', '-q', '-m', 'first');
    git(proj, 'init', '-q', '--bare', join(proj, 'remote.git'));
    git(proj, 'remote', 'add', 'origin', '/workspace/remote.git');
    git(proj, 'push', '-q', join(proj, 'remote.git'), 'HEAD:main');
    hostConfig = readFileSync(join(proj, '.git', 'config'), 'utf8');
    subConfig = readFileSync(join(proj, 'sub', '.git', 'config'), 'utf8');
    const r = await sh(t, proj, 'true');
    assert.equal(r.code, 0, r.stderr);
  });
  after(() => t?.cleanup());

  it('guest files are the host user\'s; guest root creates and chowns nothing on the host', async () => {
    const r = await sh(t, proj, [
      'cd /workspace',
      'echo v > by-vibe',
      'sudo touch by-root && echo ROOT-CREATED',
      'sudo sh -c "echo x > by-root2" && echo ROOT-CREATED2',
      'sudo mkdir root-dir && echo ROOT-MKDIR',
      'sudo chown root by-vibe && echo CHOWNED',
      'sudo chown 12345:12345 by-vibe && echo CHOWNED2',
      'sudo chgrp 100 by-vibe && echo CHGRP',
      'true',
    ].join('; '));
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /ROOT-CREATED|ROOT-MKDIR|CHOWNED|CHGRP/, `${r.stdout}\n${r.stderr}`);
    assert.equal(existsSync(join(proj, 'by-root')), false);
    for (const f of walk(proj).filter((e) => !e.path.includes(`${proj}/.vibebox`))) {
      assert.equal(f.uid, process.getuid!(), `${f.path} owned by uid ${f.uid}`);
      assert.equal(f.gid, process.getgid!(), `${f.path} group ${f.gid}`);
    }
  });

  it('no guest action leaves a setuid/setgid file or a device node on the host', async () => {
    const r = await sh(t, proj, [
      'cd /workspace',
      'cp /bin/sh suid; chmod 6755 suid; echo "chmod6755:$?"',
      'chmod u+s suid; chmod g+s suid; sudo chmod 4755 suid; echo "sudo-chmod:$?"',
      'install -m 4755 /bin/sh suid2; echo "install:$?"',
      'sudo install -m 6755 /bin/sh suid3; echo "sudo-install:$?"',
      'mkdir -m 2775 sgid-dir; echo "mkdir:$?"; mkdir plain; chmod g+s plain; echo "chmod-dir:$?"',
      'sudo mknod null c 1 3; echo "mknod-c:$?"; sudo mknod blk b 7 0; echo "mknod-b:$?"',
      'mkfifo fifo; echo "mkfifo:$?"',
      'perl -MFcntl -e \'sysopen(my $f, "/workspace/viaopen", O_CREAT|O_WRONLY, 06755) or exit 1\'; echo "open:$?"',
      'ls -l suid* sgid-dir plain 2>&1',
    ].join('; '));
    process.stderr.write(`guest sees:\n${r.stdout}${r.stderr}\n`);
    for (const f of walk(proj)) {
      assert.equal(f.mode & 0o6000, 0, `${f.path} has mode ${(f.mode & 0o7777).toString(8)} on the host`);
      assert.equal(f.dev, false, `${f.path} is a device node on the host`);
    }
    assert.match(r.stdout, /chmod6755:[1-9]/);
    assert.match(r.stdout, /mkfifo:0/); // what does not widen anything still works
  });

  it('.git/config and .git/hooks are read-only from the guest; git still commits, branches and fetches', async () => {
    const r = await sh(t, proj, [
      'cd /workspace',
      'git config core.fsmonitor "touch /workspace/pwned" && echo CONFIG-WRITTEN',
      'echo "#!/bin/sh" > .git/hooks/pre-commit && echo HOOK-WRITTEN',
      'mkdir -p .git/hooks/x && echo HOOKDIR-WRITTEN',
      'mv .git .git2 && echo GIT-MOVED',
      'mv .git/config .git/config2 && echo CONFIG-MOVED',
      'rm -rf .git/hooks && echo HOOKS-REMOVED',
      'sudo sh -c "echo x >> .git/config" && echo ROOT-CONFIG-WRITTEN',
      'cd sub && { git config core.fsmonitor evil && echo SUB-CONFIG-WRITTEN; echo x > .git/hooks/post-checkout && echo SUB-HOOK-WRITTEN; mv .git .gitx && echo SUB-GIT-MOVED; cd ..; }',
      'true',
    ].join('; '));
    assert.doesNotMatch(r.stdout, /WRITTEN|MOVED|REMOVED/, `${r.stdout}\n${r.stderr}`);
    const ok = await sh(t, proj, [
      'set -e; cd /workspace',
      'git -c user.email=v@example.com -c user.name=vibe commit -q --allow-empty -m from-guest',
      'git checkout -q -b guest-branch',
      'git fetch -q origin',
      'git log --oneline | wc -l',
    ].join('; '));
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout.trim(), '2');
    assert.equal(readFileSync(join(proj, '.git', 'config'), 'utf8'), hostConfig);
    assert.equal(readFileSync(join(proj, 'sub', '.git', 'config'), 'utf8'), subConfig);
    assert.deepEqual(readdirSync(join(proj, '.git', 'hooks')).filter((h) => !h.endsWith('.sample')), []);
    assert.deepEqual(readdirSync(join(proj, 'sub', '.git', 'hooks')), []);
    assert.equal(existsSync(join(proj, 'pwned')), false);
    assert.match(git(proj, 'branch', '--list'), /guest-branch/);
  });

  it('submodule and gitlink config, hooks and pointers are read-only from the guest (nested, two levels down); host git status runs nothing planted; git still works in the submodule', async () => {
    const marker = join(proj, 'pwned-sm');
    const fsmonitor = `touch '${marker}'; false`;
    const r = await sh(t, proj, [
      'cd /workspace',
      `git config -f ${SM}/config core.fsmonitor "${fsmonitor}" && echo SM-CONFIG-WRITTEN`,
      `printf '[core]\\n\\tfsmonitor = %s\\n' "${fsmonitor}" >> ${SM}/config && echo SM-CONFIG-APPENDED`,
      `printf '[core]\\n\\tfsmonitor = %s\\n' "${fsmonitor}" >> ${SM}/modules/inner/config && echo INNER-CONFIG-WRITTEN`,
      `(cd mods/sm && git config core.fsmonitor "${fsmonitor}") && echo SM-GIT-CONFIG-WRITTEN`,
      `echo '#!/bin/sh' > ${SM}/hooks/post-checkout && echo SM-HOOK-WRITTEN`,
      `sudo sh -c 'echo x >> ${SM}/config' && echo ROOT-SM-CONFIG-WRITTEN`,
      `printf '[core]\\n\\tfsmonitor = %s\\n' "${fsmonitor}" >> vendor/lib/.git/config && echo GITLINK-CONFIG-WRITTEN`,
      // A pointer rewritten to a gitdir planted in the project, or the directories above moved away.
      `mkdir -p evil && git init -q --bare evil/g && git config -f evil/g/config core.fsmonitor "${fsmonitor}" && git config -f evil/g/config core.bare false`,
      'echo "gitdir: ../../evil/g" > mods/sm/.git && echo POINTER-WRITTEN',
      'echo "gitdir: ../../../evil/g" > mods/sm/inner/.git && echo INNER-POINTER-WRITTEN',
      'mv mods mods2 && echo PARENT-MOVED',
      `mv ${SM} ${SM}2 && echo GITDIR-MOVED`,
      'mv .git/modules .git/modules2 && echo MODULES-MOVED',
      'mv vendor/lib vendor/lib2 && echo GITLINK-MOVED',
      'true',
    ].join('; '));
    assert.doesNotMatch(r.stdout, /WRITTEN|APPENDED|MOVED/, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stderr, /Read-only file system/, r.stderr);
    const ok = await sh(t, proj, [
      'set -e; cd /workspace/mods/sm',
      'git -c user.email=v@example.com -c user.name=vibe commit -q --allow-empty -m in-submodule',
      'git checkout -q -b guest-sub',
      // `git submodule update` rewrites core.worktree in the (read-only) submodule config each
      // time; checking out the recorded commits is the same update (README, "Known limits"),
      // one by one: `submodule foreach` stops at vendor/lib, a gitlink with no .gitmodules entry.
      'cd /workspace && git -C mods/sm checkout -q "$(git rev-parse HEAD:mods/sm)"',
      'git -C mods/sm/inner checkout -q "$(git -C mods/sm rev-parse HEAD:inner)"',
      'git -C mods/sm status | grep -q "HEAD detached"',
      'git -C mods/sm submodule status | wc -l',
    ].join('; '));
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout.trim(), '1');
    for (const f of SUBMODULE_FILES) assert.equal(readFileSync(join(proj, f), 'utf8'), before_[f], `${f} changed on the host`);
    assert.deepEqual(readdirSync(join(proj, SM, 'hooks')).filter((h) => !h.endsWith('.sample')), []);
    // What an editor does on the host by itself: git status, recursing into the submodules.
    git(proj, 'status');
    assert.equal(existsSync(marker), false, 'host git status ran a guest-written core.fsmonitor');
  });

  it('QEMU under -sandbox still forks the guestfwd relay: the guest reaches the egress proxy', async () => {
    const r = await sh(t, proj, 'curl -sS -o /dev/null --max-time 30 -w "%{http_code}" http://example.com/');
    assert.equal(r.stdout, '451', r.stderr);
    const pid = readFileSync(join(t.home, 'run', readdirSync(join(t.home, 'run'))[0]!, 'qemu.pid'), 'utf8').trim();
    assert.match(readFileSync(`/proc/${pid}/status`, 'utf8'), /^Seccomp:\s+2$/m);
  });
});

describe('without virtiofsd', () => {
  it('refuses to start with one line naming the package: never a silent 9p fallback', async () => {
    const t = testEnv({ VIBEBOX_VIRTIOFSD: '/nonexistent/virtiofsd' });
    try {
      const r = await vb(t, t.project('no-virtiofsd'), ['exec', '--', 'true']);
      assert.equal(r.code, 1, r.stderr);
      const lines = r.stderr.split('\n').filter((l) => l.startsWith('vibebox:'));
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0]!, /virtiofsd is not installed.*`virtiofsd` package/);
      assert.equal(pidsMatching(t.home, 'qemu-system').length, 0);
    } finally {
      t.cleanup();
    }
  });
});
