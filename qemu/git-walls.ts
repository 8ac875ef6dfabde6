// Which git metadata in a share host git reads code from (config, hooks, pointers), found without
// running git (host git on a hostile repository would run the very core.fsmonitor we wall) and
// without following links. See README, "Security model".
//
// Host git reads, for a repository whose gitdir is G and worktree W:
//   G/config, G/config.worktree (extensions.worktreeConfig), G/hooks or core.hooksPath, files named
//   by include.path / includeIf.*.path, G/commondir (the config of the dir it names), and for every
//   gitlink in G/index (submodules, nested repositories staged with `git add`): W/<path>/.git — a
//   gitdir, or a `gitdir:` pointer — recursively; submodule gitdirs live in G/modules/<name>/
//   (names may hold slashes; nested submodules in G/modules/<a>/modules/<b>/).
// Walls: such files and directories are bound read-only onto themselves; every directory above them
// (up to the share) is bound onto itself, so a mount point that cannot be renamed or replaced keeps
// the path meaning what it meant at start; a submodule not checked out gets an empty read-only cover.
import { lstatSync, readdirSync, readFileSync, realpathSync, type Stats } from 'node:fs';
import { dirname, isAbsolute, join, resolve, sep } from 'node:path';

/** Git metadata of the repositories in a share that must stay read-only from the guest. */
export interface GitWalls {
  /** gitdirs: each becomes a mount point (cannot be renamed away or replaced). */
  gitDirs: string[];
  /** Hooks directories missing on the host: created, so the guest cannot create them. */
  missingHooks: string[];
  /** Files and directories bound read-only onto themselves: configs, hooks, `gitdir:` pointers, commondir. */
  readonly: string[];
  /** Directories above a wall, bound onto themselves so that they cannot be renamed or replaced. */
  pinned: string[];
  /** Config files git would read if they existed (config.worktree with the extension on, an
   *  include.path target): created empty, so the guest cannot create them. */
  missingFiles: string[];
  /** Submodule directories with no `.git` (not checked out): covered by an empty read-only tmpfs. */
  empty: string[];
  /** Metadata that is a symbolic link: cannot be walled (a bind follows it); the share is refused. */
  refused: string[];
}

export const NO_GIT_WALLS: GitWalls = { gitDirs: [], missingHooks: [], readonly: [], pinned: [], missingFiles: [], empty: [], refused: [] };

/** Bounds of the walk: a hostile tree must not make the start slow. */
const MAX_REPOS = 256;
const MAX_DEPTH = 12;
const MAX_DIRS = 4096;
const MAX_CONFIG = 1 << 20;
const MAX_INDEX = 256 << 20;

type Kind = 'dir' | 'file' | 'link' | 'other' | null;

function kindOf(p: string): Kind {
  let st: Stats;
  try {
    st = lstatSync(p);
  } catch {
    return null;
  }
  return st.isSymbolicLink() ? 'link' : st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'other';
}

/** A small regular file's text, never through a link; null otherwise. */
function readSmall(p: string, max = MAX_CONFIG): string | null {
  try {
    const st = lstatSync(p);
    if (!st.isFile() || st.size > max) return null;
    return readFileSync(p, 'utf8');
  } catch {
    return null;
  }
}

/**
 * The values of a git config file, keyed `section.key` or `section.subsection.key` (section and
 * key lower-cased). Enough of git's syntax for the keys read here; it errs towards finding more.
 */
export function gitConfigValues(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let section = '';
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!;
    while (/\\\r?$/.test(line) && i + 1 < lines.length) line = line.replace(/\\\r?$/, '') + lines[++i]!;
    line = line.trim();
    const h = /^\[\s*([A-Za-z0-9.-]+)(?:\s+"((?:[^"\\]|\\.)*)")?\s*\](.*)$/.exec(line);
    if (h) {
      section = h[1]!.toLowerCase() + (h[2] !== undefined ? `.${h[2].replace(/\\(.)/g, '$1')}` : '');
      line = h[3]!.trim();
    }
    const kv = /^([A-Za-z][A-Za-z0-9-]*)\s*(?:=(.*))?$/.exec(line);
    if (!kv || !section) continue;
    const key = `${section}.${kv[1]!.toLowerCase()}`;
    const value = kv[2] === undefined ? 'true' : configValue(kv[2]);
    out.set(key, [...(out.get(key) ?? []), value]);
  }
  return out;
}

function configValue(raw: string): string {
  let v = '';
  let quoted = false;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (c === '"') quoted = !quoted;
    else if (c === '\\' && i + 1 < raw.length) {
      const n = raw[++i]!;
      v += n === 'n' ? '\n' : n === 't' ? '\t' : n === 'b' ? '\b' : n;
    } else if (!quoted && (c === '#' || c === ';')) break;
    else v += c;
  }
  return v.trim();
}

