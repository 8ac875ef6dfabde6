// The per-session disk: a qcow2 overlay on the image's rootfs (instant, small), and its repair.
import { existsSync } from 'node:fs';
import { execa } from 'execa';

export async function createOverlay(disk: string, backing: string, sizeBytes: number): Promise<void> {
  if (existsSync(disk)) return;
  const tmp = `${disk}.tmp`;
  await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', backing, tmp, String(sizeBytes)]);
  const { renameSync } = await import('node:fs');
  renameSync(tmp, disk);
}

function imageOpts(disk: string, backing: string): string {
  const esc = (s: string) => s.replace(/,/g, ',,');
  return `driver=qcow2,file.driver=file,file.filename=${esc(disk)},backing.driver=qcow2,backing.file.driver=file,backing.file.filename=${esc(backing)}`;
}

export interface CheckResult {
  ok: boolean;
  leaks: number;
  corruptions: number;
  output: string;
}

/** `qemu-img check`, with the backing file pinned like at boot; `repair` fixes leaked clusters. */
export async function checkDisk(disk: string, backing: string, repair = false): Promise<CheckResult> {
  const args = ['check', '--output=json', '--image-opts', ...(repair ? ['-r', 'leaks'] : []), imageOpts(disk, backing)];
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
