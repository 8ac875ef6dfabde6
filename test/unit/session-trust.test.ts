// Which .vibebox/ folders vibebox uses (only those the host index knows for that directory), ids
// that become paths, and sessions.toml / session.toml with any directory name.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import TOML from '@iarna/toml';
import { v4 as uuidv4, v7 as uuidv7 } from 'uuid';
import { VibeboxError } from '../../src/errors.js';
import { approvedFile, checkSessionId, diskRecordFile, runPaths } from '../../src/paths.js';
import { parseIndex, serializeIndex, upsert } from '../../src/session/index-file.js';
import { updateIndex } from '../../src/session/index-store.js';
import { createSessionDir, readSessionFile, readSessionText, shellPath, showPath, vibeboxVersion, writeSessionFile } from '../../src/session/state.js';
import { stringifyToml } from '../../src/session/toml-write.js';
import { PROTOCOL_VERSION } from '../../guest/protocol.js';

const code = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (e) {
    return e instanceof VibeboxError ? e.code : `not a VibeboxError: ${String(e)}`;
  }
  return undefined;
};

describe('session ids that become paths', () => {
  it('runPaths, approvedFile and diskRecordFile take only a UUIDv7', () => {
    const id = uuidv7();
    assert.ok(runPaths(id, '/h').dir.startsWith('/h/run/'));
    assert.equal(approvedFile(id, '/h'), `/h/approved/${id}.json`);
    assert.equal(diskRecordFile(id, '/h'), `/h/disks/${id}.json`);
    for (const bad of ['../../escape', `${id}/../x`, id.toUpperCase(), uuidv4(), '', '-'.repeat(36), `${id}\n`]) {
      assert.equal(code(() => runPaths(bad, '/h')), 'E_SESSION_UNKNOWN', bad);
      assert.equal(code(() => approvedFile(bad, '/h')), 'E_SESSION_UNKNOWN', bad);
      assert.equal(code(() => diskRecordFile(bad, '/h')), 'E_SESSION_UNKNOWN', bad);
      assert.equal(code(() => checkSessionId(bad)), 'E_SESSION_UNKNOWN', bad);
    }
  });
});

describe('sessions.toml with any directory name', () => {
  it('DEL, newlines, quotes, backslashes and other control characters round-trip', () => {
    const dirs = ['/p\x7fq', '/a\nb', '/tab\there', '/q"uo\'te', '/back\\slash', '/c\x01\x1b[31m', '/ü€😀', '/"""x'];
    const idx = dirs.map((d) => ({ id: uuidv7(), directory: d, last_active: '2026-11-29T10:00:00.000Z' }));
    const text = serializeIndex(idx);
    assert.deepEqual(new Set(parseIndex(text).map((e) => e.directory)), new Set(dirs));
    assert.doesNotMatch(text, /[\x00-\x08\x0b-\x1f\x7f]/, 'no raw control characters in the file');
  });

  it('last_active as a TOML datetime (any offset) reads as the same UTC string', () => {
    const id = uuidv7();
    const text = `[[session]]\nid = "${id}"\ndirectory = "/x"\nlast_active = 2026-11-29T12:00:00+02:00\n`;
    assert.equal(parseIndex(text)[0]!.last_active, '2026-11-29T10:00:00.000Z');
    assert.equal(code(() => parseIndex(text.replace('2026-11-29T12:00:00+02:00', '2026-11-29'))), 'E_INDEX_CORRUPT'); // a date alone is not a time
  });
});

