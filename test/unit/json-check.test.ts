// The client's JSON Schema check must agree with the zod definition it is generated from.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SupervisorMessage } from '../../src/supervisor/client-protocol.js';
import { supervisorMessageJsonSchema } from '../../src/supervisor/protocol-json.js';
import { conforms, unsupportedKeywords } from '../../src/supervisor/json-check.js';

const samples: unknown[] = [
  { type: 'exit', code: 0, signal: null },
  { type: 'exit', code: null, signal: 'SIGKILL' },
  { type: 'exit', code: 1.5, signal: null },
  { type: 'exit', code: 0 },
  { type: 'exit', code: 0, signal: null, extra: true },
  { type: 'progress', line: 'booting' },
  { type: 'progress', line: 3 },
  { type: 'error', code: 'E_X', message: 'm' },
  { type: 'error', code: 'E_X', message: 'm', hint: 'h' },
  { type: 'error', code: 'E_X' },
  { type: 'reset', reattach: true },
  { type: 'reset', reattach: 'yes' },
  { type: 'status', status: { id: 'a', project: '/p', state: 'running', refs: 1, supervisorPid: 2, qemuPid: null, accel: 'tcg', bootMs: 12.5 } },
  { type: 'status', status: { id: 'a', project: '/p', state: 'flying', refs: 1, supervisorPid: 2, qemuPid: null, accel: 'tcg', bootMs: null } },
  { type: 'nope' },
  null,
  'exit',
  [],
];

test('generated schema uses only keywords the checker implements', () => {
  assert.deepEqual(unsupportedKeywords(supervisorMessageJsonSchema()), []);
});

test('the checker accepts exactly what zod accepts', () => {
  const schema = supervisorMessageJsonSchema();
  for (const s of samples) assert.equal(conforms(schema, s), SupervisorMessage.safeParse(s).success, JSON.stringify(s));
});
