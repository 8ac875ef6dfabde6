import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import TOML from '@iarna/toml';
import { v4 as uuidv4, v7 as uuidv7 } from 'uuid';
import { VibeboxError } from '../../src/errors.js';
import { isUuidV7, matchId, parseIndex, parseIndexEntries, remove, serializeIndex, touch, upsert, type Index, type IndexEntry } from '../../src/session/index-file.js';
import { presence, readIndex, readIndexSync, updateIndex } from '../../src/session/index-store.js';

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof VibeboxError, String(e));
    assert.equal(e.exitCode, 2);
    assert.ok(!e.toLine().includes('\n'));
    return e.code;
  }
  assert.fail('expected an error');
}

async function codeAsync(fn: () => Promise<unknown>): Promise<VibeboxError> {
  try {
    await fn();
  } catch (e) {
    assert.ok(e instanceof VibeboxError, String(e));
    return e;
  }
  assert.fail('expected an error');
}

const entry = (id: string, directory: string, last_active = '2025-01-02T03:04:05.000Z'): IndexEntry => ({ id, directory, last_active });

// Fixed ids sharing prefixes, so the prefix tests are deterministic.
const A = '01890a5d-ac96-774b-bcce-b302099a8057';
const B = '01890a5d-ac96-774b-9cce-b302099a8058';
const C = '01890a5e-0000-7000-8000-000000000001';

