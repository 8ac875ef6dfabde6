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
  process.stdout.write = (() => true) as typeof process.stdout.write;
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
