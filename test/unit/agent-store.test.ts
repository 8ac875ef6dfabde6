// The host's agent store, without a registry or a VM: the manifest and its check (a changed,
// added, removed or relinked file is found; an unchanged tree is not hashed again), the names a
// tree gets, the npm arguments (no package scripts, the VM's platform), what the guest runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, unlinkSync, utimesSync, writeFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildManifest, checkTree, manifestDigest } from '../../src/agents/tree-manifest.js';
import { installArgs, parsePublished } from '../../src/agents/npm-fetch.js';
import { treeName } from '../../src/agents/store.js';
import { AGENT_STORE, AGENTS, STORE_TREE, findAgent, runsFromStore, storeEntry, versionCommand } from '../../guest/containers/agents.js';
import { ContainerOp } from '../../guest/protocol.js';
import { agentContainerBody } from '../../guest/containers/agent-create-body.js';

function tree(): string {
  const d = mkdtempSync(join(tmpdir(), 'vb-tree-'));
  mkdirSync(join(d, 'node_modules/pkg/bin'), { recursive: true });
  writeFileSync(join(d, 'node_modules/pkg/package.json'), '{"name":"pkg"}\n');
  writeFileSync(join(d, 'node_modules/pkg/bin/cli.js'), '#!/usr/bin/env node\nconsole.log(1)\n', { mode: 0o755 });
  mkdirSync(join(d, 'node_modules/.bin'));
  symlinkSync('../pkg/bin/cli.js', join(d, 'node_modules/.bin/pkg'));
  return d;
}

