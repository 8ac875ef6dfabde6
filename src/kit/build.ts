// `vibebox kit build <entry>`: bundle a kit module with esbuild, read its `kit` declaration, and
// write a self-contained dist/: server/ (the launcher, the bundled runnable, the SQLite binding),
// kit.json, kit.key (0600; its fingerprint is in kit.json), .env.example, a Dockerfile and nixpacks.toml.
// The entry and everything it imports are the project's, which the guest writes: nothing of it
// runs on the host (the declaration is read statically, declaration.ts), the bundle holds only
// files inside the project (and vibebox's own SDK), and dist/ is written without following a link.
// See docs/architecture.md, "Hostile files".
import { randomBytes } from 'node:crypto';
import { closeSync, constants, copyFileSync, cpSync, fstatSync, lstatSync, mkdirSync, openSync, readlinkSync, readSync, realpathSync, renameSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, extname, join, relative, resolve, sep } from 'node:path';
import type { Plugin } from 'esbuild';
import { VibeboxError } from '../errors.js';
import { packageRoot } from '../../images/recipe.js';
import { hasUnsafeText, shown } from '../../guest/shown.js';
import { readUntrusted } from '../fs/read-untrusted.js';
import { resolveProject } from '../session/project.js';
import { dockerfile, envExample, KitDeclaration, kitManifest, nixpacks } from './plan.js';
import { readStaticModule } from './declaration.js';
import { KEY_FORMAT } from './key-format.js';

export interface BuildResult {
  out: string;
  name: string;
  version: string;
  keyFile: string;
  keyReused: boolean;
}

const MAX_SOURCE = 8 * 1024 * 1024;

const inside = (root: string, p: string): boolean => p === root || p.startsWith(root.endsWith(sep) ? root : root + sep);

/** A key file vibebox wrote (regular, 0600, the exact format) is kept across rebuilds: clients keep working. A link is refused. */
function existingKey(file: string): string | null {
  const r = readUntrusted(file, { maxBytes: 256, what: 'the kit key', code: 'E_KIT' });
  if (!r || (r.mode & 0o077) !== 0 || !KEY_FORMAT.test(r.text)) return null;
  return r.text.trim();
}

/**
 * Write `name` in `dir` as temp + rename: the temp is created O_EXCL|O_NOFOLLOW (never through a
 * planted link), and rename replaces whatever `name` was (a link included) without following it.
 */
