// Reading vibebox.toml: parse, validate, resolve paths. Errors name the file, the key and the fix.
import { readFileSync, writeFileSync, existsSync, realpathSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join, posix, relative, resolve, sep } from 'node:path';
import TOML from '@iarna/toml';
import type { z } from 'zod';
import { ConfigSchema, type Config } from './schema.js';
import { parseAutoShutdown } from './size.js';
import { VibeboxError, isErrno } from '../errors.js';
import { projectPaths, realpathOr, vibeboxHome } from '../paths.js';
import { DEFAULT_ALLOWLIST } from '../../proxy/policy.js';

export interface ResolvedMount {
  host: string;
  guest: string;
  mode: 'ro' | 'rw';
  /** The path as written in vibebox.toml ("." for the project). */
  declared: string;
}

export interface ResolvedConfig {
  vm: Config['vm'];
  session: Config['session'];
  network: { mode: 'allowlist' | 'blocklist'; entries: string[] };
  /** The project mount first, then [[mounts]] in order. */
  mounts: ResolvedMount[];
  workspace?: Config['workspace'];
  image: Config['image'];
  container: Config['container'];
  /** [[ports]]: host 127.0.0.1 port → guest port (absent in configs built before ports existed). */
  ports?: Config['ports'];
}

export const WORKSPACE = '/workspace';

/** Format the first zod issue as `key.path: message`. */
export function describeIssue(issue: z.core.$ZodIssue): string {
  const key = issue.path.length ? issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : String(p))).join('.').replace(/\.\[/g, '[') : '(top level)';
  if (issue.code === 'unrecognized_keys') {
    const keys = (issue as { keys?: string[] }).keys ?? [];
    const where = issue.path.length ? `${key}: ` : '';
    return `${where}unknown key ${keys.map((k) => JSON.stringify(k)).join(', ')}`;
  }
  return `${key}: ${issue.message}`;
}

/** Parse and validate the text of a vibebox.toml. Pure: no file system access. */
export function parseConfigText(text: string, file = 'vibebox.toml'): Config {
  let raw: unknown;
  try {
    raw = TOML.parse(text);
  } catch (e) {
    const err = e as { line?: number; col?: number; message?: string };
    const first = (err.message ?? 'parse error').split('\n')[0]!.replace(/ at row \d+, col \d+, pos \d+:?$/, '');
    const where = typeof err.line === 'number' ? ` line ${err.line + 1}` : '';
    throw new VibeboxError('E_CONFIG_PARSE', `${file}${where}: ${first}`, 'fix the TOML syntax, or delete the file to get the defaults');
  }
  const r = ConfigSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new VibeboxError('E_CONFIG_INVALID', `${file}: ${describeIssue(issue)}`, 'see the [vm], [session], [[mounts]] and [network] keys in README.md');
  }
  return r.data;
}

export function expandHome(p: string, home = homedir()): string {
  if (p === '~') return home;
  if (p.startsWith('~/')) return join(home, p.slice(2));
  return p;
}

/** Resolve a mount host path: `~` expands, relative paths are relative to the project. */
export function resolveHostPath(p: string, project: string, home = homedir()): string {
  const e = expandHome(p, home);
  return isAbsolute(e) ? resolve(e) : resolve(project, e);
}

function within(child: string, parent: string): boolean {
  const r = relative(parent, child);
  return r === '' || (!r.startsWith('..') && !isAbsolute(r));
}

// Guest paths a mount may not cover: the guest's own system would be replaced by host files.
const SYSTEM_GUEST_PATHS = ['/', '/bin', '/boot', '/dev', '/etc', '/lib', '/lib64', '/opt', '/proc', '/root', '/run', '/sbin', '/sys', '/tmp', '/usr', '/var', '/home/vibe', '/opt/vibebox'];

/** Pure checks on resolved mounts (host paths already absolute). */
export function checkMounts(mounts: ResolvedMount[], project: string, vbHome: string): void {
  const stateDir = join(project, '.vibebox');
  const seen = new Set<string>();
  for (const m of mounts) {
    // Normalise first: "/mnt/../etc" or "//etc" is /etc in the guest.
    const g = posix.normalize(m.guest).replace(/\/+$/, '') || '/';
    if (SYSTEM_GUEST_PATHS.includes(g) || g.startsWith('/proc/') || g.startsWith('/sys/') || g.startsWith('/dev/') || g.startsWith('/opt/vibebox/')) {
      throw new VibeboxError('E_MOUNT_FORBIDDEN', `vibebox.toml: mount ${m.declared} → ${m.guest}: the guest path would shadow a system path`, 'mount under /workspace, /mnt or /home/vibe/<name> instead');
    }
    if (seen.has(g)) throw new VibeboxError('E_MOUNT_FORBIDDEN', `vibebox.toml: two mounts at guest path ${m.guest}`, 'give each mount its own guest path');
    seen.add(g);
    if (within(vbHome, m.host) || within(m.host, vbHome)) {
      throw new VibeboxError('E_MOUNT_FORBIDDEN', `vibebox.toml: mount ${m.declared} would expose ${vbHome} to the guest`, 'mount a narrower directory that does not contain the vibebox home');
    }
    // Only the project mount hides .vibebox/ (on the host side): any other mount that is inside it,
    // or contains it (a parent of the project), would show the session state to the guest.
    if (m.declared !== '.' && (within(m.host, stateDir) || within(stateDir, m.host))) {
      throw new VibeboxError('E_MOUNT_FORBIDDEN', `vibebox.toml: mount ${m.declared} would expose the session state ${stateDir}`, 'remove this mount; .vibebox/ is never visible in the guest');
    }
  }
}

