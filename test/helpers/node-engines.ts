// Does a Node version satisfy a package's `engines.node` range? The subset of npm's range syntax
// agent packages use (>=, >, <=, <, =, ^, ~, x-ranges, hyphen ranges, ||); anything else throws,
// so a range this cannot read fails the test instead of passing it.
type V = [number, number, number];

function parse(v: string): V {
  const m = /^v?(\d+)\.(\d+)\.(\d+)(?:[-+].*)?$/.exec(v.trim());
  if (!m) throw new Error(`not a version: ${v}`);
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

function cmp(a: V, b: V): number {
  for (let i = 0; i < 3; i++) if (a[i]! !== b[i]!) return a[i]! - b[i]!;
  return 0;
}

/** A partial version (`22`, `22.1`, `22.x`, `*`) as its lower bound and the parts it gives. */
function partial(p: string): { v: V; parts: number } {
  const xs = p.replace(/^v/, '').split('.');
  if (xs.length > 3 || xs.some((x) => !/^(\d+|x|X|\*)$/.test(x))) throw new Error(`cannot read the range part "${p}"`);
  const nums = [];
  for (const x of xs) {
    if (!/^\d+$/.test(x)) break;
    nums.push(Number(x));
  }
  return { v: [nums[0] ?? 0, nums[1] ?? 0, nums[2] ?? 0], parts: nums.length };
}

/** The exclusive upper bound of a partial version (22 → 23.0.0, 22.1 → 22.2.0). */
function next(p: { v: V; parts: number }): V | null {
  if (p.parts === 0) return null;
  if (p.parts === 1) return [p.v[0] + 1, 0, 0];
  if (p.parts === 2) return [p.v[0], p.v[1] + 1, 0];
  return null;
}

function comparator(c: string, v: V): boolean {
  const m = /^(>=|<=|>|<|=|\^|~)?\s*(.+)$/.exec(c);
  if (!m) throw new Error(`cannot read the range part "${c}"`);
  const op = m[1] ?? '';
  const p = partial(m[2]!);
  switch (op) {
    case '>=':
      return cmp(v, p.v) >= 0;
    case '>': {
      const n = next(p);
      return n ? cmp(v, n) >= 0 : cmp(v, p.v) > 0;
    }
    case '<':
      return cmp(v, p.v) < 0;
    case '<=': {
      const n = next(p);
      return n ? cmp(v, n) < 0 : cmp(v, p.v) <= 0;
    }
    case '^': {
      const [a, b, c2] = p.v;
      const upper: V = a > 0 || p.parts === 1 ? [a + 1, 0, 0] : b > 0 || p.parts === 2 ? [0, b + 1, 0] : [0, 0, c2 + 1];
      return cmp(v, p.v) >= 0 && cmp(v, upper) < 0;
    }
    case '~': {
      const upper: V = p.parts === 1 ? [p.v[0] + 1, 0, 0] : [p.v[0], p.v[1] + 1, 0];
      return cmp(v, p.v) >= 0 && cmp(v, upper) < 0;
    }
    default: {
      const n = next(p);
      if (p.parts === 0) return true;
      return n ? cmp(v, p.v) >= 0 && cmp(v, n) < 0 : cmp(v, p.v) === 0;
    }
  }
}

export function satisfiesNode(version: string, range: string): boolean {
  const v = parse(version);
  return range.split('||').some((alt) => {
    const a = alt.trim();
    if (a === '' || a === '*') return true;
    const hy = /^(\S+)\s+-\s+(\S+)$/.exec(a);
    if (hy) return comparator(`>=${hy[1]}`, v) && comparator(`<=${hy[2]}`, v);
    // ">= 22" is one comparator: join an operator to its version first.
    return a.replace(/(>=|<=|>|<|=|\^|~)\s+/g, '$1').split(/\s+/).every((c) => comparator(c, v));
  });
}
