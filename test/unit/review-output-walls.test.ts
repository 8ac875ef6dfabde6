// Review output against hostile text: what the agent container, a stack service or the guest wrote
// (file names, volume targets, healthcheck arguments, versions, directory names) reaches the
// host's terminal escaped. Each renderer is fed hostile input, and the host's own filter for the
// output of a review command (stack diff/status/apply, changes, agents, kit…) is tested on split
// chunks, since the VM that renders may itself be the attacker.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { renderDiff, diffManifests } from '../../guest/stack/diff.js';
import type { Manifest, ServiceSpec } from '../../guest/stack/manifest.js';
import { renderStatus } from '../../guest/stack/status-text.js';
import { agentsTable } from '../../guest/containers/agents.js';
import { changesSummary } from '../../guest/containers/changes.js';
import { ShownLines } from '../../src/client/shown-stream.js';
import { table } from '../../src/cli/format.js';
import { explainText, type Explanation } from '../../src/explain.js';

// Anything that moves the cursor, erases, or reorders: only newlines may separate lines.
const RAW_IN_LINE = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/;
const noRaw = (text: string) => {
  for (const line of text.split('\n')) assert.doesNotMatch(line, RAW_IN_LINE, JSON.stringify(line));
};

const ERASE = '\x1b[1A\x1b[2K\r';

function service(over: Partial<ServiceSpec> = {}): ServiceSpec {
  return {
    name: 'db',
    image: { ref: 'postgres:16', repository: 'docker.io/library/postgres', tag: '16', digest: null, local: false },
    command: null,
    env: {},
    volumes: [],
    healthcheck: null,
    cpus: 1,
    memoryBytes: 512 * 1024 ** 2,
    capAdd: [],
    ...over,
  };
}
const manifest = (...services: ServiceSpec[]): Manifest => ({ version: 1, services });

