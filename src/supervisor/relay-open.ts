// Ask the guest agent for a port-forward relay and wait (10 s) for its answer, which arrives as a
// `forward_opened` event (agent-events.ts resolves the wait). Used by the ForwardTable.
import { VibeboxError } from '../errors.js';
import { cleanLine } from './guest-text.js';
import type { Session } from './session.js';

const RELAY_WAIT_MS = 10_000;

export function openRelay(s: Session, fwdId: number, guest: number, container: string | undefined): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const agent = s.agent;
    if (!agent) return reject(new VibeboxError('E_PORT', 'the guest is not connected'));
    const t = setTimeout(() => {
      s.relayWaits.delete(fwdId);
      reject(new VibeboxError('E_PORT', `the guest did not open a relay for port ${guest} within 10 s`));
    }, RELAY_WAIT_MS);
    s.relayWaits.set(fwdId, (m) => {
      clearTimeout(t);
      s.relayWaits.delete(fwdId);
      if (m.port) resolve(m.port);
      else reject(new VibeboxError('E_PORT', `the guest could not relay port ${guest}: ${cleanLine(m.error ?? 'unknown error', 200)}`));
    });
    agent.send({ type: 'forward_open', fwdId, guest, ...(container ? { container } : {}) });
  });
}
