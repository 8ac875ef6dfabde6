// What the kit folds onto a wrapped Glove agent at boot, once: the `environment` and `workspace`
// skills (the agent may invoke both), the `/output <path>` and `/clear-workspace` hooks (user
// directives in the prompt text), and a static environment block prepended to the system prompt.
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { emptyDir } from './fs-util.js';
import type { GloveRunnableLike } from './glove.js';
import type { EnvironmentInfo } from './kit-protocol.js';

/** First line of the block: how a reader (or a test) finds where the kit's part of the prompt ends. */
export const ENV_BLOCK_HEAD = '## Kit environment';

/** The static preamble: nothing per request (the live listing is the workspace skill's job). */
export function environmentBlock(env: EnvironmentInfo): string {
  const fs = (k: string): string => env.fs[k]?.path ?? `/${k}`;
  const pkgs = Object.entries(env.packages)
    .filter(([, v]) => v.length > 0)
    .map(([k, v]) => `${k}: ${v.join(', ')}`);
  return [
    ENV_BLOCK_HEAD,
    `You run inside the kit ${env.name} ${env.version} (base ${env.base}).`,
    `- ${fs('input')}: the caller's input files for this request (read-only).`,
    `- ${fs('output')}: write your results here; every regular file in it goes back to the caller.`,
    `- ${fs('work')}: scratch space, kept between requests until /clear-workspace.`,
    `A file elsewhere in ${fs('input')} or ${fs('work')} goes back only when the user tags it with \`/output <path>\`.`,
    `Installed packages: ${pkgs.length ? pkgs.join('; ') : 'the base image only'}.`,
    'Skills you can invoke: `environment` (this environment as JSON), `workspace` (what the three directories hold now).',
  ].join('\n');
}

/** The paths after each `/output` directive, bound the way glove-core binds a directive (whitespace around it). */
export function outputPathsOf(text: string): { paths: string[]; bare: number } {
  const paths: string[] = [];
  let bare = 0;
  for (const m of text.matchAll(/(^|\s)\/output(?=\s|$)(\s+(\S+))?/g)) {
    const p = m[3];
    if (p === undefined) bare += 1;
    else paths.push(p);
  }
  return { paths, bare };
}

export interface Entry {
  path: string;
  type: 'file' | 'dir' | 'link' | 'other';
  size?: number;
}

/** One directory's tree, links shown as links (never followed), bounded in entries. */
export async function listTree(dir: string, max: number): Promise<{ entries: Entry[]; truncated: boolean }> {
  const entries: Entry[] = [];
  let truncated = false;
  async function walk(abs: string, rel: string): Promise<void> {
    let names: string[];
    try {
      names = (await readdir(abs)).sort();
    } catch {
      return;
    }
    for (const n of names) {
      if (entries.length >= max) {
        truncated = true;
        return;
      }
      const p = join(abs, n);
      const r = rel ? `${rel}/${n}` : n;
      let st;
      try {
        st = await lstat(p);
      } catch {
        continue; // removed while listing
      }
      if (st.isDirectory()) {
        entries.push({ path: r, type: 'dir' });
        await walk(p, r);
      } else entries.push({ path: r, type: st.isFile() ? 'file' : st.isSymbolicLink() ? 'link' : 'other', ...(st.isFile() ? { size: st.size } : {}) });
    }
  }
  await walk(dir, '');
  return { entries, truncated };
}

export interface InjectionDeps {
  environment: EnvironmentInfo;
  fs: { input: string; output: string; work: string };
  /** Tag a path for the running request's response; throws a KitError on a path outside the kit's fs. */
  tag(path: string): void;
  maxListed?: number;
}

export const INJECTED = { skills: ['environment', 'workspace'], hooks: ['output', 'clear-workspace'] } as const;

export function applyInjections(runnable: GloveRunnableLike, d: InjectionDeps): void {
  const max = d.maxListed ?? 500;
  runnable.defineSkill({
    name: 'environment',
    description: 'The kit this agent runs in: name, version, base image, directories, installed packages, limits (JSON).',
    exposeToAgent: true,
    handler: async () => JSON.stringify(d.environment, null, 2),
  });
  runnable.defineSkill({
    name: 'workspace',
    description: 'What the input, output and work directories hold right now (JSON; links are shown, not followed).',
    exposeToAgent: true,
    handler: async () => {
      const out: Record<string, unknown> = {};
      for (const k of ['input', 'output', 'work'] as const) out[d.fs[k]] = await listTree(d.fs[k], max);
      return JSON.stringify(out, null, 2);
    },
  });
  runnable.defineHook('output', async (ctx) => {
    const { paths, bare } = outputPathsOf(ctx.rawText);
    if (bare > 0 && paths.length === 0) return { shortCircuit: { message: { sender: 'agent', text: 'usage: /output <absolute path of a file in the input or work directory>' } } };
    for (const p of paths) d.tag(p);
    return undefined;
  });
  runnable.defineHook('clear-workspace', async (ctx) => {
    await emptyDir(d.fs.work);
    // Alone in the prompt it is a command, not a question: no model turn.
    if (ctx.parsedText.replace(/\[invoked_extension__hook_[\w-]+\]/g, '').trim() === '') return { shortCircuit: { message: { sender: 'agent', text: 'The work directory is empty.' } } };
    return undefined;
  });
  runnable.setSystemPrompt(`${environmentBlock(d.environment)}\n\n${runnable.getSystemPrompt()}`);
}
