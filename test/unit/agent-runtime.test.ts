// The agent container's pure parts: its create body (the walls), the agents registry, the
// instruction block, the changes summary, the exec stream demuxer, the upper-dir walk.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AGENTS, agentsTable, findAgent, installCommand, unknownAgentLine } from '../../guest/containers/agents.js';
import { changesSummary, meaningfulChanges } from '../../guest/containers/changes.js';
import { STATE_VOLUME, agentContainerBody } from '../../guest/containers/agent-create-body.js';
import { AGENT_CONTAINER, INTERNAL_NETWORK } from '../../guest/docker/names.js';
import { internalNetworkBody, relayContainerBody } from '../../guest/docker/network-spec.js';
import { StreamDemuxer } from '../../guest/docker/demux.js';
import type { Change } from '../../guest/docker/engine.js';
import { BEGIN, END, INSTRUCTION_FILES, INSTRUCTIONS, instructionWrites, withBlock } from '../../guest/containers/instructions.js';
import { upperDirChanges } from '../../guest/containers/upper-dir.js';
import { parseCliArgs, parseTypedArgs } from '../../guest/containers/ops-cli.js';

const spec = { image: { apt: [], npm: [], run: [] }, cpus: 1.5, memoryBytes: 2 * 1024 ** 3 };
const body = agentContainerBody({ image: 'vibebox/project:abc', projectImage: 'vibebox/project:abc', specHash: 'h1', spec, uid: 1234, gid: 2345 });
const host = body['HostConfig'] as Record<string, unknown>;

test('agent container: no capabilities, no new privileges, not privileged', () => {
  assert.deepEqual(host['CapDrop'], ['ALL']);
  assert.equal(host['CapAdd'], undefined);
  assert.deepEqual(host['SecurityOpt'], ['no-new-privileges']);
  assert.equal(host['Privileged'], false);
});

test('agent container: no Docker socket, the workspace, CA trust read-only, the state volume', () => {
  const binds = host['Binds'] as string[];
  assert.ok(!JSON.stringify(body).includes('docker.sock'));
  assert.ok(binds.includes('/workspace:/workspace'));
  assert.ok(binds.includes('/etc/vibebox:/etc/vibebox:ro'));
  assert.ok(binds.includes('/etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro'));
  assert.deepEqual(host['Mounts'], [{ Type: 'volume', Source: STATE_VOLUME, Target: '/home/vibe' }]);
  // Nothing else is mounted writable from the VM.
  assert.deepEqual(binds.filter((b) => !b.endsWith(':ro')), ['/workspace:/workspace']);
});

test('agent container: the vibe uid, resources, internal network only, never auto-removed', () => {
  assert.equal(body['User'], '1234:2345');
  assert.equal(body['WorkingDir'], '/workspace');
  assert.equal(host['NanoCpus'], 1_500_000_000);
  assert.equal(host['Memory'], 2 * 1024 ** 3);
  assert.equal(host['NetworkMode'], INTERNAL_NETWORK);
  assert.equal(host['AutoRemove'], undefined);
  assert.deepEqual(host['RestartPolicy'], { Name: 'no' });
  const env = body['Env'] as string[];
  assert.ok(env.includes('HTTPS_PROXY=http://proxy:3128'));
  assert.ok(env.includes('NO_PROXY=localhost,127.0.0.1'));
  assert.ok(env.includes('NODE_EXTRA_CA_CERTS=/etc/vibebox/host-cas.pem'));
  assert.ok(env.some((e) => e.startsWith('PATH=/home/vibe/.local/bin:')));
  assert.equal((body['Labels'] as Record<string, string>)['org.vibebox.project-image'], 'vibebox/project:abc');
  assert.equal(AGENT_CONTAINER, 'vibebox-agent');
});

test('agent container: no resource caps when the spec sets none', () => {
  const b = agentContainerBody({ image: 'i', projectImage: 'i', specHash: 'h', spec: { image: spec.image }, uid: 1, gid: 1 });
  const h = b['HostConfig'] as Record<string, unknown>;
  assert.equal(h['NanoCpus'], undefined);
  assert.equal(h['Memory'], undefined);
});

