/**
 * Egress policy: pure functions, no I/O.
 *
 * Entry syntax (the `[network] entries` of vibebox.toml):
 *
 *   api.openai.com          exactly this host, any port
 *   .github.com             github.com and every subdomain (a.b.github.com), any port
 *   api.openai.com:443      exactly this host, only port 443 (a port may follow any form)
 *   .example.com:8443       the domain and its subdomains, only port 8443
 *   203.0.113.7             exactly this IPv4 address (IP literals match only themselves)
 *   2001:db8::1             exactly this IPv6 address (bare, no port)
 *   [2001:db8::1]:443       an IPv6 address with a port needs brackets
 *
 * An entry without a port matches every port (write `host:443` to allow HTTPS only, as the
 * defaults do). Host names are compared after normalisation:
 * lower case, one trailing dot stripped, IDNs converted to punycode (UTS #46 via node:url
 * domainToASCII), IPv4 written in any form the URL standard accepts (127.1, 0x7f000001) brought to
 * dotted quad, IPv6 brought to its canonical compressed form and its brackets stripped, and
 * IPv4-mapped (::ffff:a.b.c.d, also in hex) and IPv4-compatible (::a.b.c.d) IPv6 brought to the IPv4
 * address they name, so no check and no entry can be passed by another spelling of an address.
 * IP entries and the host's own addresses are compared by identity (NAT64 64:ff9b::/96 included).
 *
 * IP literals: a request for an IP literal only ever matches an entry that is that same address;
 * a leading-dot (suffix) rule never matches an IP, and a suffix entry made of an IP is invalid.
 * CIDR ranges are not supported.
 *
 * Whatever the policy says, these destinations are always refused (by name and by address):
 *   loopback   127.0.0.0/8, ::1, 0.0.0.0/8 and :: (which reach the host itself on Linux),
 *              `localhost` and `*.localhost`, and IPv4-mapped/compatible/NAT64 forms of those
 *   link_local 169.254.0.0/16 (cloud metadata endpoints live here), fe80::/10
 *   reserved   multicast, 240.0.0.0/4, broadcast, ff00::/8
 * Private ranges (10/8, 172.16/12, 192.168/16, 100.64/10 CGNAT, fc00::/7, fec0::/10) are refused
 * (reason `private`) unless an allowlist entry names the destination explicitly: in allowlist
 * mode the user has named it, in blocklist mode nothing has, so they are refused there.
 */
import { isIP, isIPv4, isIPv6 } from 'node:net';
import { domainToASCII, domainToUnicode } from 'node:url';
import { hasUnsafeText, shown } from '../guest/shown.js';

export type NetworkPolicy = { mode: 'allowlist' | 'blocklist'; entries: string[] };

export type Decision = {
  allowed: boolean;
  /** short snake_case code: in_allowlist, not_in_blocklist, not_in_allowlist, in_blocklist,
   *  loopback, link_local, private, reserved, host_address, bad_request */
  reason: string;
  /** the policy entry (as written) that matched, if one did */
  rule?: string;
  /** the normalised host the decision is about (the raw input when it could not be parsed) */
  host: string;
};

export type AddressClass = 'loopback' | 'link_local' | 'private' | 'reserved';

export type DecideOptions = {
  /** Only for tests of the forwarding path: treat loopback destinations like any other host.
   *  Never set this outside tests. */
  allowLoopbackForTests?: boolean;
};

/**
 * The allowlist a new project starts with: AI providers' API hosts and package registries, each
 * scoped to HTTPS (443); Debian's archive also to 80, where apt fetches by default (its files are
 * signed). An entry without a port would allow every port of the host.
 */
