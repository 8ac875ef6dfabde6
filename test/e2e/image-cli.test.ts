// `vibebox image list|rm` as a user runs them, against a real built image (shared cache).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { v7 } from 'uuid';
import { CLI, ensureCachedImage, imageCacheHome } from '../helpers/vm.js';
import { serializeIndex } from '../../src/session/index-file.js';

describe('vibebox image', () => {
  let base: string;
  let home: string;
  let digest: string;
  const run = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { env: { ...process.env, VIBEBOX_HOME: home }, encoding: 'utf8' });
  before(() => {
    ensureCachedImage();
    base = mkdtempSync(join(tmpdir(), 'vbi-'));
    home = join(base, 'home');
    mkdirSync(join(home, 'images', 'default'), { recursive: true });
    const list = JSON.parse(execFileSync(process.execPath, [CLI, 'image', 'list', '--json'], { env: { ...process.env, VIBEBOX_HOME: imageCacheHome() }, encoding: 'utf8' })) as { digest: string; dir: string }[];
    const img = list[list.length - 1]!;
    digest = img.digest;
    // A copy (reflink/sparse where the file system allows) so rm here never touches the cache.
    cpSync(img.dir, join(home, 'images', 'default', digest), { recursive: true });
  });
  after(() => rmSync(base, { recursive: true, force: true }));

  it('lists images as a table and as JSON', () => {
    const j = run(['image', 'list', '--json']);
    assert.equal(j.status, 0, j.stderr);
    const rows = JSON.parse(j.stdout) as { name: string; digest: string; sessions: number }[];
    assert.deepEqual(rows.map((r) => [r.name, r.digest, r.sessions]), [['default', digest, 0]]);
    const t = run(['image', 'list']);
    assert.match(t.stdout, /^NAME\s+DIGEST/);
    assert.match(t.stdout, new RegExp(`default\\s+${digest}`));
  });

  it('refuses to remove an image a session uses, and removes it once unused', () => {
    const proj = join(base, 'proj');
    mkdirSync(join(proj, '.vibebox'), { recursive: true });
    const id = v7();
    writeFileSync(join(proj, '.vibebox', 'session.toml'), `id = "${id}"\ncreated = "2026-11-22T00:00:00.000Z"\n\n[image]\nname = "default"\ndigest = "${digest}"\n`);
    writeFileSync(join(home, 'sessions.toml'), serializeIndex([{ id, directory: proj, last_active: new Date().toISOString() }]));
    const refused = run(['image', 'rm', digest]);
    assert.equal(refused.status, 2);
    assert.match(refused.stderr, /^vibebox: .*(in use|used by a session)/m);
    assert.ok(existsSync(join(home, 'images', 'default', digest, 'rootfs.qcow2')));
    rmSync(join(proj, '.vibebox'), { recursive: true });
    const ok = run(['image', 'rm', digest]);
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(existsSync(join(home, 'images', 'default', digest)), false);
    const unknown = run(['image', 'rm', 'nosuchimage']);
    assert.equal(unknown.status, 2);
  });
});
