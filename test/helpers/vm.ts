// Shared set-up for tests that boot real VMs: a temporary VIBEBOX_HOME whose images/ comes from
// one cache per test run (VIBEBOX_IMAGE_CACHE, default per uid under the OS temp dir), so the image is
// built once; the CLI runs from the built dist/vibebox.js, as a user runs it.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CLI = join(ROOT, 'dist', 'vibebox.js');

export function imageCacheHome(): string {
  // Per user: users sharing /tmp cannot share one (each builds and owns its image).
  return process.env['VIBEBOX_IMAGE_CACHE'] ?? join(tmpdir(), `vibebox-image-cache-${process.getuid?.() ?? 0}`);
}

/** Build the default image into the cache once (a no-op when it is there). */
export function ensureCachedImage(): void {
  const cache = imageCacheHome();
  mkdirSync(cache, { recursive: true });
  execFileSync(process.execPath, [CLI, 'image', 'build'], { env: { ...process.env, VIBEBOX_HOME: cache }, stdio: ['ignore', 'ignore', 'inherit'] });
}

export interface TestEnv {
  home: string;
  env: NodeJS.ProcessEnv;
  /** A fresh project directory. */
  project(name?: string): string;
  cleanup(): void;
}

export function testEnv(extra: NodeJS.ProcessEnv = {}): TestEnv {
  ensureCachedImage();
  const base = mkdtempSync(join(tmpdir(), 'vbt-'));
  const home = join(base, 'home');
  mkdirSync(home);
  symlinkSync(join(imageCacheHome(), 'images'), join(home, 'images'));
  const accel = join(imageCacheHome(), 'accel.json');
  if (existsSync(accel)) symlinkSync(accel, join(home, 'accel.json'));
  const env: NodeJS.ProcessEnv = { ...process.env, VIBEBOX_HOME: home, VIBEBOX_AUTO_SHUTDOWN_MS: '600000', ...extra };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
  let n = 0;
  return {
    home,
    env,
    project(name = `p${n++}`) {
      const d = join(base, name);
      mkdirSync(d, { recursive: true });
      return d;
    },
    cleanup() {
      killUnder(base);
      // VIBEBOX_TEST_KEEP=1 keeps the homes and logs of a failed run for a post-mortem.
      if (process.env['VIBEBOX_TEST_KEEP'] !== '1') rmSync(base, { recursive: true, force: true });
      else process.stderr.write(`kept ${base}\n`);
    },
  };
}

/** SIGKILL every process whose command line mentions `dir` (supervisors, QEMU, virtiofsd). */
export function killUnder(dir: string): number {
  let killed = 0;
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
      if (cmd.includes(dir)) {
        process.kill(Number(p), 'SIGKILL');
        killed++;
      }
    } catch {
      /* gone */
    }
  }
  return killed;
}

export function pidsMatching(fragment: string, exe?: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
      if (cmd.includes(fragment) && (!exe || cmd.split('\0')[0]!.includes(exe))) out.push(Number(p));
    } catch {
      /* gone */
    }
  }
  return out;
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run the CLI to completion. */
export function vb(t: TestEnv, cwd: string, args: string[], o: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const c = spawnVb(t, cwd, args, o.env);
    let stdout = '';
    let stderr = '';
    c.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      c.kill('SIGKILL');
      reject(new Error(`vibebox ${args.join(' ')} timed out; stderr: ${stderr}`));
    }, o.timeoutMs ?? 240_000);
    c.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    if (o.input !== undefined) c.stdin!.end(o.input);
    else c.stdin!.end();
  });
}

export function spawnVb(t: TestEnv, cwd: string, args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  return spawn(process.execPath, [CLI, ...args], { cwd, env: { ...t.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
}

/** Run a shell snippet in the guest as vibe (or root). */
export function sh(t: TestEnv, proj: string, script: string, o: { user?: 'root'; input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  const { user, ...rest } = o;
  return vb(t, proj, ['exec', ...(user ? ['--user', user] : []), '--', 'sh', '-c', script], rest);
}

/** The session's egress decisions, one parsed JSON line each. */
export interface EgressLine { host: string; port: number; decision: string; reason: string; status?: number; method: string }
export function egressLog(proj: string): EgressLine[] {
  return readFileSync(join(proj, '.vibebox', 'egress.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as EgressLine);
}

/** A promise that rejects after `ms`: every wait in a test has a deadline. */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, rej) => {
    timer = setTimeout(() => rej(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** Wait until `pred` holds, polling (tests only: they observe processes from outside). */
export async function until(pred: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A test env with one project whose session is already booted (one boot shared by a describe). */
export async function bootedSession(name: string, extra: NodeJS.ProcessEnv = {}): Promise<{ t: TestEnv; proj: string }> {
  const t = testEnv(extra);
  const proj = t.project(name);
  const r = await vb(t, proj, ['exec', '--', 'true']);
  if (r.code !== 0) {
    t.cleanup();
    throw new Error(`the session did not start: ${r.stderr}`);
  }
  return { t, proj };
}