describe('parseIndex / serializeIndex', () => {
  it('an empty text or a text with only comments is an empty index', () => {
    assert.deepEqual(parseIndex(''), []);
    assert.deepEqual(parseIndex('# nothing yet\n'), []);
  });
  it('round-trips, sorted by id, as valid TOML', () => {
    const idx: Index = [entry(C, '/c'), entry(A, '/a with "quotes" and \\ backslash'), entry(B, '/b/ünïcødé', '2025-06-01T10:00:00+02:00')];
    const text = serializeIndex(idx);
    assert.ok(TOML.parse(text));
    const back = parseIndex(text);
    assert.deepEqual(back, [...idx].sort((x, y) => x.id.localeCompare(y.id)));
    assert.equal(serializeIndex(back), text);
    assert.match(text, /^\[\[session\]\]$/m);
  });
  it('serialises an empty index to a parsable file', () => {
    assert.deepEqual(parseIndex(serializeIndex([])), []);
  });
  it('rejects invalid TOML with the line, wrong shapes, and duplicate ids as E_INDEX_CORRUPT', () => {
    assert.equal(code(() => parseIndex('[[session]]\nid = \n')), 'E_INDEX_CORRUPT');
    assert.throws(() => parseIndex('\n\n[[session]\n'), /line 3/);
    assert.equal(code(() => parseIndex(`[[session]]\nid = "not-a-uuid"\ndirectory = "/a"\nlast_active = "2025-01-01T00:00:00Z"\n`)), 'E_INDEX_CORRUPT');
    assert.equal(code(() => parseIndex(`[[session]]\nid = "${uuidv4()}"\ndirectory = "/a"\nlast_active = "2025-01-01T00:00:00Z"\n`)), 'E_INDEX_CORRUPT');
    assert.equal(code(() => parseIndex(`[[session]]\nid = "${A}"\ndirectory = "relative"\nlast_active = "2025-01-01T00:00:00Z"\n`)), 'E_INDEX_CORRUPT');
    assert.equal(code(() => parseIndex(`[[session]]\nid = "${A}"\ndirectory = "/a"\nlast_active = "yesterday"\n`)), 'E_INDEX_CORRUPT');
    assert.equal(code(() => parseIndex(`[[session]]\nid = "${A}"\ndirectory = "/a"\n`)), 'E_INDEX_CORRUPT');
    assert.equal(code(() => parseIndex(`[[session]]\nid = "${A}"\ndirectory = "/a"\nlast_active = "2025-01-01T00:00:00Z"\nextra = 1\n`)), 'E_INDEX_CORRUPT');
    assert.equal(code(() => parseIndex('sessions = []\n')), 'E_INDEX_CORRUPT');
    assert.equal(code(() => parseIndex(serializeIndex([entry(A, '/a')]) + '\n' + serializeIndex([entry(A, '/b')]).replace(/^#.*\n/, ''))), 'E_INDEX_CORRUPT');
  });
  it('isUuidV7 accepts v7 ids from the uuid package only', () => {
    assert.ok(isUuidV7(uuidv7()));
    assert.ok(!isUuidV7(uuidv4()));
    assert.ok(!isUuidV7(uuidv7().toUpperCase()));
    assert.ok(!isUuidV7(uuidv7().replace(/-/g, '')));
  });
});

describe('index edits', () => {
  it('upsert adds, and replaces the entry of the same directory or the same id', () => {
    let idx: Index = [];
    idx = upsert(idx, entry(A, '/a'));
    idx = upsert(idx, entry(C, '/c'));
    assert.equal(idx.length, 2);
    // A new session for /a replaces the old one: one session per directory.
    idx = upsert(idx, entry(B, '/a'));
    assert.deepEqual(idx.map((s) => s.id).sort(), [B, C].sort());
    assert.equal(idx.filter((s) => s.directory === '/a').length, 1);
    // Same id again (e.g. moved): replaced, not duplicated.
    idx = upsert(idx, entry(B, '/moved'));
    assert.deepEqual(idx.find((s) => s.id === B)?.directory, '/moved');
    assert.equal(idx.length, 2);
    // Pure: the input is not modified.
    const before = [entry(A, '/a')];
    upsert(before, entry(C, '/c'));
    assert.equal(before.length, 1);
  });
  it('remove drops by id and ignores an unknown id', () => {
    const idx = [entry(A, '/a'), entry(B, '/b')];
    assert.deepEqual(remove(idx, A), [entry(B, '/b')]);
    assert.deepEqual(remove(idx, C), idx);
    assert.equal(idx.length, 2);
  });
  it('touch sets last_active of one entry in UTC', () => {
    const when = new Date('2025-06-01T10:00:00+02:00');
    const idx = touch([entry(A, '/a'), entry(B, '/b')], A, when);
    assert.equal(idx[0]!.last_active, '2025-06-01T08:00:00.000Z');
    assert.equal(idx[1]!.last_active, '2025-01-02T03:04:05.000Z');
    assert.deepEqual(parseIndex(serializeIndex(idx)).find((s) => s.id === A)?.last_active, '2025-06-01T08:00:00.000Z');
  });
});

describe('matchId', () => {
  const idx = [entry(A, '/a'), entry(B, '/b'), entry(C, '/c')];
  it('matches a full id, with or without dashes, in any case', () => {
    assert.equal(matchId(idx, A).id, A);
    assert.equal(matchId(idx, A.replace(/-/g, '')).id, A);
    assert.equal(matchId(idx, A.toUpperCase()).id, A);
    assert.equal(matchId(idx, ` ${B} `).id, B);
  });
  it('matches a unique prefix, dashes optional', () => {
    assert.equal(matchId(idx, '01890a5e').id, C);
    assert.equal(matchId(idx, '01890a5d-ac96-774b-b').id, A);
    assert.equal(matchId(idx, '01890a5dac96774b9').id, B);
    assert.equal(matchId(idx, '01890a5d-ac96-774bb').id, A);
  });
  it('an ambiguous prefix is E_SESSION_AMBIGUOUS', () => {
    assert.equal(code(() => matchId(idx, '0189')), 'E_SESSION_AMBIGUOUS');
    assert.equal(code(() => matchId(idx, '01890a5d-ac96')), 'E_SESSION_AMBIGUOUS');
    assert.throws(() => matchId(idx, '01890a5d'), /matches 2 sessions/);
  });
  it('an unknown id, a non-hex text, or nothing is E_SESSION_UNKNOWN', () => {
    assert.equal(code(() => matchId(idx, 'ffff')), 'E_SESSION_UNKNOWN');
    assert.equal(code(() => matchId(idx, uuidv7())), 'E_SESSION_UNKNOWN');
    assert.equal(code(() => matchId(idx, 'xyz')), 'E_SESSION_UNKNOWN');
    assert.equal(code(() => matchId(idx, '../etc')), 'E_SESSION_UNKNOWN');
    assert.equal(code(() => matchId(idx, '')), 'E_SESSION_UNKNOWN');
    assert.equal(code(() => matchId(idx, '---')), 'E_SESSION_UNKNOWN');
    assert.equal(code(() => matchId([], '0')), 'E_SESSION_UNKNOWN');
  });
});

describe('index-store', () => {
  let tmp: string;
  let home: string;
  let saved: string | undefined;
  before(() => {
    tmp = realpathSync(mkdtempSync(join(tmpdir(), 'vb-index-')));
    saved = process.env['VIBEBOX_HOME'];
  });
  after(() => {
    if (saved === undefined) delete process.env['VIBEBOX_HOME'];
    else process.env['VIBEBOX_HOME'] = saved;
    rmSync(tmp, { recursive: true, force: true });
  });
  beforeEach(() => {
    home = mkdtempSync(join(tmp, 'home-'));
    process.env['VIBEBOX_HOME'] = home;
  });
  const project = (name: string, withState = true): string => {
    const d = join(tmp, `${name}-${Math.random().toString(16).slice(2)}`);
    mkdirSync(withState ? join(d, '.vibebox') : d, { recursive: true });
    return d;
  };

  it('a missing index is empty, and reading does not create it', async () => {
    assert.deepEqual(await readIndex(home), []);
    assert.ok(!existsSync(join(home, 'sessions.toml')));
  });
  it('updateIndex writes a valid file under VIBEBOX_HOME, and readIndex reads it back', async () => {
    const p = project('p');
    const e = entry(uuidv7(), p);
    const out = await updateIndex((idx) => upsert(idx, e));
    assert.deepEqual(out, [e]);
    const text = readFileSync(join(home, 'sessions.toml'), 'utf8');
    assert.deepEqual(parseIndex(text), [e]);
    assert.deepEqual(await readIndex(), [e]);
    // No temp files or lock left behind.
    assert.deepEqual(readdirSync(home).sort(), ['sessions.toml']);
  });
  it('drops entries whose <directory>/.vibebox is gone, on read, and persists that', async () => {
    const alive = project('alive');
    const dead = project('dead');
    const never = project('never', false);
    const ea = entry(uuidv7(), alive);
    await updateIndex((idx) => upsert(upsert(idx, ea), entry(uuidv7(), dead)));
    writeFileSync(join(home, 'sessions.toml'), serializeIndex([...parseIndex(readFileSync(join(home, 'sessions.toml'), 'utf8')), entry(uuidv7(), never)]));
    rmSync(join(dead, '.vibebox'), { recursive: true });
    assert.deepEqual(await readIndex(home), [ea]);
    assert.deepEqual(parseIndex(readFileSync(join(home, 'sessions.toml'), 'utf8')), [ea]);
    // updateIndex drops them too before editing.
    rmSync(join(alive, '.vibebox'), { recursive: true });
    assert.deepEqual(await updateIndex((idx) => idx, home), []);
  });
  it('a corrupted sessions.toml is E_INDEX_CORRUPT, keeps a backup, and is not changed', async () => {
    const file = join(home, 'sessions.toml');
    const bad = '[[session]]\nid = "01890a5d-ac96-774b-bcce-b302099a8057"\ndirectory = \n';
    writeFileSync(file, bad);
    const e = await codeAsync(() => readIndex(home));
    assert.equal(e.code, 'E_INDEX_CORRUPT');
    assert.equal(e.exitCode, 2);
    assert.ok(!e.toLine().includes('\n'));
    assert.match(e.toLine(), /sessions\.toml/);
    assert.equal(readFileSync(file, 'utf8'), bad);
    const backups = readdirSync(home).filter((f) => f.startsWith('sessions.toml.corrupt-'));
    assert.equal(backups.length, 1);
    assert.equal(readFileSync(join(home, backups[0]!), 'utf8'), bad);
    assert.ok(e.hint?.includes(join(home, backups[0]!)), e.hint);
    // A write is refused the same way, the file still untouched, and the lock released.
    const e2 = await codeAsync(() => updateIndex((idx) => upsert(idx, entry(uuidv7(), project('x'))), home));
    assert.equal(e2.code, 'E_INDEX_CORRUPT');
    assert.equal(readFileSync(file, 'utf8'), bad);
    assert.ok(!existsSync(join(home, 'sessions.toml.lock')));
  });
  it('a sessions.toml that is not a list of sessions (valid TOML) is also E_INDEX_CORRUPT, one copy however often it is read', async () => {
    const file = join(home, 'sessions.toml');
    const bad = 'sessions = []\n';
    writeFileSync(file, bad);
    assert.equal((await codeAsync(() => readIndex(home))).code, 'E_INDEX_CORRUPT');
    assert.equal((await codeAsync(() => readIndex(home))).code, 'E_INDEX_CORRUPT');
    assert.equal((await codeAsync(() => updateIndex((i) => i, home))).code, 'E_INDEX_CORRUPT');
    assert.equal(readFileSync(file, 'utf8'), bad);
    assert.equal(readdirSync(home).filter((f) => f.startsWith('sessions.toml.corrupt-')).length, 1);
  });
  it('a missing project directory (unmounted, renamed) keeps its entry, on read and on write', async () => {
    const gone = project('gone');
    const e = entry(uuidv7(), gone);
    await updateIndex((idx) => upsert(idx, e), home);
    const moved = `${gone}-away`;
    renameSync(gone, moved);
    assert.equal(presence(e), 'missing');
    assert.deepEqual(await readIndex(home), [e]);
    assert.deepEqual(readIndexSync(home), [e]);
    const other = entry(uuidv7(), project('other'));
    await updateIndex((idx) => upsert(idx, other), home);
    assert.deepEqual(parseIndex(readFileSync(join(home, 'sessions.toml'), 'utf8')).map((x) => x.id).sort(), [e.id, other.id].sort());
    renameSync(moved, gone);
    assert.equal(presence(e), 'present');
  });
  it('one bad entry: the others still work, one warning line naming it, and a rewrite keeps it as written', async () => {
    const file = join(home, 'sessions.toml');
    const good = entry(uuidv7(), project('good'));
    const badEntry = `[[session]]\nid = "not-a-uuid"\ndirectory = "/somewhere"\nlast_active = "2025-01-01T00:00:00Z"\n`;
    writeFileSync(file, `${serializeIndex([good])}\n${badEntry}`);
    const { value, stderr } = await capturingStderr(() => readIndex(home));
    assert.deepEqual(value, [good]);
    const lines = stderr.split('\n').filter((l) => l);
    assert.equal(lines.length, 1, stderr);
    assert.match(lines[0]!, /^vibebox: warning: .*sessions\.toml: session 2 \(line \d+, id not-a-uuid\): id: must be a UUIDv7; skipped/);
    // Warned once per process, not on every read.
    assert.equal((await capturingStderr(() => readIndex(home))).stderr, '');
    const added = entry(uuidv7(), project('added'));
    await updateIndex((idx) => upsert(idx, added), home);
    const text = readFileSync(file, 'utf8');
    assert.ok(text.includes(badEntry.trimEnd()), text);
    const again = parseIndexEntries(text);
    assert.deepEqual(again.entries.map((x) => x.id).sort(), [good.id, added.id].sort());
    assert.equal(again.bad.length, 1);
    // Rewriting again does not pile up notes.
    await updateIndex((idx) => idx, home);
    assert.equal(readFileSync(file, 'utf8'), text);
    // No copy: nothing was lost.
    assert.deepEqual(readdirSync(home).filter((f) => f.includes('corrupt')), []);
    // The strict parser still refuses it, naming the entry.
    assert.throws(() => parseIndex(text), /session 3 \(line \d+, id not-a-uuid\)/);
  });
  it('a duplicate id: the first entry is used, the second is skipped and kept', async () => {
    const a = entry(uuidv7(), project('a'));
    const file = join(home, 'sessions.toml');
    writeFileSync(file, serializeIndex([a]) + serializeIndex([{ ...a, directory: '/elsewhere' }]).replace(/^#.*\n/, ''));
    const { value, stderr } = await capturingStderr(() => readIndex(home));
    assert.deepEqual(value, [a]);
    assert.match(stderr, /appears twice/);
  });
});

async function capturingStderr<T>(fn: () => Promise<T>): Promise<{ value: T; stderr: string }> {
  const write = process.stderr.write.bind(process.stderr);
  let out = '';
  process.stderr.write = ((chunk: string | Uint8Array) => {
    out += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
    return true;
  }) as typeof process.stderr.write;
  try {
    return { value: await fn(), stderr: out };
  } finally {
    process.stderr.write = write;
  }
}
