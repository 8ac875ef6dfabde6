// The full CLI (commander). The hot paths never load this module.
import { Command, CommanderError, Option } from 'commander';
import { VibeboxError } from '../errors.js';
import { reportAndExit } from '../report.js';
import { shown } from '../../guest/shown.js';
import { suggestName } from './suggest.js';
import { commanderFlags, EXEC_FLAGS, PROJECT_FLAG, RUN_FLAGS } from './exec-grammar.js';

declare const VIBEBOX_VERSION: string;

// The option tables are shared with the fast path (exec-grammar.ts): one grammar for both parsers.
const projectOpt = () => new Option(commanderFlags(PROJECT_FLAG), PROJECT_FLAG.description);

function notACommand(args: readonly string[], program: Command): VibeboxError {
  const word = args.find((a) => !a.startsWith('-'));
  if (word === undefined) return new VibeboxError('E_USAGE', `unknown option '${shown(args[0]!)}'`, 'see `vibebox --help`');
  const names = program.commands.filter((c) => c.name() !== 'shell').flatMap((c) => [c.name(), ...c.aliases()]);
  const near = suggestName(word, [...names, 'help']);
  return new VibeboxError('E_USAGE', `unknown command '${shown(word)}'`, near ? `did you mean ${near}?` : 'see `vibebox --help`; to run a command in the VM: vibebox exec -- <command>');
}

