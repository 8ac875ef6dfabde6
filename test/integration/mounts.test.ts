// The mount walls against the guest (issue 9) for whoever runs vibebox (issue 10): run this file
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
  before(async () => {
    t = testEnv();
    proj = t.project('mounts');
    // Repositories made on the host before the session starts: the project's own and one a level
    // down (its hooks directory missing: the guest must not be able to create it).
    git(proj, 'init', '-q');
    execFileSync('sh', ['-c', 'echo hello > README && mkdir -p sub && cd sub && git init -q && rm -rf .git/hooks'], { cwd: proj });
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
