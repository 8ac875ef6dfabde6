// Start or find a project's session: under the project lock, create the session if needed, build
// the image if missing, check the disk, and spawn the supervisor unless a live one answers on its
// socket. A .vibebox/ the host's index does not know is refused before anything starts.
import { spawn } from 'node:child_process';
import { closeSync } from 'node:fs';
import { openPrivateAppend } from '../../qemu/private-file.js';
import { socketAnswers } from '../net/socket-answers.js';
import { VibeboxError } from '../errors.js';
import { imagePaths, projectPaths, runPaths } from '../paths.js';
import { loadConfig, writeDefaultConfig } from '../config/load.js';
import { createSessionDir, readSessionFile, writeSessionFile, type SessionFile } from '../session/state.js';
import { verifySessionDisk } from '../session/disk.js';
import { updateIndex } from '../session/index-store.js';
import { upsert } from '../session/index-file.js';
import { ensureImage, findImage } from '../../images/build.js';
import { checkApproval } from '../approval/check.js';
import { waitForSupervisor } from '../supervisor/startup.js';
import { withProjectLock } from '../session/lock.js';


export interface StartOptions {
  progress: (line: string) => void;
  /** Ask y/N for a widened config on a terminal. */
  interactive: boolean;
}

/** Make sure the session exists and its supervisor runs; returns the session. */
export async function ensureRunning(project: string, o: StartOptions): Promise<SessionFile> {
  return withProjectLock(project, async () => {
    // Validate before touching anything: a .vibebox/ vibebox did not make, or a broken
    // vibebox.toml, never half-starts a VM.
    let s = await readOrAdopt(project, o.progress);
    const cfg = loadConfig(project);
    const rp = s ? runPaths(s.id) : null;
    if (s && rp && (await socketAnswers(rp.supervisorSock))) return s;
    if (!s) {
      writeDefaultConfig(project);
      s = await createSessionDir(project);
      o.progress(`created session ${s.id}`);
    }
    await checkApproval(project, s.id, { interactive: o.interactive });
    if (!s.image) {
      const img = await ensureImage({ name: cfg.vm.image, onProgress: o.progress });
      s = { ...s, image: { name: img.name, digest: img.digest } };
      writeSessionFile(project, s);
    }
    const session = s;
    // A session keeps the image it was created from; if that is gone, say so before spawning.
    const image = await findImage(session.image!.name, session.image!.digest);
    if (!image) {
      // The disk is an overlay on that image: never answer with deleting it. This vibebox's recipe
      // builds the same digest again, or the image comes back from where it went.
      const { currentDigest } = await import('../../images/build.js');
      const same = (await currentDigest().catch(() => null)) === session.image!.digest;
      throw new VibeboxError(
        'E_IMAGE_MISSING',
        `the image ${session.image!.name}/${session.image!.digest} this session's disk is built on is gone`,
        same ? `build it again: vibebox image build --name ${session.image!.name}` : `restore ${imagePaths(session.image!.name, session.image!.digest).dir} from a backup, or build it with the vibebox that made this session; the disk is kept`,
      );
    }
    // Before a supervisor exists: a refused disk is one line here, and nothing was started.
    await verifySessionDisk(project, session.id, image.rootfs);
    await updateIndex((idx) => upsert(idx, { id: session.id, directory: project, last_active: new Date().toISOString() }));
    await spawnSupervisor(project, session.id);
    return session;
  });
}

/** The project's session; a folder vibebox made and the user moved here is taken back. */
async function readOrAdopt(project: string, progress: (line: string) => void): Promise<SessionFile | null> {
  try {
    return readSessionFile(project);
  } catch (e) {
    if (!(e instanceof VibeboxError && e.code === 'E_SESSION_UNTRUSTED')) throw e;
    const { adoptMovedSession } = await import('../session/adopt.js');
    const s = await adoptMovedSession(project);
    if (!s) throw e;
    progress(`session ${s.id} was moved to this folder with its disk: it continues here`);
    return s;
  }
}

async function spawnSupervisor(project: string, id: string): Promise<void> {
  const pp = projectPaths(project);
  const rp = runPaths(id);
  // 0600 from its creation, never through a link: the supervisor's log tells what runs in the VM.
  const logFd = openPrivateAppend(pp.supervisorLog);
  const entry = process.argv[1]!;
  const child = spawn(process.execPath, [entry, '__supervise', project], { detached: true, stdio: ['ignore', logFd, logFd], env: process.env });
  closeSync(logFd);
  child.unref();
  await waitForSupervisor(child, id, rp.supervisorSock, pp.supervisorLog);
}
