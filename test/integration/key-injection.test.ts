// Keys never enter the VM, end to end: a key of ~/.vibebox/.env with an injection rule reaches
// the agent container as a placeholder, a request to the rule's host is terminated by the host
// proxy with the vibebox CA (trusted in the container) and logged with the rule that put the key
// in, and the key's value is found nowhere in the VM: not in any process's environment, not in
// `docker inspect`, not on the VM disk, not in the saved guest RAM. The real provider may be
// unreachable from this machine: the request's answer is then the proxy's readable 502, which
// still proves the TLS termination (the upstream swap itself is covered against a fake provider
// in test/unit/proxy-intercept.test.ts).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, existsSync, openSync, readSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bootedSession, pidsMatching, until, vb, type TestEnv } from '../helpers/vm.js';

const LONG = { timeoutMs: 600_000 };
const SECRET = `sk-ant-api03-vibebox-real-key-${Date.now()}-never-in-the-vm`;
/** Matches SECRET (any digits where its timestamp is) without containing it. */
const NEEDLE = 'vibebox-real-key-[0-9]+-never-in-the-vm';

/** Whether `needle` occurs in the file (read in chunks, overlapping by the needle's length). */
function fileHas(file: string, needle: string): boolean {
  const n = Buffer.from(needle);
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(8 * 1024 * 1024 + n.length);
    let carry = 0;
    for (;;) {
      const got = readSync(fd, buf, carry, buf.length - carry, null);
      if (got === 0) return false;
      const len = carry + got;
      if (buf.subarray(0, len).indexOf(n) >= 0) return true;
      carry = Math.min(n.length - 1, len);
      buf.copy(buf, 0, len - carry, len);
    }
  } finally {
    closeSync(fd);
  }
}

describe('keys stay on the host', () => {
  let t: TestEnv;
  let proj: string;
  before(async () => {
    ({ t, proj } = await bootedSession('keys'));
    writeFileSync(join(t.home, '.env'), `ANTHROPIC_API_KEY=${SECRET}\n`, { mode: 0o600 });
  });
  after(() => t?.cleanup());

  it('the agent gets a placeholder; its request is terminated by the host proxy and logged with the rule', { timeout: 900_000 }, async () => {
    const r = await vb(t, proj, ['run', '--', 'sh', '-c', 'printenv ANTHROPIC_API_KEY; curl -sS -v --max-time 120 -o /dev/null -w "status=%{http_code}\\n" -H "x-api-key: $ANTHROPIC_API_KEY" https://api.anthropic.com/v1/models?limit=1 2>&1 | grep -E "issuer:|^status="'], LONG);
    assert.equal(r.code, 0, r.stderr);
    const [placeholder, ...rest] = r.stdout.trim().split('\n');
    assert.match(placeholder ?? '', /^sk-ant-api03-[A-Za-z0-9]{95}$/);
    assert.ok(!r.stdout.includes(SECRET));
    const out = rest.join('\n');
    assert.match(out, /issuer:.*vibebox local CA/, out);
    assert.match(out, /status=(502|401|403|404|200)/, out);
    const log = await vb(t, proj, ['logs', 'egress', '--json'], LONG);
    const lines = log.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.ok(lines.some((l) => l['host'] === 'api.anthropic.com' && l['path'] === '/v1/models' && l['injected'] === 'anthropic'), log.stdout);
    assert.ok(!log.stdout.includes(SECRET) && !log.stdout.includes(placeholder!) && !log.stdout.includes('limit=1'));
    const explain = await vb(t, proj, ['explain'], LONG);
    assert.match(explain.stdout, /ANTHROPIC_API_KEY: injected by the host proxy for api\.anthropic\.com/);
  });

  it('the value is in no process environment, not in docker inspect, not on the VM disk, not in the saved RAM', { timeout: 900_000 }, async () => {
    // The search in the VM must not carry the key in: its pattern matches the key without
    // containing it (the timestamp digits are left to the regex), so the saved-RAM check below
    // cannot find the test's own command line.
    const needle = NEEDLE;
    const check = await vb(t, proj, ['exec', '--user', 'root', '--', 'sh', '-c',
      `cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | grep -cE '${needle}' || true; docker inspect vibebox-agent | grep -cE '${needle}' || true; grep -rlE '${needle}' /etc /home /root /tmp /var/lib/docker /workspace 2>/dev/null | wc -l; grep -c 'BEGIN CERTIFICATE' /etc/vibebox/host-cas.pem`], LONG);
    assert.equal(check.code, 0, check.stderr);
    const [envs, inspect, files, cas] = check.stdout.trim().split('\n');
    assert.equal(envs, '0');
    assert.equal(inspect, '0');
    assert.equal(files, '0');
    assert.ok(Number(cas) >= 1, 'the vibebox CA is installed in the guest');
    const stop = await vb(t, proj, ['stop', '--suspend'], LONG);
    assert.equal(stop.code, 0, stop.stderr);
    const state = join(proj, '.vibebox', 'saved-state');
    await until(() => existsSync(`${state}.ram`) && pidsMatching(t.home, 'qemu-system').length === 0, 300_000, 'the suspend to save the RAM');
    assert.ok(!fileHas(`${state}.ram`, SECRET), 'the key is in the saved guest RAM');
    assert.ok(!fileHas(state, SECRET), 'the key is in the saved device state');
    assert.ok(!fileHas(join(proj, '.vibebox', 'disk.qcow2'), SECRET), 'the key is on the VM disk');
  });
});
