// The per-session disk: a qcow2 overlay on the image's rootfs (instant, small), the host's record
// of the overlay it created, the check before every boot, and repair.
import { constants, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname } from 'node:path';
import { execa } from 'execa';
import * as z from 'zod';
import { parseQcow2Header, Qcow2FormatError, type Qcow2Header } from './qcow2-header.js';
import { headerFingerprint, overlayProblems } from './qcow2-policy.js';
import { touchPrivateFile } from './private-file.js';

/** A bare overlay, no record, no checks (driver tests); sessions use prepareOverlay. */
export async function createOverlay(disk: string, backing: string, sizeBytes: number): Promise<void> {
  if (existsSync(disk)) return;
  const tmp = `${disk}.tmp`;
  rmSync(tmp, { force: true });
  touchPrivateFile(tmp);
  await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', backing, tmp, String(sizeBytes)]);
  renameSync(tmp, disk);
}

/** An overlay vibebox will not hand to QEMU; the message says why, in one line. */
export class OverlayRefusedError extends Error {
  override readonly name = 'OverlayRefusedError';
  constructor(
    message: string,
    readonly reason: 'header' | 'replaced' | 'not-a-file',
  ) {
    super(message);
  }
}

export interface OverlayIdentity {
  header: Qcow2Header;
  dev: string;
  ino: string;
  /**
   * Birth time in ns, where the file system keeps one (statx). Inode numbers are reused at once
   * (a file written in place of a deleted disk often gets its inode): this tells them apart.
   * null where there is none, or where the time is only ctime again (no statx), which changes.
   */
  btime: string | null;
}

/**
 * Read the header of a disk file without following a symlink or blocking on a FIFO; only a
 * regular file is a disk. null when there is no file.
 */
export async function readOverlay(disk: string): Promise<OverlayIdentity | null> {
  let f;
  try {
    f = await open(disk, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    if (code === 'ELOOP') throw new OverlayRefusedError(`${disk} is a symbolic link, not a disk vibebox created`, 'not-a-file');
    throw e;
  }
  try {
    const st = await f.stat({ bigint: true });
    if (!st.isFile()) throw new OverlayRefusedError(`${disk} is not a regular file`, 'not-a-file');
    // The header lies in the first cluster; cluster_bits (bytes 20..23) says how long that is.
    const first = Buffer.alloc(64 * 1024);
    const { bytesRead } = await f.read(first, 0, first.length, 0);
    let buf = first.subarray(0, bytesRead);
    const bits = bytesRead >= 24 ? buf.readUInt32BE(20) : 0;
    if (bits > 16 && bits <= 21) {
      const whole = Buffer.alloc(1 << bits);
      const r = await f.read(whole, 0, whole.length, 0);
      buf = whole.subarray(0, r.bytesRead);
    }
    let header: Qcow2Header;
    try {
      header = parseQcow2Header(buf);
    } catch (e) {
      if (e instanceof Qcow2FormatError) throw new OverlayRefusedError(`${disk}: ${e.message}`, 'header');
      throw e;
    }
    const btime = st.birthtimeNs !== 0n && st.birthtimeNs !== st.ctimeNs ? st.birthtimeNs.toString() : null;
    return { header, dev: st.dev.toString(), ino: st.ino.toString(), btime };
  } finally {
    await f.close();
  }
}

/** What the host wrote down when it created the overlay; kept where the guest cannot write. */
export const DiskRecordSchema = z.strictObject({
  disk: z.string(),
  dev: z.string().regex(/^\d+$/),
  ino: z.string().regex(/^\d+$/),
  btime: z.string().regex(/^\d+$/).nullable(),
  /** headerFingerprint() of the header at creation. */
  header: z.string().regex(/^[0-9a-f]{64}$/),
  created: z.string(),
});
export type DiskRecord = z.infer<typeof DiskRecordSchema>;

export function readRecord(file: string): DiskRecord | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    raw = null;
  }
  const r = DiskRecordSchema.safeParse(raw);
  // A record vibebox cannot read never lets a disk through: treat it as a different disk.
  return r.success ? r.data : { disk: '', dev: '', ino: '', btime: null, header: '', created: '' };
}

export function writeRecord(file: string, r: DiskRecord): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(r, null, 2) + '\n', { mode: 0o600 });
  renameSync(tmp, file);
}

export function forgetOverlay(recordFile: string): void {
  rmSync(recordFile, { force: true });
}

