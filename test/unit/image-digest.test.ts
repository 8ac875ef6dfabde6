import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalJson, computeDigest, isDigest } from '../../images/digest.js';
import { PACKAGES, SUITE, packageRoot, recipeData } from '../../images/recipe.js';

const files = () => [
  { name: 'images/guest-init.sh', data: Buffer.from('#!/bin/sh\nexec node /opt/vibebox/guest-agent.js\n') },
  { name: 'dist/guest-agent.js', data: Buffer.from('console.log("agent v1")') },
];

test('digest is 16 hex and stable for the same inputs', () => {
  const a = computeDigest(recipeData({ uid: 1000, gid: 1000 }), files());
  const b = computeDigest(recipeData({ uid: 1000, gid: 1000 }), files().reverse());
  assert.ok(isDigest(a), a);
  assert.equal(a, b, 'file order does not matter');
});

test('digest changes when the recipe changes', () => {
  const base = recipeData({ uid: 1000, gid: 1000 });
  const d0 = computeDigest(base, files());
  assert.notEqual(computeDigest({ ...base, packages: [...PACKAGES, 'vim'] }, files()), d0, 'package list');
  assert.notEqual(computeDigest(recipeData({ uid: 1001, gid: 1000 }), files()), d0, 'vibe uid');
  assert.notEqual(computeDigest(recipeData({ uid: 1000, gid: 1001 }), files()), d0, 'vibe gid');
  assert.notEqual(computeDigest({ ...base, suite: SUITE === 'trixie' ? 'forky' : 'trixie' }, files()), d0, 'suite');
});

test('digest changes when the guest bundle or a script changes', () => {
  const recipe = recipeData({ uid: 1000, gid: 1000 });
  const d0 = computeDigest(recipe, files());
  const bundle = files().map((f) => (f.name === 'dist/guest-agent.js' ? { ...f, data: Buffer.from('console.log("agent v2")') } : f));
  assert.notEqual(computeDigest(recipe, bundle), d0);
  const init = files().map((f) => (f.name === 'images/guest-init.sh' ? { ...f, data: Buffer.from('#!/bin/sh\n') } : f));
  assert.notEqual(computeDigest(recipe, init), d0);
  assert.notEqual(computeDigest(recipe, [...files(), { name: 'guest/commands/:help', data: Buffer.from('x') }]), d0, 'a new command');
  // Same bytes under another name is another input.
  const renamed = files().map((f) => (f.name === 'dist/guest-agent.js' ? { ...f, name: 'dist/other.js' } : f));
  assert.notEqual(computeDigest(recipe, renamed), d0);
});

test('canonical JSON sorts keys at every depth', () => {
  assert.equal(canonicalJson({ b: 1, a: { d: [1, { z: 0, y: 1 }], c: null } }), '{"a":{"c":null,"d":[1,{"y":1,"z":0}]},"b":1}');
  assert.equal(canonicalJson({ a: undefined, b: 2 }), '{"b":2}');
});

test('package root is the vibebox checkout', async () => {
  const { readFileSync } = await import('node:fs');
  const root = packageRoot();
  assert.equal(JSON.parse(readFileSync(`${root}/package.json`, 'utf8')).name, 'vibebox');
});
