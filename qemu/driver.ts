// The VM driver interface: what the supervisor needs from a hypervisor (docs/architecture.md, Processes).
// qemu/qemu-driver.ts is one implementation; a Kata or Firecracker driver would implement the
// same. A driver spawns and stops the VM and its file servers; it knows nothing of clients,
// policy or the guest agent's protocol beyond the mounts it hands over.
import type { MountSpec } from '../guest/protocol.js';

export interface ShareRequest {
  /** Absolute host path: a directory, or a single regular file. */
  host: string;
  guest: string;
  readonly: boolean;
  /** Session folders inside `host` the guest must never see. */
  hide?: string[];
  /** Let the guest write git config, hooks and pointers (approved [workspace] writable_git_config; see git-walls.ts). */
  writableGitConfig?: boolean;
}

export interface VmRequest {
  name: string;
  cpus: number;
  memoryBytes: number;
  kernel: string;
  initrd: string;
  cmdline: string;
  /** The session's overlay and the image's rootfs it is backed by (pinned, never from the header). */
  disk: string;
  backing: string;
  /** The agent channel's unix socket: the supervisor listens, the VM connects. */
  agentSocket: string;
  agentPortName: string;
  /** Where guest connections to the egress proxy go. */
  egressSocket: string;
  serialLog: string;
  /** The guest's console output (untrusted text), instead of QEMU writing serialLog itself. */
  console?: (chunk: Buffer) => void;
  /**
   * Start paused, waiting for a saved state (`resume`), without the share devices; `ram` is the
   * saved guest RAM (zstd) when the VM keeps its RAM in a file, unpacked sparse before QEMU starts.
   */
  incoming?: { ram: string | null };
}

export interface SuspendOptions {
  /** Where the device state goes, and the guest RAM when it lives in a file (temporary names: the caller renames them once whole). */
  file: string;
  ramFile: string;
  timeoutMs?: number;
}

export interface ResumeOptions {
  /** The migration URI QEMU reads the saved state from. */
  uri: string;
  /** Resolves true when the state file is the one recorded (checked while QEMU loads it). */
  verified: Promise<boolean>;
  /** Called once the state is loaded and verified, right before the guest runs again. */
  onLoaded?: () => void;
  timeoutMs?: number;
}

export type VmState = 'stopped' | 'starting' | 'running' | 'exited';

export interface VmStatus {
  state: VmState;
  pid: number | null;
  accel: string;
}

export interface StopOptions {
  /** Ask the guest to power off by itself first (the agent's `shutdown`). */
  askGuest: () => void;
  /** How long each step (guest, then ACPI power-down) may take before the next, harder one. */
  stepMs?: number;
}

/** The accelerator a driver picked, and what it tried on the way (for the log). */
export interface AccelProbe {
  accel: string;
  tried: { accel: string; ok: boolean; detail: string; ms: number }[];
}

/**
 * The driver's part of what a saved state must match: the hypervisor binary's identity and the
 * VM's command line without the shares or -incoming (the saved-state record's `qemu` and `argv`).
 */
export interface DriverResumeKey {
  qemu: string;
  argv: string;
}

export interface VmDriver {
  /** Kill what an earlier, killed run of this session left behind. */
  cleanup(): void;
  /** Pick the accelerator before the first start (may boot `kernel` once per host; cached). */
  probe(kernel: string): Promise<AccelProbe>;
  /** Start the file servers; resolves with what the guest should mount (shares it could not set up are left out and logged). */
  setupShares(shares: ShareRequest[]): Promise<MountSpec[]>;
  /** Spawn the VM; resolves once the process runs (readiness is the agent's hello, not ours). */
  start(req: VmRequest): Promise<void>;
  /** Stop the VM: guest, then ACPI power-down, then kill. `clean` is false when it had to be killed. */
  stop(o: StopOptions): Promise<{ clean: boolean }>;
  status(): VmStatus;
  /** Called once when the VM process exits, whoever caused it. */
  onExit(cb: (why: string) => void): void;
  /** Stop the helpers (file servers) after the VM is gone. */
  close(): void;
  /** What a saved state of this VM must match, as far as the driver knows it. */
  resumeKey(req: VmRequest): DriverResumeKey;
  /**
   * Save the running VM to a file and end QEMU: the guest must have unmounted its shares; their
   * devices are unplugged first (they block migration). Throws with the VM still there (paused or
   * running) when any step fails; the caller then shuts it down cleanly.
   */
  suspend(o: SuspendOptions): Promise<{ bytes: number; ramBytes: number | null }>;
  /** After `start({incoming: true})`: load the state, run the guest, plug the shares back in. */
  resume(o: ResumeOptions): Promise<void>;
  /** Kill a VM that never ran (a failed resume) without reporting its exit; the shares stay up. */
  abandon(): Promise<void>;
  /**
   * Forward host 127.0.0.1:`host` to `guestPort` in the VM (add), or stop (remove). Throws with
   * code E_PORT_IN_USE when the host port cannot be bound. Gone with the VM process.
   */
  hostForward(op: 'add' | 'remove', host: number, guestPort?: number): Promise<void>;
}
