import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseEnvFile, readKeys } from '../../src/keys/env-file.js';
import { VibeboxError } from '../../src/errors.js';

test('.env lines: bare, quoted, export, comments', () => {
  const m = parseEnvFile(['# keys', '', 'ANTHROPIC_API_KEY=sk-ant-1', 'export OPENAI_API_KEY="sk \\"q\\" x"', "GEMINI_API_KEY='a b#c'", 'X=1 # note', 'EMPTY='].join('\n'));
  assert.deepEqual([...m], [
    ['ANTHROPIC_API_KEY', 'sk-ant-1'],
    ['OPENAI_API_KEY', 'sk "q" x'],
    ['GEMINI_API_KEY', 'a b#c'],
    ['X', '1'],
    ['EMPTY', ''],
  ]);
});

test('a bad line names its number, never its text', () => {
  assert.throws(
    () => parseEnvFile('A=1\nsk-secret-value-without-a-name\n'),
    (e: unknown) => e instanceof VibeboxError && e.code === 'E_KEYS_INVALID' && /line 2/.test(e.message) && !e.message.includes('secret'),
  );
  assert.throws(() => parseEnvFile('1A=x'), /line 1/);
});

test('a group- or world-readable .env is refused; 0600 is read; none is no keys', () => {
  const d = mkdtempSync(join(tmpdir(), 'vbkeys-'));
  try {
    const f = join(d, '.env');
    assert.equal(readKeys(f).size, 0);
    writeFileSync(f, 'K=v\n');
    chmodSync(f, 0o644);
    assert.throws(() => readKeys(f), (e: unknown) => e instanceof VibeboxError && e.code === 'E_KEYS_UNSAFE' && /chmod 600/.test(e.hint ?? ''));
    chmodSync(f, 0o640);
    assert.throws(() => readKeys(f), /readable by others/);
    chmodSync(f, 0o600);
    assert.equal(readKeys(f).get('K'), 'v');
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});
