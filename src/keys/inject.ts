// Which keys of ~/.vibebox/.env the host proxy puts in on the way out, and the placeholders the
// guest gets instead (README, Security model). Rules: the built-in ones (proxy/inject.ts) and
// the user's own in ~/.vibebox/inject.toml, a host file no guest can reach. Placeholders are
// derived per session from a host secret (HMAC), so a resumed VM, whose processes hold the ones of
// its first boot, still matches after the supervisor restarted.
import { createHmac, randomBytes } from 'node:crypto';
import { closeSync, lstatSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import TOML from '@iarna/toml';
import { z } from 'zod';
import { VibeboxCa } from '../../proxy/ca.js';
import { BUILTIN_RULES, type Credential, type InjectionRule } from '../../proxy/inject.js';
import type { InterceptConfig } from '../../proxy/intercept.js';
import { decide, type NetworkPolicy } from '../../proxy/policy.js';
import { VibeboxError } from '../errors.js';
import { vibeboxHome } from '../paths.js';
import { keysFile, readKeys } from './env-file.js';
import { gitCredentialEnv } from './git-credential.js';

export const rulesFile = (home: string = vibeboxHome()): string => join(home, 'inject.toml');
export const caDir = (home: string = vibeboxHome()): string => join(home, 'ca');

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const HOST = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$/;
const HEADER = /^[a-z0-9][a-z0-9-]{0,63}$/;
// Headers that frame or route the request: a key there would be a smuggling tool, not a credential.
const FORBIDDEN_HEADERS = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'upgrade', 'te', 'trailer', 'keep-alive', 'proxy-authorization', 'cookie']);

const UserRule = z
  .object({
    env: z.string().regex(NAME, 'env must be a variable name'),
    host: z.string().transform((h) => h.toLowerCase()).pipe(z.string().regex(HOST, 'host must be a DNS name (no IP address, no port, no wildcard)').refine((h) => !/\.\d+$/.test(h), 'host must be a DNS name (no IP address, no port, no wildcard)')),
    header: z.string().transform((h) => h.toLowerCase()).pipe(z.string().regex(HEADER, 'header must be a header name')).refine((h) => !FORBIDDEN_HEADERS.has(h), 'that header cannot carry a key'),
    format: z.enum(['raw', 'bearer', 'basic']).default('raw'),
    prefix: z.string().regex(/^[A-Za-z0-9_-]{0,32}$/, 'prefix: letters, digits, - and _ only').default(''),
    length: z.number().int().min(24).max(200).default(48),
    name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,40}$/, 'name: lower-case letters, digits and -').optional(),
  })
  .strict();
const RulesFile = z.object({ inject: z.array(UserRule).max(200).default([]) }).strict();

/** Parse inject.toml text (pure). A bad file is one line naming the entry and the field. */
export function parseRules(text: string, file = 'inject.toml'): InjectionRule[] {
  let raw: unknown;
  try {
    raw = TOML.parse(text);
  } catch (e) {
    throw new VibeboxError('E_CONFIG_INVALID', `${file} is not valid TOML: ${(e as Error).message.split('\n')[0]}`, `fix ${file}`);
  }
  const r = RulesFile.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0];
    const where = i ? i.path.join('.') : '';
    throw new VibeboxError('E_CONFIG_INVALID', `${file}: ${where ? `${where}: ` : ''}${i?.message ?? 'invalid'}`, `fix ${file} (fields: env, host, header, format, prefix, length, name)`);
  }
  return r.data.inject.map((u) => ({ name: u.name ?? `user-${u.env.toLowerCase().replace(/_/g, '-')}`, host: u.host, header: u.header, format: u.format, env: u.env, prefix: u.prefix, length: u.length, builtin: false }));
}

