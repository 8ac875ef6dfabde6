// A new project's first agent run, end to end: real QEMU (TCG here), the real image with
// vibebox/agent:base already in the guest's Docker store, real Docker. No import at first use;
// the agents' Node satisfies what every bundled npm agent declares (read from the real npm
// registry on the host: this file needs it); after a restart the containers come back by
// themselves. One booted session for the file.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { AGENTS } from '../../guest/containers/agents.js';
import { satisfiesNode } from '../helpers/node-engines.js';
import { bootedSession, sh, until, vb, type RunResult, type TestEnv } from '../helpers/vm.js';

const execFileP = promisify(execFile);
const LONG = 900_000;

describe('the first run in a new project', () => {
  let t: TestEnv;
  let proj: string;
  let nodeVersion = '';
  const root = (script: string): Promise<RunResult> => sh(t, proj, script, { user: 'root', timeoutMs: LONG });
  before(async () => {
    ({ t, proj } = await bootedSession('first-run'));
  });
  after(() => t?.cleanup());

  it('starts its container from the Docker store: no import', { timeout: LONG }, async () => {
    const t0 = Date.now();
    const r = await vb(t, proj, ['run', '--', 'node', '--version'], { timeoutMs: LONG });
    const seconds = (Date.now() - t0) / 1000;
    assert.equal(r.code, 0, r.stderr);
    nodeVersion = r.stdout.trim();
    process.stderr.write(`# first run -- node --version in this VM: ${seconds.toFixed(1)}s\n`);
    assert.doesNotMatch(r.stderr, /import/i);
    // Docker's own record since it started in this boot: not one image import.
    const ev = await root('docker events --since 0 --until "$(date +%s)" --filter type=image --format "{{.Action}} {{.Actor.ID}}"');
    assert.equal(ev.code, 0, ev.stderr);
    assert.doesNotMatch(ev.stdout, /import/, 'no docker import happened');
    // The base in the store is this guest image's, by the tarball sha256 it is labelled with.
    const lab = await root('cat /opt/vibebox/agent-base.tar.sha256; docker image inspect --format \'{{ index .Config.Labels "org.vibebox.base-sha256" }}\' vibebox/agent:base');
    assert.equal(lab.code, 0, lab.stderr);
    const [want, got] = lab.stdout.trim().split('\n');
    assert.match(want ?? '', /^[0-9a-f]{64}$/);
    assert.equal(got, want);
  });

  it('the agents\' Node satisfies the engines of every bundled npm agent (registry metadata)', { timeout: LONG }, async () => {
    assert.match(nodeVersion, /^v\d+\.\d+\.\d+$/, `node --version in the container: ${nodeVersion}`);
    let checked = 0;
    for (const a of AGENTS) {
      if (a.install.kind !== 'npm') continue;
      const { stdout } = await execFileP('npm', ['view', `${a.install.pkg}@latest`, 'engines', '--json'], { timeout: 120_000 });
      const engines = stdout.trim() ? (JSON.parse(stdout) as { node?: string }) : {};
      if (!engines.node) continue;
      assert.ok(satisfiesNode(nodeVersion, engines.node), `${a.install.pkg} wants node ${engines.node}; the container has ${nodeVersion}`);
      checked++;
    }
    assert.ok(checked >= 3, `engines read for ${checked} agents only`);
    // vibebox's own processes in the container keep Debian's Node (its native modules' ABI).
    const sys = await vb(t, proj, ['run', '--', 'sh', '-c', '/usr/bin/node --version; command -v node; command -v npm; npm --version'], { timeoutMs: LONG });
    assert.equal(sys.code, 0, sys.stderr);
    const [debian, nodePath, npmPath, npmVersion] = sys.stdout.trim().split('\n');
    assert.match(debian ?? '', /^v\d+\./);
    assert.equal(nodePath, '/usr/local/bin/node');
    assert.equal(npmPath, '/usr/local/bin/npm');
    assert.match(npmVersion ?? '', /^\d+\.\d+\.\d+$/);
  });

  it('after a restart the containers come back by themselves; the next run finds them running', { timeout: LONG }, async () => {
    const stop = await vb(t, proj, ['stop'], { timeoutMs: LONG });
    assert.equal(stop.code, 0, stop.stderr);
    const t0 = Date.now();
    const up = await vb(t, proj, ['exec', '--', 'true'], { env: { VIBEBOX_SUSPEND: '0' }, timeoutMs: LONG });
    assert.equal(up.code, 0, up.stderr);
    process.stderr.write(`# restart (exec -- true): ${((Date.now() - t0) / 1000).toFixed(1)}s\n`);
    await until(async () => (await root('docker ps --filter name=vibebox-agent --format "{{.Names}}"').catch(() => ({ stdout: '' }))).stdout.includes('vibebox-agent'), 600_000, 'the agent container running without a run');
    process.stderr.write(`# containers back after the restart: ${((Date.now() - t0) / 1000).toFixed(1)}s\n`);
    const t1 = Date.now();
    const r = await vb(t, proj, ['run', '--', 'true'], { timeoutMs: LONG });
    assert.equal(r.code, 0, r.stderr);
    process.stderr.write(`# first run -- true after the restart: ${((Date.now() - t1) / 1000).toFixed(1)}s\n`);
    assert.doesNotMatch(r.stderr, /creating|starting the stack-controller/, 'nothing left to create or start');
  });
});