test('relay: unprivileged, read-only, restarted, forwards to the host proxy', () => {
  const r = relayContainerBody('vibebox/agent:base');
  const h = r['HostConfig'] as Record<string, unknown>;
  assert.notEqual(r['User'], '0:0');
  assert.deepEqual(h['CapDrop'], ['ALL']);
  assert.deepEqual(h['SecurityOpt'], ['no-new-privileges']);
  assert.equal(h['ReadonlyRootfs'], true);
  assert.deepEqual(h['RestartPolicy'], { Name: 'unless-stopped' });
  assert.deepEqual(r['Cmd'], ['socat', 'TCP-LISTEN:3128,fork,reuseaddr', 'TCP:10.0.2.100:3128']);
  assert.equal(internalNetworkBody()['Internal'], true);
});

test('agents: the known ones, npm installs into the state volume, unknown names listed', () => {
  assert.deepEqual(
    AGENTS.map((a) => [a.name, a.install.pkg]),
    [
      ['claude', '@anthropic-ai/claude-code'],
      ['codex', '@openai/codex'],
      ['gemini', '@google/gemini-cli'],
      ['opencode', 'opencode-ai'],
      ['pi', '@mariozechner/pi-coding-agent'],
      ['qwen', '@qwen-code/qwen-code'],
      ['copilot', '@github/copilot'],
      ['aider', 'aider-chat'],
    ],
  );
  const claude = findAgent('claude')!;
  assert.equal(claude.bin, 'claude');
  assert.deepEqual(installCommand(claude).slice(0, 5), ['npm', 'install', '-g', '--prefix', '/home/vibe/.local']);
  assert.ok(installCommand(claude).includes('@anthropic-ai/claude-code@latest'));
  const aider = findAgent('aider')!;
  assert.equal(aider.install.kind, 'pip');
  assert.ok(installCommand(aider).includes('--user'));
  assert.equal(findAgent('nope'), undefined);
  const line = unknownAgentLine('nope');
  assert.match(line, /^vibebox: unknown agent nope \(known: claude, codex, gemini, opencode, pi, qwen, copilot, aider\)$/);
  const table = agentsTable([{ name: 'claude', package: '@anthropic-ai/claude-code', version: '1.2.3' }, { name: 'pi', package: 'x', version: null }]);
  assert.match(table, /claude\s+@anthropic-ai\/claude-code\s+1\.2\.3/);
  assert.match(table, /pi\s+x\s+not installed/);
});

test('instructions: appended after user text, replaced between the markers, user text kept', () => {
  const fresh = withBlock(null);
  assert.ok(fresh.startsWith(BEGIN) && fresh.trimEnd().endsWith(END));
  assert.match(fresh, /vibebox allow <host>/);
  assert.match(fresh, /X-Vibebox-Egress/);
  assert.match(fresh, /\/workspace/);
  assert.match(fresh, /vibebox run --root -- apt-get install/);
  const user = '# My notes\nbe terse\n';
  const added = withBlock(user);
  assert.ok(added.startsWith(user));
  const old = `${user}\n${BEGIN}\nold text\n${END}\nafter the block\n`;
  const refreshed = withBlock(old);
  assert.equal(refreshed, `${user}\n${BEGIN}\n${INSTRUCTIONS}${END}\nafter the block\n`);
  // Refreshing again changes nothing.
  assert.equal(withBlock(refreshed), refreshed);
});

test('instructions: only changed files are written', () => {
  const all = instructionWrites(new Map());
  assert.deepEqual([...all.keys()], INSTRUCTION_FILES);
  assert.deepEqual(INSTRUCTION_FILES, ['.claude/CLAUDE.md', '.codex/AGENTS.md', '.gemini/GEMINI.md']);
  const current = new Map<string, string | null>([...all].map(([k, v]) => [k, v]));
  current.set('.codex/AGENTS.md', 'mine\n');
  const writes = instructionWrites(current);
  assert.deepEqual([...writes.keys()], ['.codex/AGENTS.md']);
  assert.ok(writes.get('.codex/AGENTS.md')!.startsWith('mine\n'));
});

const ch = (kind: Change['kind'], path: string): Change => ({ kind, path });

