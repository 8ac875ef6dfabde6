// The qcow2 header parser, the overlay policy and the host's disk record, on real files made by
// qemu-img (crafted the way an attacker would: external data file, rebased backing name,
// encryption, feature bits, extra extensions, snapshots).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AUTOCLEAR, EXT, INCOMPAT, parseQcow2Header, Qcow2FormatError } from '../../qemu/qcow2-header.js';
import { headerFingerprint, overlayProblems } from '../../qemu/qcow2-policy.js';
import { checkDisk, OverlayRefusedError, prepareOverlay, readOverlay, verifyOverlay } from '../../qemu/disk.js';
import { buildArgv, type VmSpec } from '../../qemu/argv.js';

let dir: string;
let base: string;
const img = (...args: string[]) => execFileSync('qemu-img', args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
const headerOf = (f: string) => parseQcow2Header(readFileSync(f));
/** An overlay exactly as vibebox makes it (qemu/disk.ts). */
function overlay(name: string, ...opts: string[]): string {
  const f = join(dir, name);
  img('create', '-q', '-f', 'qcow2', ...opts, '-F', 'qcow2', '-b', base, f, '1G');
  return f;
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'vb-qcow2-'));
  base = join(dir, 'rootfs.qcow2');
  img('create', '-q', '-f', 'qcow2', base, '1G');
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('parseQcow2Header on qemu-img files', () => {
  it('the overlay vibebox writes: v3, the backing name and format, two extensions, no features', () => {
    const h = headerOf(overlay('plain.qcow2'));
    assert.equal(h.version, 3);
    assert.equal(h.clusterBits, 16);
    assert.equal(h.size, 1024n ** 3n);
    assert.equal(h.cryptMethod, 0);
    assert.equal(h.backingFile, base);
    assert.equal(h.backingFormat, 'qcow2');
    assert.equal(h.externalDataFile, null);
    assert.equal(h.incompatibleFeatures, 0n);
    assert.equal(h.compatibleFeatures, 0n);
    assert.equal(h.autoclearFeatures, 0n);
    assert.deepEqual(h.extensions.map((x) => x.type), [EXT.backingFormat, EXT.featureNameTable]);
    assert.deepEqual(overlayProblems(h, { backing: base }), []);
  });

  it('an external data file next to the right backing file: the bit and the name; refused', () => {
    const target = join(dir, 'victim');
    writeFileSync(target, 'host secret\n');
    const f = join(dir, 'datafile.qcow2');
    img('create', '-q', '-f', 'qcow2', '-o', `data_file=${target}`, '-F', 'qcow2', '-b', base, f, '1M');
    const h = headerOf(f);
    assert.equal(h.externalDataFile, target);
    assert.ok(h.incompatibleFeatures & INCOMPAT.externalDataFile);
    assert.equal(h.backingFile, base);
    assert.deepEqual(overlayProblems(h, { backing: base }), [`an external data file (${JSON.stringify(target)})`]);
  });

  it('a raw external data file (reads and writes the host file as the disk): refused', () => {
    const f = join(dir, 'datafile-raw.qcow2');
    img('create', '-q', '-f', 'qcow2', '-o', 'data_file=/etc/hostname,data_file_raw=on', f, '1M');
    const h = headerOf(f);
    assert.ok(h.autoclearFeatures & AUTOCLEAR.rawExternalData);
    const p = overlayProblems(h, { backing: base });
    assert.deepEqual(p, ['an external data file ("/etc/hostname")', 'no backing file', 'no backing format']);
  });

  it('a backing file name changed with `qemu-img rebase -u`: refused, naming it', () => {
    const f = overlay('rebased.qcow2');
    const other = join(dir, 'other.qcow2');
    img('create', '-q', '-f', 'qcow2', other, '1G');
    img('rebase', '-u', '-F', 'qcow2', '-b', other, f);
    const h = headerOf(f);
    assert.equal(h.backingFile, other);
    assert.deepEqual(overlayProblems(h, { backing: base }), [`backing file ${JSON.stringify(other)}`]);
    img('rebase', '-u', '-F', 'raw', '-b', base, f);
    assert.deepEqual(overlayProblems(headerOf(f), { backing: base }), ['backing format "raw"']);
  });

  it('encryption (AES, made offline; LUKS takes seconds to make, so its extension is spliced in): refused', () => {
    const f = join(dir, 'aes.qcow2');
    img('create', '-q', '-f', 'qcow2', '--object', 'secret,id=s,data=abc', '-o', 'encrypt.format=aes,encrypt.key-secret=s', '-F', 'qcow2', '-b', base, f, '1M');
    const h = headerOf(f);
    assert.equal(h.cryptMethod, 1);
    assert.deepEqual(overlayProblems(h, { backing: base }), ['encryption (method AES)']);
    const buf = readFileSync(overlay('luks-like.qcow2'));
    buf.writeUInt32BE(2, 32);
    buf.writeUInt32BE(EXT.fullDiskEncryption, buf.indexOf(Buffer.from([0x68, 0x03, 0xf8, 0x57]), 104));
    assert.deepEqual(overlayProblems(parseQcow2Header(buf), { backing: base }), ['encryption (method LUKS)', 'a disk encryption header']);
  });

  it('a version 2 header parses (no feature fields, extensions right after 72 bytes); refused', () => {
    const h = headerOf(overlay('v2.qcow2', '-o', 'compat=0.10'));
    assert.equal(h.version, 2);
    assert.equal(h.headerLength, 72);
    assert.equal(h.backingFile, base);
    assert.equal(h.backingFormat, 'qcow2');
    assert.deepEqual(overlayProblems(h, { backing: base }), ['qcow2 version 2']);
  });

  it('feature bits vibebox does not write: lazy refcounts, extended L2, zstd compression', () => {
    assert.deepEqual(overlayProblems(headerOf(overlay('lazy.qcow2', '-o', 'lazy_refcounts=on')), { backing: base }), ['compatible features 0x1 (lazy refcounts)']);
    assert.deepEqual(overlayProblems(headerOf(overlay('l2.qcow2', '-o', 'extended_l2=on')), { backing: base }), ['incompatible features 0x10']);
    const z = headerOf(overlay('zstd.qcow2', '-o', 'compression_type=zstd'));
    assert.equal(z.compressionType, 1);
    assert.deepEqual(overlayProblems(z, { backing: base }), ['incompatible features 0x8', 'compression type 1']);
  });

  it('a persistent dirty bitmap and an internal snapshot: refused', () => {
    const b = overlay('bitmap.qcow2');
    img('bitmap', '--add', b, 'b0');
    const p = overlayProblems(headerOf(b), { backing: base });
    assert.ok(p.includes('dirty bitmaps'), p.join('; '));
    assert.ok(p.includes('autoclear features 0x1'), p.join('; '));
    const s = overlay('snap.qcow2');
    img('snapshot', '-c', 's1', s);
    assert.deepEqual(overlayProblems(headerOf(s), { backing: base }), ['1 internal snapshot(s)']);
  });

  it('an unknown header extension (a byte-edited vibebox overlay): refused', () => {
    const f = overlay('unknown-ext.qcow2');
    const buf = readFileSync(f);
    const h = parseQcow2Header(buf);
    // Retype the feature name table (the second extension) to an unknown type.
    const at = buf.indexOf(Buffer.from([0x68, 0x03, 0xf8, 0x57]), h.headerLength);
    buf.writeUInt32BE(0x12345678, at);
    writeFileSync(f, buf);
    assert.deepEqual(overlayProblems(parseQcow2Header(buf), { backing: base }), ['header extension 0x12345678']);
  });

  it('a 2 MiB cluster: the header and extensions are read from the whole first cluster', async () => {
    const f = overlay('bigcluster.qcow2', '-o', 'cluster_size=2M');
    const r = await readOverlay(f);
    assert.equal(r?.header.clusterBits, 21);
    assert.deepEqual(overlayProblems(r!.header, { backing: base }), []);
  });

  it('not qcow2, truncated, or out-of-range fields: Qcow2FormatError', () => {
    const raw = join(dir, 'raw.img');
    img('create', '-q', '-f', 'raw', raw, '1M');
    assert.throws(() => headerOf(raw), Qcow2FormatError);
    const good = readFileSync(overlay('trunc.qcow2'));
    assert.throws(() => parseQcow2Header(good.subarray(0, 100)), Qcow2FormatError);
    assert.throws(() => parseQcow2Header(good.subarray(0, 0x78)), /truncated/); // mid-extension
    const bad = Buffer.from(good);
    bad.writeUInt32BE(4, 4);
    assert.throws(() => parseQcow2Header(bad), /version 4/);
    const longName = Buffer.from(good);
    longName.writeUInt32BE(5000, 16);
    assert.throws(() => parseQcow2Header(longName), /backing_file_size/);
    const runaway = Buffer.from(good);
    runaway.writeUInt32BE(0x10000, 0x70 + 4); // the first extension claims 64 KiB
    assert.throws(() => parseQcow2Header(runaway), /runs past the first cluster/);
  });
});

