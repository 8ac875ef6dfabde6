// docs/architecture.md (Folders) as a check that fails: guest/ imports nothing outside guest/ (it runs in the
// VM); qemu/, images/ and proxy/ import nothing from src/ (what both sides need lives lower).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...tsFiles(p));
    else if (p.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** Relative specifiers of static imports, re-exports and dynamic imports. */
export function importsOf(source: string): string[] {
  const out: string[] = [];
  const re = /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s*['"]([^'"]+)['"]/gm;
  for (const m of source.matchAll(re)) out.push((m[1] ?? m[2] ?? m[3])!);
  return out;
}

/** Top-level folder a relative import from `file` lands in, or null for packages and node: modules. */
function targetTop(file: string, spec: string): string | null {
  if (!spec.startsWith('.')) return null;
  return relative(ROOT, resolve(dirname(file), spec)).split('/')[0] ?? null;
}

const RULES: Record<string, readonly string[]> = {
  guest: ['src', 'qemu', 'images', 'proxy'],
  qemu: ['src'],
  images: ['src'],
  proxy: ['src'],
};

// Known exceptions, named so the check still fails on anything new (none today).
const KNOWN: ReadonlySet<string> = new Set<string>();

export function violations(): string[] {
  const out: string[] = [];
  for (const [top, forbidden] of Object.entries(RULES)) {
    for (const f of tsFiles(join(ROOT, top))) {
      for (const spec of importsOf(readFileSync(f, 'utf8'))) {
        const t = targetTop(f, spec);
        const key = `${relative(ROOT, f)} -> ${spec}`;
        if (t && forbidden.includes(t) && !KNOWN.has(key)) out.push(key);
      }
    }
  }
  return out;
}

/** Inside guest/: the Docker floor (guest/docker) stands under the container layer and the stack; the
 *  stack does not reach into the container layer (it stands on the floor). */
const GUEST_RULES: Record<string, readonly string[]> = {
  'guest/docker': ['guest/containers', 'guest/stack', 'guest/kit'],
  'guest/stack': ['guest/containers'],
};

/** Folder (two levels, e.g. guest/stack) a relative import from `file` lands in. */
function targetSub(file: string, spec: string): string | null {
  if (!spec.startsWith('.')) return null;
  return relative(ROOT, resolve(dirname(file), spec)).split('/').slice(0, 2).join('/');
}

export function guestViolations(): string[] {
  const out: string[] = [];
  for (const [dir, forbidden] of Object.entries(GUEST_RULES)) {
    for (const f of tsFiles(join(ROOT, dir))) {
      for (const spec of importsOf(readFileSync(f, 'utf8'))) {
        const t = targetSub(f, spec);
        if (t && forbidden.includes(t)) out.push(`${relative(ROOT, f)} -> ${spec}`);
      }
    }
  }
  return out;
}

describe('layering (docs/architecture.md, Folders)', () => {
  it('finds imports in every form it must police', () => {
    assert.deepEqual(importsOf(`import { a } from '../src/x.js';\nexport { b } from "../src/y.js";\nconst m = await import('../src/z.js');\nimport '../src/side.js';\nimport type { T } from '../src/t.js';`), ['../src/x.js', '../src/y.js', '../src/z.js', '../src/side.js', '../src/t.js']);
  });

  it('guest/, qemu/, images/ and proxy/ import nothing from above them', () => {
    assert.deepEqual(violations(), []);
  });

  it('guest/docker is the floor under guest/containers and guest/stack; the stack does not import the container layer', () => {
    assert.deepEqual(guestViolations(), []);
  });
});
