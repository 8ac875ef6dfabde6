// `vibebox stack …`: the host-only side of the stack. diff, apply, status, down, destroy and
// image are typed ops (client/op.ts) that the guest runs against the stack-controller's host
// socket, which agent containers cannot reach; logs is an exec (a stream). Apply and destroy
// show what they will do and ask y/N here, on the host's terminal; apply then sends the identity
// of the proposal shown, and the guest refuses to apply any other.
import { VibeboxError } from '../errors.js';
import { hostArgv, parseHostArgv, type HostCommand } from '../../guest/stack/api.js';
import type { OpRequest, OpResult } from '../../guest/protocol.js';
import { renderStatus } from '../../guest/stack/status-text.js';
import { shown } from '../../guest/shown.js';
import { confirm, isInteractive } from './io.js';
import { expectKind as kind, reviewText } from './op-render.js';

interface ProjectOpt {
  project?: string;
}

/** What the stack commands need from outside: the ops, the question, the output (fakes in tests). */
export interface StackIo {
  op(request: OpRequest): Promise<OpResult>;
  confirm(question: string): Promise<boolean>;
  out(text: string): void;
  err(text: string): void;
}

async function liveIo(o: ProjectOpt): Promise<StackIo> {
  const { runOp } = await import('../client/op.js');
  const { resolveProject } = await import('../session/project.js');
  const project = resolveProject(o.project);
  return {
    op: (request) => runOp({ project, request }),
    confirm,
    out: (t) => void process.stdout.write(t),
    err: (t) => void process.stderr.write(t),
  };
}

/** apply/destroy ask y/N (on the host, after showing what they will do) unless -y; never on a pipe. */
export function needsConfirm(yes: boolean | undefined, what: 'apply' | 'destroy', interactive: boolean): boolean {
  if (yes) return false;
  if (!interactive) throw new VibeboxError('E_NOT_CONFIRMED', `stack ${what} needs confirmation`, `run on a terminal, or pass -y after reviewing vibebox stack ${what === 'apply' ? 'diff' : 'status'}`);
  return true;
}

/** The exit code of a stack command; its output through io. */
export async function stackDiffWith(io: StackIo): Promise<number> {
  const p = kind(await io.op({ op: 'stack_plan' }), 'stack_plan');
  io.out(reviewText(p.diff + (p.hash ? `(proposal ${p.hash}: vibebox stack apply applies it)\n` : '')));
  return 0;
}

/**
 * Apply: the plan is computed in the guest and shown here; y/N is asked once, here; the apply
 * names the plan's hash, so a proposal changed in between is refused (status `changed`).
 */
export async function stackApplyWith(io: StackIo, o: { dryRun: boolean; confirm: boolean }): Promise<number> {
  const p = kind(await io.op({ op: 'stack_plan' }), 'stack_plan');
  if (!p.proposed || !p.hash) {
    io.err('vibebox: nothing is proposed (the agent runs vibebox-stack propose <file> in its container)\n');
    return 1;
  }
  io.out(reviewText(p.diff));
  if (o.confirm && !o.dryRun && !(await io.confirm('Apply these changes?'))) {
    io.err('vibebox: nothing applied\n');
    return 1;
  }
  const r = kind(await io.op({ op: 'stack_apply', expect: p.hash, dryRun: o.dryRun }), 'stack_apply');
  if (r.status === 'applied') {
    io.out(`applied: ${(r.services ?? []).map(shown).join(', ')} on ${shown(r.network ?? '')} in ${r.seconds ?? 0} s\n`);
    return 0;
  }
  if (r.status === 'dry_run') {
    io.out(`dry run: ${r.steps ?? 0} step(s), nothing changed\n`);
    return 0;
  }
  io.err(`vibebox: apply ${r.status}${r.reason ? `: ${shown(r.reason)}` : ''}\n`);
  return 1;
}

export async function stackDownWith(io: StackIo, what: 'down' | 'destroy', ask: boolean): Promise<number> {
  if (what === 'destroy' && ask) {
    io.out(renderStatus(kind(await io.op({ op: 'stack_status' }), 'stack_status').status));
    if (!(await io.confirm('Destroy the stack, its containers, network AND volumes (data is lost)?'))) {
      io.err('vibebox: nothing destroyed\n');
      return 1;
    }
  }
  const r = kind(await io.op({ op: what === 'down' ? 'stack_down' : 'stack_destroy' }), 'stack_changed');
  if (r.ok) {
    io.out(what === 'down' ? 'the stack is down (volumes kept; vibebox stack apply brings it back)\n' : 'the stack is destroyed (containers, network and volumes removed)\n');
    return 0;
  }
  io.err(`vibebox: ${what} failed${r.reason ? `: ${shown(r.reason)}` : ''}\n`);
  return 1;
}

export async function stackDiff(o: ProjectOpt): Promise<void> {
  process.exitCode = await stackDiffWith(await liveIo(o));
}

export async function stackStatus(o: ProjectOpt): Promise<void> {
  const io = await liveIo(o);
  io.out(renderStatus(kind(await io.op({ op: 'stack_status' }), 'stack_status').status));
}

export async function stackDown(o: ProjectOpt): Promise<void> {
  process.exitCode = await stackDownWith(await liveIo(o), 'down', false);
}

export async function stackApply(o: ProjectOpt & { dryRun?: boolean; yes?: boolean }): Promise<void> {
  const dryRun = o.dryRun === true;
  const ask = dryRun ? false : needsConfirm(o.yes, 'apply', isInteractive());
  process.exitCode = await stackApplyWith(await liveIo(o), { dryRun, confirm: ask });
}

export async function stackDestroy(o: ProjectOpt & { yes?: boolean }): Promise<void> {
  const ask = needsConfirm(o.yes, 'destroy', isInteractive());
  process.exitCode = await stackDownWith(await liveIo(o), 'destroy', ask);
}

/** `stack logs` streams until the service's output ends or ^C: an exec in the guest. */
export async function stackLogs(service: string, o: ProjectOpt & { follow?: boolean }): Promise<void> {
  const argv = hostArgv({ cmd: 'logs', service, follow: o.follow === true });
  // The same check the guest makes: a bad argument fails here, before any VM starts.
  const p = parseHostArgv(argv);
  if (!p.ok) throw new VibeboxError('E_USAGE', p.message, 'see vibebox stack --help');
  const { run } = await import('../client/run.js');
  const { resolveProject } = await import('../session/project.js');
  process.exitCode = await run({ project: resolveProject(o.project), tty: false, container: { op: 'stack' }, argv });
}

export async function stackImage(name: string, o: ProjectOpt & { apt?: string[]; run?: string[] }): Promise<void> {
  const c: HostCommand = { cmd: 'image', name, apt: o.apt ?? [], run: o.run ?? [] };
  // The same checks as the guest's: a bad name or package fails here, before any VM starts.
  const p = parseHostArgv(hostArgv(c));
  if (!p.ok || p.value.cmd !== 'image') throw new VibeboxError('E_USAGE', p.ok ? 'stack image: bad arguments' : p.message, 'see vibebox stack --help');
  const io = await liveIo(o);
  io.out(`${kind(await io.op({ op: 'stack_image', name: p.value.name, apt: p.value.apt, run: p.value.run }), 'stack_image').tag}\n`);
}
