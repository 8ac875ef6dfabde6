// The headless-CLI adapter with real processes (sh stands in for claude -p / codex exec), through
// the real kit server and SDK on loopback.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AGENT_PRESETS, cliRunnable } from '../../guest/kit/cli-runnable.js';
import { KitClient, KitClientError, type KitBox } from '../../guest/kit/client.js';
import { startKitServer, type RunningKit } from '../../guest/kit/server.js';

const KEY = 'c'.repeat(32);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
function within<T>(p: Promise<T>, ms = 10_000): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<never>((_, j) => (t = setTimeout(() => j(new Error(`no result within ${ms} ms`)), ms)))]).finally(() => clearTimeout(t));
}
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('kit cliRunnable (real processes)', () => {
  let dir: string;
  let kit: RunningKit;
  let client: KitClient;
  let box: KitBox;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kit-cli-'));
    kit = await startKitServer({
      // The prompt text is the shell script: a stand-in for an agent CLI's headless mode.
      runnable: cliRunnable({ command: 'sh', argv: (p) => ['-c', p.text], killGraceMs: 300 }),
      key: KEY,
      manifest: { name: 'cli', version: '0' },
      fs: { input: join(dir, 'input'), output: join(dir, 'output'), work: join(dir, 'work') },
      stateDir: join(dir, 'state'),
      limits: { abortGraceMs: 1000 },
    });
    client = KitClient.make({ endpoints: { c: { url: kit.url, key: KEY } } });
    box = client.box('c');
  });
  after(async () => {
    await client.close();
    await kit.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('streams stdout/stderr as events; stdout is the message; runs in the work dir with the input/output dirs in env', async () => {
    const h = box.prompt('echo one; echo warn >&2; pwd; cp "$VIBEBOX_KIT_INPUT/in.txt" "$VIBEBOX_KIT_OUTPUT/out.txt"', {
      files: { 'in.txt': { bytes: Buffer.from('carried') } },
    });
    const kinds = new Set<string>();
    for await (const e of h.events) kinds.add(e.event_type);
    assert.deepEqual([...kinds].sort(), ['stderr', 'stdout']);
    assert.equal(await within(h.message), `one\n${join(dir, 'work')}`);
    assert.equal((await h.read('out.txt')).toString(), 'carried');
  });

  it('a non-zero exit is E_RUN_FAILED with the stderr tail', async () => {
    await assert.rejects(within(box.prompt('echo nope >&2; exit 3').message), (e: KitClientError) => e.code === 'E_RUN_FAILED' && /exited with 3: nope/.test(e.message));
  });

  it('abort kills the whole process group, children included', async () => {
    const pidFile = join(dir, 'work', 'child.pid');
    const h = box.prompt(`sleep 30 & echo $! > ${pidFile}; echo started; wait`);
    for await (const e of h.events) if (e.event_type === 'stdout') h.abort();
    await assert.rejects(within(h.message), (e: KitClientError) => e.code === 'E_ABORTED');
    assert.ok(existsSync(pidFile));
    const pid = Number(readFileSync(pidFile, 'utf8'));
    const deadline = Date.now() + 5000;
    while (alive(pid)) {
      assert.ok(Date.now() < deadline, `background child ${pid} survived the abort`);
      await sleep(20);
    }
    assert.equal(await within(box.prompt('echo next').message), 'next');
  });

  it('a group that ignores SIGTERM is killed with SIGKILL after the grace period', async () => {
    const h = box.prompt("trap '' TERM; echo armed; while :; do sleep 0.05; done");
    for await (const e of h.events) if (e.event_type === 'stdout') h.abort();
    await assert.rejects(within(h.message), (e: KitClientError) => e.code === 'E_ABORTED');
    assert.equal(await within(box.prompt('echo after').message), 'after');
  });

  it('a missing command is E_RUN_FAILED, not a crash; presets name the headless modes', async () => {
    const k2 = await startKitServer({
      runnable: cliRunnable({ command: join(dir, 'no-such-agent'), argv: () => [] }),
      key: KEY,
      manifest: { name: 'x', version: '0' },
      fs: { input: join(dir, 'i2'), output: join(dir, 'o2'), work: join(dir, 'w2') },
      stateDir: join(dir, 's2'),
    });
    const c2 = KitClient.make({ endpoints: { x: { url: k2.url, key: KEY } } });
    try {
      await assert.rejects(within(c2.box('x').prompt('hi').message), (e: KitClientError) => e.code === 'E_RUN_FAILED' && /cannot run/.test(e.message));
    } finally {
      await c2.close();
      await k2.close();
    }
    const p = { id: 'i', text: 'do it', inputs: [] };
    assert.deepEqual(AGENT_PRESETS['claude']?.argv(p), ['-p', 'do it']);
    assert.deepEqual(AGENT_PRESETS['codex']?.argv(p), ['exec', 'do it']);
    assert.deepEqual(AGENT_PRESETS['gemini']?.argv(p), ['-p', 'do it']);
  });
});
