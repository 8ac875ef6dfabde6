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

/** The folders of guest/ (guest/agent, guest/docker…; files at guest/'s top are 'guest') and which of them each imports. */
export function guestFolderEdges(): Map<string, Set<string>> {
  const edges = new Map<string, Set<string>>();
  for (const f of tsFiles(join(ROOT, 'guest'))) {
    const rel = relative(ROOT, f).split('/');
    const from = rel.length > 2 ? rel.slice(0, 2).join('/') : 'guest';
    for (const spec of importsOf(readFileSync(f, 'utf8'))) {
      if (!spec.startsWith('.')) continue;
      const t = relative(ROOT, resolve(dirname(f), spec)).split('/');
      if (t[0] !== 'guest') continue;
      const to = t.length > 2 ? t.slice(0, 2).join('/') : 'guest';
      if (to !== from) edges.set(from, (edges.get(from) ?? new Set()).add(to));
    }
  }
  return edges;
}

/** A cycle among folders, as a path, or null. */
export function folderCycle(edges: Map<string, Set<string>>): string[] | null {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (n: string): string[] | null => {
    if (state.get(n) === 'done') return null;
    if (state.get(n) === 'open') return [...stack.slice(stack.indexOf(n)), n];
    state.set(n, 'open');
    stack.push(n);
    for (const m of edges.get(n) ?? []) {
      const c = visit(m);
      if (c) return c;
    }
    stack.pop();
    state.set(n, 'done');
    return null;
  };
  for (const n of edges.keys()) {
    const c = visit(n);
    if (c) return c;
  }
  return null;
}

describe('layering (docs/architecture.md, Folders)', () => {
  it('finds imports in every form it must police', () => {
    assert.deepEqual(importsOf(`import { a } from '../src/x.js';\nexport { b } from "../src/y.js";\nconst m = await import('../src/z.js');\nimport '../src/side.js';\nimport type { T } from '../src/t.js';`), ['../src/x.js', '../src/y.js', '../src/z.js', '../src/side.js', '../src/t.js']);
  });

  it('guest/, qemu/, images/ and proxy/ import nothing from above them', () => {
    assert.deepEqual(violations(), []);
  });

  it('no import cycle between the folders of guest/ (type-only imports count too)', () => {
    assert.equal(folderCycle(new Map([['a', new Set(['b'])], ['b', new Set(['a'])]]))?.join(' -> '), 'a -> b -> a');
    assert.deepEqual(folderCycle(guestFolderEdges()), null);
  });

  it('guest/docker is the floor under guest/containers and guest/stack; the stack does not import the container layer', () => {
    assert.deepEqual(guestViolations(), []);
  });
});
