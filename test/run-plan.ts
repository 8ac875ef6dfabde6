// What `npm test` runs, and as whom (pure: test/run.ts does the I/O). Build, typecheck and the
// unit tests run as the invoking user. The VM suites (integration, e2e) run as an unprivileged
// user when the invoker is root, because that is how people run vibebox; the session tests run
// as root too, so the root path stays covered.

export interface Step {
  name: string;
  argv: string[];
  /** Run as this unprivileged user (via runuser) instead of the invoking one. */
  asUser?: string;
  /** A node --test run that also writes TAP here, to count its tests. */
  tap?: boolean;
  /** Nothing after it can run if it fails (the build: every suite runs dist/). */
  fatal?: boolean;
}

export interface PlanInput {
  uid: number;
  /** The unprivileged user for the VM suites when uid is 0. */
  user: string;
  node: string;
  unit: string[];
  integration: string[];
  e2e: string[];
  /** Run only these integration/e2e files (command-line arguments); null: all. */
  only: string[] | null;
  sessionTests: string;
}

const nodeTest = (node: string, files: string[], concurrency = 1) => [node, '--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, ...files];

/**
 * The integration files run two at a time (two VMs on a 2-core machine: TCG runs each guest on
 * one host thread): one after another they take over an hour, past CI's 90 minutes. (node --test
 * runs the files in sorted order whatever order they are given in.)
 */
export const INTEGRATION_CONCURRENCY = 2;

export function plan(p: PlanInput): Step[] {
  const pick = (files: string[]) => (p.only ? files.filter((f) => p.only!.includes(f)) : files);
  const steps: Step[] = [
    { name: 'build', argv: ['npm', 'run', 'build'], fatal: true },
    { name: 'typecheck', argv: ['npm', 'run', 'typecheck'] },
    { name: 'unit', argv: nodeTest(p.node, p.unit), tap: true },
  ];
  const asUser = p.uid === 0 ? p.user : undefined;
  const who = asUser ? ` as ${asUser}` : '';
  for (const [suite, files] of [['integration', pick(p.integration)], ['e2e', pick(p.e2e)]] as const) {
    const argv = suite === 'integration' ? nodeTest(p.node, files, INTEGRATION_CONCURRENCY) : nodeTest(p.node, files);
    if (files.length) steps.push({ name: `${suite}${who}`, argv, tap: true, ...(asUser ? { asUser } : {}) });
  }
  if (p.uid === 0 && pick([p.sessionTests]).length) steps.push({ name: 'session as root', argv: nodeTest(p.node, [p.sessionTests]), tap: true });
  return steps;
}

/** Variables a run as the unprivileged user keeps from the invoker's environment. */
const KEEP = ['PATH', 'LANG', 'LC_ALL', 'TERM', 'TZ', 'CI', 'NO_COLOR', 'FORCE_COLOR'];

/**
 * The whole environment of the unprivileged run: its own HOME, image cache and TMPDIR; the
 * vibebox knobs (VIBEBOX_ACCEL, VIBEBOX_TEST_KEEP, …) but not root's home or image cache.
 */
export function userEnv(parent: NodeJS.ProcessEnv, u: { name: string; home: string; imageCache: string; tmp: string }): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(parent)) {
    if (v === undefined) continue;
    if (KEEP.includes(k) || (k.startsWith('VIBEBOX_') && k !== 'VIBEBOX_HOME' && k !== 'VIBEBOX_IMAGE_CACHE' && !k.startsWith('VIBEBOX_CI_'))) env[k] = v;
  }
  env['PATH'] ??= '/usr/local/bin:/usr/bin:/bin';
  return { ...env, HOME: u.home, USER: u.name, LOGNAME: u.name, TMPDIR: u.tmp, VIBEBOX_IMAGE_CACHE: u.imageCache };
}

/** `runuser -u <user> -- env -i K=V … argv`: exactly this environment, the user's groups. */
export function asUserArgv(user: string, env: Record<string, string>, argv: string[]): string[] {
  return ['runuser', '-u', user, '--', 'env', '-i', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...argv];
}

export interface Counts {
  passed: number;
  failed: number;
  skipped: number;
}

/** The totals at the end of node's TAP output (`# pass N`, …); null when the run wrote none. */
export function tapCounts(tap: string): Counts | null {
  const n = (k: string) => {
    const all = [...tap.matchAll(new RegExp(`^# ${k} (\\d+)$`, 'gm'))];
    return all.length ? Number(all[all.length - 1]![1]) : null;
  };
  const pass = n('pass');
  const fail = n('fail');
  if (pass === null || fail === null) return null;
  return { passed: pass, failed: fail + (n('cancelled') ?? 0), skipped: (n('skipped') ?? 0) + (n('todo') ?? 0) };
}

/** One `N passed, N failed, N skipped` line: the closing line CI reads across all suites. */
export function summaryLine(counts: Counts[]): string {
  const sum = (k: keyof Counts) => counts.reduce((a, c) => a + c[k], 0);
  return `${sum('passed')} passed, ${sum('failed')} failed, ${sum('skipped')} skipped`;
}
