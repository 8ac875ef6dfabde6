// git over HTTPS with an injected token: git in the guest asks a credential helper for a password
// only after the server's 401, so the run's env gets one (through git's GIT_CONFIG_* variables, no
// file in the VM) that answers with the placeholder; the host proxy's `basic` rule then swaps it
// for the real token on the way out (README, Security model). The helper reads the variable at
// the time git asks, so it carries no value of its own.
import type { InjectionRule } from '../../proxy/inject.js';

/** The user name git sends with a token as password; GitHub documents it, other forges ignore it. */
const TOKEN_USER = 'x-access-token';

/**
 * GIT_CONFIG_COUNT/KEY_n/VALUE_n for the `basic` rules whose key this exec gets (pure): a helper
 * per rule host, appended after the env's own GIT_CONFIG_* entries.
 */
export function gitCredentialEnv(rules: readonly InjectionRule[], env: Readonly<Record<string, string>>): Record<string, string> {
  const hosts = new Map<string, string>();
  for (const r of rules) if (r.format === 'basic' && env[r.env] !== undefined && !hosts.has(r.host)) hosts.set(r.host, r.env);
  if (hosts.size === 0) return {};
  const have = Number(env['GIT_CONFIG_COUNT'] ?? '0');
  let n = Number.isInteger(have) && have >= 0 && have < 1000 ? have : 0;
  const out: Record<string, string> = {};
  for (const [host, name] of hosts) {
    out[`GIT_CONFIG_KEY_${n}`] = `credential.https://${host}.helper`;
    // git runs it with `get`/`store`/`erase` appended; only `get` answers
    out[`GIT_CONFIG_VALUE_${n}`] = `!f() { test "$1" = get && printf 'username=${TOKEN_USER}\\npassword=%s\\n' "$${name}"; }; f`;
    n++;
  }
  out['GIT_CONFIG_COUNT'] = String(n);
  return out;
}
