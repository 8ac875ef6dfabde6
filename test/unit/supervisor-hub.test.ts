// The supervisor's parts without a VM: reference count and grace timer (fake timers), the clients
// hub over a real ws on a unix socket (backpressure), guest requests (:exit of another client).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { RefCount, type Timers } from '../../src/supervisor/refcount.js';
import { ClientsHub, type Client } from '../../src/supervisor/clients-hub.js';
import { handleGuestRequest, type GuestRequest } from '../../src/supervisor/guest-requests.js';
import type { SupervisorMessage } from '../../src/supervisor/client-protocol.js';

class FakeTimers implements Timers {
  now = 0;
  private next = 1;
  private pending = new Map<number, { at: number; fn: () => void }>();
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.next++;
    this.pending.set(id, { at: this.now + ms, fn });
    return id;
  }
  clearTimeout(h: unknown): void {
    this.pending.delete(h as number);
  }
  advance(ms: number): void {
    this.now += ms;
    for (const [id, t] of [...this.pending]) {
      if (t.at <= this.now) {
        this.pending.delete(id);
        t.fn();
      }
    }
  }
  get count(): number {
    return this.pending.size;
  }
}

describe('reference count and grace timer', () => {
  const make = (grace = 1000) => {
    const timers = new FakeTimers();
    let idle = 0;
    const refs = new RefCount({ graceMs: () => grace, onIdle: () => idle++, timers });
    return { timers, refs, idle: () => idle };
  };

  it('auto shutdown "never" (Infinity) arms no timer: the VM stays up with no client', () => {
    const { timers, refs, idle } = make(Number.POSITIVE_INFINITY);
    refs.arm();
    refs.acquire();
    refs.release();
    assert.equal(timers.count, 0);
    assert.equal(refs.idleScheduled, false);
    timers.advance(2 ** 40);
    assert.equal(idle(), 0);
  });

  it('shuts down after the grace period when nobody ever attaches', () => {
    const { timers, refs, idle } = make();
    refs.arm();
    timers.advance(999);
    assert.equal(idle(), 0);
    timers.advance(1);
    assert.equal(idle(), 1);
  });

  it('a client arriving within the grace period cancels it; leaving starts a new one', () => {
    const { timers, refs, idle } = make();
    refs.arm();
    timers.advance(500);
    refs.acquire();
    timers.advance(5000);
    assert.equal(idle(), 0);
    refs.acquire();
    refs.release();
    timers.advance(5000);
    assert.equal(idle(), 0, 'one client is still attached');
    refs.release();
    assert.equal(refs.count, 0);
    timers.advance(999);
    assert.equal(idle(), 0);
    timers.advance(1);
    assert.equal(idle(), 1);
  });

  it('arms at most one timer, never below zero, never after disarm', () => {
    const { timers, refs, idle } = make();
    refs.arm();
    refs.arm();
    refs.release();
    assert.equal(timers.count, 1);
    assert.equal(refs.count, 0);
    refs.disarm();
    refs.arm();
    timers.advance(10_000);
    assert.equal(idle(), 0);
  });
});

function fakeClient(execId: number | null): Client & { sent: SupervisorMessage[]; closed: boolean } {
  const c = { execId, isRef: true, pending: 0, sent: [] as SupervisorMessage[], closed: false, open: true } as unknown as Client & { sent: SupervisorMessage[]; closed: boolean };
  c.send = (m: SupervisorMessage) => void c.sent.push(m);
  c.close = () => void (c.closed = true);
  return c;
}

describe('guest requests', () => {
  const req = (command: GuestRequest['command'], execId: number | null): GuestRequest => ({ type: 'request', reqId: 1, command, execId, args: [] });

  it(':exit detaches only the client that owns the requesting exec', () => {
    const a = fakeClient(1);
    const b = fakeClient(2);
    const hung: number[] = [];
    const ctx = {
      explain: () => '',
      ownerOf: (id: number | null) => (id === 1 ? a : id === 2 ? b : undefined),
      clients: () => [a, b],
      hangUp: (id: number) => void hung.push(id),
      replaceSession: () => undefined,
    };
    const r = handleGuestRequest(req('exit', 1), ctx);
    assert.equal(r.exitCode, 0);
    assert.deepEqual(a.sent, [{ type: 'detach' }]);
    assert.equal(a.closed, true);
    assert.equal(b.closed, false);
    assert.deepEqual(hung, [1]);
  });

  it(':exit from a background process (no exec) changes nothing', () => {
    const a = fakeClient(1);
    const r = handleGuestRequest(req('exit', null), { explain: () => '', ownerOf: () => undefined, clients: () => [a], hangUp: () => assert.fail(), replaceSession: () => assert.fail() });
    assert.equal(r.exitCode, 1);
    assert.equal(a.closed, false);
  });

  // A background process (no exec) must not delete the session for everyone attached to it.
  it(':new from a background process (no exec) replaces nothing and resets no client', () => {
    const a = fakeClient(1);
    const r = handleGuestRequest(req('new', null), { explain: () => '', ownerOf: () => undefined, clients: () => [a], hangUp: () => assert.fail(), replaceSession: () => assert.fail('the session was replaced') });
    assert.equal(r.exitCode, 1);
    assert.deepEqual(a.sent, []);
  });

  // Variant: an exec the agent vouches for, but no client owns it any more (or another client
  // now holds that id as a stale one): still no replacement.
  it(':new from an exec no client owns, or one whose owner moved on, replaces nothing', () => {
    const a = fakeClient(1);
    for (const ownerOf of [() => undefined, () => a]) {
      const r = handleGuestRequest(req('new', 7), { explain: () => '', ownerOf, clients: () => [a], hangUp: () => assert.fail(), replaceSession: () => assert.fail('the session was replaced') });
      assert.equal(r.exitCode, 1);
      assert.deepEqual(a.sent, []);
    }
  });

  it(':new from the exec a client owns resets every client and replaces the session', () => {
    const a = fakeClient(1);
    const b = fakeClient(2);
    let replaced = 0;
    const r = handleGuestRequest(req('new', 1), { explain: () => '', ownerOf: (id) => (id === 1 ? a : id === 2 ? b : undefined), clients: () => [a, b], hangUp: () => undefined, replaceSession: () => void replaced++ });
    assert.equal(r.exitCode, 0);
    assert.equal(replaced, 1);
    assert.deepEqual(a.sent, [{ type: 'reset', reattach: true }]);
    assert.deepEqual(b.sent, [{ type: 'reset', reattach: false }]);
  });
});

