// What a vibebox.toml asks for beyond what the user approved (pure). Narrowing is free; widening
// needs the user's yes on the host, because the guest can write the project's vibebox.toml.
import { matchEntry, type NetworkPolicy } from '../../proxy/policy.js';

export interface Grant {
  network: NetworkPolicy;
  mounts: { host: string; guest: string; mode: 'ro' | 'rw' }[];
}

export function widenings(approved: Grant, wanted: Grant): string[] {
  const out: string[] = [];
  for (const m of wanted.mounts) {
    const same = approved.mounts.find((a) => a.host === m.host && a.guest === m.guest);
    if (!same) out.push(`+ mount ${m.host} → ${m.guest} (${m.mode})`);
    else if (same.mode === 'ro' && m.mode === 'rw') out.push(`+ mount ${m.host} → ${m.guest} becomes writable (rw)`);
  }
  const a = approved.network;
  const w = wanted.network;
  if (a.mode === 'allowlist' && w.mode === 'blocklist') {
    out.push(`+ network: blocklist mode (everything not listed is reachable)${w.entries.length ? `, blocking ${w.entries.join(', ')}` : ''}`);
  } else if (w.mode === 'allowlist') {
    // Every wanted entry must already be allowed by the approved list (as written).
    for (const e of w.entries) {
      if (a.mode === 'allowlist' && a.entries.includes(e)) continue;
      if (a.mode === 'allowlist' && !e.startsWith('.') && matchEntry(a, e.replace(/:\d+$/, ''), 443) !== undefined) continue;
      if (a.mode === 'blocklist' && !a.entries.some((b) => b === e)) continue;
      out.push(`+ network: allow ${e}`);
    }
  } else {
    // Both blocklists: un-blocking something is wider.
    for (const e of a.entries) if (!w.entries.includes(e)) out.push(`+ network: stop blocking ${e}`);
  }
  return out;
}