export const DEFAULT_ALLOWLIST: readonly string[] = Object.freeze([
  // Anthropic (Claude Code: API, login)
  'api.anthropic.com:443',
  'console.anthropic.com:443',
  'claude.ai:443',
  // OpenAI (API, Codex CLI login and ChatGPT-backed Codex)
  'api.openai.com:443',
  'auth.openai.com:443',
  'chatgpt.com:443',
  // Google (Gemini API, Gemini CLI code-assist backend and OAuth token exchange)
  'generativelanguage.googleapis.com:443',
  'cloudcode-pa.googleapis.com:443',
  'oauth2.googleapis.com:443',
  // other model providers agents commonly use
  'api.mistral.ai:443',
  'api.groq.com:443',
  'api.deepseek.com:443',
  'api.x.ai:443',
  'openrouter.ai:443',
  // npm
  'registry.npmjs.org:443',
  '.npmjs.org:443',
  'registry.yarnpkg.com:443',
  // PyPI
  'pypi.org:443',
  'files.pythonhosted.org:443',
  // Debian (apt uses http:// by default)
  'deb.debian.org:443',
  'deb.debian.org:80',
  'security.debian.org:443',
  'security.debian.org:80',
  // GitHub (git over HTTPS, API, release assets, raw files)
  '.github.com:443',
  '.githubusercontent.com:443',
]);

/** A fresh copy of the default policy for a new project. */
export function defaultNetworkPolicy(): NetworkPolicy {
  return { mode: 'allowlist', entries: [...DEFAULT_ALLOWLIST] };
}

// ---------------------------------------------------------------------------------------------
// host normalisation

