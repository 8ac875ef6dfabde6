// `vibebox allow/deny` edit vibebox.toml on the host: never through a symlink, always temp + rename.
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { allow, deny } from '../../src/cli/network.js';
import { VibeboxError } from '../../src/errors.js';

let tmp = '';
let saved: string | undefined;
before(() => {
  tmp = realpathSync(mkdtempSync(join(tmpdir(), 'vb-netedit-')));
  saved = process.env['VIBEBOX_HOME'];
  process.env['VIBEBOX_HOME'] = join(tmp, 'home');
});
after(() => {
  if (saved === undefined) delete process.env['VIBEBOX_HOME'];
  else process.env['VIBEBOX_HOME'] = saved;
  rmSync(tmp, { recursive: true, force: true });
});

/** Run with stdout captured (the commands print one line). */
async function quiet<T>(f: () => Promise<T>): Promise<T> {
  const write = process.stdout.write.bind(process.stdout);
  // drop the command's text only: the test runner's own (binary) reports must go through
  process.stdout.write = ((c: string | Uint8Array, ...rest: never[]) => (typeof c === 'string' ? true : write(c, ...rest))) as typeof process.stdout.write;
  try {
    return await f();
  } finally {
    process.stdout.write = write;
  }
}

describe('vibebox allow/deny and a symlinked vibebox.toml', () => {
  for (const [verb, run] of [['allow', allow], ['deny', deny]] as const) {
    it(`${verb} refuses a symlinked vibebox.toml (exit 2) and writes nothing through it`, async () => {
      const project = mkdtempSync(join(tmp, 'p-'));
      const elsewhere = join(tmp, `elsewhere-${verb}`);
      mkdirSync(elsewhere);
      const target = join(elsewhere, 'victim.toml');
      writeFileSync(target, '[network]\nmode = "blocklist"\nentries = []\n');
      symlinkSync(target, join(project, 'vibebox.toml'));
      const dangling = join(elsewhere, 'created-by-vibebox.toml');
      const project2 = mkdtempSync(join(tmp, 'p-'));
      symlinkSync(dangling, join(project2, 'vibebox.toml'));
      for (const p of [project, project2]) {
        await assert.rejects(quiet(() => run('evil.example', { project: p })), (e: unknown) => {
          assert.ok(e instanceof VibeboxError);
          assert.equal(e.exitCode, 2);
          assert.match(e.toLine(), /vibebox\.toml is a symbolic link/);
          assert.doesNotMatch(e.toLine(), /\n/);
          return true;
        });
      }
      assert.equal(readFileSync(target, 'utf8'), '[network]\nmode = "blocklist"\nentries = []\n');
      assert.equal(existsSync(dangling), false, 'no file created elsewhere');
      assert.ok(lstatSync(join(project, 'vibebox.toml')).isSymbolicLink());
    });
  }

  it('writes a new file by temp + rename, keeping the mode, leaving no temp file', async () => {
    const project = mkdtempSync(join(tmp, 'p-'));
    const file = join(project, 'vibebox.toml');
    writeFileSync(file, '# mine\n[network]\nmode = "allowlist"\nentries = ["a.example:443"]\n', { mode: 0o640 });
    const inode = statSync(file).ino;
    await quiet(() => allow('b.example:443', { project }));
    const text = readFileSync(file, 'utf8');
    assert.match(text, /# mine/);
    assert.match(text, /"b\.example:443"/);
    assert.notEqual(statSync(file).ino, inode, 'replaced by rename, not written in place');
    assert.equal(statSync(file).mode & 0o777, 0o640);
    assert.deepEqual(readdirSync(project).filter((f) => f !== 'vibebox.toml'), []);
    // deny of a bare host removes the port-scoped entries it covers
    await quiet(() => deny('a.example', { project }));
    assert.doesNotMatch(readFileSync(file, 'utf8'), /a\.example/);
  });
});

/** Run with stdout captured; returns what was printed. */
async function output(f: () => Promise<unknown>): Promise<string> {
  const write = process.stdout.write.bind(process.stdout);
  let out = '';
  // only the command's text: the test runner's own (binary) reports go through
  process.stdout.write = ((c: string | Uint8Array, ...rest: never[]) => (typeof c === 'string' ? ((out += c), true) : write(c, ...rest))) as typeof process.stdout.write;
  try {
    await f();
  } finally {
    process.stdout.write = write;
  }
  return out;
}

describe('vibebox allow/deny decide with the proxy policy and say when nothing changed', () => {
  const fresh = (text?: string) => {
    const project = mkdtempSync(join(tmp, 'p-'));
    if (text !== undefined) writeFileSync(join(project, 'vibebox.toml'), text);
    return project;
  };
  const notChanged = (host: string, ...patterns: RegExp[]) => (e: unknown) => {
    assert.ok(e instanceof VibeboxError, String(e));
    assert.equal(e.code, 'E_NOT_CHANGED');
    assert.equal(e.exitCode, 1);
    assert.doesNotMatch(e.toLine(), /\n/);
    assert.match(e.toLine(), new RegExp(`^vibebox: ${host.replace(/\./g, '\\.')} stays`));
    assert.match(e.toLine(), /nothing changed/);
    for (const p of patterns) assert.match(e.toLine(), p);
    return true;
  };

  it('deny of a host a wider allowlist entry allows: refused, names the entry and the command that changes it, writes nothing', async () => {
    const project = fresh();
    await quiet(() => allow('example.org:443', { project })); // writes the default file
    const file = join(project, 'vibebox.toml');
    const before = readFileSync(file, 'utf8');
    await assert.rejects(quiet(() => deny('registry.npmjs.org', { project })), notChanged('registry.npmjs.org', /"\.npmjs\.org:443"/, /`vibebox deny \.npmjs\.org:443`/));
    await assert.rejects(quiet(() => deny('api.github.com', { project })), notChanged('api.github.com', /"\.github\.com:443"/));
    assert.equal(readFileSync(file, 'utf8'), before);
    // what the hint offers does change it: the whole domain goes, registry.npmjs.org:443 with it
    assert.match(await output(() => deny('.npmjs.org:443', { project })), /^denied \.npmjs\.org:443\n$/);
    assert.doesNotMatch(readFileSync(file, 'utf8'), /npmjs/);
  });

  it('blocklist mode: allow of a host under a blocked domain is refused (a blocklist has no exceptions)', async () => {
    const project = fresh('[network]\nmode = "blocklist"\nentries = [".evil.com"]\n');
    const before = readFileSync(join(project, 'vibebox.toml'), 'utf8');
    await assert.rejects(quiet(() => allow('api.evil.com', { project })), notChanged('api.evil.com', /"\.evil\.com"/, /no exceptions/, /`vibebox allow \.evil\.com`/));
    await assert.rejects(quiet(() => allow('10.1.2.3', { project })), notChanged('10.1.2.3', /private address/));
    assert.equal(readFileSync(join(project, 'vibebox.toml'), 'utf8'), before);
    assert.match(await output(() => allow('.evil.com', { project })), /^allowed \.evil\.com\n$/);
    assert.match(await output(() => deny('x.evil.com', { project })), /^denied x\.evil\.com\n$/);
    assert.match(await output(() => deny('x.evil.com:443', { project })), /^x\.evil\.com:443 is already blocked by "x\.evil\.com": no change\n$/);
  });

  it('an allow that the policy already grants says which entry does, and changes nothing', async () => {
    const project = fresh('[network]\nentries = [".github.com:443"]\n');
    const before = readFileSync(join(project, 'vibebox.toml'), 'utf8');
    assert.equal(await output(() => allow('api.github.com:443', { project })), 'api.github.com:443 is already allowed by ".github.com:443": no change\n');
    assert.equal(await output(() => deny('example.org', { project })), 'example.org is already blocked (not in the allowlist): no change\n');
    assert.equal(readFileSync(join(project, 'vibebox.toml'), 'utf8'), before);
    // every port of it is more than port 443: added
    assert.equal(await output(() => allow('api.github.com', { project })), 'allowed api.github.com\n');
  });

  it('loopback, link-local and multicast are never reachable: allow refuses them (exit 2), writes nothing', async () => {
    const project = fresh();
    for (const h of ['localhost', 'a.localhost', '.localhost', '127.0.0.1', '127.1', '::1', '[::1]:8080', '0.0.0.0', '169.254.169.254', 'fe80::1', '224.0.0.1', '::ffff:127.0.0.1']) {
      await assert.rejects(quiet(() => allow(h, { project })), (e: unknown) => {
        assert.ok(e instanceof VibeboxError, `${h}: ${String(e)}`);
        assert.equal(e.exitCode, 2, h);
        // 127.1 is refused one step earlier, as a spelling the proxy would read as 127.0.0.1.
        assert.match(e.toLine(), h === '127.1' ? /this spelling is 127\.0\.0\.1/ : /refuses it whatever vibebox\.toml says/, h);
        return true;
      });
    }
    assert.equal(existsSync(join(project, 'vibebox.toml')), false);
  });

  it('edits an inline table and dotted keys in place', async () => {
    const a = fresh('# keep\nnetwork = { mode = "allowlist", entries = ["a.example"] } # inline\n');
    assert.equal(await output(() => allow('b.example', { project: a })), 'allowed b.example\n');
    assert.equal(readFileSync(join(a, 'vibebox.toml'), 'utf8'), '# keep\nnetwork = { mode = "allowlist", entries = ["a.example", "b.example"] } # inline\n');
    const b = fresh('network.entries = ["a.example"] # dotted\n[ vm ]\ncpus = 1\n');
    assert.equal(await output(() => deny('a.example', { project: b })), 'denied a.example\n');
    assert.equal(readFileSync(join(b, 'vibebox.toml'), 'utf8'), 'network.entries = [] # dotted\n[ vm ]\ncpus = 1\n');
  });
});
