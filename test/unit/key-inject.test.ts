import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { after, describe, it, test } from 'node:test';
import { BUILTIN_RULES, injectHeaders, swapValue, type Credential } from '../../proxy/inject.js';
import { gitCredentialEnv } from '../../src/keys/git-credential.js';
import { KeyInjection, keyRoutes, loadRules, parseRules, placeholderFor, policyWarnings, runKeysForGuest } from '../../src/keys/inject.js';

const dirs: string[] = [];
const home = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'vbinject-'));
  dirs.push(d);
  return d;
};
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

test('built-in rules cover the bundled agents\' providers and GitHub', () => {
  const byEnv = (e: string) => BUILTIN_RULES.filter((r) => r.env === e).map((r) => `${r.host} ${r.header} ${r.format}`);
  assert.deepEqual(byEnv('ANTHROPIC_API_KEY'), ['api.anthropic.com x-api-key raw']);
  assert.deepEqual(byEnv('OPENAI_API_KEY'), ['api.openai.com authorization bearer']);
  assert.deepEqual(byEnv('GEMINI_API_KEY'), ['generativelanguage.googleapis.com x-goog-api-key raw']);
  assert.deepEqual(byEnv('OPENROUTER_API_KEY'), ['openrouter.ai authorization bearer']);
  assert.deepEqual(byEnv('GH_TOKEN'), ['api.github.com authorization bearer', 'github.com authorization basic']);
  assert.deepEqual(byEnv('GITHUB_TOKEN'), ['api.github.com authorization bearer', 'github.com authorization basic']);
});

test('user rules: parsed and checked, one line naming the field', () => {
  const r = parseRules('[[inject]]\nenv = "MY_KEY"\nhost = "API.Example.com"\nheader = "Authorization"\nformat = "bearer"\nprefix = "mk-"\n');
  assert.deepEqual(r, [{ name: 'user-my-key', host: 'api.example.com', header: 'authorization', format: 'bearer', env: 'MY_KEY', prefix: 'mk-', length: 48, builtin: false }]);
  assert.throws(() => parseRules('[[inject]]\nenv = "K"\nhost = "10.0.0.1"\nheader = "x"\n'), /inject\.0\.host: host must be a DNS name/);
  assert.throws(() => parseRules('[[inject]]\nenv = "K"\nhost = "*.example.com"\nheader = "x"\n'), /host must be a DNS name/);
  assert.throws(() => parseRules('[[inject]]\nenv = "K"\nhost = "a.example.com"\nheader = "Host"\n'), /cannot carry a key/);
  assert.throws(() => parseRules('[[inject]]\nenv = "K"\nhost = "a.example.com"\nheader = "x"\nformat = "cookie"\n'), /format/);
  assert.throws(() => parseRules('[[inject]]\nenv = "K"\nhost = "a.example.com"\nheader = "x"\nextra = 1\n'), /inject\.0/);
  assert.throws(() => parseRules('nonsense ='), /not valid TOML/);
});

test('the user file replaces the built-in rules of its key; one others may write is refused', () => {
  const h = home();
  writeFileSync(join(h, 'inject.toml'), '[[inject]]\nenv = "OPENAI_API_KEY"\nhost = "llm.corp.example"\nheader = "authorization"\nformat = "bearer"\n', { mode: 0o644 });
  const rules = loadRules(h);
  assert.deepEqual(rules.filter((r) => r.env === 'OPENAI_API_KEY').map((r) => r.host), ['llm.corp.example']);
  assert.ok(rules.some((r) => r.env === 'ANTHROPIC_API_KEY'));
  chmodSync(join(h, 'inject.toml'), 0o666);
  assert.throws(() => loadRules(h), /may be written by others/);
});

