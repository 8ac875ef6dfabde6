import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ClientMessage, FileName, FileRef, parseFrame, ServerMessage } from '../../guest/kit/kit-protocol.js';

const inline = { kind: 'inline', data: Buffer.from('hi').toString('base64'), mime: 'text/plain' };

describe('kit protocol: client → server', () => {
  const valid = [
    { type: 'prompt', id: 'p1', text: 'hello' },
    { type: 'prompt', id: 'p2', text: 'x', inputs: { 'a.txt': inline, 'dir/b.bin': { kind: 'url', url: 'https://example.com/b' } } },
    { type: 'prompt', id: 'p3', text: 'x', outputs_policy: { rules: [{ kind: 'inline', below: '1MB' }, { kind: 'localServer', ttl: '1h' }] } },
    { type: 'abort', id: 'p1' },
    { type: 'display_resolve', slot_id: 's1', value: true },
    { type: 'display_reject', slot_id: 's1', error: 'no' },
    { type: 'ping', ts: 1 },
    { type: 'ping' },
  ];
  for (const m of valid) it(`accepts ${m.type} ${JSON.stringify(m).slice(0, 60)}`, () => assert.ok(ClientMessage.safeParse(m).success));

  const garbage: Array<[string, unknown]> = [
    ['null', null],
    ['a string', 'prompt'],
    ['an array', []],
    ['unknown type', { type: 'launch', id: 'x' }],
    ['prompt without id', { type: 'prompt', text: 'x' }],
    ['prompt with empty id', { type: 'prompt', id: '', text: 'x' }],
    ['prompt with huge id', { type: 'prompt', id: 'x'.repeat(129), text: 'x' }],
    ['prompt with extra field', { type: 'prompt', id: 'p', text: 'x', sudo: true }],
    ['input escaping /input', { type: 'prompt', id: 'p', text: 'x', inputs: { '../etc/passwd': inline } }],
    ['absolute input name', { type: 'prompt', id: 'p', text: 'x', inputs: { '/etc/passwd': inline } }],
    ['input ref of unknown kind', { type: 'prompt', id: 'p', text: 'x', inputs: { a: { kind: 'gcs', bucket: 'b', object: 'o' } } }],
    ['inline ref that is not base64', { type: 'prompt', id: 'p', text: 'x', inputs: { a: { kind: 'inline', data: 'not base64!' } } }],
    ['url ref with file: scheme', { type: 'prompt', id: 'p', text: 'x', inputs: { a: { kind: 'url', url: 'file:///etc/passwd' } } }],
    ['policy with unknown rule kind', { type: 'prompt', id: 'p', text: 'x', outputs_policy: { rules: [{ kind: 'ftp' }] } }],
    ['policy with bad size', { type: 'prompt', id: 'p', text: 'x', outputs_policy: { rules: [{ kind: 'inline', below: 'lots' }] } }],
    ['abort without id', { type: 'abort' }],
    ['display_resolve without slot', { type: 'display_resolve', value: 1 }],
    ['ping with string ts', { type: 'ping', ts: 'now' }],
  ];
  for (const [what, m] of garbage) it(`rejects ${what}`, () => assert.equal(ClientMessage.safeParse(m).success, false));
});

describe('kit protocol: server → client', () => {
  const valid = [
    { type: 'event', id: 'p', event_type: 'text_delta', data: { text: 'hi' } },
    { type: 'display_push', id: 'p', slot: { id: 's', renderer: 'confirm', data: { q: 'ok?' } } },
    { type: 'display_clear', id: 'p', slot_id: 's' },
    { type: 'complete', id: 'p', message: 'done', outputs: { 'a.txt': inline, 'big.bin': { kind: 'server', id: 'abc-1', url: 'http://127.0.0.1:1/files/abc-1' }, 'c': { kind: 's3', bucket: 'b', key: 'k' } } },
    { type: 'error', id: 'p', error: { code: 'E_ABORTED', message: 'aborted' } },
    { type: 'error', id: null, error: { code: 'E_BAD_FRAME', message: 'frame is not JSON' } },
    { type: 'pong', ts: 1 },
  ];
  for (const m of valid) it(`accepts ${m.type}`, () => assert.ok(ServerMessage.safeParse(m).success));
  it('rejects garbage', () => {
    for (const m of [{}, { type: 'complete', id: 'p', message: 'x' }, { type: 'error', id: 'p', error: 'boom' }, { type: 'event', id: 'p' }])
      assert.equal(ServerMessage.safeParse(m).success, false, JSON.stringify(m));
  });
});

describe('kit protocol: FileRef and names', () => {
  it('has exactly the four kinds', () => {
    assert.ok(FileRef.safeParse(inline).success);
    assert.ok(FileRef.safeParse({ kind: 'url', url: 'http://h/x', headers: { a: 'b' } }).success);
    assert.ok(FileRef.safeParse({ kind: 'server', id: 'id-1', url: 'http://h/files/id-1' }).success);
    assert.ok(FileRef.safeParse({ kind: 's3', bucket: 'b', key: 'k/x', region: 'eu-west-1' }).success);
    assert.equal(FileRef.safeParse({ kind: 'server', id: '../x', url: 'http://h/' }).success, false);
  });
  it('file names are relative paths without . or .. parts', () => {
    for (const ok of ['a', 'a.txt', 'd/e/f.bin', '.hidden']) assert.ok(FileName.safeParse(ok).success, ok);
    for (const bad of ['', '/a', 'a/../b', '..', '.', 'a//b', 'a/', 'a\\b', 'a\0b', 'x'.repeat(256)])
      assert.equal(FileName.safeParse(bad).success, false, JSON.stringify(bad));
  });
});

describe('kit protocol: parseFrame', () => {
  it('never throws and recovers the id when it can', () => {
    assert.deepEqual(parseFrame(ClientMessage, '{nope'), { ok: false, message: 'frame is not JSON', id: null });
    const r = parseFrame(ClientMessage, JSON.stringify({ type: 'prompt', id: 'p7' }));
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.id, 'p7');
    const r2 = parseFrame(ClientMessage, JSON.stringify({ type: 'prompt', id: 42, text: 'x' }));
    assert.equal(!r2.ok && r2.id, null);
    const ok = parseFrame(ClientMessage, JSON.stringify({ type: 'ping', ts: 3 }));
    assert.deepEqual(ok, { ok: true, value: { type: 'ping', ts: 3 } });
  });
});
