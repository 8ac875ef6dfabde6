// `vibebox kit build <entry>`: bundle a kit module with esbuild, read its `kit` declaration, and
// write a self-contained dist/: server/ (the launcher, the bundled runnable, better-sqlite3),
// kit.json, kit.key (0600; its fingerprint is in kit.json), .env.example and a Dockerfile.
import { randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, openSync, closeSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { VibeboxError } from '../errors.js';
import { packageRoot } from '../../images/recipe.js';
import { dockerfile, envExample, KitDeclaration, kitManifest } from './plan.js';

export interface BuildResult {
  out: string;
  name: string;
  version: string;
  keyFile: string;
  keyReused: boolean;
}

/** A key file vibebox wrote (regular, 0600, long enough) is kept across rebuilds: clients keep working. */
function existingKey(file: string): string | null {
  try {
    const st = statSync(file);
    if (!st.isFile() || (st.mode & 0o077) !== 0) return null;
    const k = readFileSync(file, 'utf8').trim();
    return /^[A-Za-z0-9_-]{32,}$/.test(k) ? k : null;
  } catch {
    return null;
  }
}

function writeKey(file: string, key: string): void {
  rmSync(file, { force: true });
  const fd = openSync(file, 'wx', 0o600);
  try {
    writeSync(fd, `${key}\n`);
  } finally {
    closeSync(fd);
  }
  chmodSync(file, 0o600); // whatever the umask
}

/** The kit's runtime dependency with a native part: copied from this installation (same Node ABI as the base image). */
function copyNativeDeps(serverDir: string): void {
  const req = createRequire(join(packageRoot(), 'package.json'));
  const bsq = dirname(req.resolve('better-sqlite3/package.json'));
  const nm = join(serverDir, 'node_modules');
  const dest = join(nm, 'better-sqlite3');
  mkdirSync(join(dest, 'build', 'Release'), { recursive: true });
  copyFileSync(join(bsq, 'package.json'), join(dest, 'package.json'));
  cpSync(join(bsq, 'lib'), join(dest, 'lib'), { recursive: true });
  copyFileSync(join(bsq, 'build', 'Release', 'better_sqlite3.node'), join(dest, 'build', 'Release', 'better_sqlite3.node'));
  const breq = createRequire(join(bsq, 'package.json'));
  for (const dep of ['bindings', 'file-uri-to-path']) {
    const d = dirname((dep === 'bindings' ? breq : createRequire(breq.resolve('bindings/package.json'))).resolve(`${dep}/package.json`));
    cpSync(d, join(nm, dep), { recursive: true });
  }
}

export async function buildKit(entry: string, o: { out?: string; name?: string; version?: string }): Promise<BuildResult> {
  const src = resolve(entry);
  if (!existsSync(src) || !statSync(src).isFile()) throw new VibeboxError('E_USAGE', `kit entry ${entry} is not a file`, 'give the module that exports run(prompt, ctx)');
  const out = resolve(o.out ?? 'dist');
  if (existsSync(out) && !statSync(out).isDirectory()) throw new VibeboxError('E_USAGE', `${out} is not a directory`, 'choose another --out');
  const server = join(out, 'server');
  rmSync(server, { recursive: true, force: true });
  mkdirSync(server, { recursive: true });
  const runnable = join(server, 'runnable.mjs');
  const esbuild = await import('esbuild');
  // CommonJS behind an ESM import: the named export or the default's.
  const build = esbuild.build ?? (esbuild as unknown as { default: typeof esbuild }).default.build;
  try {
    await build({
      entryPoints: [src],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      outfile: runnable,
      external: ['better-sqlite3'],
      logLevel: 'silent',
      banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
    });
  } catch (e) {
    const first = (e as { errors?: { text: string; location?: { file: string; line: number } | null }[] }).errors?.[0];
    throw new VibeboxError('E_KIT', `cannot bundle ${entry}: ${first ? `${first.location ? `${first.location.file}:${first.location.line}: ` : ''}${first.text}` : (e as Error).message}`, 'fix the module and build again');
  }
  // Read the declaration the way the launcher will load the module.
  let mod: Record<string, unknown>;
  try {
    mod = (await import(`${pathToFileURL(runnable).href}?build=${Date.now()}`)) as Record<string, unknown>;
  } catch (e) {
    throw new VibeboxError('E_KIT', `${entry} fails when loaded: ${(e as Error).message.split('\n')[0]}`, 'a kit module must load without side effects that fail');
  }
  const dflt = mod['default'] as Record<string, unknown> | undefined;
  if (typeof (mod['run'] ?? dflt?.['run']) !== 'function') throw new VibeboxError('E_KIT', `${entry} exports no run(prompt, ctx) function`, 'export async function* run(prompt, ctx) { … }');
  const decl = KitDeclaration.safeParse(mod['kit'] ?? dflt?.['kit'] ?? {});
  if (!decl.success) {
    const i = decl.error.issues[0];
    throw new VibeboxError('E_KIT', `${entry}: kit.${i?.path.join('.') ?? ''}: ${i?.message ?? 'invalid'}`, 'see the kit section of README.md');
  }
  const fallback = basename(src, extname(src)).toLowerCase().replace(/[^a-z0-9_.-]+/g, '-').replace(/^[^a-z0-9]+/, '') || 'kit';
  const name = o.name ?? decl.data.name ?? fallback;
  if (!/^[a-z0-9][a-z0-9_.-]{0,62}$/.test(name)) throw new VibeboxError('E_USAGE', `kit name "${name}" is not valid`, 'use lower-case letters, digits, ".", "_" or "-"');
  const version = o.version ?? decl.data.version ?? '0.0.0';
  const keyFile = join(out, 'kit.key');
  const reused = existingKey(keyFile);
  const key = reused ?? randomBytes(32).toString('base64url');
  if (!reused) writeKey(keyFile, key);
  const manifest = kitManifest(decl.data, { name, version, key });
  writeFileSync(join(out, 'kit.json'), JSON.stringify(manifest, null, 2) + '\n');
  // The runtime resolves the manifest next to its entry too (as glovebox does).
  writeFileSync(join(server, 'kit.json'), JSON.stringify(manifest, null, 2) + '\n');
  writeFileSync(join(out, '.env.example'), envExample(manifest.env ?? {}));
  writeFileSync(join(out, 'Dockerfile'), dockerfile(manifest));
  // The key never goes into an image: docker run gets it as VIBEBOX_KIT_KEY.
  writeFileSync(join(out, '.dockerignore'), 'kit.key\n.env\n');
  copyFileSync(join(packageRoot(), 'dist', 'kit-server.mjs'), join(server, 'index.mjs'));
  copyNativeDeps(server);
  return { out, name, version, keyFile, keyReused: reused !== null };
}
