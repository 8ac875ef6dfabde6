/**
 * Credential injection rules (pure): which header of which host carries which key of
 * ~/.vibebox/.env, and the swap of a session's placeholder for the real value
 * (README, Security model). The guest only ever holds the placeholder; the host proxy puts the
 * real value in on the way out, for the rule's host only.
 */
import type { IncomingHttpHeaders } from 'node:http';

export type InjectionFormat = 'raw' | 'bearer' | 'basic';

export type InjectionRule = {
  /** shown in the log and by `vibebox explain` */
  name: string;
  /** exact host name (lower case), reached on port 443 */
  host: string;
  /** header name, lower case */
  header: string;
  /** raw: the header is the key; bearer: `Bearer <key>` (or `token <key>`); basic: the key is the user or the password of `Basic base64(user:password)` (git over HTTPS) */
  format: InjectionFormat;
  /** the key's name in ~/.vibebox/.env */
  env: string;
  /** what the placeholder starts with, so agent CLIs that check a key's shape accept it */
  prefix: string;
  /** random characters after the prefix */
  length: number;
  builtin: boolean;
};

/** A key the proxy may put in: the session's placeholder and the real value (host memory only). */
export type Credential = { env: string; placeholder: string; value: string };

const b = (name: string, host: string, header: string, format: InjectionFormat, env: string, prefix: string, length = 48): InjectionRule => ({
  name,
  host,
  header,
  format,
  env,
  prefix,
  length,
  builtin: true,
});

/** The bundled agents' providers and GitHub (the API, and git over HTTPS with the token as password). */
export const BUILTIN_RULES: readonly InjectionRule[] = [
  b('anthropic', 'api.anthropic.com', 'x-api-key', 'raw', 'ANTHROPIC_API_KEY', 'sk-ant-api03-', 95),
  b('anthropic-token', 'api.anthropic.com', 'authorization', 'bearer', 'ANTHROPIC_AUTH_TOKEN', 'sk-ant-oat01-', 95),
  b('openai', 'api.openai.com', 'authorization', 'bearer', 'OPENAI_API_KEY', 'sk-proj-', 120),
  b('google', 'generativelanguage.googleapis.com', 'x-goog-api-key', 'raw', 'GEMINI_API_KEY', 'AIza', 35),
  b('google', 'generativelanguage.googleapis.com', 'x-goog-api-key', 'raw', 'GOOGLE_API_KEY', 'AIza', 35),
  b('openrouter', 'openrouter.ai', 'authorization', 'bearer', 'OPENROUTER_API_KEY', 'sk-or-v1-', 64),
  b('github-api', 'api.github.com', 'authorization', 'bearer', 'GH_TOKEN', 'ghp_', 36),
  b('github-api', 'api.github.com', 'authorization', 'bearer', 'GITHUB_TOKEN', 'ghp_', 36),
  b('github-git', 'github.com', 'authorization', 'basic', 'GH_TOKEN', 'ghp_', 36),
  b('github-git', 'github.com', 'authorization', 'basic', 'GITHUB_TOKEN', 'ghp_', 36),
];

/** The rules for `host` that have a credential, with it. */
export function matching(host: string, rules: readonly InjectionRule[], creds: ReadonlyMap<string, Credential>): { rule: InjectionRule; cred: Credential }[] {
  const out: { rule: InjectionRule; cred: Credential }[] = [];
  for (const rule of rules) {
    if (rule.host !== host) continue;
    const cred = creds.get(rule.env);
    if (cred) out.push({ rule, cred });
  }
  return out;
}

/** The header value with the placeholder replaced, or null when it does not carry the placeholder in the rule's form. */
export function swapValue(value: string, rule: InjectionRule, cred: Credential): string | null {
  // a value that could end the header line is never put in (it would forge headers)
  if (/[\x00-\x1f\x7f]/.test(cred.value) || cred.value === '') return null;
  if (rule.format === 'raw') return value.trim() === cred.placeholder ? cred.value : null;
  const m = /^([A-Za-z]+)[ \t]+(\S+)[ \t]*$/.exec(value);
  if (!m) return null;
  const scheme = m[1]!;
  const token = m[2]!;
  if (rule.format === 'bearer') {
    if (!/^(bearer|token)$/i.test(scheme) || token !== cred.placeholder) return null;
    return `${scheme} ${cred.value}`;
  }
  if (!/^basic$/i.test(scheme)) return null;
  const plain = Buffer.from(token, 'base64').toString('utf8');
  const colon = plain.indexOf(':');
  if (colon < 0) return null;
  const user = plain.slice(0, colon);
  const pass = plain.slice(colon + 1);
  if (pass === cred.placeholder) return `${scheme} ${Buffer.from(`${user}:${cred.value}`).toString('base64')}`;
  if (user === cred.placeholder) return `${scheme} ${Buffer.from(`${cred.value}:${pass}`).toString('base64')}`;
  return null;
}

/**
 * Headers for upstream: where a rule's header carries that rule's placeholder, the real value;
 * everything else unchanged (a placeholder elsewhere goes out as it came). Returns the names of
 * the rules that injected.
 */
export function injectHeaders(
  headers: IncomingHttpHeaders,
  host: string,
  rules: readonly InjectionRule[],
  creds: ReadonlyMap<string, Credential>,
): { headers: IncomingHttpHeaders; injected: string[] } {
  const out: IncomingHttpHeaders = { ...headers };
  const injected: string[] = [];
  for (const { rule, cred } of matching(host, rules, creds)) {
    const v = out[rule.header];
    if (typeof v !== 'string') continue;
    const swapped = swapValue(v, rule, cred);
    if (swapped === null) continue;
    out[rule.header] = swapped;
    if (!injected.includes(rule.name)) injected.push(rule.name);
  }
  return { headers: out, injected };
}

/** Hosts the proxy terminates TLS for: those of the rules that have a credential. */
export function interceptedHosts(rules: readonly InjectionRule[], creds: ReadonlyMap<string, Credential>): Set<string> {
  return new Set(rules.filter((r) => creds.has(r.env)).map((r) => r.host));
}
