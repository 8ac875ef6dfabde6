#!/usr/bin/env node
// Entry point. The hot paths (`vibebox`, `vibebox exec`) load only the client; everything else
// loads the commander CLI. esbuild splits these into separate chunks.
import { reportAndExit } from './report.js';

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  // A bad VIBEBOX_HOME is one line before any command touches it (help and version need no home).
  if (!['-h', '--help', '-V', '--version', 'help'].includes(args[0] ?? '')) (await import('./paths.js')).checkHome();
  if (args[0] === 'exec' || args.length === 0 || (args[0] === 'run' && args.includes('--'))) {
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
