// The options of `vibebox exec` and `vibebox run … -- cmd`, written once: commander declares them
// from these tables (src/cli/program.ts) and the fast path parses them with parseFast (src/client/
// run.ts), which must not load commander (the hot path; see src/main.ts). Pure: unit-tested.

export interface Flag {
  /** The key in the parsed options. */
  key: 'tty' | 'user' | 'root' | 'project';
  short?: string;
  long: string;
  /** A flag that takes a value: the fast path accepts only these values (others: the full CLI answers with its error). */
  value?: { name: string; only?: readonly string[] };
  description: string;
}

const TTY: Flag = { key: 'tty', short: '-t', long: '--tty', description: 'allocate a terminal' };
export const PROJECT_FLAG: Flag = { key: 'project', short: '-p', long: '--project', value: { name: 'dir' }, description: 'project directory (default: the current directory)' };
export const EXEC_FLAGS: readonly Flag[] = [TTY, { key: 'user', short: '-u', long: '--user', value: { name: 'user', only: ['vibe', 'root'] }, description: 'vibe (default) or root' }, PROJECT_FLAG];
export const RUN_FLAGS: readonly Flag[] = [
  { ...TTY, description: 'allocate a terminal for a command given after --' },
  { key: 'root', long: '--root', description: 'run as root in the container (still without capabilities): for apt-get install' },
  PROJECT_FLAG,
];

/** The flag as commander spells it: `-u, --user <user>`. */
export function commanderFlags(f: Flag): string {
  return `${f.short ? `${f.short}, ` : ''}${f.long}${f.value ? ` <${f.value.name}>` : ''}`;
}

export interface FastParse {
  opts: { tty?: true; root?: true; user?: string; project?: string };
  /** The command and its arguments. */
  argv: string[];
}

/**
 * `[flags…] [--] cmd…` with `flags` (the arguments after `exec` or `run`); null when it is not a
 * plain run of a command the fast path can take — help, an unknown flag, a flag without its
 * value, an operand before `--` where `requireDashes` (`run <agent>`), no command — and the full
 * CLI answers instead.
 */
export function parseFast(args: readonly string[], flags: readonly Flag[], requireDashes: boolean): FastParse | null {
  const opts: FastParse['opts'] = {};
  let i = 0;
  for (; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') {
      i++;
      break;
    }
    const f = flags.find((x) => x.long === a || x.short === a);
    if (!f) {
      if (a.startsWith('-') || requireDashes) return null;
      break;
    }
    if (f.value) {
      const v = args[i + 1];
      if (!v || (f.value.only && !f.value.only.includes(v))) return null;
      i++;
      if (f.key === 'user' || f.key === 'project') opts[f.key] = v;
    } else if (f.key === 'tty' || f.key === 'root') opts[f.key] = true;
  }
  const argv = args.slice(i);
  return argv.length ? { opts, argv } : null;
}
