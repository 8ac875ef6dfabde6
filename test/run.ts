// `npm test`: build, typecheck, unit tests, then the VM suites, as the plan in run-plan.ts says.
// Invoked as root (CI), it makes sure an unprivileged user exists (VIBEBOX_CI_USER, default
// vibebox-ci) with subordinate ids, its own image cache and TMPDIR, and runs the integration and
// e2e suites as that user; then the session tests as root. Output streams through; the exit
// status is non-zero if any step failed. Arguments name integration/e2e files to run instead of
// all of them (e.g. `npm test -- test/integration/image-boot.test.ts`).
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freeSubidRange, parseSubids } from '../src/cli/doctor-verdicts.js';
import { asUserArgv, plan, summaryLine, tapCounts, userEnv, type Counts, type Step } from './run-plan.js';
import { account, type Account } from './helpers/account.js';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const uid = process.getuid?.() ?? 1000;
const USER = process.env['VIBEBOX_CI_USER'] ?? 'vibebox-ci';
// The runner builds first; suites then use that build (the unprivileged user cannot write dist/).
process.env['VIBEBOX_TEST_BUILT'] = '1';

const tests = (dir: string) =>
  readdirSync(join(ROOT, 'test', dir)).filter((f) => f.endsWith('.test.ts')).sort().map((f) => `test/${dir}/${f}`);

function say(line: string): void {
  process.stdout.write(`\n=== ${line}\n`);
}

function must(argv: string[], what: string): string {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${what} failed: ${argv.join(' ')}: ${(r.stderr || r.stdout || String(r.error)).trim()}`);
  return r.stdout;
}


/** The unprivileged user, created as `useradd -m` makes one (in the kvm group, as README says). */
function ensureUser(): Account {
  let a = account(USER);
  if (!a) {
    const kvm = spawnSync('getent', ['group', 'kvm']).status === 0;
    must(['useradd', '-m', '-s', '/bin/bash', ...(kvm ? ['-G', 'kvm'] : []), USER], 'creating the test user');
    a = account(USER);
    if (!a) throw new Error(`useradd made no ${USER}`);
    process.stdout.write(`created user ${USER} (uid ${a.uid}${kvm ? ', in kvm' : ''})\n`);
  }
  if (a.uid === 0) throw new Error(`${USER} is uid 0: the VM suites must run as an unprivileged user`);
  // useradd gives subordinate ids when /etc/subuid exists; mmdebstrap's unshare mode needs them.
  const read = (f: string) => (existsSync(f) ? readFileSync(f, 'utf8') : '');
  const uids = parseSubids(read('/etc/subuid'));
  const gids = parseSubids(read('/etc/subgid'));
  if (!uids.some((e) => e.owner === USER) || !gids.some((e) => e.owner === USER)) {
    const range = freeSubidRange([uids, gids]);
    must(['usermod', '--add-subuids', range, '--add-subgids', range, USER], 'adding subordinate ids');
    process.stdout.write(`gave ${USER} subordinate ids ${range}\n`);
  }
  return a;
}

function asUserOk(a: Account, argv: string[], cwd = '/'): boolean {
  return spawnSync('runuser', ['-u', a.name, '--', ...argv], { cwd, stdio: 'ignore' }).status === 0;
}

/**
 * A checkout the user can read and traverse. CI clones as root, maybe under a 0700 home: then
 * the tree (with dist/ and node_modules/) is copied once to a world-readable directory.
 */
function readableRoot(a: Account, scratch: string[]): string {
  const probe = (dir: string) => asUserOk(a, ['sh', '-c', `test -r "$1/dist/vibebox.js" && test -r "$1/node_modules/tsx/package.json" && test -x "$2"`, 'sh', dir, process.execPath]);
  if (probe(ROOT)) return ROOT;
  if (!asUserOk(a, ['test', '-x', process.execPath])) throw new Error(`${a.name} cannot run ${process.execPath}: install node where every user can run it`);
  const copy = mkdtempSync(join(tmpdir(), 'vbci-src-'));
  scratch.push(copy);
  process.stdout.write(`${a.name} cannot read ${ROOT}: copying the checkout to ${copy}\n`);
  cpSync(ROOT, copy, { recursive: true, verbatimSymlinks: true, filter: (src) => relative(ROOT, src) !== '.git' });
  must(['chmod', '-R', 'a+rX', copy], 'making the copy readable');
  chmodSync(copy, 0o755);
  if (!probe(copy)) throw new Error(`${a.name} cannot read the copy ${copy} either`);
  return copy;
}

/**
 * The user's image cache: one it owns (the image build writes there as that user), which
 * mmdebstrap's namespace root (a subordinate uid: an "other") can enter.
 */
function userImageCache(a: Account): string {
  const dir = process.env['VIBEBOX_CI_USER_IMAGE_CACHE'] ?? join(a.home, '.cache', 'vibebox-test-images');
  if (!existsSync(dir)) {
    if (!asUserOk(a, ['mkdir', '-p', '-m', '0755', dir])) throw new Error(`${a.name} cannot create its image cache ${dir}`);
  } else if (statSync(dir).uid !== a.uid) {
    throw new Error(`the image cache ${dir} is not owned by ${a.name} (set VIBEBOX_CI_USER_IMAGE_CACHE to one it owns)`);
  }
  if (!asUserOk(a, ['mmdebstrap', '--unshare-helper', 'sh', '-c', 'cd "$1"', 'sh', dir])) {
    throw new Error(`mmdebstrap's namespace root cannot enter ${dir} as ${a.name} (run vibebox doctor as ${a.name}: chmod o+x the directories above it, or check its subordinate ids)`);
  }
  return dir;
}

