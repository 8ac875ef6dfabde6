#!/usr/bin/env node
// Entry point. The hot paths (`vibebox`, `vibebox exec`) load only the client; everything else
// loads the commander CLI. esbuild splits these into separate chunks.
import { VibeboxError } from './errors.js';

export function reportAndExit(e: unknown): never {
  if (e instanceof VibeboxError) {
    process.stderr.write(`${e.toLine()}\n`);
    if (process.env['VIBEBOX_DEBUG'] === '1') process.stderr.write(`${e.stack}\n`);
    process.exit(e.exitCode);
  }
  const err = e as Error;
  process.stderr.write(`vibebox: ${err?.message ?? String(e)} (set VIBEBOX_DEBUG=1 for details)\n`);
  if (process.env['VIBEBOX_DEBUG'] === '1') process.stderr.write(`${err?.stack}\n`);
  process.exit(1);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === 'exec' || args.length === 0) {
    const { fastPath } = await import('./client/run.js');
    const handled = await fastPath(args);
    if (handled !== null) return process.exit(handled);
  }
  if (args[0] === '__supervise') {
    const { supervise } = await import('./supervisor/main.js');
    await supervise(args[1] ?? process.cwd());
    return process.exit(0);
  }
  const { runCli } = await import('./cli/program.js');
  await runCli(process.argv);
}

main().catch(reportAndExit);