export interface OverlayGuard {
  disk: string;
  /** The image's rootfs: the one backing file name vibebox writes and pins. */
  backing: string;
  /** The host-side record of the overlay (under VIBEBOX_HOME, never in the project). */
  recordFile: string;
}

export type OverlayState = 'absent' | 'recorded' | 'unrecorded';

function refuseHeader(disk: string, id: OverlayIdentity, backing: string): void {
  const problems = overlayProblems(id.header, { backing });
  if (problems.length) throw new OverlayRefusedError(`${disk} has ${problems.join(', ')}, which vibebox never writes`, 'header');
}

/**
 * The check before every boot: the file is a regular file whose header is exactly what vibebox
 * writes, and, when the host recorded one, the same file (device, inode, header) it created.
 * 'unrecorded': a disk from before vibebox kept records (or whose record was deleted).
 */
export async function verifyOverlay(g: OverlayGuard): Promise<OverlayState> {
  const id = await readOverlay(g.disk);
  if (!id) return 'absent';
  refuseHeader(g.disk, id, g.backing);
  const rec = readRecord(g.recordFile);
  if (!rec) return 'unrecorded';
  if (rec.dev !== id.dev || rec.ino !== id.ino || (rec.btime !== null && rec.btime !== id.btime) || rec.header !== headerFingerprint(id.header)) {
    throw new OverlayRefusedError(`${g.disk} is not the disk vibebox created for this session (it was replaced)`, 'replaced');
  }
  return 'recorded';
}

/**
 * Before booting: create the overlay if there is none (recording it), else verify it; a disk
 * without a record that passes the header check is recorded now (trust on first use).
 */
export async function prepareOverlay(g: OverlayGuard & { sizeBytes: number }): Promise<OverlayState> {
  const state = await verifyOverlay(g);
  if (state === 'recorded') return state;
  if (state === 'unrecorded') {
    const id = (await readOverlay(g.disk))!;
    writeRecord(g.recordFile, { disk: g.disk, dev: id.dev, ino: id.ino, btime: id.btime, header: headerFingerprint(id.header), created: new Date().toISOString() });
    return state;
  }
  const tmp = `${g.disk}.tmp`;
  rmSync(tmp, { force: true });
  // Made 0600 before qemu-img writes a byte (it keeps the mode of a file it truncates): the
  // guest's disk is this user's alone, and a reader who opened it early would keep it.
  touchPrivateFile(tmp);
  await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', g.backing, tmp, String(g.sizeBytes)]);
  const id = await readOverlay(tmp);
  if (!id) throw new Error(`qemu-img did not create ${tmp}`);
  refuseHeader(tmp, id, g.backing);
  // Recorded before it takes its name, so a crash in between leaves no unrecorded disk. The
  // rename keeps the inode.
  writeRecord(g.recordFile, { disk: g.disk, dev: id.dev, ino: id.ino, btime: id.btime, header: headerFingerprint(id.header), created: new Date().toISOString() });
  renameSync(tmp, g.disk);
  return state;
}

/**
 * The overlay with every node pinned, as at boot: its backing is the image's rootfs, and the
 * rootfs has no backing of its own (nothing is opened from a header).
 */
function imageSpec(disk: string, backing: string): string {
  return `json:${JSON.stringify({
    driver: 'qcow2',
    file: { driver: 'file', filename: disk },
    backing: { driver: 'qcow2', file: { driver: 'file', filename: backing }, backing: null },
  })}`;
}

export interface CheckResult {
  ok: boolean;
  leaks: number;
  corruptions: number;
  output: string;
}

/** `qemu-img check`, with the backing file pinned like at boot; `repair` fixes leaked clusters. */
export async function checkDisk(disk: string, backing: string, repair = false): Promise<CheckResult> {
  const args = ['check', '--output=json', ...(repair ? ['-r', 'leaks'] : []), imageSpec(disk, backing)];
  const r = await execa('qemu-img', args, { reject: false });
  let leaks = 0;
  let corruptions = 0;
  try {
    const j = JSON.parse(r.stdout) as { leaks?: number; corruptions?: number; 'leaks-fixed'?: number };
    leaks = (j.leaks ?? 0) - (j['leaks-fixed'] ?? 0);
    corruptions = j.corruptions ?? 0;
  } catch {
    /* non-JSON output: rely on the exit code */
  }
  // Exit 0: clean; 3: leaks only (harmless, wasted space).
  return { ok: r.exitCode === 0 || (r.exitCode === 3 && corruptions === 0), leaks, corruptions, output: `${r.stdout}${r.stderr}`.trim() };
}