describe('the host record of the overlay (prepareOverlay / verifyOverlay)', () => {
  const guard = (name: string) => {
    const d = join(dir, name);
    mkdirSync(d, { recursive: true });
    return { disk: join(d, 'disk.qcow2'), backing: base, recordFile: join(d, 'home', 'disks', 'id.json'), sizeBytes: 1024 ** 3 };
  };

  it('creates the overlay, records it, and verifies it again after QEMU wrote to it', async () => {
    const g = guard('fresh');
    assert.equal(await verifyOverlay(g), 'absent');
    assert.equal(await prepareOverlay(g), 'absent');
    assert.ok(existsSync(g.disk) && existsSync(g.recordFile));
    assert.ok(!existsSync(`${g.disk}.tmp`));
    assert.equal(statSync(g.recordFile).mode & 0o777, 0o600);
    // Guest writes grow the refcount and L2 tables: the header's fixed fields stay.
    execFileSync('qemu-io', ['-c', 'write -P 0x5a 0 4M', '-c', 'write 900M 1M', `json:${JSON.stringify({ driver: 'qcow2', file: { driver: 'file', filename: g.disk }, backing: { driver: 'qcow2', file: { driver: 'file', filename: base } } })}`], { stdio: 'ignore' });
    assert.equal(await verifyOverlay(g), 'recorded');
    assert.equal(await prepareOverlay(g), 'recorded');
  });

  it('a disk replaced by another file (same shape, even a byte-identical copy) is refused', async () => {
    const g = guard('replaced');
    await prepareOverlay(g);
    const other = join(dir, 'replaced', 'other.qcow2');
    img('create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', base, other, String(1024 ** 3));
    renameSync(other, g.disk);
    await assert.rejects(verifyOverlay(g), (e: unknown) => e instanceof OverlayRefusedError && e.reason === 'replaced' && /was replaced/.test(e.message));
    await assert.rejects(prepareOverlay(g), OverlayRefusedError);
    copyFileSync(g.disk, other);
    renameSync(other, g.disk);
    await assert.rejects(verifyOverlay(g), /was replaced/);
  });

  it('a recorded disk whose header was rewritten in place (same inode) is refused', async () => {
    const g = guard('resized');
    await prepareOverlay(g);
    img('resize', '-q', '-f', 'qcow2', g.disk, '2G'); // same backing, same inode, other size
    await assert.rejects(verifyOverlay(g), /was replaced/);
  });

  it('a crafted header is refused before the record is looked at, and nothing is written', async () => {
    const g = guard('crafted');
    img('create', '-q', '-f', 'qcow2', '-o', 'data_file=/etc/hostname', '-F', 'qcow2', '-b', base, g.disk, '1M');
    await assert.rejects(prepareOverlay(g), (e: unknown) => e instanceof OverlayRefusedError && e.reason === 'header' && /external data file \("\/etc\/hostname"\)/.test(e.message));
    assert.ok(!existsSync(g.recordFile));
  });

  it('an unrecorded disk (made before records) that passes the header check is recorded', async () => {
    const g = guard('legacy');
    img('create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', base, g.disk, '1G');
    assert.equal(await verifyOverlay(g), 'unrecorded');
    assert.equal(await prepareOverlay(g), 'unrecorded');
    assert.equal(await verifyOverlay(g), 'recorded');
  });

  it('a symlink, a directory or a FIFO in place of the disk is refused without following it', async () => {
    const g = guard('symlink');
    symlinkSync(overlay('target.qcow2'), g.disk);
    await assert.rejects(prepareOverlay(g), (e: unknown) => e instanceof OverlayRefusedError && /symbolic link/.test(e.message));
    const d = guard('dir');
    mkdirSync(d.disk);
    await assert.rejects(prepareOverlay(d), /not a regular file/);
    const f = guard('fifo');
    execFileSync('mkfifo', [f.disk]);
    await assert.rejects(prepareOverlay(f), /not a regular file/);
  });

  it('an unreadable record never lets a disk through', async () => {
    const g = guard('badrecord');
    await prepareOverlay(g);
    writeFileSync(g.recordFile, 'not json');
    await assert.rejects(verifyOverlay(g), /was replaced/);
  });

  it('the fingerprint ignores what QEMU rewrites at run time, and covers what vibebox wrote', () => {
    const a = headerOf(overlay('fp-a.qcow2'));
    const dirty = { ...a, incompatibleFeatures: a.incompatibleFeatures | INCOMPAT.dirty, headerLength: 120 };
    assert.equal(headerFingerprint(dirty), headerFingerprint(a));
    assert.notEqual(headerFingerprint({ ...a, backingFile: '/x' }), headerFingerprint(a));
    assert.notEqual(headerFingerprint({ ...a, size: a.size + 1n }), headerFingerprint(a));
  });
});

