// The guest's part of a suspend: the shares go away before the save (vhost-user-fs
// blocks migration in QEMU 7.2) and come back after the resume, and the clock jumps to the host's.
import { execFile, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Mount points at or under `roots`, innermost and latest first (pure; /proc/self/mounts text). */
export function mountsToUndo(procMounts: string, roots: readonly string[]): string[] {
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  const under = (t: string) => roots.some((r) => t === r || t.startsWith(r.endsWith('/') ? r : `${r}/`));
  const targets = procMounts
    .split('\n')
    .map((l) => l.split(' ')[1])
    .filter((t): t is string => t !== undefined && t !== '')
    .map(unescape)
    .filter(under);
  // Later mounts sit on top of earlier ones: undo them in reverse, deepest paths first.
  return targets.map((t, i) => ({ t, i })).sort((a, b) => b.t.split('/').length - a.t.split('/').length || b.i - a.i).map((x) => x.t);
}

/**
 * Flush and unmount everything under `roots`. A mount in use (a process's cwd or open file)
 * is detached lazily: the process keeps running, its old handles fail after the resume (the
 * share's device is gone), a path looked up again reaches the remounted share. Returns those.
 */
export function unmountForSuspend(roots: readonly string[]): string[] {
  execFileSync('sync', [], { stdio: 'pipe', timeout: 60_000 });
  const lazy: string[] = [];
  for (const t of mountsToUndo(readFileSync('/proc/self/mounts', 'utf8'), roots)) {
    try {
      execFileSync('umount', [t], { stdio: 'pipe', timeout: 30_000 });
    } catch {
      execFileSync('umount', ['-l', t], { stdio: 'pipe', timeout: 30_000 });
      lazy.push(t);
    }
  }
  // Clean page cache costs state-file bytes for nothing: freed pages are saved as zero pages.
  try {
    execFileSync('sh', ['-c', 'echo 3 > /proc/sys/vm/drop_caches'], { stdio: 'pipe', timeout: 30_000 });
  } catch {
    /* a smaller state is an optimisation */
  }
  return lazy;
}

/** Set the clock to the host's `epochMs` (sent at `sentAt` on our monotonic clock), in the background. */
export function setClock(epochMs: number, sentAt: number): Promise<string | null> {
  // date starts slowly right after a resume (TCG translates everything anew): add the wait.
  const at = () => epochMs + (performance.now() - sentAt);
  return new Promise((res) => {
    execFile('date', ['-u', '-s', `@${(at() / 1000).toFixed(3)}`], { timeout: 10_000 }, (e) => res(e ? e.message : null));
  });
}

/** Run `fn` until it stops throwing or `ms` pass (a share just plugged in is probed asynchronously). */
export function retrying(fn: () => void, ms: number): void {
  const deadline = Date.now() + ms;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    try {
      fn();
      return;
    } catch (e) {
      if (Date.now() > deadline) throw e;
      Atomics.wait(pause, 0, 0, 25);
    }
  }
}
