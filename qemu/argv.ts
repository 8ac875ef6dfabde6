// The QEMU command line, as a pure function of the session's needs (unit-tested without QEMU).
import { EGRESS_ADDR } from '../guest/protocol.js';
import type { VmRequest } from './driver.js';
export type Accel = 'kvm' | 'hvf' | 'tcg';

export interface FsShare {
  tag: string;
  /** virtiofsd's vhost-user socket (virtiofs), or the host directory for 9p. */
  socket?: string;
  hostPath?: string;
  readonly: boolean;
  kind: 'virtiofs' | '9p';
}

/**
 * What QEMU's command line is built from: the driver-neutral request (driver.ts VmRequest, the
 * fields both share) plus what only QEMU has (accelerator, QMP, pid file, shares, forwards…).
 */
export type VmSpec = Pick<VmRequest, 'name' | 'cpus' | 'memoryBytes' | 'kernel' | 'initrd' | 'cmdline' | 'disk' | 'backing' | 'agentSocket' | 'agentPortName' | 'serialLog'> & {
  accel: Accel;
  qmpSocket: string;
  pidFile: string;
  /** guestfwd target: a command run per guest connection to EGRESS_ADDR. */
  egressCommand?: string;
  shares: FsShare[];
  /** Host ports forwarded to the guest, bound to 127.0.0.1 only. */
  forwards?: { host: number; guest: number }[];
  machine?: 'q35' | 'microvm';
  /** Guest RAM shared with virtiofsd in this file instead of a memfd (see buildArgv). */
  memoryFile?: string;
  /** A resume: the share devices stay out (they are plugged after the incoming migration). */
  withoutShareDevices?: boolean;
  /** A resume: the migration stream QEMU loads at start (`-incoming`). */
  incoming?: string;
};

/** The root port a virtiofs share is plugged into, and the share's device and chardev ids. */
export const sharePort = (i: number) => `vbport${i}`;
export const shareDeviceId = (i: number) => `vbfs${i}`;
export const shareChardevId = (i: number) => `fs${i}`;

/** -chardev/-device for one virtiofs share, as command-line options (pure). */
export function shareDeviceArgs(f: FsShare, i: number, onPort: boolean): string[] {
  return [
    '-chardev', `socket,id=${shareChardevId(i)},path=${qemuEscape(f.socket ?? '')}`,
    '-device', `vhost-user-fs-pci,id=${shareDeviceId(i)},chardev=${shareChardevId(i)},tag=${f.tag},queue-size=1024${onPort ? `,bus=${sharePort(i)}` : ''}`,
  ];
}

/** QEMU option values separate sub-options with commas; a literal comma is doubled. */
export function qemuEscape(v: string): string {
  return v.replace(/,/g, ',,');
}

