// `vibebox stack apply` asks y/N once, on the host, about the plan the guest computed, and the
// apply names that plan: the real stack-controller (its host API on a unix socket, its state in a
// temporary directory; no Docker needed up to the check) and the guest's stack op, driven by the
// host's apply flow with a fake terminal. The attack: the agent proposes something else while the
// user reads the diff and answers y.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Server } from 'node:http';
import type { OpRequest } from '../../guest/protocol.js';
import type { StackIo } from '../../src/cli/stack.js';

const dir = mkdtempSync(join(tmpdir(), 'vb-stack-confirm-'));
// The controller reads where its state lives when it loads.
process.env['VIBEBOX_STACK_STATE'] = join(dir, 'state');
process.env['VIBEBOX_STACK_SOCKET_DIR'] = dir;
const sock = join(dir, 'host.sock');

const REDIS = 'version: 1\nservices:\n  redis:\n    image: redis:7.4\n';
const EVIL = 'version: 1\nservices:\n  redis:\n    image: redis:7.4\n  miner:\n    image: redis:7.4\n';

function propose(text: string): Promise<{ hash: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: sock, method: 'POST', path: '/v1/propose', headers: { 'Content-Type': 'text/yaml', 'Content-Length': Buffer.byteLength(text) } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(body) as { hash: string }) : reject(new Error(`propose: ${res.statusCode} ${body}`))));
    });
    req.on('error', reject);
    req.end(text);
  });
}

describe('stack apply: confirmation on the host, for exactly the plan shown', () => {
  let srv: Server;
  let mod: typeof import('../../guest/stack/controller.js');
  let stack: typeof import('../../src/cli/stack.js');
  let hostOp: typeof import('../../guest/stack/host-op.js');

  before(async () => {
    mod = await import('../../guest/stack/controller.js');
    stack = await import('../../src/cli/stack.js');
    hostOp = await import('../../guest/stack/host-op.js');
    srv = mod.server('host');
    await new Promise<void>((r) => srv.listen(sock, r));
  });
  after(() => {
    srv?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The host's flow against the real controller; `onAsk` runs while the user "reads" the question. */
  function rig(answer: boolean, onAsk: () => Promise<void> = async () => undefined) {
    const ops: OpRequest['op'][] = [];
    const asked: string[] = [];
    const out: string[] = [];
    const err: string[] = [];
    const io: StackIo = {
      op: (r) => {
        ops.push(r.op);
        return hostOp.stackRequest(r as Parameters<typeof hostOp.stackRequest>[0], (l) => err.push(`${l}\n`), { dockerd: async () => undefined, socket: sock });
      },
      confirm: async (q) => {
        asked.push(q);
        await onAsk();
        return answer;
      },
      out: (t) => void out.push(t),
      err: (t) => void err.push(t),
    };
    return { io, ops, asked, out, err };
  }

  it('the proposal changes between the diff shown and the y: the apply is refused, nothing applied', async () => {
    const first = await propose(REDIS);
    let second = '';
    const r = rig(true, async () => {
      // The agent, from its container, while the user reads the diff.
      second = (await propose(EVIL)).hash;
    });
    const code = await stack.stackApplyWith(r.io, { dryRun: false, confirm: true });
    assert.equal(code, 1);
    assert.deepEqual(r.asked, ['Apply these changes?'], 'asked once, on the host');
    assert.deepEqual(r.ops, ['stack_plan', 'stack_apply']);
    assert.match(r.out.join(''), /\+ redis \(new\)/, 'the diff shown is the first proposal');
    assert.doesNotMatch(r.out.join(''), /miner/);
    assert.match(r.err.join(''), /^vibebox: apply changed: the proposal changed since you saw it; review it again$/m);
    assert.notEqual(first.hash, second);
    const s = mod.loadState();
    assert.equal(s.live, null, 'nothing was applied');
    assert.equal(s.last_apply, null);
    assert.equal(mod.proposalHash(s.proposed!), second, 'the new proposal waits for its own review');
  });

  it('variant: the same text proposed again (a new proposal with the same content) is refused too', async () => {
    await propose(REDIS);
    const r = rig(true, async () => void (await propose(REDIS)));
    assert.equal(await stack.stackApplyWith(r.io, { dryRun: false, confirm: true }), 1);
    assert.match(r.err.join(''), /apply changed/);
  });

  it('an answer other than y applies nothing and sends no apply', async () => {
    await propose(REDIS);
    const r = rig(false);
    assert.equal(await stack.stackApplyWith(r.io, { dryRun: false, confirm: true }), 1);
    assert.deepEqual(r.ops, ['stack_plan']);
    assert.match(r.err.join(''), /^vibebox: nothing applied$/m);
  });

  it('unchanged, the apply gets past the check (here it then needs Docker, which this host lacks)', async () => {
    await propose(REDIS);
    const r = rig(true);
    const code = await stack.stackApplyWith(r.io, { dryRun: false, confirm: true });
    assert.equal(code, 1);
    assert.deepEqual(r.ops, ['stack_plan', 'stack_apply']);
    assert.doesNotMatch(r.err.join(''), /changed|nothing applied/);
    assert.match(r.err.join(''), /^vibebox: apply error: /m);
  });

  it('nothing proposed: said, nothing asked', async () => {
    const s = mod.loadState();
    mod.saveState({ ...s, proposed: null });
    const r = rig(true);
    assert.equal(await stack.stackApplyWith(r.io, { dryRun: false, confirm: true }), 1);
    assert.deepEqual(r.asked, []);
    assert.match(r.err.join(''), /^vibebox: nothing is proposed/m);
  });

  it('the check itself: no expectation or the shown hash passes; another hash or no proposal is refused', () => {
    const proposed = { manifest: { version: 1 as const, services: [] }, text: REDIS, time: '2026-01-01T00:00:00.000Z' };
    const s = { version: 1 as const, live: null, proposed, last_apply: null, down: false };
    const h = mod.proposalHash(proposed);
    assert.equal(mod.applyGate(s, { dryRun: false, expect: h }), null);
    assert.equal(mod.applyGate(s, { dryRun: false, expect: '0000000000000000' })?.status, 'changed');
    assert.equal(mod.applyGate({ ...s, proposed: null }, { dryRun: false, expect: h })?.status, 'nothing');
  });
});
