// The session's port forwards: host 127.0.0.1:H → QEMU hostfwd → the guest agent's
// relay port → 127.0.0.1:G in the VM, or G of a container. The table outlives a suspend (the
// guest's relays do too; QEMU's hostfwd rules do not, so reopen() adds them again) and dies with
// the supervisor: forwards never outlive the session.
import { VibeboxError } from '../errors.js';

export type ForwardOrigin = 'config' | 'session' | 'kit';

export interface ForwardSpec {
  host: number;
  guest: number;
  origin: ForwardOrigin;
  /** Where a connection goes when nothing in the VM listens on `guest` (default: the agent container). */
  container?: string;
}

export interface ForwardEntry extends ForwardSpec {
  state: 'pending' | 'open' | 'failed';
  error?: string;
}

export interface ForwardDeps {
  /** Ask the guest agent for a relay; resolves with its port in the VM. */
  openRelay(fwdId: number, guest: number, container: string | undefined): Promise<number>;
  closeRelay(fwdId: number): void;
  hostfwd(op: 'add' | 'remove', host: number, guestPort?: number): Promise<void>;
  log(line: string): void;
}

/** Pure: what is wrong with adding `want` next to `have` (null: nothing). */
export function forwardConflict(have: readonly ForwardSpec[], want: ForwardSpec): VibeboxError | null {
  const same = have.find((f) => f.host === want.host);
  if (!same) return null;
  if (same.guest === want.guest && (same.container ?? null) === (want.container ?? null)) return null;
  return new VibeboxError('E_PORT_IN_USE', `host port 127.0.0.1:${want.host} is already forwarded to guest port ${same.guest}`, `pick another host port: vibebox port ${want.guest} <host-port>`);
}

export class ForwardTable {
  private readonly entries = new Map<number, ForwardEntry & { fwdId: number }>();
  private nextId = 1;
  constructor(private readonly deps: ForwardDeps) {}

  list(): ForwardEntry[] {
    return [...this.entries.values()].map(({ fwdId: _f, ...e }) => ({ ...e })).sort((a, b) => a.host - b.host);
  }

  /** Open one forward now; throws a VibeboxError (E_PORT_IN_USE for a taken host port). */
  async add(spec: ForwardSpec): Promise<ForwardEntry> {
    const conflict = forwardConflict([...this.entries.values()].filter((e) => e.state !== 'failed'), spec);
    if (conflict) throw conflict;
    const existing = this.entries.get(spec.host);
    if (existing && existing.state === 'open') return { ...existing };
    if (existing) this.entries.delete(spec.host);
    const e = { ...spec, state: 'pending' as const, fwdId: this.nextId++ };
    this.entries.set(spec.host, e);
    try {
      await this.openOne(e);
      return { ...this.entries.get(spec.host)! };
    } catch (err) {
      this.entries.delete(spec.host);
      this.deps.closeRelay(e.fwdId);
      throw err;
    }
  }

  /** Config forwards: opened at boot; a failure is kept (shown by explain), not fatal. */
  async addAll(specs: readonly ForwardSpec[]): Promise<void> {
    for (const s of specs) {
      try {
        await this.add(s);
      } catch (err) {
        const msg = (err as Error).message;
        this.deps.log(`forward 127.0.0.1:${s.host} → ${s.guest}: ${msg}`);
        this.entries.set(s.host, { ...s, state: 'failed', error: msg, fwdId: this.nextId++ });
      }
    }
  }

  async remove(host: number): Promise<boolean> {
    const e = this.entries.get(host);
    if (!e) return false;
    this.entries.delete(host);
    if (e.state === 'open') await this.deps.hostfwd('remove', host).catch((err: Error) => this.deps.log(`forward ${host}: ${err.message}`));
    this.deps.closeRelay(e.fwdId);
    return true;
  }

  /** After a resume (a new QEMU): the guest's relays are still there, the hostfwd rules are not. */
  async reopen(): Promise<void> {
    for (const e of this.entries.values()) {
      if (e.state === 'failed') continue;
      try {
        await this.openOne(e);
      } catch (err) {
        e.state = 'failed';
        e.error = (err as Error).message;
        this.deps.log(`forward 127.0.0.1:${e.host} → ${e.guest}: ${e.error}`);
      }
    }
  }

  private async openOne(e: ForwardEntry & { fwdId: number }): Promise<void> {
    const relay = await this.deps.openRelay(e.fwdId, e.guest, e.container);
    await this.deps.hostfwd('add', e.host, relay);
    e.state = 'open';
    delete e.error;
    this.deps.log(`forward 127.0.0.1:${e.host} → guest ${e.guest}${e.container ? ` (${e.container})` : ''} via relay port ${relay}`);
  }
}