describe('readSessionFile: a .vibebox/ is used only when the index knows it for this directory', () => {
  let base: string;
  let home: string;
  const project = (name: string) => {
    const d = join(base, name);
    mkdirSync(d);
    return d;
  };
  before(() => {
    base = mkdtempSync(join(tmpdir(), 'vb-trust-'));
    home = join(base, 'home');
  });
  after(() => rmSync(base, { recursive: true, force: true }));

  it('no .vibebox/, or an empty one: no session', () => {
    const p = project('none');
    assert.equal(readSessionFile(p, home), null);
    mkdirSync(join(p, '.vibebox'));
    assert.equal(readSessionFile(p, home), null);
  });

  it('a session vibebox created: recorded in the index, read back, with both versions', async () => {
    const p = project('made');
    const s = await createSessionDir(p, new Date(), home);
    assert.equal(s.vibebox_version, vibeboxVersion());
    assert.equal(s.guest_protocol, PROTOCOL_VERSION);
    assert.deepEqual(readSessionFile(p, home), s);
    const file = TOML.parse(readFileSync(join(p, '.vibebox', 'session.toml'), 'utf8'));
    assert.equal(file['guest_protocol'], PROTOCOL_VERSION);
    assert.equal(readFileSync(join(p, '.vibebox', '.gitignore'), 'utf8'), '*\n');
  });

  it('a session.toml from before the version keys still reads', async () => {
    const p = project('old');
    mkdirSync(join(p, '.vibebox'));
    const id = uuidv7();
    writeFileSync(join(p, '.vibebox', 'session.toml'), `id = "${id}"\ncreated = "2026-01-01T00:00:00.000Z"\n\n[image]\nname = "default"\ndigest = "0123456789abcdef"\n`);
    await updateIndex((idx) => upsert(idx, { id, directory: p, last_active: new Date().toISOString() }), home);
    assert.deepEqual(readSessionFile(p, home), { id, created: '2026-01-01T00:00:00.000Z', image: { name: 'default', digest: '0123456789abcdef' } });
  });

  it('a session.toml whose id the index does not know, or knows for another directory: E_SESSION_UNTRUSTED', async () => {
    const p = project('shipped');
    mkdirSync(join(p, '.vibebox'));
    writeSessionFile(p, { id: uuidv7(), created: new Date().toISOString() });
    assert.equal(code(() => readSessionFile(p, home)), 'E_SESSION_UNTRUSTED');
    const made = project('orig');
    const s = await createSessionDir(made, new Date(), home);
    const copy = project('copy');
    mkdirSync(join(copy, '.vibebox'));
    writeSessionFile(copy, s);
    assert.throws(() => readSessionFile(copy, home), (e: unknown) => e instanceof VibeboxError && e.code === 'E_SESSION_UNTRUSTED' && e.message.includes(`belongs to ${made}`));
    assert.equal(e2exit(() => readSessionFile(copy, home)), 2);
  });

  it('image name and digest must have the image store\'s shapes (they become paths)', async () => {
    const p = project('imgpath');
    const s = await createSessionDir(p, new Date(), home);
    writeFileSync(join(p, '.vibebox', 'session.toml'), `id = "${s.id}"\ncreated = "${s.created}"\n[image]\nname = "../../x"\ndigest = "0123456789abcdef"\n`);
    assert.equal(code(() => readSessionFile(p, home)), 'E_CONFIG_INVALID'); // the index knows the folder: corrupted
    const q = project('shipped-bad');
    mkdirSync(join(q, '.vibebox'));
    writeFileSync(join(q, '.vibebox', 'session.toml'), `id = "../../x"\ncreated = "2026-01-01T00:00:00Z"\n`);
    assert.equal(code(() => readSessionFile(q, home)), 'E_SESSION_UNTRUSTED'); // it does not: never vibebox's
  });

  it('a .vibebox/ with files but no session.toml, a symlinked .vibebox/ or session.toml: untrusted, and createSessionDir does not take it over', async () => {
    const p = project('files');
    mkdirSync(join(p, '.vibebox'));
    symlinkSync('/etc/hostname', join(p, '.vibebox', 'supervisor.log'));
    assert.equal(code(() => readSessionFile(p, home)), 'E_SESSION_UNTRUSTED');
    await assert.rejects(createSessionDir(p, new Date(), home), (e: unknown) => e instanceof VibeboxError && e.code === 'E_SESSION_UNTRUSTED');
    assert.ok(!existsSync(join(p, '.vibebox', 'session.toml')));
    const l = project('link');
    symlinkSync(join(base, 'files'), join(l, '.vibebox'));
    assert.equal(code(() => readSessionFile(l, home)), 'E_SESSION_UNTRUSTED');
    const t = project('tomllink');
    const s = await createSessionDir(t, new Date(), home);
    const real = join(base, 'elsewhere.toml');
    writeFileSync(real, readFileSync(join(t, '.vibebox', 'session.toml')));
    rmSync(join(t, '.vibebox', 'session.toml'));
    symlinkSync(real, join(t, '.vibebox', 'session.toml'));
    assert.equal(code(() => readSessionFile(t, home)), 'E_SESSION_UNTRUSTED', s.id);
  });

  // A FIFO session.toml would block the open (every command reads it, before any trust check);
  // a link to /dev/zero would be read without end.
  it('a FIFO, a link to /dev/zero, a directory or a huge session.toml: untrusted at once, never read', async () => {
    const makers: [string, (f: string) => void][] = [
      ['fifo', (f) => execFileSync('mkfifo', [f])],
      ['zero', (f) => symlinkSync('/dev/zero', f)],
      ['dir', (f) => mkdirSync(f)],
      ['huge', (f) => writeFileSync(f, `id = "${uuidv7()}"\n# ${'x'.repeat(1024 * 1024)}\n`)],
    ];
    for (const [name, make] of makers) {
      const p = project(`hostile-${name}`);
      const s = await createSessionDir(p, new Date(), home);
      rmSync(join(p, '.vibebox', 'session.toml'));
      make(join(p, '.vibebox', 'session.toml'));
      const t0 = Date.now();
      assert.equal(code(() => readSessionFile(p, home)), 'E_SESSION_UNTRUSTED', `${name} (${s.id})`);
      assert.equal(code(() => readSessionText(p)), 'E_SESSION_UNTRUSTED', name);
      assert.ok(Date.now() - t0 < 2000, `${name} took ${Date.now() - t0} ms`);
    }
  });

  it('a project path with control characters: created, indexed, read back; messages stay one line', async () => {
    const p = project('d\x7fe\nl');
    const s = await createSessionDir(p, new Date(), home);
    assert.equal(readSessionFile(p, home)?.id, s.id);
    rmSync(join(home, 'sessions.toml'));
    try {
      readSessionFile(p, home);
      assert.fail('expected E_SESSION_UNTRUSTED');
    } catch (e) {
      assert.ok(e instanceof VibeboxError);
      assert.doesNotMatch(e.toLine(), /\n/);
      assert.match(e.toLine(), /rm -r \$'.*d\\x7fe\\x0al\/\.vibebox'/);
    }
  });
});

