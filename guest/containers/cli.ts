// The in-VM entry of the container layer (dist/guest-containers.js → /opt/vibebox/guest-containers.js).
// Loaded as a module by the agent on the first exec that targets the container (startOp), so the
// agent's start-up never parses it. Run as a program:
//   node guest-containers.js image-base                  import vibebox/agent:base if needed
//   node guest-containers.js image-project '<spec json>' print the tag to create the container from
//   node guest-containers.js <op> …                      the container ops from a shell (ops-cli.ts)
//   node guest-containers.js runner                      the agent container's main process (runner.ts)
//   node guest-containers.js stack-controller            the stack-controller container's main process
//   node guest-containers.js stack-cli …                 vibebox-stack in the agent container
// Progress goes to stderr, results to stdout.
import { VibeboxError } from '../errors.js';
import { ImageLayerSpec } from '../protocol.js';
import { BASE_IMAGE, ensureBaseImage } from '../docker/base-image.js';
import { ensureProjectImage, projectImageTag } from '../docker/project-image.js';
import { OP_COMMANDS, opMain } from './ops-cli.js';
import { listenForRunner, startOp } from './ops.js';
import { runOpRequest } from './op-requests.js';
import { runnerMain } from './runner.js';
import { agentStackMain } from '../stack/agent-cli.js';
import { controllerMain } from '../stack/controller.js';
import { ensureController } from '../stack/controller-container.js';
import { warmContainers } from './container.js';

export { BASE_IMAGE, ensureBaseImage, ensureController, ensureProjectImage, listenForRunner, projectImageTag, runOpRequest, startOp, warmContainers };
export type { ExecOpRequest, OpDeps, OpHandle, OpSink } from './ops.js';

const log = (line: string) => process.stderr.write(`${line}\n`);

export type Command = (args: string[]) => Promise<string | undefined>;

/** The image subcommands by name (the ops are ops-cli.ts's). */
export const commands: Record<string, Command> = {
  'image-base': async () => {
    await ensureBaseImage(log);
    return BASE_IMAGE;
  },
  'image-project': async ([json]) => {
    let raw: unknown;
    try {
      raw = JSON.parse(json ?? '');
    } catch {
      throw new VibeboxError('E_USAGE', 'image-project takes one JSON argument', 'e.g. image-project \'{"apt":["tree"],"npm":[],"run":[]}\'');
    }
    const spec = ImageLayerSpec.safeParse(raw);
    if (!spec.success) throw new VibeboxError('E_USAGE', `invalid image spec: ${spec.error.issues[0]?.message ?? ''}`, 'see [image] in the vibebox.toml docs');
    return ensureProjectImage(spec.data, log);
  },
};

export async function main(argv: string[]): Promise<number> {
  const [name = '', ...args] = argv;
  if (OP_COMMANDS.includes(name)) return opMain(argv);
  // The stack: the controller container's main process, and the agent's vibebox-stack.
  if (name === 'stack-controller') return controllerMain();
  if (name === 'stack-cli') {
    try {
      return await agentStackMain(args);
    } catch (e) {
      log(`vibebox-stack: ${(e as Error).message}`);
      return 1;
    }
  }
  if (name === 'runner') {
    // The agent container's main process: a failing run must never take it down. Never returns.
    process.on('uncaughtException', (e) => process.stderr.write(`vibebox-runner: ${e.message}\n`));
    runnerMain();
    return new Promise(() => undefined);
  }
  const cmd = commands[name];
  if (!cmd) {
    log(`vibebox: unknown guest-containers command "${name}" (known: ${[...Object.keys(commands), ...OP_COMMANDS, 'runner'].join(', ')})`);
    return 2;
  }
  try {
    const out = await cmd(args);
    if (out !== undefined) process.stdout.write(`${out}\n`);
    return 0;
  } catch (e) {
    if (e instanceof VibeboxError) {
      log(e.toLine());
      return e.exitCode;
    }
    log(`vibebox: ${(e as Error).message}`);
    return 1;
  }
}

// Run as a program (node guest-containers.js …), not when required as a module.
if (/guest-containers(\.js)?$|containers[/\\]cli\.ts$/.test(process.argv[1] ?? '')) {
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