const isFalse = (v: string) => /^(false|no|off|0|)$/i.test(v);

/** Paths of the gitlinks (mode 160000) in a git index file, versions 2 to 4; [] when unreadable. */
export function indexGitlinks(index: Buffer, hashBytes = 20): string[] {
  const out: string[] = [];
  if (index.length < 12 || index.toString('latin1', 0, 4) !== 'DIRC') return out;
  const version = index.readUInt32BE(4);
  if (version < 2 || version > 4) return out;
  const count = index.readUInt32BE(8);
  let off = 12;
  let prev = '';
  for (let n = 0; n < count; n++) {
    const start = off;
    if (off + 40 + hashBytes + 2 > index.length) break;
    const mode = index.readUInt32BE(off + 24);
    const flags = index.readUInt16BE(off + 40 + hashBytes);
    off += 40 + hashBytes + 2;
    if (version >= 3 && flags & 0x4000) off += 2;
    let name: string;
    if (version === 4) {
      // Prefix-compressed: how many bytes of the previous name to drop (git's varint), then the rest.
      let c = index[off++] ?? 0;
      let strip = c & 127;
      while (c & 128) {
        c = index[off++] ?? 0;
        strip = ((strip + 1) << 7) | (c & 127);
      }
      const end = index.indexOf(0, off);
      if (end < 0) break;
      name = prev.slice(0, Math.max(0, prev.length - strip)) + index.toString('utf8', off, end);
      off = end + 1;
    } else {
      const end = index.indexOf(0, off);
      if (end < 0) break;
      name = index.toString('utf8', off, end);
      // Entries are NUL-padded to a multiple of 8 bytes.
      off = start + ((end - start + 8) & ~7);
    }
    prev = name;
    if ((mode & 0o170000) === 0o160000) out.push(name);
  }
  return out;
}

class Finder {
  readonly w: GitWalls = { gitDirs: [], missingHooks: [], readonly: [], pinned: [], missingFiles: [], empty: [], refused: [] };
  private readonly seen = new Set<string>();
  private readonly trees = new Set<string>();
  private dirs = 0;

  /** `root` is the share's real path; `alias` the path it was given by (both may appear in git's files). */
  constructor(
    readonly root: string,
    private readonly alias: string,
  ) {}

  inside(p: string): boolean {
    return p.startsWith(this.root + sep);
  }

  /** A path named in a file (relative to `base`), on the share's real path. */
  at(base: string, rel: string): string {
    const p = resolve(base, rel);
    return p === this.alias || p.startsWith(this.alias + sep) ? this.root + p.slice(this.alias.length) : p;
  }

  /** Every directory from the share (excluded) down to `p` (included) is a real one, not a link. */
  realDirs(p: string): boolean {
    if (!this.inside(p)) return false;
    for (let d = p; d !== this.root; d = dirname(d)) if (kindOf(d) !== 'dir') return false;
    return true;
  }

  /** A component of `p` below the share is a symbolic link. */
  linkOnPath(p: string): boolean {
    for (let d = p; this.inside(d); d = dirname(d)) if (kindOf(d) === 'link') return true;
    return false;
  }

  /** Bind the directories above `p` onto themselves. */
  pinAbove(p: string) {
    for (let d = dirname(p); d !== this.root && this.inside(d); d = dirname(d)) this.add(this.w.pinned, d);
  }

  add(list: string[], p: string) {
    if (!list.includes(p)) list.push(p);
  }

  /** A file git reads: read-only when there, created empty first when `create` (and its dir is real). */
  wallFile(p: string, create: boolean) {
    if (!this.inside(p)) return;
    const k = kindOf(p);
    if (k === 'link') return this.add(this.w.refused, p);
    if (k === 'file') {
      if (!this.realDirs(dirname(p)) && dirname(p) !== this.root) return;
    } else if (k === null && create && (dirname(p) === this.root || this.realDirs(dirname(p)))) {
      this.add(this.w.missingFiles, p);
    } else return;
    this.add(this.w.readonly, p);
    this.pinAbove(p);
  }

  /** A hooks directory: read-only, created first when missing (under a real directory). */
  wallHooks(p: string) {
    if (!this.inside(p)) return;
    const k = kindOf(p);
    if (k === 'link') return this.add(this.w.refused, p);
    if (k === null) {
      let d = dirname(p);
      while (d !== this.root && kindOf(d) === null) d = dirname(d);
      if (d !== this.root && !this.realDirs(d)) return;
      this.add(this.w.missingHooks, p);
    } else if (k !== 'dir' || !this.realDirs(p)) return;
    this.add(this.w.readonly, p);
    this.pinAbove(p);
  }

