// Liveness from pid files (like Lima): a pid file whose process is gone, or is not what the file
// says it is (pid reuse), is stale.
import { readFileSync } from 'node:fs';

export function readPid(file: string): number | null {
  try {
    const n = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === 'EPERM';
  }
}

/** The process's command line, or null when it cannot be read (not Linux, or gone). */
export function cmdline(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return null;
  }
}

/** A live pid whose command line contains `marker` (when the command line is readable). */
export function aliveAs(pid: number | null, marker: string): pid is number {
  if (pid === null || !alive(pid)) return false;
  const c = cmdline(pid);
  return c === null || c.includes(marker);
}