export function buildArgv(s: VmSpec): string[] {
  const mib = Math.floor(s.memoryBytes / (1024 * 1024));
  const needsShared = s.shares.some((f) => f.kind === 'virtiofs');
  const hotplugPorts = (s.machine ?? 'q35') === 'q35';
  const a: string[] = [
    '-name', `${qemuEscape(s.name)},debug-threads=on`,
    // q35 without the devices the guest never uses: VMware port, SMM, PS/2 controller, AHCI, SMBus.
    '-machine', `${s.machine ?? 'q35'}${s.machine === 'microvm' ? '' : ',vmport=off,smm=off,i8042=off,sata=off,smbus=off'}`,
    // TCG's translation cache defaults to 1 GiB of host memory. 128 MiB: 64 MiB saved another
    // ~70 MB idle with no slower boot, but heavy guest work (compilers) would retranslate more.
    // thread=single: multi-threaded TCG (QEMU 7.2, x86 guest, 2 vCPUs) let the guest kernel hit a
    // stale int3 of its own live code patching (static keys flipped by docker's netfilter set-up,
    // module loads) on a loaded host: "Oops: int3" in kmem_cache_free → panic → the VM gone. One
    // thread runs the vCPUs in turn, which is what a loaded 2-core host gets anyway.
    '-accel', s.accel === 'tcg' ? 'tcg,thread=single,tb-size=128' : s.accel,
    '-cpu', s.accel === 'tcg' ? 'max' : 'host',
    '-smp', String(s.cpus),
    '-m', `${mib}M`,
    '-nodefaults', '-no-user-config', '-nographic', '-no-reboot',
    // seccomp around QEMU itself. spawn and elevateprivileges stay allowed: for every guest
    // connection to the proxy, guestfwd forks, calls setsid() (an "elevate" syscall to QEMU: it was
    // killed by SIGSYS, measured) and execs socat. QEMU runs as the user, so setuid() elevates nothing.
    '-sandbox', 'on,obsolete=deny,resourcecontrol=deny',
    '-kernel', s.kernel,
    '-initrd', s.initrd,
    '-append', s.cmdline,
    '-pidfile', s.pidFile,
    '-serial', `file:${s.serialLog}`,
    '-qmp', `unix:${qemuEscape(s.qmpSocket)},server=on,wait=off`,
    // The disk: an overlay whose backing file the host names here, so a rewritten header is ignored;
    // the rootfs gets no backing at all (JSON: the key=value syntax has no null). An external data
    // file cannot be pinned away here: the supervisor refuses such a header before boot.
    '-blockdev', `driver=file,node-name=base-file,filename=${qemuEscape(s.backing)},read-only=on`,
    '-blockdev', JSON.stringify({ driver: 'qcow2', 'node-name': 'base', file: 'base-file', 'read-only': true, backing: null }),
    '-blockdev', `driver=file,node-name=disk-file,filename=${qemuEscape(s.disk)},discard=unmap`,
    '-blockdev', `driver=qcow2,node-name=disk,file=disk-file,backing=base,discard=unmap`,
    '-device', 'virtio-blk-pci,drive=disk',
    // The agent channel: QEMU connects to the supervisor's socket (it listens before QEMU starts).
    '-chardev', `socket,id=agent,path=${qemuEscape(s.agentSocket)}`,
    '-device', 'virtio-serial-pci,id=vser',
    '-device', `virtserialport,bus=vser.0,chardev=agent,name=${s.agentPortName}`,
    '-device', 'virtio-rng-pci',
    // Pages the guest frees go back to the host, so an idle VM does not keep its peak memory.
    '-device', 'virtio-balloon-pci,free-page-reporting=on',
  ];
  // Networking: user mode with restrict=on reaches nothing but the one guestfwd to the proxy.
  const net = ['user', 'id=net0', 'restrict=on'];
  if (s.egressCommand) net.push(`guestfwd=tcp:${EGRESS_ADDR}-cmd:${qemuEscape(s.egressCommand)}`);
  for (const f of s.forwards ?? []) net.push(`hostfwd=tcp:127.0.0.1:${f.host}-:${f.guest}`);
  a.push('-netdev', net.join(','), '-device', 'virtio-net-pci,netdev=net0,romfile=');
  if (needsShared) {
    // vhost-user (virtiofsd) needs guest RAM that another process can map.
    // A file (on tmpfs, private to the user) rather than a memfd: a suspend leaves the RAM in it
    // (x-ignore-shared keeps it out of the migration stream) and a resume maps it sparse again.
    const backend = s.memoryFile ? `memory-backend-file,id=mem,size=${mib}M,mem-path=${qemuEscape(s.memoryFile)},share=on` : `memory-backend-memfd,id=mem,size=${mib}M,share=on`;
    a.push('-object', backend, '-numa', 'node,memdev=mem');
  }
  s.shares.forEach((f, i) => {
    if (f.kind === 'virtiofs') {
      // Each share sits behind a root port of its own so it can be hot-unplugged before a
      // suspend (vhost-user-fs blocks migration in QEMU 7.2) and plugged again after a resume.
      if (hotplugPorts) a.push('-device', `pcie-root-port,id=${sharePort(i)},chassis=${i + 1}`);
      if (!s.withoutShareDevices) a.push(...shareDeviceArgs(f, i, hotplugPorts));
    } else {
      // Never passthrough (guest root would make root-owned, setuid and device files on the host).
      // The supervisor does not pick 9p on Linux: it hides no `.vibebox/` (E_VIRTIOFSD_MISSING).
      a.push('-fsdev', `local,id=fs${i},path=${qemuEscape(f.hostPath ?? '')},security_model=mapped-xattr${f.readonly ? ',readonly=on' : ''}`);
      a.push('-device', `virtio-9p-pci,fsdev=fs${i},mount_tag=${f.tag}`);
    }
  });
  if (s.incoming) a.push('-incoming', s.incoming);
  return a;
}
