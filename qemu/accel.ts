// Which accelerator to use. /dev/kvm existing is not proof: on some hosts it hangs real guests.
// The probe boots the image's kernel under the candidate with no root disk and panic=-1, so a
// working accelerator reaches the kernel's panic and QEMU exits (-no-reboot) within a second or
// two; a hang or an error falls back to TCG. The result is cached per kernel and QEMU binary.
import { accessSync, constants, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { platform, release } from 'node:os';
import { execa } from 'execa';
import type { Accel } from './argv.js';

export function qemuBinary(): string {
  return process.env['VIBEBOX_QEMU'] ?? (process.arch === 'arm64' ? 'qemu-system-aarch64' : 'qemu-system-x86_64');
}

export interface ProbeResult {
  accel: Accel;
  tried: { accel: Accel; ok: boolean; detail: string; ms: number }[];
}

/** Candidates in order of preference on this host, before probing. */
export function candidates(os: NodeJS.Platform = platform(), kvmUsable = hasKvmDevice()): Accel[] {
  if (os === 'linux' && kvmUsable) return ['kvm', 'tcg'];
  if (os === 'darwin') return ['hvf', 'tcg'];
  return ['tcg'];
}

/** /dev/kvm exists AND this process may read and write it (root, or a member of its group). */
export function hasKvmDevice(): boolean {
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** Boot the kernel to its panic under one accelerator; true if it got there in time. */
export async function bootsUnder(accel: Accel, kernel: string, timeoutMs: number): Promise<{ ok: boolean; detail: string }> {
  const r = await execa(
    qemuBinary(),
    ['-machine', `q35,accel=${accel}`, '-cpu', accel === 'tcg' ? 'max' : 'host', '-m', '256M', '-nodefaults', '-no-user-config', '-nographic', '-no-reboot',
      '-serial', 'stdio', '-kernel', kernel, '-append', 'console=ttyS0 panic=-1 root=/dev/vibebox-probe-none loglevel=1'],
    { timeout: timeoutMs, reject: false, stdin: 'ignore', killSignal: 'SIGKILL' },
  );
  if (r.timedOut) return { ok: false, detail: `no boot within ${timeoutMs} ms` };
  const out = `${r.stdout}${r.stderr}`;
  if (/Kernel panic|VFS: Unable to mount root/.test(out)) return { ok: true, detail: 'booted' };
  return { ok: false, detail: (r.stderr.split('\n').find((l) => l.trim()) ?? `exit ${r.exitCode}`).slice(0, 200) };
}

interface CacheEntry {
  key: string;
  accel: Accel;
}

/** What the cache is valid for: the QEMU binary, the host kernel and the candidates (a user
 * added to the kvm group gets a new list, so a new probe). */
export function cacheKey(list: Accel[] = candidates()): string {
  return `${qemuBinary()}:${release()}:${list.join(',')}`;
}

/** The accelerator a previous probe chose, if it still applies to this host and user. */
export function cachedAccel(cacheFile: string, list: Accel[] = candidates()): Accel | null {
  try {
    const c = JSON.parse(readFileSync(cacheFile, 'utf8')) as CacheEntry;
    return c.key === cacheKey(list) && list.includes(c.accel) ? c.accel : null;
  } catch {
    return null;
  }
}

export async function probeAccel(kernel: string, cacheFile: string, opts: { timeoutMs?: number } = {}): Promise<ProbeResult> {
  const forced = process.env['VIBEBOX_ACCEL'];
  if (forced === 'kvm' || forced === 'hvf' || forced === 'tcg') return { accel: forced, tried: [] };
  // Without read-write /dev/kvm (a user outside the kvm group) the list is just tcg: no probe.
  const list = candidates();
  // Whether an accelerator works depends on the host and its QEMU, not on the guest image:
  // a new image must not pay the probe (seconds, when KVM hangs) again.
  const key = cacheKey(list);
  const cached = cachedAccel(cacheFile, list);
  if (cached) return { accel: cached, tried: [] };
  const tried: ProbeResult['tried'] = [];
  let chosen: Accel = 'tcg';
  for (const a of list) {
    if (a === 'tcg') break; // the fallback needs no probe: it is always there
    const t0 = Date.now();
    const r = await bootsUnder(a, kernel, opts.timeoutMs ?? 8000);
    tried.push({ accel: a, ok: r.ok, detail: r.detail, ms: Date.now() - t0 });
    if (r.ok) {
      chosen = a;
      break;
    }
  }
  try {
    mkdirSync(dirname(cacheFile), { recursive: true });
    writeFileSync(cacheFile, JSON.stringify({ key, accel: chosen } satisfies CacheEntry));
  } catch {
    /* cache is an optimisation */
  }
  return { accel: chosen, tried };
}