describe('paths in one-line messages and shell commands', () => {
  it('showPath quotes only paths with control characters; shellPath quotes for bash', () => {
    assert.equal(showPath('/a b/c'), '/a b/c');
    assert.equal(showPath('/a\nb'), '"/a\\nb"');
    assert.equal(shellPath("/it's here"), `'/it'\\''s here'`);
    assert.equal(shellPath("/a\x7f'\\\nb"), "$'/a\\x7f\\'\\\\\\x0ab'");
  });
});

function e2exit(fn: () => unknown): number | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof VibeboxError ? e.exitCode : undefined;
  }
  return undefined;
}

describe('stringifyToml: @iarna/toml stringify with its control-character escaping mended', () => {
  it('every control character, alone, doubled, next to quotes, backslashes and newlines, reads back', () => {
    const controls = Array.from({ length: 32 }, (_, i) => String.fromCharCode(i)).concat('\x7f');
    const values: string[] = [];
    for (const c of controls) {
      for (const tpl of ['/x#y', '/x##y', '/"x#', "/'x#", '/x#\n#', '/x#"""', '/\\#\\', '/#"', '#']) values.push(tpl.replace(/#/g, c));
    }
    values.push('/a\x01\x1b[31m', '/q"\x7f', '/q"\x7f\x01', '/a\nb\x7f\x7f"""');
    for (const v of values) {
      const text = stringifyToml({ d: v, session: [{ directory: v }] });
      assert.doesNotMatch(text, /[\x00-\x08\x0b-\x1f\x7f]/, JSON.stringify(v));
      const back = TOML.parse(text) as { d: string; session: { directory: string }[] };
      assert.equal(back.d, v);
      assert.equal(back.session[0]!.directory, v);
    }
  });

  it('@iarna/toml 3.0.0 alone writes files it cannot read (why the mending exists)', () => {
    assert.throws(() => TOML.parse(TOML.stringify({ d: '/a\x01\x1b' })));
    assert.throws(() => TOML.parse(TOML.stringify({ d: '/q"\x7f' })));
  });
});
