// The container operations that are not interactive commands, as typed requests (protocol
// OpRequest): progress goes out as `line` events, the outcome as one typed result, a failure as
// one typed error (docs/architecture.md, Channels: container operations). What the container or
// a stack service wrote travels as data; the host escapes it when it prints.
import { StringDecoder } from 'node:string_decoder';
import { MAX_OP_LINE, OpResult, type ContainerSpec, type OpEvent, type OpFailure, type OpRequest } from '../protocol.js';
import { VibeboxError } from '../errors.js';
import { AGENTS, findAgent, packageOf, versionCommand } from './agents.js';
import { changesSummary } from './changes.js';
import { COMMITTED_IMAGE, changesOf, ensureContainer, execCollect, hashOfSpec, type Who } from './container.js';
import { AGENT_CONTAINER, LABEL_IMAGE, LABEL_SPEC } from '../docker/names.js';
import { commitContainer, inspectContainer, inspectImage, removeContainer, removeImage } from '../docker/engine.js';
import { ensureProjectImage } from '../docker/project-image.js';
import { install, userOf } from './ops.js';
import { kitOp, listKits } from './kit.js';
import { stackRequest } from '../stack/host-op.js';
import type { ExecControl } from '../exec-control.js';

export interface OpFrameRequest {
  request: OpRequest;
  /** The approved [image]/[container] of the moment. */
  spec: ContainerSpec;
  /** The op's environment: a kit's key and variables (kit_serve), nothing else is read. */
  env: Record<string, string>;
}

export interface OpFrameSink {
  event(e: OpEvent): void;
  result(r: OpResult): void;
  error(f: OpFailure): void;
}

export interface OpFrameDeps {
  dockerd(): Promise<void>;
  who: Who;
}

/** Progress text as line events: split at newlines, a long line in pieces (the schema's cap). */
export function lineEvents(text: string): OpEvent[] {
  const out: OpEvent[] = [];
  for (const l of text.replace(/\n$/, '').split('\n')) {
    for (let i = 0; i === 0 || i < l.length; i += MAX_OP_LINE) out.push({ kind: 'line', line: l.slice(i, i + MAX_OP_LINE) });
  }
  return out;
}

/** A byte stream (an installer's output) as line events, a partial line held until its end. */
export class LineEvents {
  private readonly decoder = new StringDecoder('utf8');
  private rest = '';
  constructor(private readonly emit: (e: OpEvent) => void) {}
  push(b: Buffer): void {
    const text = this.rest + this.decoder.write(b);
    const nl = text.lastIndexOf('\n');
    if (nl < 0 && text.length < MAX_OP_LINE) {
      this.rest = text;
      return;
    }
    this.rest = nl < 0 ? '' : text.slice(nl + 1);
    for (const e of lineEvents(nl < 0 ? text : text.slice(0, nl))) this.emit(e);
  }
  end(): void {
    const text = this.rest + this.decoder.end();
    this.rest = '';
    if (text !== '') for (const e of lineEvents(text)) this.emit(e);
  }
}

/** Any failure as the one typed error the host prints (`vibebox: <message> (<hint>)`). */
export function failureOf(e: unknown): OpFailure {
  const cut = (s: string) => s.slice(0, MAX_OP_LINE);
  if (e instanceof VibeboxError) return { code: e.code, message: cut(e.message), ...(e.hint ? { hint: cut(e.hint) } : {}), exitCode: e.exitCode };
  return { code: 'E_CONTAINER', message: cut((e as Error)?.message ?? String(e)), exitCode: 1 };
}

/** What the agent keeps of a running op: the client's signal (its ^C, or its leaving) reaches an install. */
export interface OpControl {
  signal(sig: string): void;
}

/** Run one typed op; exactly one of sink.result and sink.error is called, after its events. */
export function runOpRequest(req: OpFrameRequest, sink: OpFrameSink, deps: OpFrameDeps): OpControl & { done: Promise<void> } {
  let current: ExecControl | null = null;
  const done = answer(req, sink, deps, (x) => (current = x));
  return { done, signal: (sig) => current?.signal(sig) };
}

async function answer(req: OpFrameRequest, sink: OpFrameSink, deps: OpFrameDeps, track: (x: ExecControl | null) => void): Promise<void> {
  const line = (s: string) => {
    for (const e of lineEvents(s)) sink.event(e);
  };
  try {
    const r = OpResult.safeParse(await dispatch(req, line, deps, track));
    // A result the host would refuse (too big) is said here, rather than left unanswered.
    if (r.success) sink.result(r.data);
    else sink.error({ code: 'E_CONTAINER', message: `the ${req.request.op} result is not valid: ${r.error.issues[0]?.message ?? ''}`.slice(0, MAX_OP_LINE), exitCode: 1 });
  } catch (e) {
    sink.error(failureOf(e));
  }
}

