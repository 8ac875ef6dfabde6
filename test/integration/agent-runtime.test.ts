// The agent container (issue 11), in a real VM with real Docker: its walls, its egress path, the
// workspace both ways, changes/commit/reset and the state volume. The ops are driven through the
// guest's own entry (/opt/vibebox/guest-containers.js, the code the agent runs for an exec with
// `container`), started with `vibebox exec --user root`; the host CLI's `vibebox run` e2e tests
// come with the host side.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type TestEnv, bootedSession, sh as shIn } from '../helpers/vm.js';

const OPS = 'node /opt/vibebox/guest-containers.js';
/** First use imports the base image and creates the container: minutes under TCG. */
const LONG = 1_200_000;

/** Quote for sh -c. */
const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

describe('the agent container', () => {
  let t: TestEnv;
  let proj: string;
  const sh = (script: string, input?: string) => shIn(t, proj, script, { user: 'root', timeoutMs: LONG, ...(input !== undefined ? { input } : {}) });
  /**
   * `run [--root] -- sh -c script` in the container. runner: through the in-container runner,
   * the agent's warm path (the ops CLI then listens in the agent's place), else the engine's exec.
   */
  const run = (script: string, o: { root?: boolean; input?: string; runner?: boolean } = {}) =>
    sh(`${OPS} run ${o.root ? '--root ' : ''}${o.runner ? '--runner ' : ''}-- sh -c ${q(script)}`, o.input);

  before(async () => {
    ({ t, proj } = await bootedSession('agent-runtime'));
  });
  after(() => t?.cleanup());

  it('runs as the vibe uid with no capabilities, and no Docker socket anywhere', { timeout: LONG }, async () => {
    const r = await run('id -u; id -g; grep CapEff /proc/self/status; find / -path /proc -prune -o -name docker.sock -print 2>/dev/null; echo end');
    assert.equal(r.code, 0, r.stderr);
    const vibe = (await shIn(t, proj, 'id -u; id -g')).stdout.trim().split('\n');
    const [uid, gid, capEff, ...rest] = r.stdout.trim().split('\n');
    assert.equal(uid, vibe[0]);
    assert.equal(gid, vibe[1]);
    assert.match(capEff ?? '', /^CapEff:\s+0+$/);
    assert.deepEqual(rest, ['end'], 'no docker.sock in the container');
    // The same through the runner (the container's main process).
    const viaRunner = await run('id -u; grep CapEff /proc/self/status; echo "$HOME"', { runner: true });
    assert.equal(viaRunner.code, 0, viaRunner.stderr);
    assert.equal(viaRunner.stdout, `${vibe[0]}\n${capEff}\n/home/vibe\n`);
    // Root in the container is still without capabilities.
    const root = await run('id -u; grep CapEff /proc/self/status', { root: true });
    assert.equal(root.code, 0, root.stderr);
    assert.match(root.stdout, /^0\nCapEff:\s+0+\n$/);
  });

  it('passes stdin, stdout, stderr and the exit status; 127 for a missing command', { timeout: LONG }, async () => {
    const r = await run('cat; echo to-stderr >&2; exit 7', { input: 'piped in\n' });
    assert.equal(r.code, 7);
    assert.equal(r.stdout, 'piped in\n');
    assert.match(r.stderr, /to-stderr/);
    const missing = await sh(`${OPS} run -- no-such-command-here`);
    assert.equal(missing.code, 127, missing.stderr);
    const r2 = await run('cat; echo to-stderr >&2; exit 7', { input: 'piped in\n', runner: true });
    assert.equal(r2.code, 7, r2.stderr);
    assert.equal(r2.stdout, 'piped in\n');
    assert.match(r2.stderr, /to-stderr/);
    const missing2 = await sh(`${OPS} run --runner -- no-such-command-here`);
    assert.equal(missing2.code, 127, missing2.stderr);
  });

  it('sees /workspace both ways', { timeout: LONG }, async () => {
    writeFileSync(join(proj, 'from-host.txt'), 'host wrote this\n');
    const r = await run('cat /workspace/from-host.txt; pwd; echo container wrote this > /workspace/from-container.txt');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'host wrote this\n/workspace\n');
    assert.equal(readFileSync(join(proj, 'from-container.txt'), 'utf8'), 'container wrote this\n');
  });

  it('reaches out only through the proxy, with TLS verified against the host\'s trust', { timeout: LONG }, async () => {
    // Direct connections: the host proxy's address and a public address, both refused or unreachable.
    const direct = await run('for u in http://10.0.2.100:3128/ http://1.1.1.1/ http://deb.debian.org/; do curl -sS --noproxy "*" --max-time 10 -o /dev/null "$u" 2>/dev/null && echo "reached $u"; done; echo done');
    assert.equal(direct.stdout, 'done\n', direct.stderr);
    // Through the proxy (HTTPS_PROXY from the container's environment), no -k.
    const via = await run('echo "$HTTPS_PROXY"; curl -sS -o /dev/null -w "%{http_code}\\n" https://deb.debian.org/debian/');
    assert.equal(via.code, 0, via.stderr);
    assert.equal(via.stdout, 'http://proxy:3128\n200\n');
  });

  it('writes the instruction block into the state volume, owned by vibe, user text kept', { timeout: LONG }, async () => {
    const r = await run('cat ~/.claude/CLAUDE.md; stat -c %u ~/.codex/AGENTS.md ~/.gemini/GEMINI.md');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /<!-- vibebox:begin -->[\s\S]*vibebox allow <host>[\s\S]*<!-- vibebox:end -->/);
    const uid = (await shIn(t, proj, 'id -u')).stdout.trim();
    assert.deepEqual(r.stdout.trim().split('\n').slice(-2), [uid, uid]);
  });

  it('apt as root: the summary lists it; reset removes it; the state volume survives', { timeout: LONG }, async () => {
    await run('echo kept > ~/state-marker; printf "my own notes\\n" >> ~/.claude/CLAUDE.md');
    const inst = await run('apt-get update -qq >/dev/null 2>&1; apt-get install -y -qq tree >/dev/null 2>&1; command -v tree', { root: true });
    assert.equal(inst.code, 0, inst.stderr);
    assert.equal(inst.stdout, '/usr/bin/tree\n');
    assert.match(inst.stderr, /uncommitted changes/);
    assert.match(inst.stderr, /\+ \/usr\/bin\/tree/);
    assert.match(inst.stderr, /vibebox commit/);
    const changes = await sh(`${OPS} changes`);
    assert.match(changes.stdout, /\+ \/usr\/bin\/tree/);
    const reset = await sh(`${OPS} reset`);
    assert.equal(reset.code, 0, reset.stderr);
    const after = await run('command -v tree || echo gone; cat ~/state-marker; grep -c "my own notes" ~/.claude/CLAUDE.md; grep -c "vibebox:begin" ~/.claude/CLAUDE.md');
    assert.equal(after.code, 0, after.stderr);
    assert.equal(after.stdout, 'gone\nkept\n1\n1\n');
    assert.match(after.stderr, /creating the agent container/);
    assert.doesNotMatch(after.stderr, /uncommitted changes/);
  });

  it('commit keeps an install in a fresh container', { timeout: LONG }, async () => {
    const inst = await run('apt-get update -qq >/dev/null 2>&1; apt-get install -y -qq tree >/dev/null 2>&1; command -v tree', { root: true });
    assert.equal(inst.stdout, '/usr/bin/tree\n', inst.stderr);
    const c = await sh(`${OPS} commit && docker inspect -f '{{.Id}}' vibebox-agent 2>/dev/null || echo no-container`);
    assert.equal(c.code, 0, c.stderr);
    assert.match(c.stdout, /no-container/);
    const fresh = await run('command -v tree; cat ~/state-marker');
    assert.equal(fresh.code, 0, fresh.stderr);
    assert.equal(fresh.stdout, '/usr/bin/tree\nkept\n');
    assert.match(fresh.stderr, /creating the agent container from vibebox\/project:committed/);
    // Nothing uncommitted in the fresh container.
    assert.doesNotMatch(fresh.stderr, /uncommitted changes/);
  });

  it('the container config holds no passed key; the exec gets it', { timeout: LONG }, async () => {
    const r = await sh(`VIBEBOX_TEST_KEY=s3cret ${OPS} run --pass VIBEBOX_TEST_KEY -- sh -c 'echo "$VIBEBOX_TEST_KEY"; echo "[$OTHER_VAR]"'; docker inspect vibebox-agent | grep -c s3cret || true`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 's3cret\n[]\n0\n');
    const viaRunner = await sh(`VIBEBOX_TEST_KEY=s3cret ${OPS} run --runner --pass VIBEBOX_TEST_KEY -- sh -c 'echo "$VIBEBOX_TEST_KEY"'; docker inspect vibebox-agent | grep -c s3cret || true`);
    assert.equal(viaRunner.stdout, 's3cret\n0\n', viaRunner.stderr);
  });

  it('an agent installs from npm through the proxy into the state volume, and runs', { timeout: LONG }, async () => {
    const r = await sh(`${OPS} run --agent claude -- --version`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /installing claude \(@anthropic-ai\/claude-code\)/);
    assert.match(r.stdout, /\d+\.\d+\.\d+/);
    const list = await sh(`${OPS} agents --json`);
    assert.equal(list.code, 0, list.stderr);
    const rows = JSON.parse(list.stdout) as { name: string; version: string | null }[];
    assert.match(rows.find((x) => x.name === 'claude')?.version ?? '', /^\d+\.\d+\.\d+/);
    assert.equal(rows.find((x) => x.name === 'codex')?.version, null);
    // The state volume outlives the container: installed agents too.
    assert.equal((await sh(`${OPS} reset`)).code, 0);
    const again = await sh(`${OPS} run --agent claude -- --version`);
    assert.equal(again.code, 0, again.stderr);
    assert.doesNotMatch(again.stderr, /installing claude/);
  });

  it('an unknown agent is one line listing the known ones, exit 2', { timeout: LONG }, async () => {
    const r = await sh(`${OPS} run --agent nosuchagent`);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^vibebox: unknown agent nosuchagent \(known: claude, codex, gemini, opencode, pi, qwen, copilot, aider\)\n$/);
  });
});