export function resolveConfig(cfg: Config, project: string, opts: { vbHome?: string; checkPaths?: boolean } = {}): ResolvedConfig {
  const mounts: ResolvedMount[] = [{ host: project, guest: WORKSPACE, mode: 'rw', declared: '.' }];
  for (const m of cfg.mounts) {
    const host = resolveHostPath(m.host, project);
    mounts.push({ host, guest: m.guest, mode: m.mode, declared: m.host });
  }
  if (opts.checkPaths !== false) {
    for (const m of mounts) {
      if (!existsSync(m.host)) {
        throw new VibeboxError('E_MOUNT_MISSING', `vibebox.toml: mount host path ${m.declared} does not exist (${m.host})`, 'create it or remove the [[mounts]] entry');
      }
      // Resolve symlinks so the exposure checks see the real directory.
      m.host = realpathSync(m.host);
      if (!statSync(m.host).isDirectory() && !statSync(m.host).isFile()) {
        throw new VibeboxError('E_MOUNT_FORBIDDEN', `vibebox.toml: mount ${m.declared} is neither a file nor a directory`, 'mount a regular file or directory');
      }
    }
  }
  checkMounts(mounts, project, realpathOr(opts.vbHome ?? vibeboxHome()));
  const entries = cfg.network.entries ?? (cfg.network.mode === 'allowlist' ? [...DEFAULT_ALLOWLIST] : []);
  return { vm: cfg.vm, session: cfg.session, network: { mode: cfg.network.mode, entries }, mounts, ...(cfg.workspace ? { workspace: cfg.workspace } : {}), image: cfg.image, container: cfg.container, ports: cfg.ports };
}

/** Read the project's vibebox.toml; a missing file means the defaults. */
export function readConfig(project: string): Config {
  const file = projectPaths(project).config;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return ConfigSchema.parse({});
    throw e;
  }
  return parseConfigText(text, relativeName(file, project));
}

function relativeName(file: string, project: string): string {
  const r = relative(process.cwd(), file);
  return r && !r.startsWith('..') && !r.includes(sep + '..') ? r : join(project, 'vibebox.toml');
}

/** vibebox.toml as the project wrote it (what approval compares), without host-side overrides. */
export function loadFileConfig(project: string): ResolvedConfig {
  return resolveConfig(readConfig(project), project);
}

/** Host-side overrides from the environment (set by the user on the host, not approved). */
export function applyEnvOverrides(rc: ResolvedConfig, env: NodeJS.ProcessEnv = process.env): ResolvedConfig {
  const override = env['VIBEBOX_AUTO_SHUTDOWN_MS'];
  // Digits or "never" are meant as a value: out of bounds is an error, not a silent 1 ms timer.
  if (override === undefined || !/^(\d+|never)$/.test(override)) return rc;
  const ms = parseAutoShutdown(override);
  if (typeof ms === 'string') throw new VibeboxError('E_CONFIG_INVALID', `VIBEBOX_AUTO_SHUTDOWN_MS ${ms}`, 'set it to a smaller number of milliseconds, or to never');
  return { ...rc, session: { ...rc.session, auto_shutdown_ms: ms } };
}

export function loadConfig(project: string, env: NodeJS.ProcessEnv = process.env): ResolvedConfig {
  return applyEnvOverrides(loadFileConfig(project), env);
}

export function defaultConfigText(): string {
  const entries = DEFAULT_ALLOWLIST.map((e) => `  ${JSON.stringify(e)},`).join('\n');
  return `# vibebox project config — commit this file. See README.md for every key.
[vm]
cpus = 2
memory = "2GiB"
disk = "20GiB"
image = "default"

[session]
auto_shutdown_ms = 30000   # stop the VM this long after the last client leaves

# The project itself is always mounted: "." → /workspace (rw). Add more mounts like this:
# [[mounts]]
# host = "~/.gitconfig"
# guest = "/home/vibe/.gitconfig"
# mode = "ro"

[network]
mode = "allowlist"         # "allowlist" | "blocklist"
# "host:443" is that host on port 443 only; a bare "host" is every port of it; ".example.com" is
# the domain and all its subdomains (a port may follow: ".example.com:443").
entries = [
${entries}
]
`;
}

/** Write vibebox.toml with the defaults unless the project already has one. */
export function writeDefaultConfig(project: string): boolean {
  const file = projectPaths(project).config;
  if (existsSync(file)) return false;
  writeFileSync(file, defaultConfigText(), { flag: 'wx' });
  return true;
}