test('changes: noise dropped, parents of changes not listed, new trees as one line', () => {
  const all = [
    ch('changed', '/usr'),
    ch('changed', '/usr/bin'),
    ch('added', '/usr/bin/jq'),
    ch('added', '/usr/share/doc/jq'),
    ch('added', '/usr/share/doc/jq/copyright'),
    ch('changed', '/usr/share'),
    ch('changed', '/usr/share/doc'),
    ch('changed', '/etc/motd'),
    ch('deleted', '/etc/issue'),
    ch('added', '/tmp/x'),
    ch('changed', '/var/cache/apt/pkgcache.bin'),
    ch('changed', '/var/lib/dpkg/status'),
    ch('added', '/var/lib/apt/lists/deb.debian.org_InRelease'),
    ch('changed', '/root'),
    ch('added', '/root/.bash_history'),
    ch('added', '/home/vibe/.claude.json'),
    ch('added', '/workspace'),
    ch('changed', '/var'),
    ch('changed', '/var/log/apt/term.log'),
    ch('changed', '/etc/hosts'),
    ch('added', '/usr/sbin/docker-init'),
    ch('changed', '/usr/sbin'),
  ];
  assert.deepEqual(meaningfulChanges(all), [ch('added', '/usr/bin/jq'), ch('added', '/usr/share/doc/jq'), ch('deleted', '/etc/issue'), ch('changed', '/etc/motd')]);
  const s = changesSummary(all);
  assert.match(s, /2 added, 1 changed, 1 deleted/);
  assert.match(s, /\+ \/usr\/bin\/jq/);
  assert.match(s, /vibebox commit/);
  assert.match(s, /vibebox reset/);
  assert.equal(changesSummary([ch('added', '/tmp/a'), ch('changed', '/home/vibe/x')]), '');
});

test('changes: at most eight paths, then "…and N more"', () => {
  const many = Array.from({ length: 20 }, (_, i) => ch('added', `/opt/f${String(i).padStart(2, '0')}`));
  const s = changesSummary(many);
  assert.equal(s.split('\n').filter((l) => l.startsWith('  + ')).length, 8);
  assert.match(s, /…and 12 more/);
});

function frame(type: number, data: string): Buffer {
  const b = Buffer.from(data);
  const h = Buffer.alloc(8);
  h[0] = type;
  h.writeUInt32BE(b.length, 4);
  return Buffer.concat([h, b]);
}

test('demuxer: frames split at every byte boundary come out whole and in order', () => {
  const stream = Buffer.concat([frame(1, 'hello '), frame(2, 'oops'), frame(1, ''), frame(1, 'world')]);
  for (let cut = 0; cut <= stream.length; cut++) {
    const d = new StreamDemuxer();
    const got = [...d.push(stream.subarray(0, cut)), ...d.push(stream.subarray(cut))];
    assert.deepEqual(
      got.map((f) => [f.stream, f.data.toString()]),
      [
        ['stdout', 'hello '],
        ['stderr', 'oops'],
        ['stdout', 'world'],
      ],
    );
    assert.equal(d.pending, 0);
  }
  const d = new StreamDemuxer();
  d.push(frame(1, 'abc').subarray(0, 9));
  assert.equal(d.pending, 9);
  assert.throws(() => new StreamDemuxer().push(Buffer.from([7, 0, 0, 0, 0, 0, 0, 1, 65])), /bad stream header/);
});