const FORBIDDEN_HOST_CHARS = /[\s/\\?#@%:[\]<>^|"'`{}*,;=!$&()+~]/u;
const LABEL = /^[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?$/;

/**
 * Canonical form of a host name or IP literal, or null when it is not a valid host.
 * Accepts `[v6]`, Unicode names, one trailing dot, any case.
 */
export function normalizeHost(input: string): string | null {
  let h = input;
  if (h.startsWith('[') && h.endsWith(']')) {
    h = h.slice(1, -1);
    if (!isIPv6(h)) return null;
  }
  if (h.includes(':')) {
    if (!isIPv6(h) || h.includes('%')) return null; // zone ids are not destinations we forward to
    let v6: string;
    try {
      v6 = new URL(`http://[${h}]/`).hostname.slice(1, -1);
    } catch {
      return null;
    }
    // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible) name an IPv4 host: every check and every
    // entry sees that IPv4 address, whatever the spelling ([::ffff:c000:202] is 192.0.2.2).
    return embeddedIPv4(v6, false) ?? v6;
  }
  if (h.endsWith('.')) h = h.slice(0, -1);
  if (h === '' || h.length > 253 * 4) return null;
  // domainToASCII is lenient about URL syntax (it cuts at '/', decodes '%41'): refuse those first.
  if (FORBIDDEN_HOST_CHARS.test(h) || /\p{Cc}/u.test(h)) return null;
  const ascii = domainToASCII(h);
  if (ascii === '') return null;
  if (isIPv4(ascii)) return ascii;
  // A punycode label that does not decode: Node 20 refuses it ('' above), Node 22+ passes it
  // through unchanged. Refuse it on every Node: the name must survive the round trip.
  const unicode = domainToUnicode(ascii);
  if (unicode.split('.').some((l) => l.startsWith('xn--')) || domainToASCII(unicode) !== ascii) return null;
  if (ascii.length > 253) return null;
  const labels = ascii.split('.');
  for (const label of labels) {
    if (label.length === 0 || label.length > 63 || !LABEL.test(label)) return null;
  }
  return ascii;
}

// ---------------------------------------------------------------------------------------------
// entries

export type ParsedEntry = {
  raw: string;
  /** normalised host (for a suffix rule: the domain, without the leading dot) */
  host: string;
  suffix: boolean;
  ip: boolean;
  port?: number;
};

function parsePort(s: string): number | null {
  if (!/^\d{1,5}$/.test(s)) return null;
  const n = Number(s);
  return n >= 1 && n <= 65535 ? n : null;
}

/** Parse one policy entry; a string is the error text for a malformed entry. */
export function parseEntry(entry: string): ParsedEntry | string {
  const s = entry.trim();
  // `vibebox allow` prints these on the terminal: the entry is quoted escaped.
  const q = `"${shown(entry)}"`;
  if (s === '') return 'empty entry';
  // A zero-width character vanishes in IDN mapping (a\u200bb.com is ab.com): what the reviewer
  // reads must be what the proxy matches.
  if (hasUnsafeText(s)) return `${q} contains a control, bidi or zero-width character`;
  if (s.includes('://')) {
    return `${q} looks like a URL: write only the host name, e.g. "example.com"`;
  }
  if (s.includes('/')) return `${q}: paths and CIDR ranges are not supported, write a host or one IP`;
  if (s.startsWith('*.')) {
    return `${q}: use a leading dot (".${shown(s.slice(2))}") for a domain and all its subdomains`;
  }
  if (s.includes('*')) return `${q}: wildcards are not supported (use a leading dot for subdomains)`;
  const suffix = s.startsWith('.');
  const body = suffix ? s.slice(1) : s;
  let hostPart = body;
  let port: number | undefined;
  if (body.startsWith('[')) {
    const close = body.indexOf(']');
    if (close < 0) return `${q}: missing "]" after an IPv6 address`;
    hostPart = body.slice(0, close + 1);
    const rest = body.slice(close + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) return `${q}: unexpected text after "]"`;
      const p = parsePort(rest.slice(1));
      if (p === null) return `${q}: port must be a number from 1 to 65535`;
      port = p;
    }
  } else {
    const colons = body.split(':').length - 1;
    if (colons === 1) {
      const i = body.indexOf(':');
      hostPart = body.slice(0, i);
      const p = parsePort(body.slice(i + 1));
      if (p === null) return `${q}: port must be a number from 1 to 65535`;
      port = p;
    } else if (colons > 1 && !isIPv6(body)) {
      return `${q} is not a valid host, IP address or host:port`;
    }
  }
  if (hostPart === '') return `${q}: missing host name`;
  const host = normalizeHost(hostPart);
  if (host === null) return `${q} is not a valid host name or IP address`;
  const ip = isIP(host) !== 0;
  // The URL standard reads 010.1.1.1 as 8.1.1.1 and 1.2.3 as 1.2.0.3: an entry whose address the
  // reviewer would read differently from the proxy is refused, with the address the proxy sees.
  if (ip && isIPv4(host) && !hostPart.includes(':') && hostPart.replace(/\.$/, '') !== host) {
    return `${q}: write the IPv4 address as four decimal numbers without leading zeros (this spelling is ${host})`;
  }
  if (suffix && ip) return `${q}: a leading dot needs a domain name, not an IP address`;
  if (suffix && hostPart.startsWith('.')) return `${q}: only one leading dot is allowed`;
  const parsed: ParsedEntry = { raw: entry, host, suffix, ip };
  if (port !== undefined) parsed.port = port;
  return parsed;
}

/** Error text for a malformed entry, or null when the entry is valid. */
export function validateEntry(entry: string): string | null {
  const r = parseEntry(entry);
  return typeof r === 'string' ? r : null;
}

function entryMatches(e: ParsedEntry, host: string, hostIsIP: boolean, port: number): boolean {
  if (e.port !== undefined && e.port !== port) return false;
  if (e.ip || hostIsIP) return e.ip && hostIsIP && addressIdentity(e.host) === addressIdentity(host);
  if (e.suffix) return host === e.host || host.endsWith(`.${e.host}`);
  return host === e.host;
}

/** The first entry of the policy that matches (malformed entries never match), or undefined. */
export function matchEntry(policy: NetworkPolicy, host: string, port: number): string | undefined {
  const h = normalizeHost(host);
  if (h === null) return undefined;
  const hostIsIP = isIP(h) !== 0;
  for (const raw of policy.entries) {
    const e = parseEntry(raw);
    if (typeof e === 'string') continue;
    if (entryMatches(e, h, hostIsIP, port)) return raw;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// addresses

function parseIPv4(ip: string): number[] | null {
  if (!isIPv4(ip)) return null;
  return ip.split('.').map(Number);
}

/** 16 bytes of an IPv6 address (accepts embedded IPv4 and `::`), or null. */
function parseIPv6(input: string): number[] | null {
  let ip = input;
  if (ip.startsWith('[') && ip.endsWith(']')) ip = ip.slice(1, -1);
  const zone = ip.indexOf('%');
  if (zone >= 0) ip = ip.slice(0, zone);
  if (!isIPv6(ip)) return null;
  let tail: number[] = [];
  const lastColon = ip.lastIndexOf(':');
  const lastPart = ip.slice(lastColon + 1);
  if (lastPart.includes('.')) {
    const v4 = parseIPv4(lastPart);
    if (v4 === null) return null;
    tail = v4;
    ip = `${ip.slice(0, lastColon + 1)}0:0`;
  }
  const [headStr, restStr] = ip.split('::') as [string, string | undefined];
  const toGroups = (s: string): number[] => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const head = toGroups(headStr);
  const rest = restStr === undefined ? [] : toGroups(restStr);
  const fill = restStr === undefined ? 0 : 8 - head.length - rest.length;
  const groups = [...head, ...new Array<number>(fill).fill(0), ...rest];
  if (groups.length !== 8) return null;
  const bytes: number[] = [];
  for (const g of groups) bytes.push((g >> 8) & 0xff, g & 0xff);
  if (tail.length === 4) bytes.splice(12, 4, ...tail);
  return bytes;
}

/**
 * The IPv4 address an IPv6 address stands for: IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible
 * (::a.b.c.d, but not :: or ::1) and, when `nat64` is set, the NAT64 well-known prefix
 * (64:ff9b::a.b.c.d, which a NAT64 gateway forwards to that IPv4 address). Null otherwise.
 */
export function embeddedIPv4(ip: string, nat64 = true): string | null {
  if (isIPv4(ip)) return null;
  const b = parseIPv6(ip);
  if (b === null) return null;
  const zeroTo = (n: number): boolean => b.slice(0, n).every((x) => x === 0);
  const mapped = zeroTo(10) && b[10] === 0xff && b[11] === 0xff;
  const compat = zeroTo(12) && !(zeroTo(15) && (b[15] === 0 || b[15] === 1));
  const isNat64 =
    nat64 && b[0] === 0x00 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && b.slice(4, 12).every((x) => x === 0);
  return mapped || compat || isNat64 ? b.slice(12).join('.') : null;
}

/** One spelling per destination: the embedded IPv4 address of mapped/compatible/NAT64 forms,
 *  else the canonical form; null when `ip` is not an address. */
export function addressIdentity(ip: string): string | null {
  const n = normalizeHost(ip.split('%')[0] ?? ip);
  if (n === null || isIP(n) === 0) return null;
  return embeddedIPv4(n) ?? n;
}

function classifyV4(b: number[]): AddressClass | null {
  const [a = 0, c = 0] = b;
  if (a === 127 || a === 0) return 'loopback';
  if (a === 169 && c === 254) return 'link_local';
  if (a === 10) return 'private';
  if (a === 172 && c >= 16 && c <= 31) return 'private';
  if (a === 192 && c === 168) return 'private';
  if (a === 100 && c >= 64 && c <= 127) return 'private';
  if (a >= 224) return 'reserved'; // multicast, 240/4, broadcast
  return null;
}

/** What kind of special destination an IP address is; null for an ordinary public address. */
export function classifyAddress(ip: string): AddressClass | null {
  const v4 = parseIPv4(ip);
  if (v4 !== null) return classifyV4(v4);
  const b = parseIPv6(ip);
  if (b === null) return 'reserved'; // not an address at all: never connect to it
  const zeroTo = (n: number): boolean => b.slice(0, n).every((x) => x === 0);
  if (zeroTo(15) && (b[15] === 0 || b[15] === 1)) return 'loopback'; // :: and ::1
  // IPv4-mapped ::ffff:a.b.c.d, IPv4-compatible ::a.b.c.d, NAT64 64:ff9b::a.b.c.d
  const mapped = zeroTo(10) && b[10] === 0xff && b[11] === 0xff;
  const compat = zeroTo(12);
  const nat64 =
    b[0] === 0x00 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && b.slice(4, 12).every((x) => x === 0);
  if (mapped || compat || nat64) return classifyV4(b.slice(12));
  const b0 = b[0] ?? 0;
  const b1 = b[1] ?? 0;
  if (b0 === 0xfe && (b1 & 0xc0) === 0x80) return 'link_local'; // fe80::/10
  if (b0 === 0xfe && (b1 & 0xc0) === 0xc0) return 'private'; // fec0::/10 (deprecated site-local)
  if ((b0 & 0xfe) === 0xfc) return 'private'; // fc00::/7 unique local
  if (b0 === 0xff) return 'reserved'; // multicast
  return null;
}

function isLocalhostName(h: string): boolean {
  return h === 'localhost' || h.endsWith('.localhost');
}

// ---------------------------------------------------------------------------------------------
// decisions

/**
 * Decide on a request for host:port from the name alone (before DNS).
 * The server must also call `checkResolved` on the addresses the name resolves to.
 */
export function decide(policy: NetworkPolicy, host: string, port: number, opts: DecideOptions = {}): Decision {
  const h = normalizeHost(host);
  if (h === null) return { allowed: false, reason: 'bad_request', host };
  if (!Number.isInteger(port) || port < 1 || port > 65535) return { allowed: false, reason: 'bad_request', host: h };
  const testLoopback = opts.allowLoopbackForTests === true;
  const hostIsIP = isIP(h) !== 0;
  let cls: AddressClass | null = null;
  if (hostIsIP) cls = classifyAddress(h);
  else if (isLocalhostName(h)) cls = 'loopback';
  if (cls === 'loopback' && testLoopback) cls = null;
  if (cls === 'loopback' || cls === 'link_local' || cls === 'reserved') return { allowed: false, reason: cls, host: h };

  const rule = matchEntry(policy, h, port);
  if (policy.mode === 'allowlist') {
    if (rule !== undefined) return { allowed: true, reason: 'in_allowlist', rule, host: h };
    return { allowed: false, reason: 'not_in_allowlist', host: h };
  }
  if (rule !== undefined) return { allowed: false, reason: 'in_blocklist', rule, host: h };
  if (cls === 'private') return { allowed: false, reason: 'private', host: h };
  return { allowed: true, reason: 'not_in_blocklist', host: h };
}

export type ResolvedCheckOptions = DecideOptions & {
  /** The host machine's own interface addresses: refused like loopback (reason host_address). */
  hostAddresses?: Iterable<string>;
};

/**
 * Re-check an allowed decision against every address its name resolved to. Refuses when ANY
 * address is loopback / link-local / reserved / one of the host's own addresses, or private
 * without an explicit allowlist entry. Returns the (possibly changed) decision.
 */
export function checkResolved(
  policy: NetworkPolicy,
  decision: Decision,
  addresses: readonly string[],
  opts: ResolvedCheckOptions = {},
): Decision {
  if (!decision.allowed) return decision;
  if (addresses.length === 0) return { ...decision, allowed: false, reason: 'bad_request' };
  const testLoopback = opts.allowLoopbackForTests === true;
  const own = new Set<string>();
  for (const a of opts.hostAddresses ?? []) {
    const n = addressIdentity(a);
    if (n !== null) own.add(n);
  }
  const explicit = policy.mode === 'allowlist' && decision.rule !== undefined;
  for (const addr of addresses) {
    const cls = classifyAddress(addr);
    if (cls === 'loopback') {
      if (testLoopback) continue;
      return { ...decision, allowed: false, reason: 'loopback' };
    }
    if (cls === 'link_local' || cls === 'reserved') return { ...decision, allowed: false, reason: cls };
    const n = addressIdentity(addr);
    if (n !== null && own.has(n)) return { ...decision, allowed: false, reason: 'host_address' };
    if (cls === 'private' && !explicit) return { ...decision, allowed: false, reason: 'private' };
  }
  return decision;
}