test('placeholders: the rule\'s shape, per session, stable for a session, unrelated to the key', () => {
  const secret = Buffer.alloc(32, 7);
  const rule = { env: 'ANTHROPIC_API_KEY', prefix: 'sk-ant-api03-', length: 95 };
  const a = placeholderFor(secret, 'session-a', rule);
  assert.match(a, /^sk-ant-api03-[A-Za-z0-9]{95}$/);
  assert.equal(placeholderFor(secret, 'session-a', rule), a);
  assert.notEqual(placeholderFor(secret, 'session-b', rule), a);
  assert.notEqual(placeholderFor(Buffer.alloc(32, 8), 'session-a', rule), a);
  assert.notEqual(placeholderFor(secret, 'session-a', { ...rule, env: 'OTHER' }), a);
});

test('a run sends covered keys by name only, the others by value', () => {
  const h = home();
  writeFileSync(join(h, '.env'), 'ANTHROPIC_API_KEY=sk-ant-real\nMY_TOOL_KEY=tool-real\n', { mode: 0o600 });
  const { env, pass } = runKeysForGuest(join(h, '.env'), h);
  assert.deepEqual(env, { MY_TOOL_KEY: 'tool-real' });
  assert.deepEqual(pass, ['ANTHROPIC_API_KEY', 'MY_TOOL_KEY']);
});

test('the supervisor side: placeholders in the guest env, real keys only for the proxy, re-read when .env changes', () => {
  const h = home();
  writeFileSync(join(h, '.env'), 'ANTHROPIC_API_KEY=sk-ant-real\nMY_TOOL_KEY=tool-real\n', { mode: 0o600 });
  const k = KeyInjection.forSession('s1', h);
  assert.equal(statSync(join(h, 'ca', 'placeholder.key')).mode & 0o777, 0o600);
  const g = k.guestEnv({ MY_TOOL_KEY: 'tool-real', ANTHROPIC_API_KEY: 'sk-ant-real-sent-by-an-old-client' }, ['ANTHROPIC_API_KEY', 'MY_TOOL_KEY']);
  assert.equal(g['MY_TOOL_KEY'], 'tool-real');
  assert.match(g['ANTHROPIC_API_KEY']!, /^sk-ant-api03-/);
  assert.ok(!JSON.stringify(g).includes('sk-ant-real'));
  assert.deepEqual(k.guestEnv({}, ['ANTHROPIC_API_KEY']), { ANTHROPIC_API_KEY: g['ANTHROPIC_API_KEY'] });
  const c = k.credentials().get('ANTHROPIC_API_KEY');
  assert.deepEqual(c, { env: 'ANTHROPIC_API_KEY', placeholder: g['ANTHROPIC_API_KEY'], value: 'sk-ant-real' });
  assert.equal(k.credentials().get('MY_TOOL_KEY'), undefined);
  writeFileSync(join(h, '.env'), 'ANTHROPIC_API_KEY=sk-ant-rotated-longer\n', { mode: 0o600 });
  assert.equal(k.credentials().get('ANTHROPIC_API_KEY')?.value, 'sk-ant-rotated-longer');
  assert.equal(KeyInjection.forSession('s1', h).placeholder('ANTHROPIC_API_KEY'), g['ANTHROPIC_API_KEY'], 'same after a supervisor restart');
  assert.match(k.withCa({ cas: 'X' }).cas, /^-----BEGIN CERTIFICATE-----[\s\S]*X$/);
});

test('explain routes: injected for the allowed rule hosts, refused ones named in one line, others passed', () => {
  const routes = keyRoutes(['ANTHROPIC_API_KEY', 'GH_TOKEN', 'MY_TOOL_KEY'], BUILTIN_RULES, { mode: 'allowlist', entries: ['api.anthropic.com', 'github.com'] });
  assert.deepEqual(routes, [
    { name: 'ANTHROPIC_API_KEY', way: 'injected', hosts: ['api.anthropic.com'], refused: [] },
    { name: 'GH_TOKEN', way: 'injected', hosts: ['github.com'], refused: ['api.github.com'] },
    { name: 'MY_TOOL_KEY', way: 'passed' },
  ]);
  assert.deepEqual(policyWarnings(routes), ['GH_TOKEN: api.github.com is not allowed by the network policy, so the key is never put in there (vibebox allow api.github.com)']);
});

