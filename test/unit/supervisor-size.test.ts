// docs/architecture.md (The supervisor's parts) as a check that fails: the supervisor stays a set
// of parts, not one closure — no function in src/supervisor/ over 150 lines of source, main.ts at
// most 250 lines. Functions are found by parsing (esbuild strips the types, acorn parses, the
// source map gives each function's lines in the .ts file), so nested and arrow functions count too.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { transformSync } from 'esbuild';
import { parse, type Node } from 'acorn';

const DIR = fileURLToPath(new URL('../../src/supervisor', import.meta.url));
const MAX_FUNCTION_LINES = 150;
const MAX_MAIN_LINES = 250;

interface Located extends Node {
  loc: { start: { line: number; column: number }; end: { line: number; column: number } };
  id?: { name?: string } | null;
}

/** Each function of a TypeScript source with its length in source lines (pure). */
export function functionLengths(source: string, file: string): { name: string; line: number; lines: number }[] {
  const out = transformSync(source, { loader: 'ts', format: 'esm', sourcemap: 'external', sourcefile: file });
  const map = new SourceMap(JSON.parse(out.map) as ConstructorParameters<typeof SourceMap>[0]);
  // findEntry takes 0-based lines; acorn's are 1-based.
  const srcLine = (line: number, column: number) => (map.findEntry(line - 1, column) as { originalLine?: number }).originalLine ?? line - 1;
  const ast = parse(out.code, { ecmaVersion: 'latest', sourceType: 'module', locations: true });
  const found: { name: string; line: number; lines: number }[] = [];
  const walk = (n: unknown): void => {
    if (!n || typeof n !== 'object') return;
    const node = n as Located & Record<string, unknown>;
    if (typeof node.type === 'string' && /Function/.test(node.type) && node.loc) {
      const a = srcLine(node.loc.start.line, node.loc.start.column);
      const b = srcLine(node.loc.end.line, Math.max(0, node.loc.end.column - 1));
      found.push({ name: node.id?.name ?? '(anonymous)', line: a + 1, lines: b - a + 1 });
    }
    for (const v of Object.values(node)) {
      if (Array.isArray(v)) v.forEach(walk);
      else if (v && typeof v === 'object' && typeof (v as { type?: unknown }).type === 'string') walk(v);
    }
  };
  walk(ast);
  return found;
}

describe('the supervisor stays in parts', () => {
  it('measures a function by its source lines, types included', () => {
    const body = Array.from({ length: 160 }, (_, i) => `  const v${i}: number = ${i};`).join('\n');
    const src = `interface T {\n  a: number;\n}\nexport function big(): void {\n${body}\n}\nconst small = (x: T): number => x.a;\n`;
    const f = functionLengths(src, 'x.ts');
    assert.deepEqual(f.find((x) => x.name === 'big'), { name: 'big', line: 4, lines: 162 });
    assert.equal(f.find((x) => x.name === '(anonymous)')?.lines, 1);
  });

  it(`no function in src/supervisor/ is over ${MAX_FUNCTION_LINES} lines`, () => {
    const long: string[] = [];
    for (const f of readdirSync(DIR).filter((n) => n.endsWith('.ts'))) {
      for (const fn of functionLengths(readFileSync(join(DIR, f), 'utf8'), f)) {
        if (fn.lines > MAX_FUNCTION_LINES) long.push(`${f}:${fn.line} ${fn.name} (${fn.lines} lines)`);
      }
    }
    assert.deepEqual(long, []);
  });

  it(`main.ts is at most ${MAX_MAIN_LINES} lines`, () => {
    const lines = readFileSync(join(DIR, 'main.ts'), 'utf8').split('\n').length;
    assert.ok(lines <= MAX_MAIN_LINES, `main.ts has ${lines} lines`);
  });
});
