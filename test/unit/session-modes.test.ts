// Another local user must not read a session: its folder is 0700 and its files (disk, saved RAM,
// logs, session.toml) 0600 from their first byte, whatever the umask; an older, wider session is
// tightened at its next start. Each test runs under the common umask 022, through the functions
// vibebox really uses.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, closeSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { createSessionDir, writeSessionFile } from '../../src/session/state.js';
import { prepareSessionDisk } from '../../src/session/disk.js';
import { RotatingLog } from '../../src/supervisor/rotating-log.js';
import { EgressLog } from '../../proxy/log.js';
import { createOverlay } from '../../qemu/disk.js';
import { pipelineTo, runToolTo } from '../../qemu/tool-output.js';
import { mkdirPrivate, openPrivateAppend, tightenPrivateDir } from '../../qemu/private-file.js';
import { projectPaths } from '../../src/paths.js';

const mode = (p: string) => lstatSync(p).mode & 0o777;
const octal = (m: number) => `0${m.toString(8)}`;
const assertMode = (p: string, m: number) => assert.equal(octal(mode(p)), octal(m), p);

let base: string;
let home: string;
let saved: { umask: number; home: string | undefined };

before(() => {
  saved = { umask: process.umask(0o022), home: process.env['VIBEBOX_HOME'] };
});
after(() => {
  process.umask(saved.umask);
  if (saved.home === undefined) delete process.env['VIBEBOX_HOME'];
  else process.env['VIBEBOX_HOME'] = saved.home;
});
beforeEach(() => {
  base = mkdtempSync(join(tmpdir(), 'vb-modes-'));
  home = join(base, 'vbhome');
  process.env['VIBEBOX_HOME'] = home;
});
afterEach(() => rmSync(base, { recursive: true, force: true }));

function project(name = 'proj'): string {
  const p = join(base, name);
  mkdirSync(p);
  return p;
}

describe('a new session', () => {
  it('.vibebox/ is 0700, session.toml and .gitignore 0600, also after a rewrite', async () => {
    const p = project();
    const s = await createSessionDir(p, new Date(), home);
    const pp = projectPaths(p);
    assertMode(pp.stateDir, 0o700);
    assertMode(pp.sessionFile, 0o600);
    assertMode(pp.gitignore, 0o600);
    writeSessionFile(p, { ...s, vibebox_version: '9.9.9' });
    assertMode(pp.sessionFile, 0o600);
  });

  it('an empty .vibebox/ made 0755 beforehand is taken over at 0700', async () => {
    const p = project();
    mkdirSync(join(p, '.vibebox'), { mode: 0o755 });
    await createSessionDir(p, new Date(), home);
    assertMode(join(p, '.vibebox'), 0o700);
  });

  it('disk.qcow2 is 0600 (qemu-img writes into a file vibebox made private)', async () => {
    const p = project();
    const s = await createSessionDir(p, new Date(), home);
    const backing = join(base, 'rootfs.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', backing, '16M']);
    await prepareSessionDisk(p, s.id, backing, 64 * 1024 * 1024);
    assertMode(projectPaths(p).disk, 0o600);
    // Variant: the bare overlay the driver tests make.
    const bare = join(base, 'bare.qcow2');
    await createOverlay(bare, backing, 64 * 1024 * 1024);
    assertMode(bare, 0o600);
  });
});

describe('logs in .vibebox/', () => {
  it('a new log is 0600; an older 0644 one is tightened when opened; a link is not followed', () => {
    const d = join(base, 'logs');
    mkdirSync(d);
    const fresh = new RotatingLog(join(d, 'supervisor.log'), 1024);
    fresh.write('one');
    assertMode(join(d, 'supervisor.log'), 0o600);
    // Rotation: the new file is private too.
    for (let i = 0; i < 40; i++) fresh.write('x'.repeat(60));
    assert.ok(existsSync(join(d, 'supervisor.log.1')));
    assertMode(join(d, 'supervisor.log'), 0o600);
    assertMode(join(d, 'supervisor.log.1'), 0o600);
    writeFileSync(join(d, 'serial.log'), 'old\n', { mode: 0o644 });
    chmodSync(join(d, 'serial.log'), 0o644);
    new RotatingLog(join(d, 'serial.log')).write('new');
    assertMode(join(d, 'serial.log'), 0o600);
    // A log name that is a link to someone's file: not written through, target unchanged.
    const target = join(base, 'target');
    writeFileSync(target, 'keep\n');
    chmodSync(target, 0o644);
    symlinkSync(target, join(d, 'egress.log'));
    new RotatingLog(join(d, 'egress.log')).write('through the link?');
    assert.equal(readFileSync(target, 'utf8'), 'keep\n');
    assertMode(target, 0o644);
  });

  it('egress.log (written by the proxy) is 0600 and never written through a link', () => {
    const d = join(base, 'egress');
    mkdirSync(d);
    const rec = { ts: new Date().toISOString(), method: 'CONNECT', host: 'example.org', port: 443, decision: 'allow' as const, reason: 'allowlist' };
    const log = new EgressLog(join(d, 'egress.log'));
    log.write(rec);
    log.close();
    assertMode(join(d, 'egress.log'), 0o600);
    const target = join(base, 'target');
    writeFileSync(target, 'keep\n');
    symlinkSync(target, join(d, 'linked.log'));
    const errors: Error[] = [];
    const linked = new EgressLog(join(d, 'linked.log'), (e) => void errors.push(e));
    linked.write(rec);
    linked.close();
    assert.equal(readFileSync(target, 'utf8'), 'keep\n');
    assert.match(String(errors[0]?.message), /ELOOP/);
  });

  it('the supervisor log the client opens for the supervisor is 0600, and tightened when older', () => {
    const f = join(base, 'supervisor.log');
    closeSync(openPrivateAppend(f));
    assertMode(f, 0o600);
    chmodSync(f, 0o644);
    closeSync(openPrivateAppend(f));
    assertMode(f, 0o600);
  });
});

