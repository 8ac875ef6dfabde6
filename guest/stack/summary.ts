// The stack section of `:explain`, from the controller's state file on the VM disk:
// services, whether the stack is down, the last apply and a waiting proposal. Pure.
import { parseStackState } from './state.js';

export function stackSummary(json: string | null): string {
  const lines = ['', 'stack (services the agent proposed; apply/down/destroy only from the host: vibebox stack …):'];
  if (json === null) return [...lines, '  none proposed or applied'].join('\n') + '\n';
  const r = parseStackState(json);
  if (!r.ok) return [...lines, `  unreadable: ${r.message}`].join('\n') + '\n';
  const s = r.state;
  if (s.live) {
    lines.push(`  services${s.down ? ' (down)' : ''}: ${s.live.services.map((x) => `${x.name} (${x.image.ref})`).join(', ')}`);
    lines.push('  on the internal network vibebox-stack (no way out), reached by name from the agent container');
  } else lines.push('  no services applied');
  const l = s.last_apply;
  if (l) lines.push(`  last apply: ${l.status} at ${l.time}${l.reason ? `: ${l.reason}` : ''}`);
  if (s.proposed) lines.push(`  proposal from ${s.proposed.time}: ${s.proposed.manifest.services.map((x) => x.name).join(', ')} (vibebox stack diff)`);
  return lines.join('\n') + '\n';
}
