// Which destinations a wanted network policy makes reachable that the approved one did not (pure).
// Policies are compared by meaning — the (host, port) pairs each lets through, as the proxy decides
// them (proxy/policy.ts) — never as strings: a mode switch, a port, a subdomain or another spelling
// of an address cannot slip past the approval.
import { shown } from '../../guest/shown.js';
import { addressIdentity, classifyAddress, parseEntry, type NetworkPolicy, type ParsedEntry } from '../../proxy/policy.js';

function parsed(entries: readonly string[]): ParsedEntry[] {
  const out: ParsedEntry[] = [];
  for (const raw of entries) {
    const e = parseEntry(raw);
    if (typeof e !== 'string') out.push(e); // a malformed entry matches nothing in the proxy
  }
  return out;
}

/**
 * An entry as the prompt shows it: escaped, and with the name the proxy matches when it is written
 * in Unicode (аpple.com with a Cyrillic а reads as apple.com; xn--pple-43d.com does not).
 */
function label(e: ParsedEntry): string {
  return /[^\x00-\x7f]/.test(e.raw) ? `${shown(e.raw)} (${e.suffix ? '.' : ''}${e.host}${e.port !== undefined ? `:${e.port}` : ''})` : shown(e.raw);
}

function sameAddress(a: ParsedEntry, b: ParsedEntry): boolean {
  return a.ip && b.ip && addressIdentity(a.host) === addressIdentity(b.host);
}

/** Within `d` (the domain itself or a subdomain of it). */
function under(host: string, d: string): boolean {
  return host === d || host.endsWith(`.${d}`);
}

/** Every (host, port) that `w` matches is matched by `a`. */
export function covers(a: ParsedEntry, w: ParsedEntry): boolean {
  if (a.port !== undefined && a.port !== w.port) return false; // w without a port is every port
  if (a.ip || w.ip) return sameAddress(a, w);
  if (a.suffix) return under(w.host, a.host);
  return !w.suffix && w.host === a.host;
}

/** Some (host, port) is matched by both. */
export function overlaps(a: ParsedEntry, b: ParsedEntry): boolean {
  if (a.port !== undefined && b.port !== undefined && a.port !== b.port) return false;
  if (a.ip || b.ip) return sameAddress(a, b);
  if (a.suffix && b.suffix) return under(a.host, b.host) || under(b.host, a.host);
  if (a.suffix) return under(b.host, a.host);
  if (b.suffix) return under(a.host, b.host);
  return a.host === b.host;
}

/** The proxy refuses these whatever the policy says (loopback, link-local, reserved). */
function alwaysRefused(e: ParsedEntry): boolean {
  if (e.ip) {
    const c = classifyAddress(e.host);
    return c === 'loopback' || c === 'link_local' || c === 'reserved';
  }
  return under(e.host, 'localhost');
}

function isPrivateIP(e: ParsedEntry): boolean {
  return e.ip && classifyAddress(e.host) === 'private';
}

/**
 * One line per way `wanted` reaches further than `approved`; empty when it reaches nothing new
 * (narrowing, or the same meaning written differently). A mode switch is named in its lines.
 */
export function networkWidenings(approved: NetworkPolicy, wanted: NetworkPolicy): string[] {
  const a = parsed(approved.entries);
  const w = parsed(wanted.entries);
  const out: string[] = [];
  if (wanted.mode === 'blocklist' && approved.mode === 'allowlist') {
    // everything not listed becomes reachable: wider than any finite allowlist
    const blocking = wanted.entries.length ? `, blocking only ${wanted.entries.map(shown).join(', ')}` : '';
    return [`+ network: blocklist mode (was allowlist): everything not listed is reachable${blocking}`];
  }
  if (wanted.mode === 'allowlist' && approved.mode === 'allowlist') {
    for (const e of w) {
      if (alwaysRefused(e) || a.some((x) => covers(x, e))) continue;
      out.push(`+ network: allow ${label(e)}`);
    }
    return out;
  }
  if (wanted.mode === 'allowlist') {
    // approved blocklist: reachable was everything public not blocked; private addresses were refused
    for (const e of w) {
      if (alwaysRefused(e)) continue;
      const blockedBy = a.find((x) => overlaps(x, e));
      if (blockedBy) out.push(`+ network: allowlist mode (was blocklist) allows ${label(e)}, which the approved blocklist blocked (${label(blockedBy)})`);
      else if (isPrivateIP(e)) out.push(`+ network: allowlist mode (was blocklist) allows ${label(e)}, a private address the approved blocklist refused`);
    }
    return out;
  }
  // both blocklists: whatever the approved list blocked must stay blocked
  for (const e of a) {
    if (alwaysRefused(e) || isPrivateIP(e)) continue; // unreachable in blocklist mode anyway
    if (!w.some((x) => covers(x, e))) out.push(`+ network: stop blocking ${label(e)}`);
  }
  return out;
}
