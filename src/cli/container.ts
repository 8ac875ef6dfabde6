// The agent container commands: `vibebox run` (an exec whose target is the project's container),
// and `agents`, `update`, `changes`, `commit`, `reset`, `rebuild` (typed ops: client/op.ts). The
// guest does the work; what it answers is printed escaped.
import { AGENTS, findAgent, packageOf } from '../../guest/containers/agents.js';
import { shown } from '../../guest/shown.js';
import { suggestName } from './suggest.js';
import { table } from './format.js';
import { VibeboxError } from '../errors.js';
import { runKeysForGuest as runKeys } from '../keys/inject.js';
import type { ContainerRequest } from '../client/attach.js';
import { confirm, isInteractive } from './io.js';
import type { OpRequest, OpResult } from '../../guest/protocol.js';
import { agentsText, expectKind, reviewText } from './op-render.js';

async function containerOp(o: ProjectOpt, request: OpRequest): Promise<OpResult> {
  const { runOp } = await import('../client/op.js');
  const { resolveProject } = await import('../session/project.js');
  return runOp({ project: resolveProject(o.project), request });
}

interface ProjectOpt {
  project?: string;
}

async function containerExec(o: ProjectOpt & { container: ContainerRequest; argv?: string[]; tty?: boolean; env?: Record<string, string> }): Promise<number> {
  const { run } = await import('../client/run.js');
  const { resolveProject } = await import('../session/project.js');
  // No argv at all (not an empty one) when there is nothing to pass: the agent's own default.
  return run({ project: resolveProject(o.project), tty: o.tty ?? false, container: o.container, ...(o.argv?.length ? { argv: o.argv } : {}), ...(o.env ? { env: o.env } : {}) });
}

/**
 * `vibebox run [agent] [args…]` and `vibebox run [-t] -- cmd…`. `command` says the operands came
 * after `--` (a command), not an agent name. Keys from ~/.vibebox/.env go with every run.
 */
export async function runInContainer(operands: string[], o: ProjectOpt & { tty?: boolean; root?: boolean; command: boolean }): Promise<void> {
  const { env, pass } = runKeys();
  const interactive = Boolean(process.stdin.isTTY && process.stdout.isTTY);
  const [first, ...rest] = operands;
  // An unknown agent is bad input, answered before a session is created or an image built.
  if (!o.command && first !== undefined && !findAgent(first)) throw unknownAgent(first, true);
  const container: ContainerRequest = { op: 'run', ...(o.root ? { root: true } : {}), ...(pass.length ? { pass } : {}) };
  if (!o.command && first !== undefined) {
    // An agent: interactive when the terminal is; its own flags pass through. It runs from the
    // host's store when it can (fetched once per machine, checked before each run).
    const { treeForRun } = await import('../agents/store.js');
    const tree = await treeForRun(findAgent(first)!, stderrLine);
    process.exitCode = await containerExec({ ...o, container: { ...container, agent: first, ...(tree ? { tree } : {}) }, argv: rest, tty: o.tty ?? interactive, env });
    return;
  }
  // No operands: a login shell (a terminal when there is one); after --: that command, pipes unless -t.
  process.exitCode = await containerExec({ ...o, container, argv: operands, tty: operands.length ? Boolean(o.tty) : (o.tty ?? interactive), env });
}

function unknownAgent(name: string, inRun = false): VibeboxError {
  const near = suggestName(name, AGENTS.map((a) => a.name));
  const command = inRun ? '; a command goes after --: vibebox run -- <command>' : '';
  return new VibeboxError('E_AGENT_UNKNOWN', `unknown agent ${shown(name)}`, `${near ? `did you mean ${near}? ` : ''}known: ${AGENTS.map((a) => a.name).join(', ')}${command}`);
}

/**
 * A listing never boots a VM (as `limactl list` or `docker ps`): with the session running, the
 * guest reports the installed versions; otherwise the known agents are listed with their versions
 * unknown, and one line on stderr says why.
 */
export async function agents(o: ProjectOpt & { json?: boolean }): Promise<void> {
  const { resolveProject } = await import('../session/project.js');
  const { readSessionFile } = await import('../session/state.js');
  const { runPaths } = await import('../paths.js');
  const { socketAnswers } = await import('../net/socket-answers.js');
  const project = resolveProject(o.project);
  const s = readSessionFile(project);
  if (s && (await socketAnswers(runPaths(s.id).supervisorSock))) {
    const r = await containerOp(o, { op: 'agents' });
    process.stdout.write(agentsText(expectKind(r, 'agents').rows, o.json === true));
    return;
  }
  const rows = AGENTS.map((a) => ({ name: a.name, package: packageOf(a), version: null, running: false }));
  if (o.json) {
    process.stdout.write(JSON.stringify(rows) + '\n');
    return;
  }
  process.stderr.write(`vibebox: ${s ? 'the session is not running' : 'no session here yet'}: installed versions are shown while it runs (start it with \`vibebox\` or \`vibebox run\`)\n`);
  process.stdout.write(table(['AGENT', 'PACKAGE', 'INSTALLED'], rows.map((r) => [r.name, r.package, 'unknown (not running)'])) + '\n');
}

export async function update(agent: string | undefined, o: ProjectOpt): Promise<void> {
  // Checked here, not in the guest: a missing or unknown name should not boot a VM to say so.
  if (!agent) throw new VibeboxError('E_USAGE', 'update needs an agent', `known: ${AGENTS.map((a) => a.name).join(', ')}`);
  const def = findAgent(agent);
  if (!def) throw unknownAgent(agent);
  // The host's store first: no VM is needed for an agent every project runs from there.
  const { updateAgent } = await import('../agents/store.js');
  const r = await updateAgent(def, stderrLine);
  if (r.kind === 'current') {
    stderrLine(`vibebox: ${agent} is at the newest version, ${shown(r.rec.version)} (nothing changed)`);
    return;
  }
  if (r.kind === 'updated') {
    stderrLine(`vibebox: ${agent} ${r.from ? `updated from ${shown(r.from)} to` : 'is now at'} ${shown(r.rec.version)} for every project (running agents keep the version they started with)`);
    return;
  }
  await containerOp(o, { op: 'update', agent });
}

function stderrLine(line: string): void {
  process.stderr.write(line.endsWith('\n') ? line : `${line}\n`);
}

export async function changes(o: ProjectOpt): Promise<void> {
  const r = await containerOp(o, { op: 'changes' });
  process.stdout.write(reviewText(expectKind(r, 'changes').text));
}

export async function commit(o: ProjectOpt): Promise<void> {
  await containerOp(o, { op: 'commit' });
}

export async function reset(o: ProjectOpt & { yes?: boolean }): Promise<void> {
  if (!o.yes) {
    if (!isInteractive()) throw new VibeboxError('E_NOT_CONFIRMED', "discarding the container's uncommitted changes needs confirmation", 'run on a terminal, or pass -y');
    if (!(await confirm("Discard the agent container's changes outside /workspace (agent state and /workspace are kept)?"))) {
      throw new VibeboxError('E_DECLINED', "nothing changed: the container's changes were kept", 'you answered no');
    }
  }
  await containerOp(o, { op: 'reset' });
}

export async function rebuild(o: ProjectOpt): Promise<void> {
  await containerOp(o, { op: 'rebuild' });
}