describe('the saved state (guest RAM and device state)', () => {
  // The tool (zstd in the suspend) writes into a file that was 0600 before its first byte: the
  // command records the mode of its stdout when it starts, then writes.
  it('a tool writing the state finds its output 0600 before its first byte', async () => {
    const out = join(base, 'saved-state.tmp');
    const seen = join(base, 'mode-at-start');
    await runToolTo('sh', ['-c', `m=$(stat -L -c %a /proc/$$/fd/1); echo $m > '${seen}'; printf state`], 'ignore', out);
    assert.equal(readFileSync(seen, 'utf8').trim(), '600');
    assert.equal(readFileSync(out, 'utf8'), 'state');
    assertMode(out, 0o600);
  });

  it('the RAM pipeline (pack | zstd) writes into a 0600 file too', async () => {
    const out = join(base, 'saved-state.ram.tmp');
    const seen = join(base, 'mode-at-start');
    await pipelineTo(['sh', '-c', 'printf ram'], ['sh', '-c', `m=$(stat -L -c %a /proc/$$/fd/1); echo $m > '${seen}'; cat`], 'ignore', out);
    assert.equal(readFileSync(seen, 'utf8').trim(), '600');
    assert.equal(readFileSync(out, 'utf8'), 'ram');
    assertMode(out, 0o600);
  });

  it('real zstd, as the suspend runs it, leaves a 0600 file that decompresses', async () => {
    const out = join(base, 'saved-state.tmp');
    const src = join(base, 'src');
    writeFileSync(src, 'guest memory');
    const { openSync } = await import('node:fs');
    const fd = openSync(src, 'r');
    try {
      await runToolTo('zstd', ['-q', '-1', '-T0', '-c'], fd, out);
    } finally {
      closeSync(fd);
    }
    assertMode(out, 0o600);
    assert.equal(execFileSync('zstd', ['-dcq', '--', out], { encoding: 'utf8' }), 'guest memory');
  });

  it('a file planted at the output name is not written through', async () => {
    const out = join(base, 'saved-state.tmp');
    const target = join(base, 'elsewhere');
    writeFileSync(target, 'mine');
    symlinkSync(target, out);
    await assert.rejects(runToolTo('sh', ['-c', 'printf x'], 'ignore', out), /EEXIST/);
    assert.equal(readFileSync(target, 'utf8'), 'mine');
  });
});

describe('an older session tightened at its next start', () => {
  it('.vibebox/ 0755 with 0644 files becomes 0700 and 0600; links and FIFOs are left alone', () => {
    const p = project();
    const d = join(p, '.vibebox');
    mkdirSync(d, { mode: 0o755 });
    chmodSync(d, 0o755);
    for (const f of ['session.toml', 'disk.qcow2', 'saved-state', 'saved-state.ram', 'serial.log', 'egress.log', 'supervisor.log']) {
      writeFileSync(join(d, f), 'x');
      chmodSync(join(d, f), 0o644);
    }
    const outside = join(base, 'outside');
    writeFileSync(outside, 'x');
    chmodSync(outside, 0o644);
    symlinkSync(outside, join(d, 'link'));
    execFileSync('mkfifo', [join(d, 'fifo')]);
    const t0 = Date.now();
    const changed = tightenPrivateDir(d);
    assert.ok(Date.now() - t0 < 2000, 'a FIFO blocked');
    assert.equal(changed.length, 7);
    assertMode(d, 0o700);
    for (const f of changed) assertMode(join(d, f), 0o600);
    assertMode(outside, 0o644);
  });

  it('~/.vibebox and the run directory: made 0700, and tightened when older', () => {
    mkdirSync(home, { mode: 0o755 });
    chmodSync(home, 0o755);
    const run = join(home, 'run', 'abcdef012345');
    mkdirPrivate(home);
    mkdirPrivate(run);
    assertMode(home, 0o700);
    assertMode(join(home, 'run'), 0o700);
    assertMode(run, 0o700);
    assert.ok(statSync(run).isDirectory());
  });

  it('a VIBEBOX_HOME reached through a symlink is followed (the user chose it), its directory made 0700', () => {
    const real = join(base, 'real-home');
    mkdirSync(real, { mode: 0o755 });
    chmodSync(real, 0o755);
    const linked = join(base, 'linked-home');
    symlinkSync(real, linked);
    mkdirPrivate(linked);
    mkdirPrivate(join(linked, 'run'));
    assertMode(real, 0o700);
    assertMode(join(real, 'run'), 0o700);
  });
});