async function dispatch({ request: r, spec, env }: OpFrameRequest, line: (s: string) => void, deps: OpFrameDeps, track: (x: ExecControl | null) => void): Promise<OpResult> {
  if (r.op.startsWith('stack_')) return stackRequest(r as Parameters<typeof stackRequest>[0], line, { dockerd: deps.dockerd });
  await deps.dockerd();
  switch (r.op) {
    case 'agents': {
      const c = await ensureContainer(spec, deps.who, line);
      // One exec for all versions: "name<TAB>version" lines.
      const script = AGENTS.map((a) => `printf '%s\\t%s\\n' '${a.name}' "$(${versionCommand(a)})"`).join('; ');
      const x = await execCollect(c.Id, ['sh', '-c', script], userOf(deps.who, false));
      const found = new Map(x.stdout.split('\n').filter(Boolean).map((l) => l.split('\t') as [string, string]));
      return { kind: 'agents', rows: AGENTS.map((a) => ({ name: a.name, package: packageOf(a), version: found.get(a.name)?.trim().slice(0, 1024) || null })) };
    }
    case 'update': {
      const agent = findAgent(r.agent);
      if (!agent) throw new VibeboxError('E_AGENT_UNKNOWN', `unknown agent ${r.agent}`, `known: ${AGENTS.map((a) => a.name).join(', ')}`);
      const c = await ensureContainer(spec, deps.who, line);
      const out = new LineEvents((e) => line(e.kind === 'line' ? e.line : ''));
      try {
        await install(c, agent, deps.who, line, (b) => out.push(b), track);
      } finally {
        out.end();
      }
      return { kind: 'done' };
    }
    case 'changes': {
      const c = await inspectContainer(AGENT_CONTAINER);
      return { kind: 'changes', text: c ? changesSummary(await changesOf(c)) : '' };
    }
    case 'commit':
      await commit(spec, line);
      return { kind: 'done' };
    case 'reset': {
      const c = await inspectContainer(AGENT_CONTAINER);
      if (!c) {
        line('vibebox: no agent container to reset');
        return { kind: 'done' };
      }
      await removeContainer(c.Id);
      line(`vibebox: discarded the agent container; the next run starts fresh from ${(await inspectImage(COMMITTED_IMAGE)) ? 'the committed image' : 'the project image'} (your home directory is kept)`);
      return { kind: 'done' };
    }
    case 'rebuild': {
      const tag = await ensureProjectImage(spec.image, line);
      const committed = await inspectImage(COMMITTED_IMAGE);
      if (committed && committed.Config?.Labels?.[LABEL_IMAGE] !== tag) {
        line('vibebox: [image] changed since vibebox commit; dropping the committed image');
        await removeContainer(AGENT_CONTAINER);
        await removeImage(COMMITTED_IMAGE);
      }
      await removeContainer(AGENT_CONTAINER);
      await ensureContainer(spec, deps.who, line);
      line('vibebox: the agent container is rebuilt (your home directory is kept)');
      return { kind: 'done' };
    }
    case 'kit_ls':
      return { kind: 'kits', kits: (await listKits()).map((k) => ({ name: k.name.slice(0, 1024), state: k.state.slice(0, 1024) })) };
    case 'kit_stop': {
      const code = await kitOp({ action: 'stop', name: r.name }, env, [], deps.who, line, () => undefined);
      return { kind: 'kit_stopped', found: code === 0 };
    }
    case 'kit_serve': {
      const code = await kitOp({ action: 'serve', name: r.name, dir: r.dir }, env, Object.keys(env), deps.who, line, () => undefined);
      if (code !== 0) throw new VibeboxError('E_KIT', `kit ${r.name} did not start`);
      return { kind: 'done' };
    }
    default:
      throw new VibeboxError('E_USAGE', `unknown op ${r.op}`);
  }
}

async function commit(spec: ContainerSpec, line: (s: string) => void): Promise<void> {
  const c = await inspectContainer(AGENT_CONTAINER);
  if (!c) {
    line('vibebox: no agent container to commit');
    return;
  }
  const before = await inspectImage(COMMITTED_IMAGE);
  const labels = { [LABEL_IMAGE]: c.Config.Labels?.[LABEL_IMAGE] ?? '', [LABEL_SPEC]: c.Config.Labels?.[LABEL_SPEC] ?? hashOfSpec(spec) };
  line('vibebox: committing the agent container');
  const id = await commitContainer(c.Id, 'vibebox/project', 'committed', labels);
  await removeContainer(c.Id);
  // The previous committed image is now unnamed: nothing uses it any more.
  if (before && before.Id !== id) await removeImage(before.Id).catch(() => undefined);
  line('vibebox: committed; the next run starts from the committed image (vibebox rebuild after an [image] change drops it)');
}
