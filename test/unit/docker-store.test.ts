// The agent base written into the guest's Docker store at image build (images/docker-store.ts):
// what dockerd reads when it loads the store, and the same config as the fallback import gives.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { dockerStore, imageConfig, linkName } from '../../images/docker-store.js';
import { BASE_IMAGE, BASE_SHA_LABEL, importChanges } from '../../guest/docker/base-image.js';

const DIFF = 'c'.repeat(64);
const WHEN = '2026-12-07T00:00:00Z';

test('one layer: its chain id is its diff id; the layerdb names its overlay2 dir', () => {
  const s = dockerStore(DIFF, WHEN);
  assert.equal(s.chainId, DIFF);
  assert.match(s.cacheId, /^[0-9a-f]{64}$/);
  const file = (p: string) => s.entries.find((e) => e.path === p && e.kind === 'file')?.data;
  assert.equal(file(`image/overlay2/layerdb/sha256/${DIFF}/diff`), `sha256:${DIFF}`);
  assert.equal(file(`image/overlay2/layerdb/sha256/${DIFF}/cache-id`), s.cacheId);
  assert.equal(s.sizeFile, `image/overlay2/layerdb/sha256/${DIFF}/size`);
  assert.equal(s.diffDir, `overlay2/${s.cacheId}/diff`);
  // overlay2's short link: the file and the l/ symlink agree, pointing at the diff dir.
  const link = file(`overlay2/${s.cacheId}/link`);
  assert.match(link ?? '', /^[A-Z2-7]{26}$/);
  const sym = s.entries.find((e) => e.kind === 'symlink');
  assert.deepEqual(sym && { path: sym.path, to: sym.data }, { path: `overlay2/l/${link}`, to: `../${s.cacheId}/diff` });
  assert.equal(linkName(DIFF), link);
});

test('the image: its id is the sha256 of its config; tagged vibebox/agent:base', () => {
  const s = dockerStore(DIFF, WHEN);
  const { json, id } = imageConfig(DIFF, WHEN);
  assert.equal(id, createHash('sha256').update(json).digest('hex'));
  assert.equal(s.imageId, id);
  const content = s.entries.find((e) => e.path === `image/overlay2/imagedb/content/sha256/${id}`);
  assert.equal(content?.data, json);
  const cfg = JSON.parse(json) as { os: string; architecture: string; rootfs: { type: string; diff_ids: string[] }; config: { Labels: Record<string, string> } };
  assert.equal(cfg.os, 'linux');
  assert.equal(cfg.architecture, 'amd64');
  assert.deepEqual(cfg.rootfs, { type: 'layers', diff_ids: [`sha256:${DIFF}`] });
  assert.equal(cfg.config.Labels[BASE_SHA_LABEL], DIFF, 'labelled as the guest checks it');
  const repos = JSON.parse(s.entries.find((e) => e.path === 'image/overlay2/repositories.json')?.data ?? '{}') as unknown;
  assert.deepEqual(repos, { Repositories: { 'vibebox/agent': { [BASE_IMAGE]: `sha256:${id}` } } });
});

test('the store holds what the fallback import would: the same config', () => {
  const cfg = (JSON.parse(imageConfig(DIFF, WHEN).json) as { config: { User: string; WorkingDir: string; Env: string[]; Cmd: string[]; Labels: Record<string, string> } }).config;
  const fromStore = [`USER ${cfg.User}`, `WORKDIR ${cfg.WorkingDir}`, ...cfg.Env.map((e) => `ENV ${e}`), `CMD ${JSON.stringify(cfg.Cmd)}`, ...Object.entries(cfg.Labels).map(([k, v]) => `LABEL ${k}=${v}`)];
  assert.deepEqual(fromStore, importChanges(DIFF));
});

test('the same tarball gives the same store; another gives another; paths stay inside', () => {
  assert.deepEqual(dockerStore(DIFF, WHEN), dockerStore(DIFF, WHEN));
  const other = dockerStore('d'.repeat(64), WHEN);
  assert.notEqual(other.cacheId, dockerStore(DIFF, WHEN).cacheId);
  for (const e of dockerStore(DIFF, WHEN).entries) assert.ok(!e.path.startsWith('/') && !e.path.split('/').includes('..'), e.path);
  assert.throws(() => dockerStore('not-a-sha', WHEN));
});
