import { test } from 'node:test';
import assert from 'node:assert/strict';
import { asUserArgv, plan, summaryLine, tapCounts, userEnv, type PlanInput } from '../run-plan.js';

const input = (o: Partial<PlanInput> = {}): PlanInput => ({
  uid: 0,
  user: 'vibebox-ci',
  node: '/usr/bin/node',
  unit: ['test/unit/a.test.ts'],
  integration: ['test/integration/image-boot.test.ts', 'test/integration/session.test.ts'],
  e2e: ['test/e2e/cli.test.ts'],
  only: null,
  sessionTests: 'test/integration/session.test.ts',
  ...o,
});

test('as root: build, typecheck, unit as root; integration and e2e as the unprivileged user; the session tests again as root', () => {
  const steps = plan(input());
  assert.deepEqual(steps.map((s) => [s.name, s.asUser ?? 'self']), [
    ['build', 'self'],
    ['typecheck', 'self'],
    ['unit', 'self'],
    ['integration as vibebox-ci', 'vibebox-ci'],
    ['e2e as vibebox-ci', 'vibebox-ci'],
    ['session as root', 'self'],
  ]);
  assert.equal(steps[0]!.fatal, true, 'nothing runs without a build');
  assert.deepEqual(steps[3]!.argv, ['/usr/bin/node', '--import', 'tsx', '--test', '--test-concurrency=2', 'test/integration/image-boot.test.ts', 'test/integration/session.test.ts']);
  assert.deepEqual(steps[4]!.argv.slice(0, 5), ['/usr/bin/node', '--import', 'tsx', '--test', '--test-concurrency=1']);
  assert.deepEqual(steps[5]!.argv.slice(-1), ['test/integration/session.test.ts']);
  assert.ok(steps.filter((s) => s.name !== 'build' && s.name !== 'typecheck').every((s) => s.tap));
});

test('as an ordinary user: everything runs as that user, no root run', () => {
  const steps = plan(input({ uid: 1001 }));
  assert.deepEqual(steps.map((s) => s.name), ['build', 'typecheck', 'unit', 'integration', 'e2e']);
  assert.ok(steps.every((s) => s.asUser === undefined));
});

test('named files narrow the VM suites; the root session run only when it is named', () => {
  const steps = plan(input({ only: ['test/integration/image-boot.test.ts'] }));
  assert.deepEqual(steps.map((s) => s.name), ['build', 'typecheck', 'unit', 'integration as vibebox-ci']);
  assert.deepEqual(steps[3]!.argv.slice(5), ['test/integration/image-boot.test.ts']);
  assert.deepEqual(plan(input({ only: ['test/integration/session.test.ts'] })).map((s) => s.name).slice(3), ['integration as vibebox-ci', 'session as root']);
});

test("userEnv: the user's own HOME, cache and TMPDIR; vibebox knobs kept; root's home and cache not", () => {
  const env = userEnv(
    { PATH: '/usr/sbin:/usr/bin', HOME: '/root', USER: 'root', TMPDIR: '/root/tmp', VIBEBOX_HOME: '/root/.vibebox', VIBEBOX_IMAGE_CACHE: '/var/cache/vibebox-ci', VIBEBOX_ACCEL: 'tcg', VIBEBOX_TEST_KEEP: '1', VIBEBOX_CI_USER: 'x', CI: 'true', SSH_AUTH_SOCK: '/root/agent', SECRET_TOKEN: 's' },
    { name: 'vibebox-ci', home: '/home/vibebox-ci', imageCache: '/home/vibebox-ci/.cache/vibebox-test-images', tmp: '/tmp/vbci-1' },
  );
  assert.deepEqual(env, {
    PATH: '/usr/sbin:/usr/bin',
    CI: 'true',
    VIBEBOX_ACCEL: 'tcg',
    VIBEBOX_TEST_KEEP: '1',
    HOME: '/home/vibebox-ci',
    USER: 'vibebox-ci',
    LOGNAME: 'vibebox-ci',
    TMPDIR: '/tmp/vbci-1',
    VIBEBOX_IMAGE_CACHE: '/home/vibebox-ci/.cache/vibebox-test-images',
  });
  assert.equal(userEnv({}, { name: 'u', home: '/h', imageCache: '/c', tmp: '/t' })['PATH'], '/usr/local/bin:/usr/bin:/bin');
});

test('asUserArgv: runuser with exactly the given environment', () => {
  assert.deepEqual(asUserArgv('u', { HOME: '/h', A: 'b c' }, ['node', 'x']), ['runuser', '-u', 'u', '--', 'env', '-i', 'HOME=/h', 'A=b c', 'node', 'x']);
});

test('tapCounts reads the totals node writes last; cancelled counts as failed; none: null', () => {
  const tap = 'TAP version 13\n# Subtest: a\n    # pass 99\nok 1 - a\n1..1\n# tests 4\n# suites 0\n# pass 2\n# fail 1\n# cancelled 1\n# skipped 1\n# todo 0\n# duration_ms 5\n';
  assert.deepEqual(tapCounts(tap), { passed: 2, failed: 2, skipped: 1 });
  assert.equal(tapCounts('TAP version 13\n'), null);
  assert.equal(summaryLine([{ passed: 2, failed: 2, skipped: 1 }, { passed: 10, failed: 0, skipped: 0 }]), '12 passed, 2 failed, 1 skipped');
});
