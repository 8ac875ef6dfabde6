// The one module that names every path vibebox uses (like Lima's instance-dir file): the global
// home, a project's .vibebox/ state folder, the per-session run directory, image directories.
import { realpathSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { imagePaths, imagesDir, vibeboxHome, type ImagePaths } from '../images/store-paths.js';

export { imagePaths, imagesDir, vibeboxHome, type ImagePaths };
import { VibeboxError } from './errors.js';

/** Session ids are UUIDv7 (the uuid package's v7, lower case). */
const SESSION_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

export function isSessionId(s: string): boolean {
  return SESSION_ID.test(s);
}

/**
 * Every path built from a session id goes through here: an id comes from files a cloned
 * repository can ship (.vibebox/session.toml), so `../x` must never become a path.
 */
export function checkSessionId(id: string): string {
  if (!SESSION_ID.test(id)) throw new VibeboxError('E_SESSION_UNKNOWN', `${JSON.stringify(id)} is not a session id`, 'run `vibebox list` to see the ids');
  return id;
}


/**
 * VIBEBOX_HOME as the user set it, checked once at start: an absolute path (a relative one would
 * name another home in every directory) that is a directory or does not exist yet.
 */
export function checkHome(env: NodeJS.ProcessEnv = process.env): void {
  const set = env['VIBEBOX_HOME'];
  if (set !== undefined && set.length > 0 && !isAbsolute(set)) {
    throw new VibeboxError('E_USAGE', `VIBEBOX_HOME ${JSON.stringify(set)} is not an absolute path`, `use a full path, e.g. VIBEBOX_HOME=${resolve(set)}`);
  }
  const home = vibeboxHome(env);
  try {
    if (!statSync(home).isDirectory()) throw new VibeboxError('E_USAGE', `${set ? 'VIBEBOX_HOME ' : ''}${home} is not a directory`, set ? 'point VIBEBOX_HOME at a directory, or unset it for ~/.vibebox' : 'move that file away; vibebox keeps its state in that directory');
  } catch (e) {
    if (e instanceof VibeboxError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return; // made on first use
    if (code === 'ENOTDIR') throw new VibeboxError('E_USAGE', `${set ? 'VIBEBOX_HOME ' : ''}${home} is inside a file, not a directory`, 'point VIBEBOX_HOME at a directory');
    if (code === 'EACCES') throw new VibeboxError('E_USAGE', `${home} cannot be reached: permission denied`, 'point VIBEBOX_HOME at a directory of yours');
    throw e;
  }
}

export interface HomePaths {
  home: string;
  sessionsIndex: string;
  imagesDir: string;
  runDir: string;
  /** Configs the user approved on the host, one file per session id (docs/architecture.md, Walls). */
  approvedDir: string;
  /** What vibebox recorded about each session's disk when it created it, one file per id. */
  disksDir: string;
  locksDir: string;
}

export function homePaths(home: string = vibeboxHome()): HomePaths {
  return {
    home,
    sessionsIndex: join(home, 'sessions.toml'),
    imagesDir: imagesDir(home),
    runDir: join(home, 'run'),
    approvedDir: join(home, 'approved'),
    disksDir: join(home, 'disks'),
    locksDir: join(home, 'locks'),
  };
}

/** The grant the user approved for a session (host side). */
export function approvedFile(id: string, home: string = vibeboxHome()): string {
  return join(homePaths(home).approvedDir, `${checkSessionId(id)}.json`);
}

/** The host's record of a suspended session's saved state (qemu/saved-state.ts). */
export function savedStateRecordFile(id: string, home: string = vibeboxHome()): string {
  return join(home, 'suspended', `${checkSessionId(id)}.json`);
}

/** The host's record of a session's disk.qcow2 (qemu/disk.ts). */
export function diskRecordFile(id: string, home: string = vibeboxHome()): string {
  return join(homePaths(home).disksDir, `${checkSessionId(id)}.json`);
}

export interface ProjectPaths {
  project: string;
  config: string;
  stateDir: string;
  sessionFile: string;
  disk: string;
  serialLog: string;
  supervisorLog: string;
  egressLog: string;
  gitignore: string;
  /** A suspended VM's migration stream (its record lives under VIBEBOX_HOME). */
  savedState: string;
}

export function projectPaths(project: string): ProjectPaths {
  const stateDir = join(project, '.vibebox');
  return {
    project,
    config: join(project, 'vibebox.toml'),
    stateDir,
    sessionFile: join(stateDir, 'session.toml'),
    disk: join(stateDir, 'disk.qcow2'),
    serialLog: join(stateDir, 'serial.log'),
    supervisorLog: join(stateDir, 'supervisor.log'),
    egressLog: join(stateDir, 'egress.log'),
    gitignore: join(stateDir, '.gitignore'),
    savedState: join(stateDir, 'saved-state'),
  };
}

/** The last 12 hex digits of a UUIDv7: the first ones are a timestamp and collide across sessions. */
export function shortId(id: string): string {
  return id.replace(/-/g, '').slice(-12);
}

/** The supervisor's own files in a session's run directory. The VM driver names its files there
 *  itself (qemu/qemu-driver.ts, qemuRunPaths): one name for each file. */
export interface RunPaths {
  dir: string;
  supervisorSock: string;
  supervisorPid: string;
  agentSock: string;
  egressSock: string;
}

export function runPaths(id: string, home: string = vibeboxHome()): RunPaths {
  const dir = join(homePaths(home).runDir, shortId(checkSessionId(id)));
  return {
    dir,
    supervisorSock: join(dir, 'supervisor.sock'),
    supervisorPid: join(dir, 'supervisor.pid'),
    agentSock: join(dir, 'agent.sock'),
    egressSock: join(dir, 'egress.sock'),
  };
}

/** The real path when it exists, else the absolute one (folders compare by real path: a project
 *  or VIBEBOX_HOME reached through a symlink is the same one). */
export function realpathOr(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return resolve(p);
  }
}
