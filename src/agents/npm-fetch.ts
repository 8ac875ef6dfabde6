// The host's npm fetching an agent package and its dependency tree from the registry, for the VM's
// platform, running no package script (docs/architecture.md, Agents: the shared store). npm checks
// every tarball against the integrity the registry lists for it (recorded in the lockfile it
// writes); the user's npm configuration (registry mirror, CA file, proxy) applies.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** What the registry says the newest version is. */
export interface Published {
  version: string;
  integrity: string;
}

export interface NpmRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Each npm call's deadline: a 400 MB agent on a slow line still fits. */
export const NPM_TIMEOUT_MS = 15 * 60_000;

/** The npm next to the node running us (what installed vibebox), else the one on PATH. */
export function findNpm(execPath: string = process.execPath): string {
  const beside = join(dirname(execPath), 'npm');
  return existsSync(beside) ? beside : 'npm';
}

export function runNpm(args: string[], cwd: string, timeoutMs = NPM_TIMEOUT_MS): Promise<NpmRun> {
  return new Promise((resolve) => {
    execFile(
      findNpm(),
      args,
      // No update notice, no funding or audit requests: only the packages are fetched.
      { cwd, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' } },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : null) : 0;
        resolve({ code, stdout: String(stdout), stderr: err && code === null ? `${String(stderr)}\n${err.message}` : String(stderr) });
      },
    );
  });
}

/** The `npm install` arguments for `pkg@version` as the VM needs it (pure). */
export function installArgs(pkg: string, version: string, arch: string): string[] {
  return [
    'install',
    // The packages' own scripts never run on the host (postinstall, node-gyp builds).
    '--ignore-scripts',
    // The VM's platform, not necessarily the host's: Linux with glibc, the host's CPU.
    '--os=linux',
    `--cpu=${arch}`,
    '--libc=glibc',
    '--save-exact',
    '--no-audit',
    '--no-fund',
    '--loglevel=error',
    `${pkg}@${version}`,
  ];
}

/** What `npm view pkg@tag version dist.integrity --json` printed (pure). */
export function parsePublished(stdout: string): Published | null {
  let v: unknown;
  try {
    v = JSON.parse(stdout);
  } catch {
    return null;
  }
  if (Array.isArray(v)) v = v[v.length - 1];
  if (typeof v !== 'object' || v === null) return null;
  const o = v as Record<string, unknown>;
  const version = o['version'];
  const integrity = o['dist.integrity'];
  if (typeof version !== 'string' || !/^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$/.test(version)) return null;
  if (typeof integrity !== 'string' || !/^sha512-[A-Za-z0-9+/]+={0,2}$/.test(integrity)) return null;
  return { version, integrity };
}

export async function latestOf(pkg: string, cwd: string): Promise<Published | { error: string }> {
  const r = await runNpm(['view', `${pkg}@latest`, 'version', 'dist.integrity', '--json'], cwd, 120_000);
  if (r.code !== 0) return { error: lastLine(r.stderr) || `npm view exited with ${r.code}` };
  return parsePublished(r.stdout) ?? { error: 'npm view printed no version' };
}

/** Install into `dir` (made by the caller, empty): a private package.json, then npm install. */
export async function installInto(dir: string, pkg: string, version: string, arch: string): Promise<{ error: string } | null> {
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'vibebox-agent-tree', private: true }) + '\n');
  const r = await runNpm(installArgs(pkg, version, arch), dir);
  if (r.code !== 0) return { error: lastLine(r.stderr) || `npm install exited with ${r.code}` };
  return null;
}

/** What the lockfile records for the top package: the integrity npm checked its tarball against, and whether it has an install script. */
export function lockedTop(dir: string, pkg: string): { integrity: string | null; hasInstallScript: boolean } {
  try {
    const lock = JSON.parse(readFileSync(join(dir, 'package-lock.json'), 'utf8')) as { packages?: Record<string, { integrity?: unknown; hasInstallScript?: unknown }> };
    const e = lock.packages?.[`node_modules/${pkg}`];
    return { integrity: typeof e?.integrity === 'string' ? e.integrity : null, hasInstallScript: e?.hasInstallScript === true };
  } catch {
    return { integrity: null, hasInstallScript: false };
  }
}

/** npm's own reason (its `FetchError … reason:` or `404` line, else its `code` line), one line. */
function lastLine(s: string): string {
  const lines = s
    .split('\n')
    .map((l) => l.replace(/^npm (error|ERR!)\s*/i, '').trim())
    .filter(Boolean);
  const pick = lines.find((l) => /FetchError|reason:|\b404\b|E404|ENOTFOUND|ETIMEDOUT|EAI_AGAIN|certificate/i.test(l)) ?? lines.find((l) => /^code /.test(l)) ?? lines[lines.length - 1] ?? '';
  return pick.slice(0, 300);
}
