// The engines check the first-run VM test applies to the agents' Node (test/helpers/node-engines.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { satisfiesNode } from '../helpers/node-engines.js';

test('the ranges agent packages declare', () => {
  assert.ok(satisfiesNode('v24.22.3', '>=22.0.0'));
  assert.ok(!satisfiesNode('v20.19.2', '>=22.0.0'), 'Debian 13 Node is too old for claude-code');
  assert.ok(satisfiesNode('v24.22.3', '>=20.6.0'));
  assert.ok(satisfiesNode('v24.22.3', '>= 18'));
  assert.ok(satisfiesNode('v24.22.3', '^22.22.2 || ^24.15.0 || >=26.0.0'));
  assert.ok(!satisfiesNode('v24.14.0', '^22.22.2 || ^24.15.0 || >=26.0.0'));
  assert.ok(!satisfiesNode('v25.0.0', '^22.22.2 || ^24.15.0 || >=26.0.0'));
  assert.ok(satisfiesNode('v24.1.0', '>=18 <25'));
  assert.ok(!satisfiesNode('v25.1.0', '>=18 <25'));
  assert.ok(satisfiesNode('v24.1.0', '24.x'));
  assert.ok(!satisfiesNode('v23.9.9', '~24.1'));
  assert.ok(satisfiesNode('v24.1.5', '~24.1'));
  assert.ok(satisfiesNode('v24.0.0', '20 - 24'));
  assert.ok(!satisfiesNode('v25.0.0', '20 - 24'));
  assert.ok(satisfiesNode('v24.0.0', '*'));
});

test('a range it cannot read throws instead of passing', () => {
  assert.throws(() => satisfiesNode('v24.0.0', '>=lts'));
  assert.throws(() => satisfiesNode('nonsense', '>=1'));
});