  /** A gitdir (of a repository, submodule or linked worktree) and what it names. */
  gitdir(g: string, worktree: string | null, depth: number) {
    if (depth > MAX_DEPTH || this.seen.has(g) || this.seen.size >= MAX_REPOS) return;
    if (!this.realDirs(g)) {
      // A gitdir reached through a link (`.git/modules/x` → elsewhere in the project) cannot be pinned.
      if (this.linkOnPath(g)) this.add(this.w.refused, g);
      return;
    }
    this.seen.add(g);
    this.add(this.w.gitDirs, g);
    this.pinAbove(g);
    const cfgPath = join(g, 'config');
    const cfg = gitConfigValues(readSmall(cfgPath) ?? '');
    const get = (k: string) => cfg.get(k) ?? [];
    // With a commondir, git reads config and hooks there: nothing to create here.
    const own = kindOf(join(g, 'commondir')) === null;
    this.wallFile(cfgPath, own);
    this.wallFile(join(g, 'config.worktree'), get('extensions.worktreeconfig').some((v) => !isFalse(v)));
    if (own) this.wallHooks(join(g, 'hooks'));
    for (const hp of get('core.hookspath')) {
      // Relative: to the directory hooks run in (the worktree; the gitdir of a bare repository).
      this.wallHooks(isAbsolute(hp) ? this.at('/', hp) : this.at(worktree ?? g, hp));
    }
    for (const [k, vs] of cfg) {
      if (!/^include(if\..*)?\.path$/.test(k)) continue;
      for (const v of vs) if (v && !v.startsWith('~')) this.wallFile(this.at(dirname(cfgPath), v), true);
    }
    // commondir: git takes config (and hooks) from the directory it names. One that does not exist
    // cannot be walled without writing into the repository (README, "Not covered").
    const common = this.pointer(join(g, 'commondir'), false);
    if (common !== null) this.gitdir(this.at(g, common), null, depth + 1);
    for (const wt of this.subdirs(join(g, 'worktrees'))) this.linkedWorktree(wt, depth);
    this.modules(join(g, 'modules'), depth + 1);
    if (worktree) this.gitlinks(g, worktree, depth);
  }

  /** A file holding a path (commondir, `.git` pointer): walled; its text when it names a place in the share. */
  pointer(p: string, gitdirPrefix: boolean): string | null {
    const k = kindOf(p);
    if (k === null) return null;
    this.wallFile(p, false);
    const text = k === 'file' ? readSmall(p, 4096) : null;
    if (text === null) return null;
    const line = text.split('\n')[0]!.replace(/\r$/, '');
    const m = gitdirPrefix ? /^gitdir: (.+)$/.exec(line) : /^(.+)$/.exec(line);
    return m ? m[1]! : null;
  }

  /** `.git/worktrees/<wt>`: its config.worktree and commondir, and the worktree's own `.git` pointer. */
  linkedWorktree(wt: string, depth: number) {
    if (this.seen.has(wt) || !this.realDirs(wt)) return;
    this.seen.add(wt);
    this.add(this.w.gitDirs, wt);
    this.pinAbove(wt);
    const common = this.pointer(join(wt, 'commondir'), false);
    const commonDir = common === null ? null : this.at(wt, common);
    const cfg = gitConfigValues((commonDir && readSmall(join(commonDir, 'config'))) ?? '');
    this.wallFile(join(wt, 'config.worktree'), (cfg.get('extensions.worktreeconfig') ?? []).some((v) => !isFalse(v)));
    if (commonDir) this.gitdir(commonDir, null, depth + 1);
    const back = readSmall(join(wt, 'gitdir'), 4096)?.split('\n')[0];
    if (back) {
      const tree = dirname(this.at(wt, back));
      if (this.inside(tree)) {
        this.worktree(tree, false, depth + 1);
        this.gitlinks(wt, tree, depth + 1);
      }
    }
  }

  /** Submodule gitdirs under `modules/`: any directory with a HEAD file (names may hold slashes). */
  modules(dir: string, depth: number) {
    if (depth > MAX_DEPTH) return;
    for (const d of this.subdirs(dir)) {
      // HEAD may be a link in old repositories: any HEAD marks a gitdir.
      if (kindOf(join(d, 'HEAD')) !== null) {
        const wt = gitConfigValues(readSmall(join(d, 'config')) ?? '').get('core.worktree')?.at(-1);
        const tree = wt ? this.at(d, wt) : null;
        this.gitdir(d, tree && this.inside(tree) ? tree : null, depth);
        if (tree && this.inside(tree)) this.worktree(tree, false, depth + 1);
      } else this.modules(d, depth + 1);
    }
  }