describe('stack diff (what apply asks y/N about)', () => {
  it('a volume target with CR and a healthcheck argument with ESC are shown escaped', () => {
    const hostile = service({
      volumes: [{ name: 'data', target: `/var/lib/data\r    cap_add: (none)`, readOnly: false }],
      healthcheck: { test: ['CMD', 'pg_isready', `${ERASE}ok`], intervalMs: 5000, timeoutMs: 3000, retries: 3, startPeriodMs: 0, source: 'manifest' },
      command: ['sh', '-c', 'x\x9b2K'],
      env: { A: 'b\u202ec' },
    });
    const added = renderDiff(diffManifests(null, manifest(hostile)));
    noRaw(added);
    assert.match(added, /volumes\.data: \/var\/lib\/data\\r    cap_add: \(none\)/);
    assert.match(added, /healthcheck: pg_isready \\e\[1A\\e\[2K\\rok every 5s/);
    const changed = renderDiff(diffManifests(manifest(service()), manifest(hostile)));
    noRaw(changed);
    assert.match(changed, /~ db/);
  });
  it('variant: a CMD-SHELL script with a newline and BEL, and a hostile image reference', () => {
    const s = service({ image: { ref: `evil\x07:1${ERASE}`, repository: 'x', tag: null, digest: null, local: true }, healthcheck: { test: ['CMD-SHELL', 'true\n+ db (new)\x07'], intervalMs: 1000, timeoutMs: 1000, retries: 1, startPeriodMs: 0, source: 'manifest' } });
    const out = renderDiff(diffManifests(null, manifest(s)));
    noRaw(out);
    assert.equal(out.split('\n').filter((l) => l.startsWith('+ ')).length, 1, 'one "+" line: the newline did not fake another');
  });
});

describe('stack status', () => {
  it('service name, image, health and the last apply reason are escaped', () => {
    const out = renderStatus({
      live: true,
      down: false,
      services: [{ name: `db${ERASE}`, image: 'img\x1b]0;title\x07', state: 'running', health: 'healthy\r' }],
      last_apply: { status: 'failed', reason: `bad${ERASE}applied`, time: 't' },
      proposed: null,
    });
    noRaw(out);
    assert.match(out, /bad\\e\[1A\\e\[2K\\rapplied/);
  });
});

describe('the changes summary after a run and `vibebox changes`', () => {
  it('a file name a\\x1b[2Kb is shown escaped', () => {
    const out = changesSummary([{ path: '/usr/local/bin/a\x1b[2Kb', kind: 'added' }, { path: '/etc/x\ry', kind: 'changed' }]);
    noRaw(out);
    assert.match(out, /\+ \/usr\/local\/bin\/a\\e\[2Kb/);
    assert.match(out, /~ \/etc\/x\\ry/);
  });
  it('variant: a newline in a file name cannot fake the next summary line', () => {
    const out = changesSummary([{ path: '/opt/x\n  keep them for good: nothing to see', kind: 'added' }]);
    noRaw(out);
    assert.equal(out.split('\n').filter((l) => l.includes('keep them for good')).length, 2);
    assert.match(out, /\/opt\/x\\n  keep them/);
  });
});

describe('the agents table', () => {
  it('a version string the container printed is escaped', () => {
    const out = agentsTable([{ name: 'claude', package: '@anthropic-ai/claude-code', version: `1.0${ERASE}` }, { name: 'codex', package: '@openai/codex', version: null }]);
    noRaw(out);
    assert.match(out, /1\.0\\e\[1A\\e\[2K\\r/);
  });
});

describe('host tables: vibebox list', () => {
  it('a directory name with escapes is shown escaped, columns still line up', () => {
    const out = table(['ID', 'DIRECTORY', 'STATE'], [['1', `/home/u/p${ERASE}rm -rf`, 'stopped'], ['2', '/home/u/q', 'running (1 attached)']]);
    noRaw(out);
    const lines = out.split('\n');
    assert.equal(lines[1]!.indexOf('stopped'), lines[2]!.indexOf('running'));
    assert.match(out, /\/home\/u\/p\\e\[1A\\e\[2K\\rrm -rf/);
  });
});

describe('vibebox explain', () => {
  it('project path, mounts, local dirs, entries, image lines, key names, port errors are escaped', () => {
    const e: Explanation = {
      project: `/home/u/p${ERASE}`,
      session: null,
      mounts: [{ host: `/h/a\x1b[2K`, guest: '/mnt/\r', mode: 'rw' }],
      local: ['/workspace/node_modules\x1b[2K'],
      network: { mode: 'allowlist', entries: ['a.com\r'], proxy: 'http://10.0.2.100:3128' },
      storage: { config: 'vibebox.toml\x1b', state: '.vibebox/' },
      ports: [{ host: 8080, guest: 80, origin: 'config', state: 'failed', error: `in use${ERASE}` }],
      container: { image: { apt: ['jq\x1b'], npm: [], run: [`true${ERASE}`] }, cpus: null, memory: null, keys: ['K\x1b'], keysProblem: `bad\r` },
      vm: { cpus: 2, memory: '2GiB', disk: '20GiB', auto_shutdown: '30000 ms' },
      pending: { items: [`+ mount /h/b${ERASE} → /mnt/b (rw)`], mounts: [], network: { entries: [] }, vm: {} },
    };
    const out = explainText(e);
    noRaw(out);
    assert.match(out, /project: \/home\/u\/p\\e\[1A\\e\[2K\\r/);
  });
});

describe("the host's filter for review output from the VM", () => {
  const run = (chunks: (string | Buffer)[]) => {
    const f = new ShownLines();
    let out = '';
    for (const c of chunks) out += f.push(typeof c === 'string' ? Buffer.from(c) : c);
    return out + f.end();
  };
  it('escapes every control character, keeps newlines, whatever the chunking', () => {
    const text = `Stack changes: 1 to add\n+ db (new)\n    volumes.data: /x${ERASE}\n`;
    const whole = run([text]);
    noRaw(whole);
    assert.equal(whole, 'Stack changes: 1 to add\n+ db (new)\n    volumes.data: /x\\e[1A\\e[2K\\r\n');
    // split inside the escape sequence and byte by byte: same output
    assert.equal(run([text.slice(0, 45), text.slice(45)]), whole);
    assert.equal(run([...Buffer.from(text)].map((b) => Buffer.from([b]))), whole);
  });
  it('variant: a multi-byte character split across chunks stays whole; C1 in UTF-8 is escaped', () => {
    const b = Buffer.from('é✓ a\u009b2Kb\u202e\n');
    const out = run([b.subarray(0, 1), b.subarray(1, 3), b.subarray(3)]);
    assert.equal(out, 'é✓ a\\x9b2Kb\\u202e\n');
  });
  it('a last line without a newline is flushed escaped at the end', () => {
    assert.equal(run(['ok\n', 'tail\x1b']), 'ok\ntail\\e');
  });
  it('an endless line is passed on in escaped pieces, never held whole', () => {
    const f = new ShownLines(16);
    const out = f.push(Buffer.from('x'.repeat(20) + '\x1b'));
    assert.ok(out.length >= 20);
    noRaw(out);
  });
});

describe('errors: whatever reaches reportAndExit is printed escaped', () => {
  it('a VibeboxError whose message carries guest text', () => {
    const code = `import { reportAndExit } from './src/report.ts'; import { VibeboxError } from './src/errors.ts'; reportAndExit(new VibeboxError('E_CONTAINER', 'stack-controller: ${'\\x1b'}[2Kboom', 'see logs'));`;
    let stderr = '';
    try {
      execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: new URL('../..', import.meta.url), stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (e) {
      stderr = String((e as { stderr: Buffer }).stderr);
    }
    assert.match(stderr, /stack-controller: \\e\[2Kboom/);
    noRaw(stderr);
  });
});

describe('which execs the host escapes', () => {
  it('every container exec but `run` (the user\'s own program): stack logs; the other ops are typed frames, rendered escaped', async () => {
    const { reviewOutput } = await import('../../src/client/run.js');
    for (const op of ['stack'] as const) assert.equal(reviewOutput({ op }), true, op);
    assert.equal(reviewOutput({ op: 'run' }), false);
    assert.equal(reviewOutput(undefined), false, 'a VM exec is the user\'s command');
  });
});

describe('--json output on a terminal', () => {
  it('jsonShown: DEL, C1, bidi and zero-width escaped as \\u, still the same JSON value', async () => {
    const { jsonShown } = await import('../../guest/shown.js');
    const v = [{ directory: '/p/a\x1b[2K\x7f\x9b2K\u202e\u200b', n: 1 }];
    const text = jsonShown(v);
    assert.doesNotMatch(text, RAW_IN_LINE);
    assert.deepEqual(JSON.parse(text), v);
  });
});