function writeFileSafe(dir: string, name: string, text: string, mode = 0o644): void {
  const tmp = join(dir, `.${name}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
  try {
    const buf = Buffer.from(text);
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, join(dir, name));
}

/**
 * The output directory, made without following a link: inside the project, every component from
 * the project down must be a real directory (one the guest made a link would send the writes, and
 * the delete of dist/server, elsewhere); outside it (the user's own choice) the directory itself.
 */
function outDir(project: string, outArg: string): string {
  const abs = resolve(outArg);
  const refuse = (p: string) => new VibeboxError('E_KIT', `${shown(p)} is a symbolic link: kit build writes only into real directories`, 'remove the link, or choose another --out');
  // Up from --out to the directory that is the project (the user's spelling may hold links above it).
  const below: string[] = [];
  let found = false;
  for (let a = abs; ; ) {
    let real: string | null = null;
    try {
      real = realpathSync(a);
    } catch {
      // not there yet
    }
    if (real === project) {
      found = true;
      break;
    }
    const up = dirname(a);
    if (up === a) break;
    below.unshift(basename(a));
    a = up;
  }
  if (found && below.length === 0) throw new VibeboxError('E_USAGE', `--out ${shown(outArg)} is the project itself`, 'build into a directory of the project, e.g. --out dist');
  if (!found) {
    // Outside the project: the user's own path; only the directory itself must not be a link.
    mkdirSync(abs, { recursive: true, mode: 0o755 });
    if (lstatSync(abs).isSymbolicLink()) throw refuse(abs);
    return realpathSync(abs);
  }
  let p = project;
  for (const s of below) {
    p = join(p, s);
    let st;
    try {
      st = lstatSync(p);
    } catch {
      mkdirSync(p, { mode: 0o755 });
      st = lstatSync(p);
    }
    if (st.isSymbolicLink()) throw refuse(p);
    if (!st.isDirectory()) throw new VibeboxError('E_USAGE', `${shown(p)} is not a directory`, 'choose another --out');
  }
  return p;
}

/** Every string of the declaration (keys included) free of control and invisible characters: they end up in .env.example, a Dockerfile, a terminal. */
function checkText(entry: string, v: unknown, path: string[]): void {
  const at = () => shown(['kit', ...path].join('.'));
  if (typeof v === 'string') {
    if (hasUnsafeText(v)) throw new VibeboxError('E_KIT', `${entry}: ${at()}: control or invisible characters are not allowed`, 'write it on one line, printable characters only');
  } else if (Array.isArray(v)) v.forEach((x, i) => checkText(entry, x, [...path, String(i)]));
  else if (v && typeof v === 'object')
    for (const [k, x] of Object.entries(v)) {
      if (hasUnsafeText(k)) throw new VibeboxError('E_KIT', `${entry}: ${at()}: a key with control or invisible characters (${shown(k)})`, 'printable characters only');
      checkText(entry, x, [...path, k]);
    }
}

const LOADERS: Record<string, 'js' | 'jsx' | 'ts' | 'tsx' | 'json'> = { '.js': 'js', '.mjs': 'js', '.cjs': 'js', '.jsx': 'jsx', '.ts': 'ts', '.mts': 'ts', '.cts': 'ts', '.tsx': 'tsx', '.json': 'json' };

/**
 * Read a file for the bundle: opened without following a last-component link, then the path the
 * open descriptor really names (Linux: /proc/self/fd) must be inside an allowed root, so a link
 * swapped in between the check and the read is caught too.
 */
function readConfined(path: string, roots: readonly string[], importName: string): string {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    throw new Error(`${shown(importName)}: ${(e as NodeJS.ErrnoException).code === 'ELOOP' ? 'a symbolic link' : (e as Error).message}`);
  }
  try {
    let real: string;
    try {
      real = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      real = realpathSync(path);
    }
    if (!roots.some((r) => inside(r, real))) throw new Error(`${shown(importName)} is outside the project (${shown(real)})`);
    const st = fstatSync(fd);
    if (!st.isFile()) throw new Error(`${shown(importName)} is not a regular file`);
    if (st.size > MAX_SOURCE) throw new Error(`${shown(importName)} is larger than ${MAX_SOURCE} bytes`);
    const buf = Buffer.alloc(st.size);
    let n = 0;
    while (n < buf.length) {
      const r = readSync(fd, buf, n, buf.length - n, null);
      if (r === 0) break;
      n += r;
    }
    return buf.subarray(0, n).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/**
 * Every file the bundle reads is the project's (its realpath inside the project) or vibebox's own
 * (the `vibebox/kit` SDK and what it imports). Absolute imports, `..` out of the project, links
 * out of it, a text/file/binary loader on a host file: refused, naming the import.
 */
function confine(project: string, vibebox: string): Plugin {
  const sdk = join(vibebox, 'dist', 'kit.js');
  const ours = new Set<string>();
  return {
    name: 'vibebox-confine',
    setup(b) {
      b.onResolve({ filter: /.*/ }, async (a) => {
        if (a.pluginData === 'inner') return undefined;
        if (a.path === 'vibebox/kit') {
          ours.add(sdk);
          return { path: sdk };
        }
        if (a.path === 'vibebox' || a.path.startsWith('vibebox/')) return { errors: [{ text: `${shown(a.path)}: only vibebox/kit is importable from vibebox` }] };
        const r = await b.resolve(a.path, { kind: a.kind, resolveDir: a.resolveDir, importer: a.importer, pluginData: 'inner', ...(a.with ? { with: a.with } : {}) });
        // Unresolvable: esbuild's own handling (a require() in a try block is only a warning); nothing was read.
        if (r.errors.length) return undefined;
        if (r.external || r.namespace !== 'file') return r.external ? { path: r.path, external: true } : { errors: [{ text: `${shown(a.path)}: not a file` }] };
        let real: string;
        try {
          real = realpathSync(r.path);
        } catch {
          return { errors: [{ text: `${shown(a.path)} cannot be resolved` }] };
        }
        // vibebox's own files import their own dependencies (ws, zod), wherever npm put them.
        const fromVibebox = ours.has(a.importer);
        if (!inside(project, real) && !fromVibebox) return { errors: [{ text: `${shown(a.path)} is outside the project (${shown(real)})` }] };
        if (fromVibebox) ours.add(real);
        return { path: real, ...(r.suffix ? { suffix: r.suffix } : {}), ...(r.sideEffects === false ? { sideEffects: false } : {}) };
      });
      b.onLoad({ filter: /.*/ }, (a) => {
        const loader = LOADERS[extname(a.path)];
        if (!loader) return { errors: [{ text: `${shown(a.path)}: only JavaScript, TypeScript and JSON files are bundled` }] };
        try {
          const roots = ours.has(a.path) ? [dirname(a.path)] : [project];
          return { contents: readConfined(a.path, roots, relative(project, a.path) || a.path), loader, resolveDir: dirname(a.path) };
        } catch (e) {
          return { errors: [{ text: (e as Error).message }] };
        }
      });
    },
  };
}

type Esbuild = typeof import('esbuild');
async function loadEsbuild(): Promise<Esbuild> {
  const esbuild = (await import('esbuild')) as Esbuild & { default?: Esbuild };
  // CommonJS behind an ESM import: the named exports or the default's.
  return typeof (esbuild as Partial<Esbuild>).build === 'function' ? esbuild : (esbuild.default as Esbuild);
}

/**
 * The kit's SQLite binding, for the guest: @photostructure/sqlite is a Node-API addon (it loads in
 * any Node of that API, whatever the host runs) whose npm package ships prebuilt Linux binaries.
 * Only its JavaScript and the guest's prebuilds (Linux on this CPU; the guest is glibc) are
 * copied, never a binary built on or for the host.
 */
function copyNativeDeps(serverDir: string): void {
  const req = createRequire(join(packageRoot(), 'package.json'));
  const sq = dirname(req.resolve('@photostructure/sqlite/package.json'));
  const nm = join(serverDir, 'node_modules');
  const dest = join(nm, '@photostructure', 'sqlite');
  const prebuilds = join('prebuilds', `linux-${process.arch}`);
  mkdirSync(join(dest, prebuilds), { recursive: true });
  copyFileSync(join(sq, 'package.json'), join(dest, 'package.json'));
  cpSync(join(sq, 'dist'), join(dest, 'dist'), { recursive: true });
  cpSync(join(sq, prebuilds), join(dest, prebuilds), { recursive: true });
  const gyp = dirname(createRequire(join(sq, 'package.json')).resolve('node-gyp-build/package.json'));
  cpSync(gyp, join(nm, 'node-gyp-build'), { recursive: true });
}

export async function buildKit(entry: string, o: { out?: string; name?: string; version?: string; project?: string }): Promise<BuildResult> {
  const project = resolveProject(o.project);
  let src: string;
  try {
    src = realpathSync(resolve(entry));
  } catch {
    throw new VibeboxError('E_USAGE', `kit entry ${shown(entry)} does not exist`, 'give the module that exports run(prompt, ctx)');
  }
  if (!inside(project, src)) throw new VibeboxError('E_KIT', `kit entry ${shown(entry)} is outside the project ${shown(project)} (${shown(src)})`, 'build a module of this project, or pass --project');
  const vibebox = realpathSync(packageRoot());
  const esbuild = await loadEsbuild();
  // The entry as the guest left it, read once without following a link; the declaration comes from these bytes.
  let code: string;
  try {
    code = readConfined(resolve(entry), [project], entry);
  } catch (e) {
    throw new VibeboxError('E_KIT', `kit entry ${(e as Error).message}`, 'give a regular file of the project');
  }
  const loader = LOADERS[extname(src)];
  if (!loader || loader === 'json') throw new VibeboxError('E_USAGE', `kit entry ${shown(entry)} is not a JavaScript or TypeScript module`, 'give the .ts or .js module that exports run(prompt, ctx)');
  let js: string;
  try {
    js = (await esbuild.transform(code, { loader, target: 'esnext', sourcefile: basename(src), logLevel: 'silent', tsconfigRaw: {} })).code;
  } catch (e) {
    const first = (e as { errors?: { text: string; location?: { line: number } | null }[] }).errors?.[0];
    throw new VibeboxError('E_KIT', `cannot bundle ${shown(entry)}: ${first ? `${first.location ? `line ${first.location.line}: ` : ''}${shown(first.text)}` : shown((e as Error).message)}`, 'fix the module and build again');
  }
  const mod = readStaticModule(shown(entry), js);
  if (!mod.hasRun && !mod.wrapped)
    throw new VibeboxError('E_KIT', `${shown(entry)} exports no run(prompt, ctx) function and no wrap(runnable, config) default`, "export async function* run(prompt, ctx) { … }, or export default wrap(agent, { … }) with wrap from 'vibebox/kit'");
  checkText(shown(entry), mod.kit, []);
  const decl = KitDeclaration.safeParse(mod.kit ?? {});
  if (!decl.success) {
    const i = decl.error.issues[0];
    throw new VibeboxError('E_KIT', `${shown(entry)}: kit.${shown(i?.path.join('.') ?? '')}: ${i?.message ?? 'invalid'}`, 'see the kit section of README.md');
  }
  const fallback = basename(src, extname(src)).toLowerCase().replace(/[^a-z0-9_.-]+/g, '-').replace(/^[^a-z0-9]+/, '') || 'kit';
  const name = o.name ?? decl.data.name ?? fallback;
  if (!/^[a-z0-9][a-z0-9_.-]{0,62}$/.test(name)) throw new VibeboxError('E_USAGE', `kit name "${shown(name)}" is not valid`, 'use lower-case letters, digits, ".", "_" or "-"');
  const version = o.version ?? decl.data.version ?? '0.0.0';
  if (hasUnsafeText(version)) throw new VibeboxError('E_USAGE', `kit version ${shown(version)} has control or invisible characters`, 'printable characters only');

  const out = outDir(project, o.out ?? 'dist');
  // server/ is staged beside it and renamed into place: a link planted at dist/server is removed, never followed.
  const stage = join(out, `.server-${randomBytes(6).toString('hex')}`);
  mkdirSync(stage, { mode: 0o755 });
  try {
    try {
      await esbuild.build({
        entryPoints: [src],
        bundle: true,
        platform: 'node',
        format: 'esm',
        target: 'node20',
        outfile: join(stage, 'runnable.mjs'),
        external: ['@photostructure/sqlite'],
        logLevel: 'silent',
        // No tsconfig.json is read: one could extend a host file or map imports (paths) out of the project.
        tsconfigRaw: {},
        absWorkingDir: project,
        plugins: [confine(project, vibebox)],
        banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
      });
    } catch (e) {
      const first = (e as { errors?: { text: string; location?: { file: string; line: number } | null }[] }).errors?.[0];
      throw new VibeboxError('E_KIT', `cannot bundle ${shown(entry)}: ${first ? `${first.location ? `${shown(first.location.file)}:${first.location.line}: ` : ''}${shown(first.text)}` : shown((e as Error).message)}`, 'a kit bundles only files of its project: fix the import and build again');
    }
    copyFileSync(join(packageRoot(), 'dist', 'kit-server.mjs'), join(stage, 'index.mjs'));
    copyNativeDeps(stage);
    const keyFile = join(out, 'kit.key');
    const reused = existingKey(keyFile);
    const key = reused ?? randomBytes(32).toString('base64url');
    const manifest = kitManifest(decl.data, { name, version, key });
    const json = JSON.stringify(manifest, null, 2) + '\n';
    // The runtime resolves the manifest next to its entry too (as glovebox does).
    writeFileSafe(stage, 'kit.json', json);
    const old = join(out, 'server');
    const st = (() => {
      try {
        return lstatSync(old);
      } catch {
        return null;
      }
    })();
    if (st?.isDirectory()) rmSync(old, { recursive: true, force: true });
    else if (st) unlinkSync(old);
    renameSync(stage, old);
    if (!reused) writeFileSafe(out, 'kit.key', `${key}\n`, 0o600);
    writeFileSafe(out, 'kit.json', json);
    writeFileSafe(out, '.env.example', envExample(manifest.env ?? {}));
    writeFileSafe(out, 'Dockerfile', dockerfile(manifest));
    writeFileSafe(out, 'nixpacks.toml', nixpacks(manifest));
    // The key never goes into an image: docker run gets it as VIBEBOX_KIT_KEY.
    writeFileSafe(out, '.dockerignore', 'kit.key\n.env\n');
    return { out, name, version, keyFile, keyReused: reused !== null };
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}
