// What a kit's image is made of, in all three recipes: kit serve's layer (families.ts), the
// Dockerfile and nixpacks.toml. The same packages everywhere; the declaration accepts only a
// base family or the agent base.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import TOML from '@iarna/toml';
import { FAMILIES, familyOf, kitPackages } from '../../guest/kit/families.js';
import { dockerfile, KitDeclaration, kitManifest, nixpacks } from '../../src/kit/plan.js';

const KEY = 'n'.repeat(43);

describe('base families', () => {
  it('are named plainly or under vibebox/; anything else is no family', () => {
    assert.equal(familyOf('docs'), 'docs');
    assert.equal(familyOf('vibebox/media'), 'media');
    assert.equal(familyOf('vibebox/agent:base'), undefined);
    assert.equal(familyOf('toString'), undefined, 'no prototype member is a family');
    assert.equal(familyOf(undefined), undefined);
  });
  it('a kit image holds its family\'s packages and its own, sorted and deduplicated', () => {
    assert.deepEqual(kitPackages('docs', { apt: ['jq', 'qpdf'] }).apt, [...new Set([...FAMILIES.docs.apt, 'jq'])].sort());
    assert.deepEqual(kitPackages('browser', { npm: ['left-pad'] }).npm, ['left-pad', 'playwright-core']);
    assert.deepEqual(kitPackages(undefined, undefined), { apt: [], npm: [] });
    assert.ok(FAMILIES.docs.apt.includes('pandoc') && FAMILIES.docs.apt.includes('weasyprint'), 'pandoc and its PDF engine');
  });
  it('the declaration takes a family or the agent base, nothing else', () => {
    for (const base of ['docs', 'vibebox/python', 'vibebox/agent:base']) assert.ok(KitDeclaration.safeParse({ base }).success, base);
    for (const base of ['ubuntu:latest', 'ghcr.io/evil/x', '', 'docs\n']) assert.ok(!KitDeclaration.safeParse({ base }).success, base);
  });
});

describe('build recipes', () => {
  const m = kitManifest({ base: 'docs', packages: { apt: ['jq'], npm: ['left-pad'] }, env: { API_KEY: { required: true, secret: true } } }, { name: 'docsy', version: '2.0.0', key: KEY });

  it('the Dockerfile builds FROM the agent base with the family and the kit packages', () => {
    const d = dockerfile(m);
    assert.match(d, /^FROM vibebox\/agent:base$/m);
    assert.match(d, /^# Base family docs: /m);
    const apt = /apt-get install -y --no-install-recommends ([^&]+) &&/.exec(d)?.[1]?.trim().split(' ');
    assert.deepEqual(apt, kitPackages('docs', { apt: ['jq'] }).apt);
    assert.match(d, /^RUN npm install -g left-pad$/m);
    assert.match(d, /^USER 10001:10001$/m);
  });

  it('nixpacks.toml is the same recipe: node 20, the same apt and npm packages, the launcher, no key', () => {
    const text = nixpacks(m);
    assert.ok(!text.includes(KEY));
    const t = TOML.parse(text) as unknown as {
      phases: { setup: { nixPkgs: string[]; aptPkgs: string[] }; install: { cmds: string[] }; build: { cmds: string[] } };
      start: { cmd: string };
      variables: Record<string, string>;
    };
    assert.deepEqual(t.phases.setup.nixPkgs, ['nodejs_20']);
    assert.deepEqual(t.phases.setup.aptPkgs, kitPackages('docs', { apt: ['jq'] }).apt);
    assert.deepEqual(t.phases.install.cmds, ['npm install -g --no-fund --no-audit left-pad']);
    assert.equal(t.start.cmd, 'node /app/server/index.mjs');
    assert.equal(t.variables['VIBEBOX_KIT_MANIFEST'], '/app/kit.json');
    assert.equal(t.variables['VIBEBOX_KIT_RUNNABLE'], '/app/server/runnable.mjs');
    assert.equal(t.variables['VIBEBOX_KIT_PORT'], '8080');
    assert.equal(t.variables['VIBEBOX_KIT_KEY'], undefined, 'the key comes from the host\'s secrets');
    assert.equal(t.variables['API_KEY'], undefined, 'nor does a declared secret get a value');
  });

  it('a kit without packages has no apt step in either recipe', () => {
    const plain = kitManifest({}, { name: 'p', version: '1', key: KEY });
    assert.doesNotMatch(dockerfile(plain), /apt-get/);
    const t = TOML.parse(nixpacks(plain)) as unknown as { phases: { setup: Record<string, unknown>; install: { cmds: string[] } } };
    assert.equal(t.phases.setup['aptPkgs'], undefined);
    assert.deepEqual(t.phases.install.cmds, []);
  });
});

describe('kit serve\'s image layers', async () => {
  const { kitLayers, layerTag } = await import('../../guest/containers/kit-image.js');
  const SHA = 'a'.repeat(64);
  it('a family kit: the family layer FROM the agent base, then the kit\'s packages FROM the family', () => {
    const ls = kitLayers('docs', { apt: ['jq'] }, SHA);
    assert.deepEqual(ls.map((l) => [l.what, l.from]), [['family docs', 'vibebox/agent:base'], ['packages', ls[0]!.tag]]);
    assert.deepEqual(ls[0]!.apt, [...FAMILIES.docs.apt].sort());
    assert.deepEqual(ls[1]!.apt, ['jq']);
    assert.match(ls[0]!.tag, /^vibebox\/kit:docs-[0-9a-f]{16}$/);
  });
  it('tags are content: the same family is shared by every kit, a new agent base or package list is a new tag', () => {
    assert.equal(kitLayers('docs', { apt: ['jq'] }, SHA)[0]!.tag, kitLayers('docs', { npm: ['x'] }, SHA)[0]!.tag);
    assert.notEqual(kitLayers('docs', {}, SHA)[0]!.tag, kitLayers('docs', {}, 'b'.repeat(64))[0]!.tag);
    assert.equal(kitLayers(undefined, { apt: ['b', 'a'] }, SHA)[0]!.tag, kitLayers(undefined, { apt: ['a', 'b', 'a'] }, SHA)[0]!.tag);
    assert.notEqual(layerTag('pkgs', 'x', ['a'], []), layerTag('pkgs', 'x', [], ['a']));
  });
  it('no family and no packages: the agent base itself, nothing to build', () => {
    assert.deepEqual(kitLayers(undefined, {}, SHA), []);
    assert.deepEqual(kitLayers('vibebox/agent:base', {}, SHA), []);
  });
});
