// A session's disk.qcow2 as the host vouches for it: checked before every boot (by the client
// before it spawns a supervisor, and by the supervisor right before QEMU), created and recorded
// under VIBEBOX_HOME (where the guest cannot write) when missing.
import { VibeboxError } from '../errors.js';
import { diskRecordFile, projectPaths } from '../paths.js';
import { forgetOverlay, OverlayRefusedError, prepareOverlay, verifyOverlay, type OverlayGuard } from '../../qemu/disk.js';
import { shellPath, showPath } from './state.js';

function guard(project: string, id: string, backing: string): OverlayGuard {
  return { disk: projectPaths(project).disk, backing, recordFile: diskRecordFile(id) };
}

function refused(project: string, id: string, e: OverlayRefusedError): VibeboxError {
  const pp = projectPaths(project);
  const fresh = `delete ${shellPath(pp.stateDir)} to start a fresh session`;
  return new VibeboxError(
    'E_DISK_UNTRUSTED',
    `will not boot this session's disk: ${showPath(e.message)}`,
    e.reason === 'replaced' ? `${fresh}, or, if you put this disk there yourself, delete ${showPath(diskRecordFile(id))} to accept it` : `${fresh}; its disk is lost`,
  );
}

async function guarded<T>(project: string, id: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof OverlayRefusedError) throw refused(project, id, e);
    throw e;
  }
}

/** The check alone (the client's, before spawning a supervisor): nothing is written. */
export async function verifySessionDisk(project: string, id: string, backing: string): Promise<void> {
  await guarded(project, id, () => verifyOverlay(guard(project, id, backing)));
}

/** Right before QEMU: create and record the disk if there is none, else check it. */
export async function prepareSessionDisk(project: string, id: string, backing: string, sizeBytes: number, log: (line: string) => void = () => undefined): Promise<void> {
  const state = await guarded(project, id, () => prepareOverlay({ ...guard(project, id, backing), sizeBytes }));
  if (state === 'unrecorded') log(`disk ${projectPaths(project).disk} had no host record (made by an older vibebox): its header passed the check and it is recorded now`);
}

export function forgetSessionDisk(id: string): void {
  forgetOverlay(diskRecordFile(id));
}