test('header swap: only the rule\'s header in the rule\'s form; a key with a line break is never put in', () => {
  const cred: Credential = { env: 'GH_TOKEN', placeholder: 'ghp_ph', value: 'ghp_real' };
  const basic = BUILTIN_RULES.find((r) => r.host === 'github.com' && r.env === 'GH_TOKEN')!;
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  assert.equal(swapValue(`Basic ${b64('x-access-token:ghp_ph')}`, basic, cred), `Basic ${b64('x-access-token:ghp_real')}`);
  assert.equal(swapValue(`Basic ${b64('ghp_ph:x-oauth-basic')}`, basic, cred), `Basic ${b64('ghp_real:x-oauth-basic')}`);
  assert.equal(swapValue(`Basic ${b64('u:other')}`, basic, cred), null);
  const bearer = BUILTIN_RULES.find((r) => r.host === 'api.github.com' && r.env === 'GH_TOKEN')!;
  assert.equal(swapValue('token ghp_ph', bearer, cred), 'token ghp_real');
  assert.equal(swapValue('Bearer ghp_phX', bearer, cred), null);
  assert.equal(swapValue('Bearer ghp_ph', bearer, { ...cred, value: 'a\r\nX-Evil: 1' }), null);
  const creds = new Map([['GH_TOKEN', cred]]);
  const out = injectHeaders({ authorization: 'Bearer ghp_ph', 'x-other': 'ghp_ph' }, 'api.github.com', BUILTIN_RULES, creds);
  assert.deepEqual(out, { headers: { authorization: 'Bearer ghp_real', 'x-other': 'ghp_ph' }, injected: ['github-api'] });
  assert.deepEqual(injectHeaders({ authorization: 'Bearer ghp_ph' }, 'gist.github.com', BUILTIN_RULES, creds).injected, []);
});

describe('git over HTTPS with an injected token', () => {
  it('the exec env gets a credential helper per basic rule host, after the env\'s own GIT_CONFIG entries, only when its key is passed', () => {
    assert.deepEqual(gitCredentialEnv(BUILTIN_RULES, { ANTHROPIC_API_KEY: 'x' }), {});
    const g = gitCredentialEnv(BUILTIN_RULES, { GH_TOKEN: 'ghp_ph', GITHUB_TOKEN: 'ghp_ph2', GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: 'user.name', GIT_CONFIG_VALUE_0: 'me' });
    assert.deepEqual(Object.keys(g).sort(), ['GIT_CONFIG_COUNT', 'GIT_CONFIG_KEY_1', 'GIT_CONFIG_VALUE_1']);
    assert.equal(g['GIT_CONFIG_COUNT'], '2');
    assert.equal(g['GIT_CONFIG_KEY_1'], 'credential.https://github.com.helper');
    assert.ok(!g['GIT_CONFIG_VALUE_1']!.includes('ghp_ph'), 'the helper reads the variable, it carries no value');
  });

  it('real git asks the helper and gets the placeholder for github.com, nothing for another host', () => {
    const env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: mkdtempSync(join(tmpdir(), 'vibebox-git-')), GIT_TERMINAL_PROMPT: '0', GH_TOKEN: 'ghp_placeholder0123456789abcdefghijklmnop' };
    try {
      const full = { ...env, ...gitCredentialEnv(BUILTIN_RULES, env) };
      const fill = (host: string) => spawnSync('git', ['credential', 'fill'], { env: full, input: `protocol=https\nhost=${host}\n\n`, encoding: 'utf8' });
      const gh = fill('github.com');
      assert.equal(gh.status, 0, gh.stderr);
      assert.match(gh.stdout, /^username=x-access-token$/m);
      assert.match(gh.stdout, /^password=ghp_placeholder0123456789abcdefghijklmnop$/m);
      const other = fill('gitlab.com');
      assert.notEqual(other.status, 0, 'another host gets no password from the helper');
    } finally {
      rmSync(env.HOME, { recursive: true, force: true });
    }
  });
});
