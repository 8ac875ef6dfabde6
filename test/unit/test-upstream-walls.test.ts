// The proxy's test-only upstream override (proxy/test-upstream.ts) lets names lead to host
// loopback. The attacks: turn it on by accident (one variable left in a shell, a real home), or
// from what a project or the guest writes (vibebox.toml, a .env in the project, ~/.vibebox/.env
// whose values go to runs). Only the host process's own environment, with all three conditions,
// turns it on; set otherwise it is refused as bad input, never quietly used.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseConfigText } from '../../src/config/load.js';
import { KeyInjection, runKeysForGuest } from '../../src/keys/inject.js';
import { checkEnv, testUpstreams } from '../../src/supervisor/env.js';
import { parseTestUpstreams, testOverrideAllowed } from '../../proxy/test-upstream.js';

const dir = mkdtempSync(join(tmpdir(), 'vibebox-test-upstream-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const PORTS = 'api.anthropic.com=4443,registry.npmjs.org=4443';
const onEnv = (over: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({ NODE_ENV: 'test', VIBEBOX_TEST_UPSTREAM: '1', VIBEBOX_HOME: dir, VIBEBOX_TEST_UPSTREAM_PORTS: PORTS, ...over });

describe('the test-only upstream override', () => {
  it('is on only with NODE_ENV=test, VIBEBOX_TEST_UPSTREAM=1 and a VIBEBOX_HOME inside the temp dir', () => {
    assert.deepEqual(testUpstreams(onEnv()), { ports: { 'api.anthropic.com': 4443, 'registry.npmjs.org': 4443 }, ca: undefined });
    assert.equal(testUpstreams({ VIBEBOX_HOME: join(homedir(), '.vibebox') }), undefined, 'unset: nothing to refuse');
  });

  it('set without one of the three (a variable left in a shell, a user\'s real home) is bad input, not ignored', () => {
    const outside = mkdtempSync(join(process.cwd(), '.vibebox-home-'));
    try {
      for (const over of [{ NODE_ENV: undefined }, { NODE_ENV: 'development' }, { VIBEBOX_TEST_UPSTREAM: undefined }, { VIBEBOX_TEST_UPSTREAM: 'true' }, { VIBEBOX_HOME: undefined }, { VIBEBOX_HOME: join(homedir(), '.vibebox') }, { VIBEBOX_HOME: outside }, { VIBEBOX_HOME: tmpdir() }, { VIBEBOX_HOME: join(dir, '..', '..', outside) }]) {
        const env = onEnv(over);
        for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
        assert.throws(() => checkEnv(env), (e: Error & { code?: string }) => e.code === 'E_USAGE' && /for vibebox's own tests only/.test(e.message), JSON.stringify(over));
        assert.equal(testOverrideAllowed(env), false, JSON.stringify(over));
      }
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });

  it('a home in the temp dir reached through a link from elsewhere counts where it really is', () => {
    // the check is on the real path: a link in the temp dir to a real home is not a temp home
    const real = mkdtempSync(join(process.cwd(), '.vibebox-real-'));
    const link = join(dir, 'link-home');
    try {
      symlinkSync(real, link);
      assert.equal(testOverrideAllowed(onEnv({ VIBEBOX_HOME: link })), false);
    } finally {
      rmSync(link, { force: true });
      rmSync(real, { recursive: true, force: true });
    }
  });

  it('only names and loopback ports: a malformed list is bad input', () => {
    for (const bad of ['api.anthropic.com', 'api.anthropic.com=0', 'api.anthropic.com=70000', 'API.x=1', 'a=1;b=2', 'a=1,']) {
      assert.equal(parseTestUpstreams(bad), null, bad);
      assert.throws(() => checkEnv(onEnv({ VIBEBOX_TEST_UPSTREAM_PORTS: bad })), /host=port/);
    }
  });

  it('a project cannot turn it on: vibebox.toml has no setting for it (refused as an unknown key, wherever it is put)', () => {
    for (const text of ['NODE_ENV = "test"\n', '[env]\nVIBEBOX_TEST_UPSTREAM = "1"\n', '[network]\nVIBEBOX_TEST_UPSTREAM_PORTS = "api.anthropic.com=1"\n', '[vm]\nenv = { NODE_ENV = "test" }\n']) {
      assert.throws(() => parseConfigText(text), /unknown key/, text);
    }
  });

  it('~/.vibebox/.env naming its variables sets nothing in the host process: they are keys for runs', () => {
    const home = join(dir, 'home');
    mkdirSync(home, { recursive: true });
    const envFile = join(home, '.env');
    writeFileSync(envFile, `NODE_ENV=test\nVIBEBOX_TEST_UPSTREAM=1\nVIBEBOX_TEST_UPSTREAM_PORTS=${PORTS}\nANTHROPIC_API_KEY=sk-ant-real\n`, { mode: 0o600 });
    const before = { ...process.env };
    const keys = KeyInjection.forSession('s1', home);
    keys.credentials();
    const run = runKeysForGuest(envFile, home);
    assert.deepEqual({ ...process.env }, before);
    assert.equal(run.env['VIBEBOX_TEST_UPSTREAM_PORTS'], PORTS, 'it is a key like any other: passed to the run, in the guest');
    // and the proxy config from the keys carries no override (only the supervisor's env can)
    assert.deepEqual(Object.keys(keys.proxyConfig(undefined)).sort(), ['ca', 'credentials', 'rules']);
  });
});
