// A VmDriver without a VM, for the supervisor's unit tests: it records each call in order, and
// each answer (stop's clean, suspend's sizes, a failing step) is set by the test.
import { writeFileSync } from 'node:fs';
import type { MountSpec } from '../../guest/protocol.js';
import type { AccelProbe, DriverResumeKey, ResumeOptions, ShareRequest, StopOptions, SuspendOptions, VmDriver, VmRequest, VmStatus } from '../../qemu/driver.js';

export class FakeDriver implements VmDriver {
  /** Every call, by method name, in order. */
  readonly calls: string[] = [];
  state: VmStatus['state'] = 'stopped';
  pid: number | null = null;
  accel = 'tcg';
  /** What stop() answers; whether it asks the guest first. */
  stopClean = true;
  askGuestOnStop = true;
  /** A method named here throws when called. */
  failing = new Set<string>();
  requests: VmRequest[] = [];
  private exitCbs: ((why: string) => void)[] = [];

  private call(name: string): void {
    this.calls.push(name);
    if (this.failing.has(name)) throw new Error(`fake ${name} failed`);
  }

  cleanup(): void {
    this.call('cleanup');
  }

  async probe(_kernel: string): Promise<AccelProbe> {
    this.call('probe');
    return { accel: this.accel, tried: [] };
  }

  async setupShares(shares: ShareRequest[]): Promise<MountSpec[]> {
    this.call('setupShares');
    return shares.map((s, i): MountSpec => ({ tag: `vb${i}`, guest: s.guest, ro: s.readonly, fs: 'virtiofs' }));
  }

  async start(req: VmRequest): Promise<void> {
    this.call('start');
    this.requests.push(req);
    this.state = 'running';
    this.pid = 4242;
  }

  async stop(o: StopOptions): Promise<{ clean: boolean }> {
    this.call('stop');
    if (this.askGuestOnStop) o.askGuest();
    this.state = 'stopped';
    this.pid = null;
    return { clean: this.stopClean };
  }

  status(): VmStatus {
    return { state: this.state, pid: this.pid, accel: this.accel };
  }

  onExit(cb: (why: string) => void): void {
    this.exitCbs.push(cb);
  }

  /** The VM process exits by itself. */
  exit(why: string): void {
    this.state = 'exited';
    for (const cb of this.exitCbs) cb(why);
  }

  close(): void {
    this.call('close');
  }

  resumeKey(_req: VmRequest): DriverResumeKey {
    return { qemu: 'fake-qemu:1:1', argv: 'fake-argv' };
  }

  /** The device state suspend() writes (no RAM file: the VM keeps its RAM in a memfd). */
  savedBytes = Buffer.from('fake device state');

  async suspend(o: SuspendOptions): Promise<{ bytes: number; ramBytes: number | null }> {
    this.call('suspend');
    writeFileSync(o.file, this.savedBytes, { mode: 0o600 });
    this.state = 'stopped';
    this.pid = null;
    return { bytes: this.savedBytes.length, ramBytes: null };
  }

  /** Like QEMU's driver: the guest runs only once the state file is verified. */
  async resume(o: ResumeOptions): Promise<void> {
    const ok = await o.verified;
    this.call('resume');
    if (!ok) throw new Error('the saved state is not the one recorded');
    o.onLoaded?.();
  }

  async abandon(): Promise<void> {
    this.call('abandon');
  }

  async hostForward(op: 'add' | 'remove', host: number, guestPort?: number): Promise<void> {
    this.call(`hostForward ${op} ${host}${guestPort === undefined ? '' : ` ${guestPort}`}`);
  }
}