  /** The gitlinks of a repository's index (and shared index) and the paths its .gitmodules names. */
  gitlinks(g: string, worktree: string, depth: number) {
    const hashBytes = (gitConfigValues(readSmall(join(g, 'config')) ?? '').get('extensions.objectformat') ?? []).includes('sha256') ? 32 : 20;
    // Host git status recurses into the gitlinks of the index; one not checked out gets a cover.
    const paths = new Map<string, boolean>();
    const indexes = [join(g, 'index'), ...this.files(g).filter((f) => /\/sharedindex\.[0-9a-f]+$/.test(f))];
    for (const ix of indexes) {
      const buf = (() => {
        try {
          const st = lstatSync(ix);
          return st.isFile() && st.size <= MAX_INDEX ? readFileSync(ix) : null;
        } catch {
          return null;
        }
      })();
      if (buf) for (const p of indexGitlinks(buf, hashBytes)) paths.set(p, true);
    }
    // .gitmodules is the guest's to write: only a hint, never a cover (it could name any directory).
    const gm = readSmall(join(worktree, '.gitmodules'));
    if (gm) for (const [k, vs] of gitConfigValues(gm)) if (k.startsWith('submodule.') && k.endsWith('.path')) for (const v of vs) if (!paths.has(v)) paths.set(v, false);
    for (const [p, cover] of paths) {
      const t = this.at(worktree, p);
      if (this.inside(t) && !p.split('/').includes('.git')) this.worktree(t, cover, depth + 1);
    }
  }

  /** The top of a worktree: its `.git` (a gitdir or a pointer); `cover` an empty one (a gitlink not checked out). */
  worktree(t: string, cover: boolean, depth: number) {
    if (depth > MAX_DEPTH || this.trees.has(t) || this.trees.size >= MAX_REPOS) return;
    if (t !== this.root && !this.realDirs(t)) return;
    const dotgit = join(t, '.git');
    const k = kindOf(dotgit);
    // A directory without .git seen from a module's core.worktree may still be a gitlink to cover.
    if (k === null && !cover) return;
    this.trees.add(t);
    if (k === 'dir') this.gitdir(dotgit, t, depth);
    else if (k === 'file') {
      const target = this.pointer(dotgit, true);
      if (target !== null) {
        const g = this.at(t, target);
        // A gitdir outside the share is not the guest's to write, but the pointers of the
        // submodules it lists inside the share are (a linked worktree or a submodule shared).
        if (this.inside(g)) this.gitdir(g, t, depth);
        else this.gitlinks(g, t, depth);
      }
    } else if (k === 'link') this.add(this.w.refused, dotgit);
    else if (k === null && cover && t !== this.root) {
      this.add(this.w.empty, t);
      this.pinAbove(t);
    }
  }

  /** The repository above the share, if any: its gitlinks inside the share. */
  enclosing() {
    for (let d = dirname(this.root); ; d = dirname(d)) {
      const dotgit = join(d, '.git');
      const k = kindOf(dotgit);
      if (k === 'dir') return this.gitlinks(dotgit, d, 1);
      if (k === 'file') {
        const m = /^gitdir: (.+)$/.exec(readSmall(dotgit, 4096)?.split('\n')[0]?.replace(/\r$/, '') ?? '');
        return m ? this.gitlinks(this.at(d, m[1]!), d, 1) : undefined;
      }
      if (d === dirname(d)) return;
    }
  }

  /** Real subdirectories of `dir` (no links), within the walk's budget. */
  subdirs(dir: string): string[] {
    if (kindOf(dir) !== 'dir') return [];
    try {
      return readdirSync(dir, { withFileTypes: true })
        .filter((e) => e.isDirectory())
        .slice(0, Math.max(0, MAX_DIRS - this.dirs))
        .map((e) => (this.dirs++, join(dir, e.name)));
    } catch {
      return [];
    }
  }

  files(dir: string): string[] {
    try {
      return readdirSync(dir, { withFileTypes: true }).filter((e) => e.isFile()).slice(0, 64).map((e) => join(dir, e.name));
    } catch {
      return [];
    }
  }
}

/**
 * The git metadata of a share host git would read code from: the share's repository and those one
 * level down (a mount of ~/code), their submodules at any depth, linked worktrees, gitlinks.
 * Paths in the result are under `shared` and reached without following links.
 */
export function gitWallsIn(shared: string): GitWalls {
  const given = resolve(shared);
  let real = given;
  try {
    real = realpathSync(given);
  } catch {
    return new Finder(given, given).w;
  }
  const f = new Finder(real, given);
  f.worktree(f.root, false, 0);
  // A share inside a repository (a subdirectory of it): host git run there reads the repository
  // above, out of the guest's reach, and recurses into the submodules it lists inside the share.
  if (kindOf(join(f.root, '.git')) === null) f.enclosing();
  let entries: string[] = [];
  try {
    entries = readdirSync(real, { withFileTypes: true }).filter((e) => e.isDirectory() && e.name !== '.git' && e.name !== '.vibebox').map((e) => e.name);
  } catch {
    return f.w;
  }
  for (const e of entries) f.worktree(join(real, e), false, 1);
  return f.w;
}
