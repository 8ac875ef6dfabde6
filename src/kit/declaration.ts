// The `kit` declaration of a kit module, read without running the module: the entry lives in the
// project, which the guest writes, so importing it on the host would run guest-chosen code as the
// user. esbuild's transform turns TS into JS (it parses, it does not execute), acorn parses that,
// and only literals are evaluated. The real check of the loaded module (run is a function) happens
// in the VM when the kit is served. See docs/architecture.md, "Hostile files".
import { parse, type Node } from 'acorn';
import { VibeboxError } from '../errors.js';
import { shown } from '../../guest/shown.js';

type N = Node & Record<string, unknown>;
type Json = string | number | boolean | null | Json[] | { [k: string]: Json };

const HINT = 'write the kit declaration as a literal: strings, numbers, booleans, null, arrays and objects';

export interface StaticModule {
  /** The `kit` export (named, else the default export's `kit`), evaluated; undefined when there is none. */
  kit: Json | undefined;
  /** Whether the module visibly exports run: a function declaration, a const function, a named export or the default object's run. */
  hasRun: boolean;
  /** Whether the default export is `wrap(runnable, config)` with vibebox/kit's wrap (a Glove agent). */
  wrapped: boolean;
}

const keyPath = (path: string[]): string => shown(['kit', ...path].join('.'));

function notLiteral(entry: string, path: string[], what: string): VibeboxError {
  return new VibeboxError('E_KIT', `${entry}: ${keyPath(path)}: ${what} is not a literal`, HINT);
}

function describe(n: N): string {
  switch (n.type) {
    case 'Identifier':
      return `the name ${shown(String(n['name']))}`;
    case 'CallExpression':
    case 'NewExpression':
      return 'a call';
    case 'SpreadElement':
      return 'a spread';
    case 'TemplateLiteral':
      return 'a template with ${…}';
    default:
      return `a ${String(n.type)}`;
  }
}

/** Only literals: anything that would need the module to run to get its value is refused. */
function evalLiteral(entry: string, n: N, path: string[]): Json {
  switch (n.type) {
    case 'Literal': {
      const v = n['value'];
      if (n['regex'] || n['bigint'] !== undefined) throw notLiteral(entry, path, 'a regular expression or bigint');
      if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' || v === null) return v;
      throw notLiteral(entry, path, 'this value');
    }
    case 'TemplateLiteral': {
      const quasis = n['quasis'] as N[];
      const cooked = (quasis[0]?.['value'] as { cooked?: string | null } | undefined)?.cooked;
      if ((n['expressions'] as N[]).length !== 0 || typeof cooked !== 'string') throw notLiteral(entry, path, describe(n));
      return cooked;
    }
    case 'UnaryExpression': {
      const arg = n['argument'] as N;
      if (n['operator'] === '-' && arg.type === 'Literal' && typeof arg['value'] === 'number') return -arg['value'];
      throw notLiteral(entry, path, `the operator ${String(n['operator'])}`);
    }
    case 'ArrayExpression':
      return (n['elements'] as Array<N | null>).map((e, i) => {
        if (!e) throw notLiteral(entry, [...path, String(i)], 'a hole');
        return evalLiteral(entry, e, [...path, String(i)]);
      });
    case 'ObjectExpression': {
      const out: { [k: string]: Json } = {};
      for (const p of n['properties'] as N[]) {
        if (p.type !== 'Property') throw notLiteral(entry, path, describe(p));
        const key = p['key'] as N;
        const name = key.type === 'Identifier' ? String(key['name']) : key.type === 'Literal' && (typeof key['value'] === 'string' || typeof key['value'] === 'number') ? String(key['value']) : undefined;
        if (p['computed'] || name === undefined) throw notLiteral(entry, path, 'a computed key');
        const at = [...path, name];
        if (p['kind'] !== 'init') throw notLiteral(entry, at, 'a getter or setter');
        if (p['method']) throw notLiteral(entry, at, 'a method');
        if (p['shorthand']) throw notLiteral(entry, at, `the name ${shown(name)}`);
        // __proto__ in a literal sets the prototype; a key twice hides one value from a reader.
        if (name === '__proto__' || Object.prototype.hasOwnProperty.call(out, name)) throw notLiteral(entry, at, 'a repeated or reserved key');
        out[name] = evalLiteral(entry, p['value'] as N, at);
      }
      return out;
    }
    default:
      throw notLiteral(entry, path, describe(n));
  }
}

