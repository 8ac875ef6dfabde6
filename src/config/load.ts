// Reading vibebox.toml: parse, validate, resolve paths. Errors name the file, the key and the fix.
import { writeFileSync, existsSync, realpathSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join, posix, relative, resolve, sep } from 'node:path';
import TOML from '@iarna/toml';
import type { z } from 'zod';
import { ConfigSchema, unsafeTextIssue, type Config } from './schema.js';
import { parseAutoShutdown } from './size.js';
import { shown } from '../../guest/shown.js';
import { VibeboxError, isErrno } from '../errors.js';
import { readUntrusted } from '../fs/read-untrusted.js';
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

/** An issue's key path as written in TOML terms: `vm.memory`, `mounts[0].host`. */
function keyPath(path: readonly PropertyKey[]): string {
  return path.map((p) => (typeof p === 'number' ? `[${p}]` : String(p))).join('.').replace(/\.\[/g, '[');
}

/** Format the first zod issue as `key.path: message`. */
export function describeIssue(issue: z.core.$ZodIssue): string {
  const key = issue.path.length ? shown(keyPath(issue.path)) : '(top level)';
  if (issue.code === 'unrecognized_keys') {
    const keys = (issue as { keys?: string[] }).keys ?? [];
    const where = issue.path.length ? `${key}: ` : '';
    return `${where}unknown key ${keys.map(quoted).join(', ')}`;
  }
  // The schema's own messages name their key ("memory must be a size like …"): the key path says
  // that already.
  const tail = String(issue.path[issue.path.length - 1] ?? '');
  let message = issue.message;
  for (const k of [keyPath(issue.path), tail]) {
    if (k && message.startsWith(`${k} must be a `)) message = `expected ${message.slice(k.length + ' must be '.length)}`;
  }
  return `${key}: ${message}`;
}

/** A value from the file, for a message: JSON-quoted, hostile characters escaped, cut when long. */
function valueText(v: unknown): string {
  if (Array.isArray(v)) return 'a list';
  if (v !== null && typeof v === 'object') return v instanceof Date ? 'a date' : 'a table';
  return typeof v === 'string' ? quoted(v.length > 60 ? `${v.slice(0, 60)}…` : v) : shown(String(v));
}

/** `"text"` with hostile characters escaped (shown) and quotes escaped. */
function quoted(s: string): string {
  return `"${shown(s).replace(/"/g, '\\"')}"`;
}

const TYPE_NOUN: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  array: 'a list […]',
  object: 'a table […]',
};

function isIntSchema(inst: unknown): boolean {
  return typeof inst === 'object' && inst !== null && (inst as { isInt?: unknown }).isInt === true;
}

/**
 * The validator's issues in words a person reads: what the key takes and what it got, never the
 * validator's own wording or a regex source. Used where the schema gives no message of its own.
 */
function humanIssue(iss: z.core.$ZodRawIssue): string {
  const got = 'input' in iss ? valueText(iss.input) : '';
  switch (iss.code) {
    case 'invalid_type': {
      const expected = iss.expected === 'number' && isIntSchema(iss.inst) ? 'int' : String(iss.expected);
      const noun = TYPE_NOUN[expected] ?? `a ${expected}`;
      return iss.input === undefined ? `missing (${noun})` : `expected ${noun}, got ${got}`;
    }
    case 'too_small':
    case 'too_big': {
      const bound = iss.code === 'too_small' ? iss.minimum : iss.maximum;
      const inclusive = iss.inclusive !== false;
      if (iss.origin === 'number' || iss.origin === 'int' || iss.origin === 'bigint') {
        const rel = iss.code === 'too_small' ? (inclusive ? 'at least' : 'more than') : inclusive ? 'at most' : 'less than';
        return `must be ${rel} ${String(bound)}, got ${got}`;
      }
      const unit = iss.origin === 'string' ? 'characters' : 'entries';
      if (iss.code === 'too_small' && Number(bound) === 1) return 'must not be empty';
      return `must have ${iss.code === 'too_small' ? 'at least' : 'at most'} ${String(bound)} ${unit}`;
    }
    case 'invalid_value': {
      const vs = iss.values.map((v) => (typeof v === 'string' ? quoted(v) : shown(String(v))));
      const list = vs.length > 1 ? `${vs.slice(0, -1).join(', ')} or ${vs[vs.length - 1]}` : (vs[0] ?? '');
      return `must be ${list}, got ${got}`;
    }
    case 'invalid_format':
      return `${got} is not in the form this key takes`;
    case 'invalid_union': {
      const expected = [...new Set(iss.errors.flat().flatMap((e) => (e.code === 'invalid_type' ? [TYPE_NOUN[String(e.expected)] ?? `a ${String(e.expected)}`] : [])))];
      return expected.length ? `expected ${expected.join(' or ')}, got ${got}` : `${got} is not a value this key takes`;
    }
    default:
      return got ? `${got} is not a value this key takes` : 'is not a value this key takes';
  }
}