function run(step: Step, cwd: string, env: NodeJS.ProcessEnv, tapFile: string | null): Promise<number> {
  const argv = tapFile
    ? [...step.argv.slice(0, 4), '--test-reporter=spec', '--test-reporter-destination=stdout', '--test-reporter=tap', `--test-reporter-destination=${tapFile}`, ...step.argv.slice(4)]
    : step.argv;
  const full = step.asUser ? asUserArgv(step.asUser, env as Record<string, string>, argv) : argv;
  return new Promise((resolve) => {
    const c = spawn(full[0]!, full.slice(1), { cwd, env: step.asUser ? { PATH: process.env['PATH'] ?? '/usr/bin:/bin' } : env, stdio: ['ignore', 'inherit', 'inherit'] });
    c.on('error', (e) => {
      process.stderr.write(`${step.name}: ${e.message}\n`);
      resolve(127);
    });
    c.on('close', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const steps = plan({
    uid,
    user: USER,
    node: process.execPath,
    unit: tests('unit'),
    integration: tests('integration'),
    e2e: tests('e2e'),
    only: args.length ? args.map((f) => relative(ROOT, resolve(f))) : null,
    sessionTests: 'test/integration/session.test.ts',
  });
  const scratch: string[] = [];
  const counts: Counts[] = [];
  const failed: string[] = [];
  let user: { a: Account; root: string; env: Record<string, string> } | null = null;
  try {
    for (const step of steps) {
      if (step.asUser && !user) {
        say(`preparing ${step.asUser} (the VM suites run as an unprivileged user)`);
        try {
          const a = ensureUser();
          const root = readableRoot(a, scratch);
          const tmp = mkdtempSync(join('/tmp', 'vbci-'));
          scratch.push(tmp);
          chownSync(tmp, a.uid, a.gid);
          chmodSync(tmp, 0o700);
          const env = userEnv(process.env, { name: a.name, home: a.home, imageCache: userImageCache(a), tmp });
          process.stdout.write(`${a.name}: uid ${a.uid}, HOME=${env['HOME']}, TMPDIR=${tmp}, VIBEBOX_IMAGE_CACHE=${env['VIBEBOX_IMAGE_CACHE']}, checkout ${root}\n`);
          user = { a, root, env };
        } catch (e) {
          process.stderr.write(`${(e as Error).message}\n`);
          failed.push(`preparing ${step.asUser}`);
          break;
        }
      }
      say(step.name);
      const tapDir = step.tap ? (step.asUser ? user!.env['TMPDIR']! : mkdtempSync(join(tmpdir(), 'vbci-tap-'))) : null;
      if (tapDir && !step.asUser) scratch.push(tapDir);
      const tapFile = tapDir ? join(tapDir, `${step.name.replace(/\W+/g, '-')}.tap`) : null;
      const t0 = Date.now();
      const code = await run(step, step.asUser ? user!.root : ROOT, step.asUser ? user!.env : process.env, tapFile);
      const c = tapFile && existsSync(tapFile) ? tapCounts(readFileSync(tapFile, 'utf8')) : null;
      if (c) counts.push(c);
      if (code !== 0) {
        failed.push(step.name);
        // A failure the test counts do not show (a crash, the build, the typecheck) counts as one.
        if (!c || c.failed === 0) counts.push({ passed: 0, failed: 1, skipped: 0 });
      }
      process.stdout.write(`=== ${step.name}: ${code === 0 ? 'passed' : `FAILED (exit ${code})`} in ${Math.round((Date.now() - t0) / 1000)} s${c ? ` (${summaryLine([c])})` : ''}\n`);
      if (code !== 0 && step.fatal) break;
    }
  } finally {
    for (const d of scratch) rmSync(d, { recursive: true, force: true });
  }
  if (failed.length) process.stdout.write(`\nfailed: ${failed.join(', ')}\n`);
  process.stdout.write(`\n${summaryLine(counts)}\n`);
  return failed.length ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`test runner: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
