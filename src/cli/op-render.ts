// The results of container ops as the host prints them. Every string in a result came from the
// guest (a version a container printed, a diff the VM rendered, a kit's label): escaped here.
// Pure (docs/architecture.md, Walls: hostile text).
import { agentsTable, type AgentRow } from '../../guest/containers/agents.js';
import { jsonShown, shown } from '../../guest/shown.js';
import type { OpResult } from '../../guest/protocol.js';
import { VibeboxError } from '../errors.js';

/** The result of the kind an op answers, or an error saying the guest answered something else. */
export function expectKind<K extends OpResult['kind']>(r: OpResult, kind: K): Extract<OpResult, { kind: K }> {
  if (r.kind !== kind) throw new VibeboxError('E_PROTOCOL', `the guest answered ${r.kind} to an operation expecting ${kind}`, 'see .vibebox/supervisor.log');
  return r as Extract<OpResult, { kind: K }>;
}

/** A text the VM rendered for review (a diff, a changes summary): every line escaped, newlines kept. */
export function reviewText(text: string): string {
  return text.split('\n').map(shown).join('\n');
}

export function agentsText(rows: readonly AgentRow[], json: boolean): string {
  return json ? `${jsonShown(rows)}\n` : agentsTable(rows);
}
