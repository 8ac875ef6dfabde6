// `vibebox stack status` as the host prints it, from the guest's typed answer. Everything in it
// is text from the stack (names, images, Docker's errors): escaped. Pure.
import type { StackStatusResult } from '../protocol.js';
import { shown } from '../shown.js';

export function renderStatus(s: StackStatusResult): string {
  const lines: string[] = [];
  if (!s.live) lines.push('No stack applied.');
  else {
    lines.push(`Stack${s.down ? ' (down: vibebox stack apply brings it up)' : ''}:`);
    const rows = s.services.map((x) => ({ name: shown(x.name), health: shown(x.health ?? x.state), image: shown(x.image) }));
    const w = Math.max(7, ...rows.map((x) => x.name.length));
    for (const x of rows) lines.push(`  ${x.name.padEnd(w)}  ${x.health.padEnd(9)}  ${x.image}`);
  }
  if (s.last_apply) lines.push(`Last apply: ${shown(s.last_apply.status)} at ${shown(s.last_apply.time)}${s.last_apply.reason ? `: ${shown(s.last_apply.reason)}` : ''}`);
  if (s.proposed) lines.push(`Proposal ${shown(s.proposed.hash)} from ${shown(s.proposed.time)} is waiting: vibebox stack diff, then vibebox stack apply`);
  return `${lines.join('\n')}\n`;
}