test('upper dir: additions, edits and metadata-only directories; noise not entered', () => {
  const base = mkdtempSync(join(tmpdir(), 'vb-upper-'));
  try {
    const lower = join(base, 'lower');
    const upper = join(base, 'upper');
    for (const d of ['usr/bin', 'etc', 'srv', 'home']) mkdirSync(join(lower, d), { recursive: true });
    writeFileSync(join(lower, 'etc/motd'), 'hi');
    // Upper: a new binary (its dirs copied up), an edited file, a new tree, noise, a chmod-ed dir.
    for (const d of ['usr/bin', 'etc', 'opt/tool/lib', 'tmp', 'home/vibe', 'srv']) mkdirSync(join(upper, d), { recursive: true });
    writeFileSync(join(upper, 'usr/bin/jq'), '');
    writeFileSync(join(upper, 'etc/motd'), 'changed');
    writeFileSync(join(upper, 'opt/tool/lib/a.so'), '');
    writeFileSync(join(upper, 'tmp/scratch'), '');
    writeFileSync(join(upper, 'home/vibe/.history'), '');
    // A new directory holding only noise (/var with a cache) is no change.
    mkdirSync(join(upper, 'var/cache/apt'), { recursive: true });
    writeFileSync(join(upper, 'var/cache/apt/x.bin'), '');
    const { changes, truncated } = upperDirChanges(upper, [lower]);
    assert.equal(truncated, false);
    assert.deepEqual(
      [...changes].sort((a, b) => a.path.localeCompare(b.path)),
      [ch('changed', '/etc/motd'), ch('added', '/opt'), ch('changed', '/srv'), ch('added', '/usr/bin/jq')],
    );
    assert.equal(upperDirChanges(upper, [lower], 2).truncated, true);
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});

test('ops CLI: arguments become a ContainerOp request', () => {
  const r = parseCliArgs(['run', '--root', '--pass', 'API_KEY', '--', 'id', '-u']);
  assert.equal(r.op.op, 'run');
  assert.equal(r.op.root, true);
  assert.deepEqual(r.op.pass, ['API_KEY']);
  assert.deepEqual(r.argv, ['id', '-u']);
  assert.deepEqual(r.op.spec, { image: { apt: [], npm: [], run: [] } });
  assert.deepEqual(parseCliArgs(['stack', '--', 'logs', 'redis']).argv, ['logs', 'redis']);
  assert.throws(() => parseCliArgs(['explode']));
  assert.throws(() => parseCliArgs(['agents']), 'agents is a typed op now, not an exec');
});

test('ops CLI: `op <json>` is a typed request, validated as the agent validates it', () => {
  assert.deepEqual(parseTypedArgs(['{"op":"agents"}']).request, { op: 'agents' });
  assert.deepEqual(parseTypedArgs(['{"op":"stack_apply","expect":"0123456789abcdef","dryRun":true}']).request, { op: 'stack_apply', expect: '0123456789abcdef', dryRun: true });
  assert.throws(() => parseTypedArgs(['{"op":"stack_apply","dryRun":false}']), 'apply without the identity of what was shown');
  assert.throws(() => parseTypedArgs(['{"op":"agents","extra":1}']));
});

test('runner: a run through the hub has stdin, stdout, stderr, the exit status, and 127', async () => {
  const { RunnerHub } = await import('../../guest/containers/runner-hub.js');
  const { runnerMain } = await import('../../guest/containers/runner.js');
  const dir = mkdtempSync(join(tmpdir(), 'vb-runner-'));
  const hub = new RunnerHub(join(dir, 'agent.sock'));
  const runner = runnerMain(join(dir, 'agent.sock'));
  try {
    const deadline = Date.now() + 10_000;
    while (!hub.ready) {
      if (Date.now() > deadline) throw new Error('the runner did not connect');
      await new Promise((r) => setTimeout(r, 20));
    }
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const x = hub.newExec();
    x.stdin(Buffer.from('from stdin\n'));
    x.stdinEnd();
    const r = await x.run({ argv: ['sh', '-c', 'cat; echo "$ONLY_HERE" >&2; exit 5'], env: { ONLY_HERE: 'passed' }, cwd: dir }, { stdout: (b) => out.push(b), stderr: (b) => err.push(b) });
    assert.equal(r.code, 5);
    assert.equal(Buffer.concat(out).toString(), 'from stdin\n');
    assert.equal(Buffer.concat(err).toString(), 'passed\n');
    const missing = hub.newExec();
    missing.stdinEnd();
    const m = await missing.run({ argv: ['no-such-command-anywhere'], env: {}, cwd: dir }, { stdout: () => undefined, stderr: () => undefined });
    assert.equal(m.code, 127);
    assert.equal(m.failed?.reason, 'not_found');
  } finally {
    runner.stop();
    hub.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('runner: a runner that dies (its container removed) is noticed at once; the next runner takes runs', async () => {
  // The CI run of this session: after `vibebox reset` the next run went to the dead runner's
  // half-open connection and failed with "did not take the run within 10 s".
  const { RunnerHub } = await import('../../guest/containers/runner-hub.js');
  const { runnerMain } = await import('../../guest/containers/runner.js');
  const { connect } = await import('node:net');
  const dir = mkdtempSync(join(tmpdir(), 'vb-runner-'));
  const sock = join(dir, 'agent.sock');
  const hub = new RunnerHub(sock);
  const until = async (p: () => boolean, what: string) => {
    const deadline = Date.now() + 10_000;
    while (!p()) {
      if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  try {
    // A dead runner: its side of the control connection ends (the process is gone).
    const dead = connect(sock);
    dead.write('control\n');
    await until(() => hub.ready, 'the first runner connecting');
    dead.end();
    await until(() => !hub.ready, 'the dead runner noticed');
    const runner = runnerMain(sock);
    try {
      await until(() => hub.ready, 'the new runner connecting');
      const x = hub.newExec();
      x.stdinEnd();
      const out: Buffer[] = [];
      const r = await x.run({ argv: ['sh', '-c', 'echo fresh'], env: {}, cwd: dir }, { stdout: (b) => out.push(b), stderr: () => undefined });
      assert.equal(r.code, 0);
      assert.equal(Buffer.concat(out).toString(), 'fresh\n');
    } finally {
      runner.stop();
    }
  } finally {
    hub.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
