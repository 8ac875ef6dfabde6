// The one place the supervisor names a hypervisor: it finds what the QEMU driver needs on this
// host (virtiofsd, python3) and builds it; everything else talks to the VmDriver interface.
import { VibeboxError } from '../errors.js';
import { findPython, findVirtiofsd, parseTuning } from '../../qemu/virtiofsd.js';
import { QemuDriver } from '../../qemu/qemu-driver.js';
import type { VmDriver } from '../../qemu/driver.js';

export interface DriverSettings {
  runDir: string;
  /** Where the accelerator probe's answer is cached. */
  accelCache: string;
  guestUid: number;
  guestGid: number;
  log: (line: string) => void;
  /** Output of the VM and its helpers (text the guest may influence). */
  output: (line: string) => void;
  env: NodeJS.ProcessEnv;
}

/** Throws a VibeboxError naming what to install when the host lacks a part. */
export function createDriver(o: DriverSettings): VmDriver {
  // Before the socket listens, so the client reports this line. Never 9p passthrough in place
  // of virtiofsd: it hides nothing and lets guest root make root-owned and setuid host files.
  const virtiofsd = findVirtiofsd();
  if (!virtiofsd) throw new VibeboxError('E_VIRTIOFSD_MISSING', 'virtiofsd is not installed', 'install the `virtiofsd` package (Debian 13, Ubuntu 24.04) or `qemu-system-common` (Debian 12)');
  const python = findPython();
  if (!python) throw new VibeboxError('E_TOOL_MISSING', 'python3 is not installed (it starts virtiofsd behind a seccomp filter)', 'install the `python3` package');

  // A measurement knob (the bench's --fuse-options), held to caching options only.
  const tuning = parseTuning(o.env['VIBEBOX_VIRTIOFSD_OPTS']);
  if (!tuning.ok) throw new VibeboxError('E_USAGE', `VIBEBOX_VIRTIOFSD_OPTS: "${tuning.refused}" is not a tuning option`, 'use cache=, timeout=, [no_]readdirplus or [no_]writeback, comma-separated, or unset it');
  return new QemuDriver({
    virtiofsd,
    python,
    virtiofsdTuning: tuning.options,
    runDir: o.runDir,
    accelCache: o.accelCache,
    guestUid: o.guestUid,
    guestGid: o.guestGid,
    log: o.log,
    output: o.output,
  });
}