const isName = (n: N, name: string): boolean => n.type === 'Identifier' && n['name'] === name;
const propName = (n: N): string | undefined => (n['computed'] ? undefined : isName(n['property'] as N, String((n['property'] as N)['name'])) ? String((n['property'] as N)['name']) : undefined);

/** `module.exports` → '', `module.exports.x` / `exports.x` → 'x', anything else → undefined. */
function cjsTarget(n: N): string | undefined {
  if (n.type !== 'MemberExpression') return undefined;
  const obj = n['object'] as N;
  const prop = propName(n);
  if (isName(obj, 'module') && prop === 'exports') return '';
  if (isName(obj, 'exports') && prop) return prop;
  if (obj.type === 'MemberExpression' && isName(obj['object'] as N, 'module') && propName(obj) === 'exports' && prop) return prop;
  return undefined;
}

const isFunction = (n: N | null | undefined): boolean => !!n && (n.type === 'FunctionExpression' || n.type === 'ArrowFunctionExpression');

/**
 * `js` is the module as esbuild's transform left it (ESM, no types). Top-level statements only:
 * `export const kit = {…}`, `const kit = {…}; export { kit }`, `export default { kit: {…}, run }`.
 */
export function readStaticModule(entry: string, js: string): StaticModule {
  let program: N;
  try {
    program = parse(js, { ecmaVersion: 'latest', sourceType: 'module' }) as unknown as N;
  } catch (e) {
    throw new VibeboxError('E_KIT', `cannot parse ${entry}: ${shown((e as Error).message)}`, 'fix the module and build again');
  }
  const body = program['body'] as N[];
  // Top-level bindings: const initialisers and function declarations, for `export { x as kit }`.
  const consts = new Map<string, N | null>();
  const mutable = new Set<string>();
  const functions = new Set<string>();
  const imported = new Set<string>();
  const declare = (d: N): void => {
    if (d.type === 'FunctionDeclaration' && d['id']) functions.add(String((d['id'] as N)['name']));
    if (d.type === 'VariableDeclaration')
      for (const v of d['declarations'] as N[]) {
        const id = v['id'] as N;
        if (id.type !== 'Identifier') continue;
        consts.set(String(id['name']), (v['init'] as N | null) ?? null);
        // esbuild writes `export default {…}` as a var; a kit of its own must be a const.
        if (d['kind'] !== 'const') mutable.add(String(id['name']));
      }
  };
  // vibebox/kit's wrap, as the module imports it: `import { wrap [as w] }` or `import * as ns`.
  const wrapNames = new Set<string>();
  const kitNamespaces = new Set<string>();
  for (const s of body) {
    if (s.type !== 'ImportDeclaration') continue;
    const fromKit = (s['source'] as N)['value'] === 'vibebox/kit';
    for (const sp of s['specifiers'] as N[]) {
      const local = String((sp['local'] as N)['name']);
      imported.add(local);
      if (!fromKit) continue;
      const imp = sp['imported'] as N | undefined;
      if (sp.type === 'ImportSpecifier' && imp && (imp['name'] ?? imp['value']) === 'wrap') wrapNames.add(local);
      if (sp.type === 'ImportNamespaceSpecifier') kitNamespaces.add(local);
    }
  }
  for (const s of body) declare(s.type === 'ExportNamedDeclaration' && s['declaration'] ? (s['declaration'] as N) : s);

  let kitNode: N | undefined;
  let defaultKit: N | undefined;
  let wrapConfig: N | undefined;
  let wrapped = false;
  let hasRun = false;
  let exportAll = false;
  // An imported run is checked when the kit is loaded in the VM.
  const localIsRun = (name: string): boolean => functions.has(name) || isFunction(consts.get(name)) || imported.has(name);
  const localKit = (name: string): N => {
    if (imported.has(name)) throw new VibeboxError('E_KIT', `${entry}: kit is re-exported from another module, which vibebox does not read`, HINT);
    const init = mutable.has(name) ? undefined : consts.get(name);
    if (!init) throw notLiteral(entry, [], `${shown(name)} (not a const with a value)`);
    return init;
  };
  const isWrap = (callee: N): boolean =>
    (callee.type === 'Identifier' && wrapNames.has(String(callee['name']))) ||
    (callee.type === 'MemberExpression' && (callee['object'] as N).type === 'Identifier' && kitNamespaces.has(String((callee['object'] as N)['name'])) && propName(callee) === 'wrap');
  /** `wrap(runnable, config)`: the config must be a literal there, or a const holding one; it is the declaration. */
  const defaultWrap = (d: N): void => {
    const args = d['arguments'] as N[];
    if (args.length < 1 || args.length > 2 || args.some((a) => a.type === 'SpreadElement'))
      throw new VibeboxError('E_KIT', `${entry}: wrap() takes the runnable and one config object`, 'export default wrap(agent, { name: …, version: … })');
    wrapped = true;
    const cfg = args[1];
    if (!cfg) return;
    wrapConfig = cfg.type === 'Identifier' ? localKit(String(cfg['name'])) : cfg;
  };
  // `export default {…}`, which esbuild's transform writes as `var x = {…}; export { x as default }`.
  const defaultObject = (n: N): void => {
    const d = n.type === 'Identifier' ? consts.get(String(n['name'])) : n;
    if (d?.type === 'CallExpression' && isWrap(d['callee'] as N)) return defaultWrap(d);
    if (d?.type !== 'ObjectExpression') return;
    for (const p of d['properties'] as N[]) {
      if (p.type !== 'Property' || p['computed']) continue;
      const key = p['key'] as N;
      const name = key.type === 'Identifier' ? key['name'] : key['value'];
      const value = p['value'] as N;
      if (name === 'run' && (p['method'] || isFunction(value) || (value.type === 'Identifier' && localIsRun(String(value['name']))))) hasRun = true;
      if (name === 'kit') defaultKit = value.type === 'Identifier' ? localKit(String(value['name'])) : value;
    }
  };
  for (const s of body) {
    if (s.type === 'ExportAllDeclaration') exportAll = true;
    if (s.type === 'ExportNamedDeclaration') {
      const d = s['declaration'] as N | null;
      if (d?.type === 'FunctionDeclaration' && (d['id'] as N | null)?.['name'] === 'run') hasRun = true;
      if (d?.type === 'VariableDeclaration')
        for (const v of d['declarations'] as N[]) {
          const name = (v['id'] as N)['name'];
          if (name === 'run' && isFunction(v['init'] as N | null)) hasRun = true;
          if (name === 'kit') {
            if (d['kind'] !== 'const' || !v['init']) throw notLiteral(entry, [], 'a let or var');
            kitNode = v['init'] as N;
          }
        }
      for (const sp of (s['specifiers'] as N[] | undefined) ?? []) {
        const exported = sp['exported'] as N;
        const ename = exported.type === 'Identifier' ? exported['name'] : exported['value'];
        const local = String((sp['local'] as N)['name'] ?? (sp['local'] as N)['value']);
        if (s['source']) {
          if (ename === 'kit') throw new VibeboxError('E_KIT', `${entry}: kit is re-exported from another module, which vibebox does not read`, HINT);
          if (ename === 'run') hasRun = true; // checked when the kit is loaded in the VM
          continue;
        }
        if (ename === 'run' && localIsRun(local)) hasRun = true;
        if (ename === 'kit') kitNode = localKit(local);
        if (ename === 'default') defaultObject(sp['local'] as N);
      }
    }
    if (s.type === 'ExportDefaultDeclaration') defaultObject(s['declaration'] as N);
    // CommonJS (bundled, module.exports is the default export): `module.exports = {…}`, `exports.run = …`.
    const e = s.type === 'ExpressionStatement' ? (s['expression'] as N) : undefined;
    if (e?.type === 'AssignmentExpression' && e['operator'] === '=') {
      const target = cjsTarget(e['left'] as N);
      const value = e['right'] as N;
      if (target === '') defaultObject(value);
      if (target === 'run' && (isFunction(value) || (value.type === 'Identifier' && localIsRun(String(value['name']))))) hasRun = true;
      if (target === 'kit') defaultKit = value.type === 'Identifier' ? localKit(String(value['name'])) : value;
    }
  }
  if (wrapped && (kitNode || defaultKit || hasRun))
    throw new VibeboxError('E_KIT', `${entry}: a wrap() default export and a kit or run export: declare the kit once`, 'put the whole declaration in the wrap(runnable, config) call');
  const node = wrapConfig ?? kitNode ?? defaultKit;
  if (!node && !hasRun && !wrapped && exportAll) throw new VibeboxError('E_KIT', `${entry}: \`export * from\` is not read by vibebox`, 'export run (and kit) from the entry module itself');
  return { kit: node ? evalLiteral(entry, node, []) : undefined, hasRun, wrapped };
}
