// The one module that names every path vibebox uses (like Lima's instance-dir file): the global
// home, a project's .vibebox/ state folder, the per-session run directory, image directories.
import { homedir } from 'node:os';
import { join } from 'node:path';

export function vibeboxHome(env: NodeJS.ProcessEnv = process.env): string {
  const h = env['VIBEBOX_HOME'];
  return h && h.length > 0 ? h : join(homedir(), '.vibebox');
}

export interface HomePaths {
  home: string;
  sessionsIndex: string;
  imagesDir: string;
  runDir: string;
  /** Configs the user approved on the host, one file per session id (ARCHITECTURE §8). */
  approvedDir: string;
  locksDir: string;
}

export function homePaths(home: string = vibeboxHome()): HomePaths {
  return {
    home,
    sessionsIndex: join(home, 'sessions.toml'),
    imagesDir: join(home, 'images'),
    runDir: join(home, 'run'),
    approvedDir: join(home, 'approved'),
    locksDir: join(home, 'locks'),
  };
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
  };
}

/** The last 12 hex digits of a UUIDv7: the first ones are a timestamp and collide across sessions. */
export function shortId(id: string): string {
  return id.replace(/-/g, '').slice(-12);
}

export interface RunPaths {
  dir: string;
  supervisorSock: string;
  supervisorPid: string;
  qemuPid: string;
  qmpSock: string;
  agentSock: string;
  egressSock: string;
  /** virtiofsd socket for mount number n. */
  virtiofsSock(n: number): string;
  virtiofsPid(n: number): string;
}

export function runPaths(id: string, home: string = vibeboxHome()): RunPaths {
  const dir = join(homePaths(home).runDir, shortId(id));
  return {
    dir,
    supervisorSock: join(dir, 'supervisor.sock'),
    supervisorPid: join(dir, 'supervisor.pid'),
    qemuPid: join(dir, 'qemu.pid'),
    qmpSock: join(dir, 'qmp.sock'),
    agentSock: join(dir, 'agent.sock'),
    egressSock: join(dir, 'egress.sock'),
    virtiofsSock: (n) => join(dir, `fs${n}.sock`),
    virtiofsPid: (n) => join(dir, `fs${n}.pid`),
  };
}

export interface ImagePaths {
  dir: string;
  kernel: string;
  initrd: string;
  rootfs: string;
  manifest: string;
}

export function imagePaths(name: string, digest: string, home: string = vibeboxHome()): ImagePaths {
  const dir = join(homePaths(home).imagesDir, name, digest);
  return {
    dir,
    kernel: join(dir, 'vmlinuz'),
    initrd: join(dir, 'initrd.img'),
    rootfs: join(dir, 'rootfs.qcow2'),
    manifest: join(dir, 'image.json'),
  };
}
