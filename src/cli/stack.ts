// `vibebox stack …`: the host-only side of the stack. Each subcommand is one exec of the
// ContainerOp 'stack' in the guest, which talks to the stack-controller's host socket; agent
// containers cannot reach that socket, so apply/down/destroy happen only from here.
import { VibeboxError } from '../errors.js';
import { hostArgv, parseHostArgv, type HostCommand } from '../../guest/stack/api.js';
import { isInteractive } from './io.js';

interface ProjectOpt {
  project?: string;
}

async function stackExec(c: HostCommand, o: ProjectOpt): Promise<void> {
  const argv = hostArgv(c);
  // The same check the guest makes: a bad argument fails here, before any VM starts.
  const p = parseHostArgv(argv);
  if (!p.ok) throw new VibeboxError('E_USAGE', p.message, 'see vibebox stack --help');
  const { run } = await import('../client/run.js');
  const { resolveProject } = await import('../session/project.js');
  process.exitCode = await run({ project: resolveProject(o.project), tty: false, container: { op: 'stack' }, argv });
}

/** apply/destroy ask y/N (in the guest, after showing what they will do) unless -y; never on a pipe. */
export function needsConfirm(yes: boolean | undefined, what: 'apply' | 'destroy', interactive: boolean): boolean {
  if (yes) return false;
  if (!interactive) throw new VibeboxError('E_NOT_CONFIRMED', `stack ${what} needs confirmation`, `run on a terminal, or pass -y after reviewing vibebox stack ${what === 'apply' ? 'diff' : 'status'}`);
  return true;
}

export const stackDiff = (o: ProjectOpt) => stackExec({ cmd: 'diff' }, o);
export const stackStatus = (o: ProjectOpt) => stackExec({ cmd: 'status' }, o);
export const stackDown = (o: ProjectOpt) => stackExec({ cmd: 'down' }, o);

export async function stackApply(o: ProjectOpt & { dryRun?: boolean; yes?: boolean }): Promise<void> {
  const dryRun = o.dryRun === true;
  await stackExec({ cmd: 'apply', dryRun, confirm: dryRun ? false : needsConfirm(o.yes, 'apply', isInteractive()) }, o);
}

export async function stackDestroy(o: ProjectOpt & { yes?: boolean }): Promise<void> {
  await stackExec({ cmd: 'destroy', confirm: needsConfirm(o.yes, 'destroy', isInteractive()) }, o);
}

export const stackLogs = (service: string, o: ProjectOpt & { follow?: boolean }) => stackExec({ cmd: 'logs', service, follow: o.follow === true }, o);

export const stackImage = (name: string, o: ProjectOpt & { apt?: string[]; run?: string[] }) => stackExec({ cmd: 'image', name, apt: o.apt ?? [], run: o.run ?? [] }, o);
