// The in-VM entry of the container layer (dist/guest-containers.js → /opt/vibebox/guest-containers.js).
// Loaded as a module by the agent on the first exec that targets the container (startOp), so the
// agent's start-up never parses it; run as a program, the container ops from a shell (ops-cli.ts).
// (agent-image's version of this file adds its image subcommands; merged, main() dispatches both.)
import { OP_COMMANDS, opMain } from './ops-cli.js';
import { startOp } from './ops.js';
import { runnerMain } from './runner.js';

export { startOp };
export type { OpDeps, OpHandle, OpRequest, OpSink } from './ops.js';

export async function main(argv: string[]): Promise<number> {
  const [name = ''] = argv;
  if (OP_COMMANDS.includes(name)) return opMain(argv);
  // The agent container's main process (runner.ts): never returns.
  if (name === 'runner') {
    // A failing run must never take the container's main process down with it.
    process.on('uncaughtException', (e) => process.stderr.write(`vibebox-runner: ${e.message}\n`));
    runnerMain();
    return new Promise(() => undefined);
  }
  process.stderr.write(`vibebox: unknown guest-containers command "${name}" (known: ${OP_COMMANDS.join(', ')})\n`);
  return 2;
}

// Run as a program (node guest-containers.js …), not when required as a module.
if (/guest-containers(\.js)?$|containers[/\\]cli\.ts$/.test(process.argv[1] ?? '')) {
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
