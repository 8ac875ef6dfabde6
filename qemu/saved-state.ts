// A suspended VM: its migration stream in the project's .vibebox/ and the host's record of it
// under VIBEBOX_HOME (where neither the guest nor a cloned repository writes). The record says
// what the state was saved against; a resume needs every part to match, else the VM boots.
import { createHash } from 'node:crypto';
import { constants, createReadStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname } from 'node:path';
import * as z from 'zod';

/** What a saved state must match to be resumed (everything but the stream itself). */
export const ResumeKey = z.strictObject({
  vibebox: z.string(),
  protocol: z.number().int(),
  /** The QEMU binary's real path, size and mtime: another build cannot load the stream. */
  qemu: z.string(),
  image: z.string(),
  /** sha256 of the effective (approved) vibebox.toml as resolved. */
  config: z.string(),
  /** sha256 of QEMU's command line without the share devices and the -incoming part. */
  argv: z.string(),
});
export type ResumeKey = z.infer<typeof ResumeKey>;

/** The session disk as QEMU left it: any write after the save makes the saved RAM a lie. */
export const DiskStamp = z.strictObject({
  size: z.number().int(),
  mtimeNs: z.string(),
  ino: z.string(),
  /** sha256 of the first 256 KiB: the qcow2 header and, for small disks, the L1 table. */
  head: z.string(),
});
export type DiskStamp = z.infer<typeof DiskStamp>;

export const SavedStateRecord = z.strictObject({
  schema: z.literal(1),
  key: ResumeKey,
  disk: DiskStamp,
  /** The device state (zstd): its size and sha256 (checked before the guest runs again). */
  bytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** The guest RAM file (zstd), when the VM keeps its RAM in one (it does with shares). */
  ram: z.strictObject({ bytes: z.number().int().nonnegative(), sha256: z.string().regex(/^[0-9a-f]{64}$/) }).nullable(),
  /** The next exec id: an exec from before the suspend may still end, its id must not be reused. */
  nextExec: z.number().int().min(1),
  savedAt: z.string(),
  saveMs: z.number().nonnegative(),
});
export type SavedStateRecord = z.infer<typeof SavedStateRecord>;

const KEY_WHY: Record<keyof ResumeKey, string> = {
  vibebox: 'vibebox was updated',
  protocol: 'the guest agent protocol changed',
  qemu: 'QEMU changed',
  image: 'the image changed',
  config: 'vibebox.toml changed',
  argv: 'the VM settings changed',
};

/** Why a recorded state cannot be resumed now, or null when it can (pure). */
export function staleReason(rec: SavedStateRecord, now: ResumeKey, disk: DiskStamp | null, stateBytes: number | null, ramBytes: number | null): string | null {
  for (const k of Object.keys(KEY_WHY) as (keyof ResumeKey)[]) if (rec.key[k] !== now[k]) return KEY_WHY[k];
  if (!disk) return 'the disk is gone';
  if (disk.size !== rec.disk.size || disk.mtimeNs !== rec.disk.mtimeNs || disk.ino !== rec.disk.ino || disk.head !== rec.disk.head) return 'the disk changed after the save';
  if (stateBytes === null) return 'the state file is gone';
  if (stateBytes !== rec.bytes) return 'the state file changed size';
  if (rec.ram && ramBytes === null) return 'the RAM file is gone';
  if (rec.ram && ramBytes !== rec.ram.bytes) return 'the RAM file changed size';
  return null;
}

export const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

/** QEMU's identity for the key: real path, size, mtime of the binary. */
export function binaryIdentity(path: string): string {
  const st = statSync(path);
  return `${path}:${st.size}:${Math.round(st.mtimeMs)}`;
}

export async function diskStamp(disk: string): Promise<DiskStamp | null> {
  let f;
  try {
    // The disk is in the project's .vibebox/: never block on a FIFO or follow a link there.
    f = await open(disk, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return null;
  }
  try {
    const st = await f.stat({ bigint: true });
    if (!st.isFile()) return null;
    const head = Buffer.alloc(256 * 1024);
    const { bytesRead } = await f.read(head, 0, head.length, 0);
    return { size: Number(st.size), mtimeNs: String(st.mtimeNs), ino: String(st.ino), head: createHash('sha256').update(head.subarray(0, bytesRead)).digest('hex') };
  } finally {
    await f.close();
  }
}

export async function hashFile(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

export function fileSize(path: string): number | null {
  try {
    const st = statSync(path);
    return st.isFile() ? st.size : null;
  } catch {
    return null;
  }
}

export function readRecord(file: string): SavedStateRecord | null {
  if (!existsSync(file)) return null;
  try {
    const r = SavedStateRecord.safeParse(JSON.parse(readFileSync(file, 'utf8')));
    return r.success ? r.data : null;
  } catch {
    return null;
  }
}

export function writeRecord(file: string, rec: SavedStateRecord): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, JSON.stringify(rec, null, 2) + '\n', { mode: 0o600 });
  renameSync(tmp, file);
}

/** The RAM file that goes with a state file. */
export const ramFileOf = (state: string): string => `${state}.ram`;

/** Forget a saved state: the record first, so a half-deleted state is never resumed. */
export function dropSavedState(record: string, state: string): void {
  rmSync(record, { force: true });
  for (const f of [state, ramFileOf(state)]) {
    rmSync(f, { force: true });
    rmSync(`${f}.tmp`, { force: true });
  }
}

/** sh -c quoting for a path in QEMU's exec: migration URI. */
export const shQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** The incoming URI that reads a saved state (pure). */
export function incomingUri(state: string): string {
  return `exec:zstd -dcq -- ${shQuote(state)}`;
}