/** The README section a key belongs to, for the hint. */
function sectionOf(path: readonly PropertyKey[]): string {
  const top = path[0];
  if (typeof top !== 'string') return 'the [vm], [session], [[mounts]] and [network] keys';
  return top === 'mounts' || top === 'ports' ? `the [[${shown(top)}]] keys` : `the [${shown(top)}] keys`;
}

/** 1-based `LINE:COL` of offset `at` in `text`. */
function lineCol(text: string, at: number): string {
  const before = text.slice(0, at);
  return `${before.split('\n').length}:${at - before.lastIndexOf('\n')}`;
}

/** A TOML parser error as `file:LINE:COL: what`, in the parser's words minus its excerpt. */
function parseProblem(e: unknown, text: string, file: string): VibeboxError {
  const err = e as { line?: number; col?: number; pos?: number; message?: string };
  let what = (err.message ?? 'parse error').split('\n')[0]!.replace(/ at row \d+, col \d+, pos \d+:?$/, '');
  // The parser's pos is just past the character it stopped at.
  const at = typeof err.pos === 'number' && err.pos > 0 && err.pos <= text.length ? err.pos - 1 : undefined;
  if (what.startsWith('Unexpected character') && at !== undefined) {
    const c = String.fromCodePoint(text.codePointAt(at) ?? 0);
    const shownChar = c === '\n' || c === '\r' ? 'end of line' : quoted(c);
    what = `unexpected ${shownChar}${what.slice('Unexpected character'.length).replace(/, expecting (string, number, datetime, boolean, inline array or inline table)/, ', expected a value ($1)')}`;
  }
  what = what.charAt(0).toLowerCase() + what.slice(1);
  const where = typeof at === 'number' ? `:${lineCol(text, at)}` : typeof err.line === 'number' && typeof err.col === 'number' ? `:${err.line + 1}:${err.col + 1}` : '';
  return new VibeboxError('E_CONFIG_PARSE', `${file}${where}: ${shown(what)}`, 'fix the TOML syntax, or delete the file to get the defaults');
}

/** Parse and validate the text of a vibebox.toml. Pure: no file system access. */
export function parseConfigText(text: string, file = 'vibebox.toml'): Config {
  let raw: unknown;
  try {
    raw = TOML.parse(text);
  } catch (e) {
    throw parseProblem(e, text, file);
  }
  const unsafe = unsafeTextIssue(raw);
  if (unsafe) throw new VibeboxError('E_CONFIG_INVALID', `${shown(file)}: ${unsafe}`, 'write it without control, bidi or zero-width characters; a run line goes on one line, commands joined with &&');
  const r = ConfigSchema.safeParse(raw, { error: humanIssue });
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new VibeboxError('E_CONFIG_INVALID', `${shown(file)}: ${describeIssue(issue)}`, `see ${sectionOf(issue.path)} in README.md`);
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

/** Far more than any real vibebox.toml; a bigger one is refused rather than read. */
export const MAX_CONFIG_BYTES = 1024 * 1024;

/** Read the project's vibebox.toml; a missing file means the defaults. */
export function readConfig(project: string): Config {
  const file = projectPaths(project).config;
  // The guest can write this file (a FIFO, a link to /dev/zero, gigabytes): see readUntrusted.
  const r = readUntrusted(file, { maxBytes: MAX_CONFIG_BYTES, what: 'the project config' });
  if (!r) return ConfigSchema.parse({});
  return parseConfigText(r.text, relativeName(file, project));
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
  try {
    // wx: never over a file, nor through a link (even a dangling one) the guest put there.
    writeFileSync(file, defaultConfigText(), { flag: 'wx' });
  } catch (e) {
    if (isErrno(e, 'EEXIST')) return false;
    throw e;
  }
  return true;
}