test('a tree matches the manifest made of it; every kind of change is found, named by its path', async () => {
  const d = tree();
  try {
    const m = await buildManifest(d);
    assert.deepEqual(m.entries.map((e) => `${e.kind} ${e.path}`), [
      'dir node_modules',
      'dir node_modules/.bin',
      'link node_modules/.bin/pkg',
      'dir node_modules/pkg',
      'dir node_modules/pkg/bin',
      'file node_modules/pkg/bin/cli.js',
      'file node_modules/pkg/package.json',
    ]);
    assert.equal(m.entries.find((e) => e.path === 'node_modules/pkg/bin/cli.js')?.mode, 0o755);
    assert.equal(await checkTree(d, m), null);
    const digest = manifestDigest(m);

    // Content changed, size kept, mtime set back: found (ctime moved; the hash differs).
    const cli = join(d, 'node_modules/pkg/bin/cli.js');
    const st = statSync(cli);
    writeFileSync(cli, '#!/usr/bin/env node\nconsole.log(2)\n');
    utimesSync(cli, st.atime, st.mtime);
    assert.deepEqual(await checkTree(d, m), { path: 'node_modules/pkg/bin/cli.js', why: 'content changed' });
    writeFileSync(cli, '#!/usr/bin/env node\nconsole.log(1)\n');
    // Put back byte for byte: it matches again (hashed again, remembered), and the identity never moved.
    assert.equal(await checkTree(d, m), null);
    assert.equal(manifestDigest(m), digest);

    appendFileSync(cli, '//');
    assert.deepEqual(await checkTree(d, m), { path: 'node_modules/pkg/bin/cli.js', why: 'size changed' });
    writeFileSync(cli, '#!/usr/bin/env node\nconsole.log(1)\n');

    chmodSync(cli, 0o777);
    assert.match((await checkTree(d, m))?.why ?? '', /mode changed to 777/);
    chmodSync(cli, 0o755);

    writeFileSync(join(d, 'node_modules/pkg/extra.js'), '');
    assert.deepEqual(await checkTree(d, m), { path: 'node_modules/pkg/extra.js', why: 'added' });
    unlinkSync(join(d, 'node_modules/pkg/extra.js'));

    unlinkSync(join(d, 'node_modules/.bin/pkg'));
    symlinkSync('/bin/sh', join(d, 'node_modules/.bin/pkg'));
    assert.deepEqual(await checkTree(d, m), { path: 'node_modules/.bin/pkg', why: 'link target changed' });
    unlinkSync(join(d, 'node_modules/.bin/pkg'));
    assert.deepEqual(await checkTree(d, m), { path: 'node_modules/.bin/pkg', why: 'missing' });
    symlinkSync('../pkg/bin/cli.js', join(d, 'node_modules/.bin/pkg'));
    assert.equal(await checkTree(d, m), null);

    rmSync(d, { recursive: true });
    assert.equal((await checkTree(d, m))?.path, '.');
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('an unchanged file is not read again: a check reads only what moved', async () => {
  const d = tree();
  try {
    const m = await buildManifest(d);
    // A record whose hash is wrong for a file whose stat it remembers passes (the file is not
    // read again) until the stat moves.
    const e = m.entries.find((x) => x.path === 'node_modules/pkg/package.json')!;
    e.sha256 = '0'.repeat(64);
    assert.equal(await checkTree(d, m), null);
    const st = statSync(join(d, e.path));
    utimesSync(join(d, e.path), st.atime, new Date(st.mtimeMs + 1000));
    assert.deepEqual(await checkTree(d, m), { path: e.path, why: 'content changed' });
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('a FIFO in a tree is refused when recorded and when checked', async () => {
  const d = tree();
  try {
    const m = await buildManifest(d);
    const { execFileSync } = await import('node:child_process');
    execFileSync('mkfifo', [join(d, 'node_modules/pkg/fifo')]);
    assert.deepEqual(await checkTree(d, m), { path: 'node_modules/pkg/fifo', why: 'added' });
    await assert.rejects(buildManifest(d), /neither a file, a directory nor a link/);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('npm runs no package script and fetches for the VM (Linux, glibc, its CPU)', () => {
  const a = installArgs('@anthropic-ai/claude-code', '2.1.332', 'arm64');
  assert.equal(a[0], 'install');
  for (const f of ['--ignore-scripts', '--os=linux', '--cpu=arm64', '--libc=glibc', '--save-exact']) assert.ok(a.includes(f), f);
  assert.equal(a[a.length - 1], '@anthropic-ai/claude-code@2.1.332');
});

test('the registry\'s answer is taken only in its exact form', () => {
  const ok = { version: '2.1.332', 'dist.integrity': 'sha512-' + Buffer.alloc(64, 7).toString('base64') };
  assert.deepEqual(parsePublished(JSON.stringify(ok)), { version: '2.1.332', integrity: ok['dist.integrity'] });
  assert.equal(parsePublished(JSON.stringify({ ...ok, version: '../../etc' })), null);
  assert.equal(parsePublished(JSON.stringify({ ...ok, 'dist.integrity': 'sha1-abc' })), null);
  assert.equal(parsePublished('not json'), null);
  // Several versions matched: the last (newest).
  assert.equal(parsePublished(JSON.stringify([{ ...ok, version: '1.0.0' }, ok]))?.version, '2.1.332');
});

test('a tree is named by its agent, version and integrity; the guest accepts only that form', () => {
  const integrity = 'sha512-' + Buffer.from('0123456789abcdef0123', 'hex').toString('base64') + Buffer.alloc(54).toString('base64');
  const t = treeName('claude', { version: '2.1.332', integrity });
  assert.equal(t, 'claude/2.1.332-0123456789abcdef');
  assert.match(t, STORE_TREE);
  assert.ok(ContainerOp.safeParse({ op: 'run', agent: 'claude', tree: t, spec: { image: { apt: [], npm: [], run: [] } } }).success);
  for (const bad of ['claude/../../etc-0123456789abcdef', 'claude/2.1.332-0123', '/claude/2.1.332-0123456789abcdef', 'claude/2.1.332-0123456789abcdef/..']) {
    assert.ok(!ContainerOp.safeParse({ op: 'run', agent: 'claude', tree: bad, spec: { image: { apt: [], npm: [], run: [] } } }).success, bad);
  }
  assert.throws(() => treeName('claude', { version: 'a/b', integrity }));
});

test('what the container runs from the store: claude\'s native binary, others their npm bin; opencode and aider install in the container', () => {
  const claude = findAgent('claude')!;
  assert.equal(storeEntry(claude, 'claude/2.1.332-0123456789abcdef', 'x64'), `${AGENT_STORE}/claude/2.1.332-0123456789abcdef/node_modules/@anthropic-ai/claude-code-linux-x64/claude`);
  assert.equal(storeEntry(findAgent('copilot')!, 'copilot/1.0.102-0123456789abcdef', 'x64'), `${AGENT_STORE}/copilot/1.0.102-0123456789abcdef/node_modules/.bin/copilot`);
  // Another agent's tree is never run.
  assert.throws(() => storeEntry(claude, 'copilot/1.0.102-0123456789abcdef', 'x64'));
  assert.deepEqual(AGENTS.filter((a) => !runsFromStore(a)).map((a) => a.name), ['opencode', 'aider']);
  assert.equal(claude.env?.['DISABLE_AUTOUPDATER'], '1');
  assert.match(versionCommand(claude), /\/opt\/vibebox-agents\/claude\/current/);
  // The container sees the store read-only, at the path the VM mounts it.
  const body = agentContainerBody({ image: 'i', projectImage: 'i', specHash: 'h', spec: { image: { apt: [], npm: [], run: [] } }, uid: 1, gid: 1 });
  const binds = (body['HostConfig'] as { Binds: string[] }).Binds;
  assert.ok(binds.includes(`${AGENT_STORE}:${AGENT_STORE}:ro`), binds.join(' '));
});