describe('QEMU opens only nodes the host names', () => {
  it('qemu-img check pins the backing and gives the rootfs none (a backing named in its header is not opened)', async () => {
    const rootfs = join(dir, 'rootfs-with-backing.qcow2');
    img('create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', join(dir, 'no-such-file.qcow2'), '-u', rootfs, '1G');
    const ov = join(dir, 'check-ov.qcow2');
    img('create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', join(dir, 'header-names-this.qcow2'), '-u', ov, '1G');
    const r = await checkDisk(ov, rootfs);
    assert.ok(r.ok, r.output);
    assert.equal(r.corruptions, 0);
  });

  const spec: VmSpec = {
    name: 'vibebox-abc', accel: 'tcg', cpus: 1, memoryBytes: 1024 ** 3, kernel: '/i/vmlinuz', initrd: '/i/initrd.img', cmdline: '',
    disk: '/p/.vibebox/disk.qcow2', backing: '/i/rootfs.qcow2', qmpSocket: '/r/qmp.sock', agentSocket: '/r/agent.sock',
    agentPortName: 'org.vibebox.agent.0', serialLog: '/p/serial.log', pidFile: '/r/qemu.pid', shares: [],
  };
  it('the rootfs node has an explicit null backing, the overlay the pinned base', () => {
    const a = buildArgv(spec);
    const bd = a.flatMap((x, i) => (x === '-blockdev' ? [a[i + 1]!] : []));
    const base = bd.find((b) => b.startsWith('{'));
    assert.deepEqual(JSON.parse(base!), { driver: 'qcow2', 'node-name': 'base', file: 'base-file', 'read-only': true, backing: null });
    assert.ok(bd.some((b) => b.startsWith('driver=qcow2,node-name=disk,file=disk-file,backing=base')));
    assert.equal(bd.length, 4);
  });
});