/** The built-in rules and the user's. A user rule for a key replaces the built-in ones for it. */
export function loadRules(home: string = vibeboxHome()): InjectionRule[] {
  const file = rulesFile(home);
  let text: string;
  try {
    const st = lstatSync(file);
    if (!st.isFile()) throw new VibeboxError('E_CONFIG_INVALID', `${file} is not a regular file`, `replace it with a file`);
    const uid = process.getuid?.();
    if (uid !== undefined && st.uid !== uid) throw new VibeboxError('E_CONFIG_INVALID', `${file} belongs to another user (uid ${st.uid})`, `make it yours: chown $(id -u) ${file}`);
    // others who may write it could send a key to their own host
    if ((st.mode & 0o022) !== 0) throw new VibeboxError('E_CONFIG_INVALID', `${file} may be written by others`, `run chmod 644 ${file}`);
    if (st.size > 256 * 1024) throw new VibeboxError('E_CONFIG_INVALID', `${file} is larger than 256 KiB`, `shorten ${file}`);
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [...BUILTIN_RULES];
    throw e;
  }
  const user = parseRules(text, file);
  const mine = new Set(user.map((r) => r.env));
  return [...BUILTIN_RULES.filter((r) => !mine.has(r.env)), ...user];
}

const B62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** The session's placeholder for a key (pure): the rule's prefix and `length` base62 characters of HMAC(secret, session, key). */
export function placeholderFor(secret: Buffer, session: string, rule: Pick<InjectionRule, 'env' | 'prefix' | 'length'>): string {
  let out = '';
  for (let block = 0; out.length < rule.length; block++) {
    const mac = createHmac('sha256', secret).update(`${session}\0${rule.env}\0${block}`).digest();
    for (const byte of mac) {
      if (byte >= 248) continue; // 248 = 4 × 62: no bias
      out += B62[byte % 62];
      if (out.length === rule.length) break;
    }
  }
  return rule.prefix + out;
}

