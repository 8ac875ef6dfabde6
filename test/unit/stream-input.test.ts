// StreamInput: input and its end that come before the stream are held and handed over in order;
// input after the flush goes straight through. Real sockets (a unix socket pair), no VM.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { StreamInput } from '../../guest/containers/stream-input.js';

async function pair(): Promise<{ a: Socket; received: Promise<string>; close(): void }> {
  const dir = mkdtempSync(join(tmpdir(), 'si-'));
  const path = join(dir, 's');
  let got = '';
  let resolveReceived!: (s: string) => void;
  const received = new Promise<string>((r) => (resolveReceived = r));
  const server = createServer((peer) => {
    peer.on('data', (d: Buffer) => (got += d.toString()));
    peer.on('end', () => {
      resolveReceived(got);
      peer.end();
    });
  });
  await new Promise<void>((r) => server.listen(path, r));
  const a = createConnection(path);
  await new Promise((r) => a.once('connect', r));
  return { a, received, close: () => (a.destroy(), server.close(), rmSync(dir, { recursive: true, force: true })) };
}

describe('StreamInput', () => {
  it('holds input and its end until flush, in order; later input flows through', async () => {
    const p = await pair();
    try {
      const input = new StreamInput();
      input.write(Buffer.from('one '));
      assert.equal(input.holding, true);
      input.attach(p.a);
      input.write(Buffer.from('two ')); // attached but not flushed: still held behind "one"
      input.flush();
      assert.equal(input.holding, false);
      input.write(Buffer.from('three'));
      input.end();
      input.write(Buffer.from(' after-end')); // dropped: input has ended
      assert.equal(await p.received, 'one two three');
    } finally {
      p.close();
    }
  });

  it('an end that came first is handed over at the flush', async () => {
    const p = await pair();
    try {
      const input = new StreamInput();
      input.write(Buffer.from('x'));
      input.end();
      assert.equal(input.holding, true);
      input.attach(p.a);
      input.flush();
      assert.equal(await p.received, 'x');
    } finally {
      p.close();
    }
  });

  it('a pause before the stream exists applies to it at attach', async () => {
    const p = await pair();
    try {
      const input = new StreamInput();
      input.pause();
      input.attach(p.a);
      assert.equal(p.a.isPaused(), true);
      input.resume();
      assert.equal(p.a.isPaused(), false);
    } finally {
      p.close();
    }
  });

  it('flush before attach is a programming error', () => {
    assert.throws(() => new StreamInput().flush(), /before attach/);
  });
});
