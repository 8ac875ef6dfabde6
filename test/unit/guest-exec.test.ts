import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveCommand } from '../../guest/process-exec.js';
import { execOf, parseSs, peerPid } from '../../guest/agent/peer.js';
import { VibeboxError } from '../../src/errors.js';

describe('command resolution (exit 127 / 126)', () => {
  it('not found, not executable, found', () => {
    const d = mkdtempSync(join(tmpdir(), 'vb-cmd-'));
    writeFileSync(join(d, 'plain'), 'echo hi\n');
    writeFileSync(join(d, 'tool'), '#!/bin/sh\n');
    chmodSync(join(d, 'tool'), 0o755);
    assert.deepEqual(resolveCommand('nonexistent-cmd-xyz', `/usr/bin:${d}`, '/'), { reason: 'not_found' });
    assert.deepEqual(resolveCommand('plain', d, '/'), { reason: 'not_executable' });
    assert.deepEqual(resolveCommand('./plain', '', d), { reason: 'not_executable' });
    assert.deepEqual(resolveCommand('tool', `/nonexistent:${d}`, '/'), { path: join(d, 'tool') });
    assert.deepEqual(resolveCommand(join(d, 'tool'), '', '/'), { path: join(d, 'tool') });
    assert.deepEqual(resolveCommand(d, '', '/'), { reason: 'not_executable' }, 'a directory cannot run');
    rmSync(d, { recursive: true, force: true });
  });
  it('a lost session and a full disk are failures (exit 1), not bad input', () => {
    assert.equal(new VibeboxError('E_SESSION_LOST', 'x').exitCode, 1);
    assert.equal(new VibeboxError('E_NO_SPACE', 'x').exitCode, 1);
    assert.equal(new VibeboxError('E_CONFIG_INVALID', 'x').exitCode, 2);
    // A raw ENOSPC from any write reaches the user the same way: one line, exit 1.
    const script = `import { reportAndExit } from ${JSON.stringify(join(process.cwd(), 'src', 'report.ts'))}; reportAndExit(Object.assign(new Error('write failed'), { code: 'ENOSPC', path: '/x/sessions.toml' }));`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.stderr, 'vibebox: no space left on the disk writing /x/sessions.toml (free some space, then run the command again)\n');
  });
});

describe('which exec a :command came from', () => {
  it('parses ss lines', () => {
    const l = parseSs('u_str ESTAB 0 0 /run/vibebox/agent.sock 100 * 101 users:(("node",pid=7,fd=20))\nu_str ESTAB 0 0 * 101 * 100 users:(("socat",pid=88,fd=5))\n');
    assert.deepEqual(l, [{ inode: 100, peer: 101, users: [{ pid: 7, fd: 20 }] }, { inode: 101, peer: 100, users: [{ pid: 88, fd: 5 }] }]);
  });

  it('finds the connecting process and the exec it runs under, whatever id it claims', { skip: !hasSs() }, async () => {
    const d = mkdtempSync(join(tmpdir(), 'vb-peer-'));
    const path = join(d, 'agent.sock');
    const got = new Promise<Socket>((res) => {
      const srv = createServer((s) => {
        res(s);
        srv.close();
      });
      srv.listen(path);
    });
    // An "exec" (sh) whose child connects; a second, unrelated process is another exec.
    const execA = spawn('sh', ['-c', `exec 3<>/dev/null; node -e "const s=require('net').connect('${path}'); setTimeout(()=>s.end(), 3000)"`], { stdio: 'ignore' });
    const execB = spawn('sleep', ['5'], { stdio: 'ignore' });
    const sock = await got;
    const fd = (sock as unknown as { _handle: { fd: number } })._handle.fd;
    const pid = await peerPid(fd);
    assert.ok(pid !== null, 'the peer is found');
    const roots = new Map([[1, execA.pid!], [2, execB.pid!]]);
    assert.equal(execOf(pid, roots), 1);
    assert.equal(execOf(process.pid, roots), null, 'a process outside every exec');
    execA.kill();
    execB.kill();
    sock.destroy();
    rmSync(d, { recursive: true, force: true });
  });
});

function hasSs(): boolean {
  try {
    execFileSync('ss', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
