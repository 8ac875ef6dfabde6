import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AgentMessage, FrameDecoder, HostMessage, Kind, MAX_FRAME, controlFrame, encodeFrame } from '../../guest/protocol.js';
import { ClientMessage } from '../../src/supervisor/protocol.js';

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
