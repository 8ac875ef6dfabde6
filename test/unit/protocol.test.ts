import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AgentMessage, FrameDecoder, HostMessage, Kind, MAX_FRAME, PROTOCOL_VERSION, controlFrame, encodeFrame, readControl } from '../../guest/protocol.js';
import { ClientMessage } from '../../src/supervisor/client-protocol.js';

test('frames survive arbitrary chunking', () => {
  const frames = [controlFrame({ type: 'shutdown' }), encodeFrame(7, Kind.stdout, Buffer.from('hello')), encodeFrame(9, Kind.stdin, Buffer.alloc(70_000, 1))];
  const all = Buffer.concat(frames);
  for (const size of [1, 3, 64, 4096, all.length]) {
    const dec = new FrameDecoder();
    const got = [];
    for (let i = 0; i < all.length; i += size) got.push(...dec.push(all.subarray(i, i + size)));
    assert.equal(got.length, 3);
    assert.deepEqual(JSON.parse(got[0]!.payload.toString()), { type: 'shutdown' });
    assert.equal(got[1]!.stream, 7);
    assert.equal(got[1]!.payload.toString(), 'hello');
    assert.equal(got[2]!.payload.length, 70_000);
  }
});

test('a corrupt length is a protocol error, not a huge allocation', () => {
  const bad = Buffer.alloc(9);
  bad.writeUInt32BE(MAX_FRAME + 1, 0);
  assert.throws(() => new FrameDecoder().push(bad), /bad frame length/);
});

test('messages are validated strictly on both ends', () => {
  assert.equal(HostMessage.safeParse({ type: 'exec', id: 1, argv: ['true'], env: {}, cwd: '/', user: 'vibe' }).success, true);
  assert.equal(HostMessage.safeParse({ type: 'exec', id: 1, argv: [], env: {}, cwd: '/', user: 'vibe' }).success, false);
  assert.equal(HostMessage.safeParse({ type: 'exec', id: 1, argv: ['x'], env: {}, cwd: '/', user: 'admin' }).success, false);
  assert.equal(HostMessage.safeParse({ type: 'shutdown', extra: 1 }).success, false);
  assert.equal(HostMessage.safeParse({ type: 'signal', id: 1, signal: 'rm -rf' }).success, false);
  assert.equal(AgentMessage.safeParse({ type: 'request', reqId: 1, command: 'explain', execId: null, args: [] }).success, true);
  assert.equal(AgentMessage.safeParse({ type: 'request', reqId: 1, command: 'rm', execId: null, args: [] }).success, false);
  assert.equal(ClientMessage.safeParse({ type: 'exec', tty: false, argv: ['true'] }).success, true);
  assert.equal(ClientMessage.safeParse({ type: 'exec', tty: 'yes' }).success, false);
});

test('a hello of another protocol version is a mismatch, even when it does not parse as today\'s hello', async () => {
  const { createServer, connect } = await import('node:net');
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { AgentChannel } = await import('../../src/supervisor/agent-channel.js');
  const dir = mkdtempSync(join(tmpdir(), 'vb-ch-'));
  const path = join(dir, 'a.sock');
  const seen: string[] = [];
  const done = new Promise<void>((res) => {
    const srv = createServer((sock) => {
      const ch = new AgentChannel(sock);
      ch.on('mismatch', (v) => {
        seen.push(`mismatch ${v}`);
        if (seen.length === 2) {
          srv.close();
          res();
        }
      });
      ch.on('message', (m) => seen.push(m.type));
    });
    srv.listen(path);
  });
  await new Promise((r) => setTimeout(r, 20));
  const c = connect(path);
  c.write(controlFrame({ type: 'log', level: 'info', message: 'before' }));
  c.write(encodeFrame(0, Kind.control, JSON.stringify({ type: 'hello', protocol: 0, version: '0.0.1' })));
  c.write(encodeFrame(0, Kind.control, JSON.stringify({ type: 'hello', protocol: PROTOCOL_VERSION + 1, version: '9', kernel: 'k', uptimeMs: 1, agentStartMs: 1, node: 'v20', extra: true })));
  await done;
  c.destroy();
  assert.deepEqual(seen, ['log', 'mismatch 0', `mismatch ${PROTOCOL_VERSION + 1}`]);
  rmSync(dir, { recursive: true, force: true });
});

test('a container exec carries its op and spec; argv may be empty only there', () => {
  const spec = { image: { apt: ['jq'], npm: [], run: [] } };
  assert.equal(HostMessage.safeParse({ type: 'exec', id: 1, argv: [], env: {}, cwd: '/', user: 'vibe', container: { op: 'run', spec } }).success, true);
  assert.equal(HostMessage.safeParse({ type: 'exec', id: 1, argv: [], env: {}, cwd: '/', user: 'vibe', container: { op: 'launch', spec } }).success, false);
  assert.equal(HostMessage.safeParse({ type: 'exec', id: 1, argv: [], env: {}, cwd: '/', user: 'vibe', container: { op: 'run', spec: { image: { apt: ['jq; rm -rf /'] } } } }).success, false);
  assert.equal(HostMessage.safeParse({ type: 'exec', id: 1, argv: [], env: {}, cwd: '/', user: 'vibe', container: { op: 'run', pass: ['A=B'], spec } }).success, false);
  assert.equal(ClientMessage.safeParse({ type: 'exec', tty: false, container: { op: 'run', agent: 'claude', pass: ['ANTHROPIC_API_KEY'] } }).success, true);
  assert.equal(ClientMessage.safeParse({ type: 'exec', tty: false, container: { op: 'run', spec } }).success, false);
});

test('readControl: both ends read a control payload the same way (JSON, then their schema), keeping the raw value', () => {
  const ok = readControl(Buffer.from(JSON.stringify({ type: 'log', level: 'info', message: 'hi' })), AgentMessage);
  assert.equal(ok.ok, true);
  const notJson = readControl(Buffer.from('{nope'), AgentMessage);
  assert.deepEqual(notJson, { ok: false, error: 'control frame is not JSON' });
  // A hello of a newer protocol may not fit today's schema: its raw value is still there to read.
  const newer = readControl(Buffer.from(JSON.stringify({ type: 'hello', protocol: 99, extra: true })), AgentMessage);
  assert.equal(newer.ok, false);
  assert.equal((newer.raw as { protocol: number }).protocol, 99);
  assert.equal(readControl(Buffer.from(JSON.stringify({ type: 'exec' })), HostMessage).ok, false);
});
