// `vibebox doctor`: what this machine has, what is missing, and how to install it.
import { statfsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { homePaths } from '../paths.js';
import { candidates, hasKvmDevice, qemuBinary } from '../../qemu/accel.js';
import { virtiofsdBinary } from '../../qemu/virtiofsd.js';
import { table } from './format.js';

interface Check {
  name: string;
  ok: boolean;
  found: string;
  fix: string;
}

async function version(cmd: string, args: string[] = ['--version']): Promise<string | null> {
  const r = await execa(cmd, args, { reject: false, timeout: 10_000 });
  if (r.failed && r.exitCode === undefined) return null;
  if (r.exitCode !== 0 && !r.stdout) return null;
  return (r.stdout || r.stderr).split('\n')[0]?.trim() ?? '';
}

export async function runChecks(): Promise<Check[]> {
  const checks: Check[] = [];
  const major = Number(process.versions.node.split('.')[0]);
  checks.push({ name: 'node', ok: major >= 20, found: process.version, fix: 'install Node.js 20 or newer' });
  const q = await version(qemuBinary());
  checks.push({ name: 'qemu-system', ok: q !== null, found: q ?? 'missing', fix: 'apt-get install qemu-system-x86 (macOS: brew install qemu)' });
  const img = await version('qemu-img');
  checks.push({ name: 'qemu-img', ok: img !== null, found: img ?? 'missing', fix: 'apt-get install qemu-utils' });
  const list = candidates();
  let probed: string | null = null;
  try {
    probed = (JSON.parse(readFileSync(join(homePaths().home, 'accel.json'), 'utf8')) as { accel?: string }).accel ?? null;
  } catch {
    /* not probed yet */
  }
  const accel = process.env['VIBEBOX_ACCEL'] ?? probed ?? list[0]!;
  const note = probed
    ? probed === 'tcg' && list[0] !== 'tcg' ? `${list[0]} did not boot a test guest: using tcg (software emulation, slow)` : 'verified by a test boot'
    : process.platform === 'linux'
      ? hasKvmDevice() ? '/dev/kvm present; verified by a test boot on the first start (falls back to tcg if it hangs)' : 'no usable /dev/kvm: tcg (software emulation, slow)'
      : '';
  checks.push({ name: 'accelerator', ok: true, found: `${accel}${note ? ` — ${note}` : ''}`, fix: 'enable KVM (kvm-intel/kvm-amd, access to /dev/kvm) for full speed' });
  const fsd = virtiofsdBinary();
  checks.push({ name: 'virtiofsd', ok: fsd !== null, found: fsd ?? 'missing (sessions refuse to start: E_VIRTIOFSD_MISSING)', fix: 'apt-get install virtiofsd (Debian 13, Ubuntu 24.04) or qemu-system-common (Debian 12)' });
  const socat = await version('socat', ['-V']);
  checks.push({ name: 'socat', ok: socat !== null, found: socat ? socat.replace(/^socat by .*$/, 'present') : 'missing', fix: 'apt-get install socat' });
  const mm = await version('mmdebstrap');
  checks.push({ name: 'mmdebstrap', ok: mm !== null, found: mm ?? 'missing', fix: 'apt-get install mmdebstrap (builds the guest image)' });
  const home = homePaths().home;
  mkdirSync(home, { recursive: true });
  const st = statfsSync(home);
  const free = (st.bavail * st.bsize) / 1024 ** 3;
  checks.push({ name: 'disk space', ok: free >= 5, found: `${free.toFixed(1)} GiB free in ${home}`, fix: 'free at least 5 GiB (the image takes ~1.5 GiB, each session grows with use)' });
  return checks;
}

export async function doctor(o: { json?: boolean }): Promise<void> {
  const checks = await runChecks();
  if (o.json) process.stdout.write(JSON.stringify(checks) + '\n');
  else {
    process.stdout.write(table(['CHECK', 'STATUS', 'FOUND', 'FIX'], checks.map((c) => [c.name, c.ok ? 'ok' : 'MISSING', c.found, c.ok ? '' : c.fix])) + '\n');
  }
  if (checks.some((c) => !c.ok)) process.exitCode = 1;
}