describe('clients hub backpressure', () => {
  it('pauses the guest while a client does not read, resumes once it does', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vb-hub-'));
    const sock = join(dir, 's.sock');
    const pressure: boolean[] = [];
    const timers = new FakeTimers();
    const refs = new RefCount({ graceMs: () => 1000, onIdle: () => undefined, timers });
    let hub!: ClientsHub;
    let owner: Client | null = null;
    const attached = new Promise<void>((res) => {
      hub = new ClientsHub({
        refs,
        log: () => undefined,
        onMessage: (c) => {
          hub.addRef(c);
          hub.own(1, c);
          owner = c;
          res();
        },
        onStdin: () => undefined,
        onLeave: () => undefined,
        onPressure: (p) => void pressure.push(p),
        highWater: 256 * 1024,
        lowWater: 64 * 1024,
      });
    });
    await hub.listen(sock);
    const ws = new WebSocket(`ws+unix://${sock}:/`, { perMessageDeflate: false });
    await new Promise((r) => ws.once('open', r));
    ws.send(JSON.stringify({ type: 'exec', tty: false }));
    await attached;
    assert.equal(refs.count, 1);
    // The client stops reading: its socket's buffers fill, then the hub's.
    (ws as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();
    const chunk = Buffer.alloc(64 * 1024, 0x79);
    for (let i = 0; i < 200 && !pressure.includes(true); i++) {
      hub.data(1, 'stdout', chunk);
      await new Promise((r) => setImmediate(r));
    }
    assert.deepEqual(pressure, [true], 'the hub asked to pause the guest');
    assert.ok(owner!.pending < 32 * 1024 * 1024, `held ${owner!.pending} bytes`);
    let got = 0;
    ws.on('message', (d: Buffer) => (got += d.length));
    (ws as unknown as { _socket: { resume(): void } })._socket.resume();
    const deadline = Date.now() + 10_000;
    while (!pressure.includes(false) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(pressure, [true, false], 'resumed once the client read');
    assert.ok(got > 0);
    ws.close();
    await new Promise((r) => ws.once('close', r));
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(refs.count, 0);
    assert.equal(refs.idleScheduled, true, 'the last client leaving starts the grace timer');
    hub.close();
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('clients hub: input before the exec', () => {
  it('holds stdin sent while the exec waits (the boot) and hands it over in order once flushed, with its end', async () => {
    // The CI rehearsal of this session: `wc -l` in the VM counted 0 of 2,000 piped lines — the
    // client's stdin arrived while the supervisor awaited `ready`, before the exec was owned.
    const dir = mkdtempSync(join(tmpdir(), 'vb-hub-'));
    const sock = join(dir, 's.sock');
    const timers = new FakeTimers();
    const refs = new RefCount({ graceMs: () => 1000, onIdle: () => undefined, timers });
    const got: string[] = [];
    let client: Client | null = null;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let flushed: boolean | null = null;
    const hub: ClientsHub = new ClientsHub({
      refs,
      log: () => undefined,
      onMessage: (c, m) => {
        if (m.type === 'stdin_end') c.earlyEnd = c.execId === null ? true : c.earlyEnd;
        if (m.type !== 'exec') return;
        client = c;
        // As the supervisor does: the exec is owned only after the boot is awaited.
        void gate.then(() => {
          hub.own(7, c);
          flushed = hub.flushEarly(c);
        });
      },
      onStdin: (c, b) => void got.push(`${c.execId}:${b.toString()}`),
      onLeave: () => undefined,
      onPressure: () => undefined,
    });
    await hub.listen(sock);
    const ws = new WebSocket(`ws+unix://${sock}:/`, { perMessageDeflate: false });
    await new Promise((r) => ws.once('open', r));
    ws.send(JSON.stringify({ type: 'exec', tty: false }));
    ws.send(Buffer.concat([Buffer.from([3]), Buffer.from('one ')]));
    ws.send(Buffer.concat([Buffer.from([3]), Buffer.from('two')]));
    ws.send(JSON.stringify({ type: 'stdin_end' }));
    const deadline = Date.now() + 5000;
    while ((client === null || (client as Client).earlyBytes === 0 || !(client as Client).earlyEnd) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(got, [], 'nothing reaches the guest before its exec');
    release();
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(got, ['7:one ', '7:two']);
    assert.equal(flushed, true, 'the end of input is handed over after the data');
    ws.close();
    hub.close();
    rmSync(dir, { recursive: true, force: true });
  });
});
