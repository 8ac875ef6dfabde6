// Suspend and resume: an idle session saves its VM (the agent unmounts, the driver migrates to a
// file) instead of shutting it down, and the next start loads it when everything it was saved
// against still matches (qemu/saved-state.ts says what that is); else the VM boots.
import { renameSync, rmSync } from 'node:fs';
import { PROTOCOL_VERSION } from '../../guest/protocol.js';
import type { VmDriver, VmRequest } from '../../qemu/driver.js';
import { diskStamp, dropSavedState, fileSize, hashFile, incomingUri, ramFileOf, readRecord, sha256, staleReason, writeRecord, type ResumeKey, type SavedStateRecord } from '../../qemu/saved-state.js';
import { which } from '../../qemu/which.js';
import { vibeboxVersion } from '../session/state.js';
import { cleanLine } from './guest-text.js';
import type { Session, SuspendDone } from './session.js';

export interface SuspendResumeDeps {
  session: Session;
  driver: VmDriver;
  /** The host's record of the saved state (under VIBEBOX_HOME). */
  savedRecord: string;
}

/** Save the VM (agent unmounts, driver unplugs and migrates); false: the caller shuts it down. */
export async function suspendVm(d: SuspendResumeDeps): Promise<boolean> {
  const s = d.session;
  const { driver, savedRecord } = d;
  const { log, paths: pp } = s;
  const a = s.agent;
  const resumeKey = s.resumeKey;
  if (!a || !resumeKey || s.state !== 'stopping' || s.bootMs === null) return false;
  if (!which('zstd')) {
    log('suspend needs zstd (not installed): shutting down instead');
    return false;
  }
  const t = Date.now();
  const tmp = `${pp.savedState}.tmp`;
  try {
    const answer = await new Promise<SuspendDone>((res, rej) => {
      const timer = setTimeout(() => rej(new Error('the guest agent did not unmount its shares in 60 s')), 60_000);
      s.suspendAnswer = (m) => {
        clearTimeout(timer);
        res(m);
      };
      a.send({ type: 'suspend' });
    });
    if (!answer.ok) throw new Error(`the guest could not unmount its shares: ${cleanLine(answer.error ?? '', 300)}`);
    log(`suspend: the guest unmounted its shares in ${Date.now() - t} ms`);
    if (answer.lazy.length) log(cleanLine(`suspend: in use, detached lazily: ${answer.lazy.join(', ')}`, 500));
    const ramTmp = `${ramFileOf(pp.savedState)}.tmp`;
    const { bytes, ramBytes } = await driver.suspend({ file: tmp, ramFile: ramTmp });
    const disk = await diskStamp(pp.disk);
    if (!disk) throw new Error('the disk is gone');
    const [sha, ramSha] = await Promise.all([hashFile(tmp), ramBytes === null ? null : hashFile(ramTmp)]);
    const ram = ramBytes === null || ramSha === null ? null : { bytes: ramBytes, sha256: ramSha };
    const rec: SavedStateRecord = { schema: 1, key: resumeKey, disk, bytes, sha256: sha, ram, nextExec: s.nextExec, savedAt: new Date().toISOString(), saveMs: Date.now() - t };
    // Guest memory is for this user's eyes only: the driver wrote both files into files it
    // created 0600 (qemu/private-file.ts), never a wider mode fixed after the fact.
    if (ram) renameSync(ramTmp, ramFileOf(pp.savedState));
    renameSync(tmp, pp.savedState);
    writeRecord(savedRecord, rec);
    log(`suspended in ${rec.saveMs} ms: device state ${(bytes / 1e6).toFixed(1)} MB, RAM ${((ramBytes ?? 0) / 1e6).toFixed(1)} MB (zstd) in ${pp.stateDir}`);
    return true;
  } catch (e) {
    s.suspendAnswer = null;
    rmSync(tmp, { force: true });
    log(`suspend failed, shutting down instead: ${cleanLine((e as Error).message, 500)}`);
    return false;
  }
}

/** What a saved state must match now: vibebox, the protocol, the image, the config, and the driver's part. */
export async function keyNow(d: SuspendResumeDeps, req: VmRequest): Promise<ResumeKey> {
  const s = d.session;
  const vm = d.driver.resumeKey(req);
  return {
    vibebox: vibeboxVersion(),
    protocol: PROTOCOL_VERSION,
    qemu: vm.qemu,
    image: s.image.manifest.digest,
    config: sha256(JSON.stringify(s.cfg)),
    argv: vm.argv,
  };
}

/** The saved state to resume, or null (a stale one is dropped and the reason kept in `dropped`). */
export async function savedStatePlan(d: SuspendResumeDeps, req: VmRequest): Promise<SavedStateRecord | null> {
  const s = d.session;
  const { savedRecord } = d;
  const pp = s.paths;
  const rec = readRecord(savedRecord);
  const bytes = fileSize(pp.savedState);
  if (!rec && bytes === null) return null;
  const why = !rec ? 'no host record of it' : staleReason(rec, await keyNow(d, req), await diskStamp(pp.disk), bytes, fileSize(ramFileOf(pp.savedState)));
  if (why === null) return rec;
  s.dropped = why;
  s.log(`saved state not used: ${why}`);
  dropSavedState(savedRecord, pp.savedState);
  return null;
}

/**
 * Start QEMU on the saved state and run the guest once the file is verified; true when it
 * resumed. On any failure the half-started VM is abandoned, the state dropped, and the caller boots.
 */
export async function tryResume(d: SuspendResumeDeps, resumable: SavedStateRecord, vmReq: VmRequest, o: { console: (chunk: Buffer) => void; bootLine: (why?: string) => string; accel: string }): Promise<boolean> {
  const s = d.session;
  const { driver, savedRecord } = d;
  const { log, paths: pp } = s;
  const tr = Date.now();
  try {
    // The file is hashed while QEMU loads it; the guest runs only when both agree.
    const ramFile = ramFileOf(pp.savedState);
    const verified = Promise.all([hashFile(pp.savedState), resumable.ram ? hashFile(ramFile) : null]).then(
      ([h, r]) => h === resumable.sha256 && r === (resumable.ram?.sha256 ?? null),
      () => false,
    );
    void verified.then((ok) => ok && s.announce(`resuming the VM (${o.accel})…`));
    await driver.start({ ...vmReq, console: o.console, incoming: { ram: resumable.ram ? ramFile : null } });
    await driver.resume({ uri: incomingUri(pp.savedState), verified, onLoaded: () => dropSavedState(savedRecord, pp.savedState) });
    log(`resumed from the saved state in ${Date.now() - tr} ms`);
    return true;
  } catch (e) {
    const why = cleanLine((e as Error).message, 300);
    log(`resume failed, booting instead: ${why}`);
    await driver.abandon();
    // The abandoned QEMU's channel: the booting one connects anew.
    s.agent?.close();
    s.agent = null;
    dropSavedState(savedRecord, pp.savedState);
    s.announce(o.bootLine(`it could not be loaded (${why})`));
    return false;
  }
}