export async function runCli(argv: string[]): Promise<void> {
  const program = new Command('vibebox')
    .description('A persistent VM per project for running AI coding agents.\nRun `vibebox` in a project to open a shell in its VM.')
    .version(typeof VIBEBOX_VERSION === 'string' ? VIBEBOX_VERSION : '0.0.0-dev', '-V, --version')
    .showSuggestionAfterError()
    .enablePositionalOptions()
    .exitOverride()
    // One line, as every other error: commander puts its "(Did you mean …?)" on a line of its own.
    .configureOutput({ outputError: (s, write) => write(s.replace(/^error: /, 'vibebox: ').replace(/\n\(Did you mean (.*)\?\)\n?$/, ' (did you mean $1?)\n')) });

  program
    .command('shell', { isDefault: true })
    .description('open a shell in the project VM (created or resumed as needed)')
    .addOption(projectOpt())
    // `vibebox <word>` lands here when <word> is no command (shell is the default command, and it
    // takes no operands): it is a typo to answer, never a shell to open.
    .allowExcessArguments(true)
    .allowUnknownOption(true)
    .action(async (o: { project?: string }, cmd: Command) => {
      if (cmd.args.length > 0) throw notACommand(cmd.args, program);
      const { run } = await import('../client/run.js');
      const { resolveProject } = await import('../session/project.js');
      process.exitCode = await run({ project: resolveProject(o.project), tty: Boolean(process.stdin.isTTY) });
    });

  program
    .command('exec')
    .description('run one command in the project VM and exit with its status')
    .addOption(projectOpt())
    .option(commanderFlags(EXEC_FLAGS[0]!), EXEC_FLAGS[0]!.description)
    .option(commanderFlags(EXEC_FLAGS[1]!), EXEC_FLAGS[1]!.description)
    .argument('<command...>', 'the command and its arguments (put -- before options of the command)')
    .action(async (cmd: string[], o: { project?: string; tty?: boolean; user?: string }) => {
      if (o.user && o.user !== 'vibe' && o.user !== 'root') throw new VibeboxError('E_USAGE', `unknown user ${o.user}`, 'use --user vibe or --user root');
      const { run } = await import('../client/run.js');
      const { resolveProject } = await import('../session/project.js');
      process.exitCode = await run({ project: resolveProject(o.project), argv: cmd, tty: Boolean(o.tty), ...(o.user ? { user: o.user as 'vibe' | 'root' } : {}) });
    });

  program
    .command('run')
    .description('run an agent, a shell or a command in the project\'s agent container (inside the VM)')
    .usage('[options] [agent [agent flags…]] | [options] -- <command…>')
    .addOption(projectOpt())
    .option(commanderFlags(RUN_FLAGS[0]!), RUN_FLAGS[0]!.description)
    .option(commanderFlags(RUN_FLAGS[1]!), RUN_FLAGS[1]!.description)
    .argument('[operands...]', 'an agent (claude, codex, gemini, …) and its flags, or after --, a command')
    .passThroughOptions()
    .action(async (operands: string[], o: { project?: string; tty?: boolean; root?: boolean }) => {
      // `run -- cmd`: a command, never an agent name, even when it is called like one.
      const after = process.argv.slice(process.argv.indexOf('run') + 1);
      const dd = after.indexOf('--');
      const command = dd >= 0 && (operands.length === 0 || after.indexOf(operands[0]!) > dd);
      await (await import('./container.js')).runInContainer(operands, { ...o, command });
    });

  program
    .command('agents')
    .description('list the agents vibebox run knows, with the versions installed in this project')
    .addOption(projectOpt())
    .option('--json', 'machine-readable output')
    .action(async (o: { project?: string; json?: boolean }) => (await import('./container.js')).agents(o));

  program
    .command('update')
    .description('reinstall an agent at its latest version (in the project\'s agent state)')
    .argument('[agent]')
    .addOption(projectOpt())
    .action(async (agent: string | undefined, o: { project?: string }) => (await import('./container.js')).update(agent, o));

  program
    .command('changes')
    .description('show the agent container\'s uncommitted changes outside /workspace')
    .addOption(projectOpt())
    .action(async (o: { project?: string }) => (await import('./container.js')).changes(o));

  program
    .command('commit')
    .description('bake the agent container\'s changes into the project image (the next run starts from it)')
    .addOption(projectOpt())
    .action(async (o: { project?: string }) => (await import('./container.js')).commit(o));

  program
    .command('reset')
    .description('discard the agent container\'s changes (agent state and /workspace are kept)')
    .addOption(projectOpt())
    .option('-y, --yes', 'do not ask for confirmation')
    .action(async (o: { project?: string; yes?: boolean }) => (await import('./container.js')).reset(o));

  program
    .command('rebuild')
    .description('rebuild changed image layers and recreate the agent container (agent state is kept)')
    .addOption(projectOpt())
    .action(async (o: { project?: string }) => (await import('./container.js')).rebuild(o));

  // The stack: services the agent proposes, applied from here only.
  const stack = program.command('stack').description('services for the agent (redis, postgres, …): review and apply what it proposed');
  stack.command('diff').description('show the agent\'s proposal against the live stack').addOption(projectOpt())
    .action(async (o: { project?: string }) => (await import('./stack.js')).stackDiff(o));
  stack.command('apply').description('apply the proposal (shows the diff and asks first)').addOption(projectOpt())
    .option('--dry-run', 'show the steps, change nothing').option('-y, --yes', 'do not ask (required without a terminal)')
    .action(async (o: { project?: string; dryRun?: boolean; yes?: boolean }) => (await import('./stack.js')).stackApply(o));
  stack.command('down').description('stop and remove the services and their network; volumes are kept').addOption(projectOpt())
    .action(async (o: { project?: string }) => (await import('./stack.js')).stackDown(o));
  stack.command('destroy').description('remove the services, their network and their volumes').addOption(projectOpt())
    .option('-y, --yes', 'do not ask (required without a terminal)')
    .action(async (o: { project?: string; yes?: boolean }) => (await import('./stack.js')).stackDestroy(o));
  stack.command('status').description('services, their health, the last apply').addOption(projectOpt())
    .action(async (o: { project?: string }) => (await import('./stack.js')).stackStatus(o));
  stack.command('logs').description('a service\'s log').argument('<service>').addOption(projectOpt()).option('-f, --follow', 'keep following')
    .action(async (service: string, o: { project?: string; follow?: boolean }) => (await import('./stack.js')).stackLogs(service, o));
  stack.command('image').description('build local/<name>:<hash> FROM the agent base from Debian packages (no registry needed)').argument('<name>').addOption(projectOpt())
    .option('--apt <packages...>', 'Debian packages to install').option('--run <command>', 'a shell command run as root after the packages (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
    .action(async (name: string, o: { project?: string; apt?: string[]; run?: string[] }) => (await import('./stack.js')).stackImage(name, o));

  program
    .command('list')
    .alias('ls')
    .description('list every session on this machine')
    .option('--json', 'machine-readable output')
    .action(async (o: { json?: boolean }) => (await import('./list.js')).list(o));

  program
    .command('delete')
    .alias('rm')
    .description('stop and delete a session (its disk is lost); accepts a unique id prefix')
    .argument('<session-id>')
    .option('-y, --yes', 'do not ask for confirmation')
    .action(async (id: string, o: { yes?: boolean }) => (await import('./delete.js')).del(id, o));

  program
    .command('stop')
    .description('shut the project VM down now (the disk is kept; a saved state is dropped)')
    .addOption(projectOpt())
    .option('--suspend', 'save the running VM instead: the next start resumes it, processes and all')
    .action(async (o: { project?: string; suspend?: boolean }) => (await import('./stop.js')).stop(o));

  program
    .command('explain')
    .description('show mounts, network policy and storage paths of the project')
    .addOption(projectOpt())
    .option('--json', 'machine-readable output')
    .action(async (o: { project?: string; json?: boolean }) => (await import('./explain.js')).explainCmd(o));

  program
    .command('port')
    .description('forward host 127.0.0.1:<host> to <guest> in the running session (VM or agent container); no arguments: list')
    .argument('[guest]', 'port in the VM or the agent container')
    .argument('[host]', 'port on 127.0.0.1 of this machine (default: the same)')
    .addOption(projectOpt())
    .option('--close <host>', 'stop forwarding this host port')
    .option('--json', 'machine-readable list')
    .action(async (g: string | undefined, h: string | undefined, o: { project?: string; close?: string; json?: boolean }) => (await import('./port.js')).port(g, h, o));

  const kit = program.command('kit').description('build a kit (an agent behind one authenticated endpoint) and serve it from the VM');
  kit
    .command('build')
    .description('bundle a kit module into dist/: server, kit.json, kit.key (0600), .env.example, Dockerfile')
    .argument('<entry>', 'the module exporting run(prompt, ctx) (and optionally `kit`)')
    .option('--out <dir>', 'output directory', 'dist')
    .option('--name <name>', 'kit name (default: kit.name, else the file name)')
    .option('--version <version>', 'kit version (default: kit.version, else 0.0.0)')
    .addOption(projectOpt())
    .action(async (entry: string, o: { out?: string; name?: string; version?: string; project?: string }) => (await import('./kit.js')).kitBuild(entry, o));
  kit
    .command('serve')
    .description('run a built kit in a container in the VM, its port forwarded to 127.0.0.1')
    .argument('<dist>', 'the built kit directory (inside the project)')
    .addOption(projectOpt())
    .option('--port <port>', 'host port on 127.0.0.1 (default: a free one)')
    .option('--name <name>', 'serve under another name')
    .action(async (dist: string, o: { project?: string; port?: string; name?: string }) => (await import('./kit.js')).kitServe(dist, o));
  kit
    .command('ls')
    .description('list the kits in the VM and their forwards')
    .addOption(projectOpt())
    .action(async (o: { project?: string }) => (await import('./kit.js')).kitLs(o));
  kit
    .command('stop')
    .description('stop a kit and close its forward')
    .argument('<name>')
    .addOption(projectOpt())
    .action(async (name: string, o: { project?: string }) => (await import('./kit.js')).kitStop(name, o));

  program
    .command('doctor')
    .description('check what vibebox needs on this machine and how to install what is missing')
    .option('--json', 'machine-readable output')
    .action(async (o: { json?: boolean }) => (await import('./doctor.js')).doctor(o));

  const image = program.command('image').description('build, list and remove guest images');
  image
    .command('build')
    .description('build the guest image from Debian packages')
    .option('--name <name>', 'image name', 'default')
    .option('--force', 'rebuild even if it exists')
    .action(async (o: { name: string; force?: boolean }) => (await import('./image.js')).build(o));
  image
    .command('list')
    .description('list built images')
    .option('--json', 'machine-readable output')
    .action(async (o: { json?: boolean }) => (await import('./image.js')).list(o));
  image
    .command('rm')
    .description('remove an image (refused while a session uses it)')
    .argument('<name|digest>')
    .action(async (n: string) => (await import('./image.js')).rm(n));

  image
    .command('prune')
    .description('remove images no session uses and superseded cached packages; says how much it freed')
    .option('--json', 'machine-readable output')
    .action(async (o: { json?: boolean }) => (await import('./image.js')).prune(o));

  program
    .command('allow')
    .description('allow a host through the egress proxy (edits vibebox.toml; applies without restart)')
    .argument('<host>')
    .addOption(projectOpt())
    .action(async (host: string, o: { project?: string }) => (await import('./network.js')).allow(host, o));
  program
    .command('deny')
    .description('block a host at the egress proxy (edits vibebox.toml; applies without restart)')
    .argument('<host>')
    .addOption(projectOpt())
    .action(async (host: string, o: { project?: string }) => (await import('./network.js')).deny(host, o));
  program
    .command('approve')
    .description('approve the project vibebox.toml after reviewing what it asks for')
    .addOption(projectOpt())
    .option('-y, --yes', 'approve without asking')
    .action(async (o: { project?: string; yes?: boolean }) => (await import('./approve.js')).approve(o));
  program
    .command('logs')
    .description('show a session log: egress, supervisor or serial')
    .argument('[which]', 'egress | supervisor | serial', 'egress')
    .option('-f, --follow', 'keep printing new lines')
    .option('--json', 'egress: one JSON record per line, for scripts')
    .addOption(projectOpt())
    .action(async (which: string, o: { project?: string; follow?: boolean; json?: boolean }) => (await import('./logs.js')).logs(which, o));

  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') process.exit(0);
      // commander already printed its one line.
      process.exit(2);
    }
    reportAndExit(e);
  }
}
