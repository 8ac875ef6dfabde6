// The in-VM entry of the container layer (dist/guest-containers.js → /opt/vibebox/guest-containers.js):
//   node guest-containers.js image-base                  import vibebox/agent:base if needed
//   node guest-containers.js image-project '<spec json>' print the tag to create the container from
// Progress goes to stderr, results to stdout. Also loaded as a module (the agent requires it lazily).
import { VibeboxError } from '../errors.js';
import { ImageLayerSpec } from '../protocol.js';
import { BASE_IMAGE, ensureBaseImage } from './base-image.js';
import { ensureProjectImage, projectImageTag } from './project-image.js';

export { BASE_IMAGE, ensureBaseImage, ensureProjectImage, projectImageTag };

const log = (line: string) => process.stderr.write(`${line}\n`);

export type Command = (args: string[]) => Promise<string | undefined>;

/** Subcommands by name; the runtime slice adds its own here. */
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
  const cmd = commands[name];
  if (!cmd) {
    log(`vibebox: unknown guest-containers command "${name}" (known: ${Object.keys(commands).join(', ')})`);
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
