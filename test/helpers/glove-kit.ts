// A kit project as a Glove author has one: the module, the scripted model (no model provider is
// reachable here), and glove-core with its dependencies in the project's own node_modules, copied
// from vibebox's devDependencies (kit build bundles only files inside the project).
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const FIXTURE = join(ROOT, 'test', 'fixtures', 'glove-kit');

/** Provider SDKs glove-core depends on but whose modules the kit's imports (glove-core/glove, /display-manager) never load. */
const UNUSED = new Set(['@anthropic-ai/sdk', '@aws-sdk/client-bedrock-runtime', 'openai']);

/** Copy glove-core and its run-time dependencies (links resolved) into `dir`/node_modules, from vibebox's own install. */
export function installGlovePeers(dir: string): void {
  const todo = ['glove-core'];
  const done = new Set<string>();
  while (todo.length) {
    const pkg = todo.pop()!;
    if (done.has(pkg) || UNUSED.has(pkg)) continue;
    done.add(pkg);
    const from = join(ROOT, 'node_modules', pkg);
    cpSync(from, join(dir, 'node_modules', pkg), { recursive: true, dereference: true });
    const deps = (JSON.parse(readFileSync(join(from, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> }).dependencies ?? {};
    todo.push(...Object.keys(deps));
  }
}

/** A directory with the fixture agent (agent.mjs, model.mjs) and its peers; returns the entry. */
export function gloveKitProject(dir: string, files: Record<string, string> = {}): string {
  mkdirSync(dir, { recursive: true });
  cpSync(join(FIXTURE, 'agent.mjs'), join(dir, 'agent.mjs'));
  cpSync(join(FIXTURE, 'model.mjs'), join(dir, 'model.mjs'));
  for (const [f, t] of Object.entries(files)) writeFileSync(join(dir, f), t);
  installGlovePeers(dir);
  return join(dir, 'agent.mjs');
}

/** The same run()-shaped kit the bench compares against: one event, one output, the same message path. */
export const RUN_KIT = `
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
export const kit = { name: 'runkit', version: '1.0.0' };
export async function* run(p, ctx) {
  yield { event_type: 'text_delta', data: { text: 'You said: ' + p.text } };
  await writeFile(join(ctx.outputDir, 'echo.txt'), p.text);
  return 'You said: ' + p.text;
}
`;