/** The per-user secret placeholders are derived from (0600, next to the CA key). */
function placeholderSecret(home: string): Buffer {
  const file = join(caDir(home), 'placeholder.key');
  try {
    const fd = openSync(file, 'wx', 0o600);
    try {
      writeSync(fd, randomBytes(32).toString('hex'));
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  const st = lstatSync(file);
  const uid = process.getuid?.();
  if (!st.isFile() || (uid !== undefined && st.uid !== uid) || (st.mode & 0o077) !== 0) {
    throw new VibeboxError('E_KEYS_UNSAFE', `${file} must be a file of yours with mode 0600`, `run chmod 600 ${file}`);
  }
  const hex = readFileSync(file, 'utf8').trim();
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new VibeboxError('E_KEYS_UNSAFE', `${file} is damaged`, `remove it (placeholders of running sessions change)`);
  return Buffer.from(hex, 'hex');
}

/**
 * What one `vibebox run` sends (client side): keys no rule covers by value, as before; covered
 * keys by name only, their values never leave this process (the supervisor sets the placeholder).
 */
export function runKeysForGuest(file: string = keysFile(), home: string = vibeboxHome()): { env: Record<string, string>; pass: string[] } {
  const keys = readKeys(file);
  const covered = coveredNames(loadRules(home));
  const env: Record<string, string> = {};
  for (const [k, v] of keys) if (!covered.has(k)) env[k] = v;
  return { env, pass: [...keys.keys()] };
}

/** The env names some rule covers. */
export function coveredNames(rules: readonly InjectionRule[]): Set<string> {
  return new Set(rules.map((r) => r.env));
}

export type KeyRoute = { name: string; way: 'injected'; hosts: string[]; refused: string[] } | { name: string; way: 'passed' };

/**
 * How each key of .env reaches the agent: injected by the host proxy (for these hosts; `refused`:
 * rule hosts the network policy does not allow, where the key is never put in) or passed to the run.
 */
export function keyRoutes(names: Iterable<string>, rules: readonly InjectionRule[], policy: NetworkPolicy): KeyRoute[] {
  const out: KeyRoute[] = [];
  for (const name of names) {
    const hosts = [...new Set(rules.filter((r) => r.env === name).map((r) => r.host))];
    if (hosts.length === 0) {
      out.push({ name, way: 'passed' });
      continue;
    }
    const refused = hosts.filter((h) => !decide(policy, h, 443).allowed);
    out.push({ name, way: 'injected', hosts: hosts.filter((h) => !refused.includes(h)), refused });
  }
  return out;
}

/** One line per rule host the policy refuses (its key is never put in there). */
export function policyWarnings(routes: readonly KeyRoute[]): string[] {
  return routes.flatMap((r) => (r.way === 'injected' ? r.refused.map((h) => `${r.name}: ${h} is not allowed by the network policy, so the key is never put in there (vibebox allow ${h})`) : []));
}

/**
 * The supervisor's side: the CA, the rules, the session's placeholders, and the real keys read
 * from ~/.vibebox/.env when they change (host memory only; they go to the proxy, never to the guest).
 */
export class KeyInjection {
  readonly ca: VibeboxCa;
  private rules: InjectionRule[];
  private readonly secret: Buffer;
  private creds = new Map<string, Credential>();
  private keysStamp = '';

  private constructor(
    private readonly home: string,
    private readonly session: string,
  ) {
    try {
      this.ca = VibeboxCa.loadOrCreate(caDir(home));
    } catch (e) {
      throw new VibeboxError('E_KEYS_UNSAFE', `the vibebox CA could not be used: ${(e as Error).message}`, `see ${caDir(home)}`);
    }
    this.secret = placeholderSecret(home);
    this.rules = loadRules(home);
  }

  static forSession(session: string, home: string = vibeboxHome()): KeyInjection {
    return new KeyInjection(home, session);
  }

  placeholder(env: string): string | undefined {
    const rule = this.rules.find((r) => r.env === env);
    return rule ? placeholderFor(this.secret, this.session, rule) : undefined;
  }

  /** The real keys that have rules, re-read when .env changed (its size and mtime). */
  credentials(): ReadonlyMap<string, Credential> {
    const file = keysFile(this.home);
    let stamp = 'none';
    try {
      const st = statSync(file);
      stamp = `${st.size}:${st.mtimeMs}:${st.ino}`;
    } catch {
      /* no file: no keys */
    }
    if (stamp !== this.keysStamp) {
      const next = new Map<string, Credential>();
      for (const [env, value] of readKeys(file)) {
        const p = this.placeholder(env);
        if (p !== undefined && value !== '') next.set(env, { env, placeholder: p, value });
      }
      this.creds = next;
      this.keysStamp = stamp;
    }
    return this.creds;
  }

  /**
   * The env an exec gets in the guest: every covered key the run passes (by value or by name) is
   * the placeholder, whatever value the client sent; with a git credential helper that hands git
   * the placeholder where a `basic` rule covers a passed key (src/keys/git-credential.ts).
   */
  guestEnv(env: Record<string, string>, pass: readonly string[] = []): Record<string, string> {
    const out = { ...env };
    for (const name of new Set([...Object.keys(env), ...pass])) {
      const p = this.placeholder(name);
      if (p !== undefined) out[name] = p;
    }
    // git over HTTPS asks a helper for the token: it gets the placeholder
    return { ...out, ...gitCredentialEnv(this.rules, out) };
  }

  /** The `intercept` option of the egress proxy. `upstreamCa`: the CAs trusted for upstreams besides node's (the host's extra ones). */
  proxyConfig(upstreamCa: string | undefined): InterceptConfig {
    return {
      ca: this.ca,
      rules: () => this.rules,
      credentials: () => this.credentials(),
      ...(upstreamCa ? { upstreamCa } : {}),
    };
  }

  /** The setup message's `cas` with the vibebox CA added (the guest trusts it like the host's extra CAs). */
  withCa(hostCas: { cas?: string }): { cas: string } {
    // first: the guest keeps the first certificates when a bundle is over its caps
    return { cas: `${this.ca.certPem}${hostCas.cas ?? ''}` };
  }

  routes(policy: NetworkPolicy): KeyRoute[] {
    return keyRoutes(this.credentials().keys(), this.rules, policy);
  }
}
