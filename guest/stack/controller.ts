// The stack-controller: the one process that changes the stack. Runs as the container
// vibebox-stack-controller (controller-container.ts) with the Docker socket, its state directory
// and the host socket's directory bound in. One VM is one project, so one stack and one lock: an
// in-process mutex serializes every change (this is the only process that makes them).
// At start it reconciles: what the applied manifest has and Docker lacks is recreated.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync, openSync, fsyncSync, closeSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { containerLogs, inspectImage } from '../docker/engine.js';
import { StreamDemuxer } from '../docker/demux.js';
import { isErrno } from '../errors.js';
import { ApplyRequest, AGENT_PORT, LogsQuery, portsFor, queryOf, route, type Listener, type RouteName } from './api.js';
import { diffManifests, renderDiff } from './diff.js';
import { readLive, runSteps, serviceState } from './executor.js';
import { DEFAULT_POLICY } from './manifest.js';
import { MAX_MANIFEST_BYTES, validateManifestText } from './manifest-text.js';
import { describeStep, planApply, planDestroy, planDown, planReconcile, planReset, planStart, planStop, stackNames, type Step } from './plan.js';
import { EMPTY_STATE, parseStackState, waitOutcome, type StackState } from './state.js';

export const STATE_DIR = process.env['VIBEBOX_STACK_STATE'] ?? '/state';
export const HOST_SOCKET_DIR = process.env['VIBEBOX_STACK_SOCKET_DIR'] ?? '/run/vibebox-stack';

const log = (line: string) => process.stdout.write(`${new Date().toISOString()} ${line}\n`);
const names = stackNames();

// ---- state ----

function statePath(): string {
  return `${STATE_DIR}/state.json`;
}

export function loadState(): StackState {
  let text: string;
  try {
    text = readFileSync(statePath(), 'utf8');
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return { ...EMPTY_STATE };
    throw e;
  }
  const r = parseStackState(text);
  if (!r.ok) throw new Error(`${statePath()}: ${r.message}`);
  return r.state;
}

/** Temp file, fsync, rename: a crash leaves the old state or the new one, never half of one. */
export function saveState(s: StackState): void {
  mkdirSync(STATE_DIR, { recursive: true });
  const tmp = `${statePath()}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(s, null, 2) + '\n');
  const fd = openSync(tmp, 'r');
  fsyncSync(fd);
  closeSync(fd);
  renameSync(tmp, statePath());
}

let chain: Promise<unknown> = Promise.resolve();
/** The project's lock: one change at a time, in arrival order. */
function locked<T>(f: () => Promise<T>): Promise<T> {
  const next = chain.then(f, f);
  chain = next.catch(() => undefined);
  return next;
}

export function proposalHash(p: NonNullable<StackState['proposed']>): string {
  return createHash('sha256').update(`${p.time}\0${p.text}`).digest('hex').slice(0, 16);
}

/** `${VAR}` values: only the policy's allowlisted names, from the controller's environment. */
function vars(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of DEFAULT_POLICY.envVars) {
    const v = process.env[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
}

// ---- responses ----

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const data = JSON.stringify(body) + '\n';
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) });
  res.end(data);
}

async function readBody(req: IncomingMessage, max: number): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > max) throw new HttpError(413, `the request is larger than ${max} bytes`);
    chunks.push(c);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** A long operation's response: its progress lines as they happen, then its result (api.ts ProgressMessage). */
function progress(res: ServerResponse): { line: (s: string) => void; end: (result: Record<string, unknown>) => void } {
  res.writeHead(200, { 'Content-Type': 'application/x-ndjson' });
  return {
    line: (s) => {
      log(s);
      res.write(progressLine({ type: 'line', line: s }));
    },
    end: (result) => res.end(progressLine({ type: 'result', result })),
  };
}

function progressLine(m: { type: 'line'; line: string } | { type: 'result'; result: Record<string, unknown> }): string {
  return `${JSON.stringify(m)}\n`;
}

// ---- operations ----

async function status(): Promise<Record<string, unknown>> {
  const s = loadState();
  const services = [];
  for (const svc of s.live?.services ?? []) {
    const st = await serviceState(names.container(svc.name));
    services.push({ name: svc.name, image: svc.image.ref, ...st });
  }
  return { live: s.live !== null, down: s.down, services, last_apply: s.last_apply, proposed: s.proposed ? { time: s.proposed.time, hash: proposalHash(s.proposed) } : null };
}

async function info(): Promise<Record<string, unknown>> {
  const s = loadState();
  const out: Record<string, unknown> = {};
  for (const svc of s.live?.services ?? []) {
    const img = await inspectImage(svc.image.ref);
    const exposed = Object.keys(((img?.Config as { ExposedPorts?: Record<string, unknown> } | null)?.ExposedPorts) ?? {});
    const ports = portsFor(svc.image.repository, exposed);
    const st = await serviceState(names.container(svc.name));
    out[svc.name] = { host: svc.name, ports, address: ports[0] !== undefined ? `${svc.name}:${ports[0]}` : svc.name, ...st };
  }
  return out;
}

async function waitAnswer(): Promise<Record<string, unknown>> {
  const s = loadState();
  // A proposal equal to the live stack leaves nothing for the user to apply: not pending.
  if (s.proposed && !(s.live && diffManifests(s.live, s.proposed.manifest).empty)) {
    const o = waitOutcome(s, s.proposed.time);
    if (o.state !== 'applied') return { ...o, ready: false };
  } else if (s.live === null) {
    return { state: 'none', ready: false, reason: 'nothing is proposed or applied' };
  }
  if (s.down) return { state: 'down', ready: false, reason: 'the stack is down (the user runs vibebox stack apply to bring it up)' };
  const services: Record<string, string> = {};
  let ready = true;
  for (const svc of s.live?.services ?? []) {
    const st = await serviceState(names.container(svc.name));
    const ok = st.state === 'running' && (svc.healthcheck === null || st.health === 'healthy');
    services[svc.name] = st.health ?? st.state;
    if (!ok) ready = false;
  }
  return { state: 'applied', ready, services };
}

async function propose(text: string): Promise<Record<string, unknown>> {
  const v = validateManifestText(text);
  if (!v.ok) throw new HttpError(422, `the manifest has ${v.errors.length} error(s)`, { errors: v.errors });
  return locked(async () => {
    const s = loadState();
    const proposed = { manifest: v.manifest, text, time: new Date().toISOString() };
    saveState({ ...s, proposed });
    log(`proposal ${proposalHash(proposed)}: ${v.manifest.services.map((x) => x.name).join(', ')}`);
    return { ok: true, hash: proposalHash(proposed), diff: renderDiff(diffManifests(s.live, v.manifest)) };
  });
}

function diffText(s: StackState): string {
  if (!s.proposed) return `No proposal. Live services: ${s.live?.services.map((x) => x.name).join(', ') || '(none)'}\n`;
  return renderDiff(diffManifests(s.live, s.proposed.manifest));
}

/**
 * Whether apply may go on: the user reviewed the proposal identified by `expect`; a proposal made
 * since (or none at all) is refused, so what is applied is exactly what was shown. Pure.
 */
export function applyGate(s: StackState, req: ApplyRequest): { status: 'nothing' | 'changed'; reason: string } | null {
  if (!s.proposed) return { status: 'nothing', reason: 'nothing is proposed (the agent runs vibebox-stack propose <file>)' };
  if (req.expect && req.expect !== proposalHash(s.proposed)) return { status: 'changed', reason: 'the proposal changed since you saw it; review it again' };
  return null;
}

async function apply(req: ApplyRequest, out: ReturnType<typeof progress>): Promise<void> {
  await locked(async () => {
    const s = loadState();
    const fail = (status: 'rejected' | 'rolled_back', reason: string, extra: Record<string, unknown> = {}) => {
      const errors = Array.isArray(extra['errors']) ? (extra['errors'] as NonNullable<StackState['last_apply']>['errors']) : undefined;
      if (!req.dryRun) saveState({ ...s, last_apply: { status, reason, time: new Date().toISOString(), ...(errors ? { errors } : {}) } });
      out.end({ status, reason, ...extra });
    };
    const gate = applyGate(s, req);
    if (gate) return out.end(gate);
    // Validated again: the policy may have narrowed since the proposal.
    const v = validateManifestText(s.proposed!.text);
    if (!v.ok) return fail('rejected', `the manifest has ${v.errors.length} error(s): ${v.errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`, { errors: v.errors });
    const live = await readLive([v.manifest, s.live], names);
    const plan = planApply(live, v.manifest, s.live, { vars: vars(), names });
    if (!plan.ok) return fail('rejected', plan.message);
    if (req.dryRun) {
      for (const st of plan.steps) out.line(`would ${describeStep(st)}`);
      return out.end({ status: 'dry_run', steps: plan.steps.length });
    }
    const t0 = Date.now();
    const r = await runSteps(plan.steps, out.line);
    if (!r.ok) {
      const reason = r.rollbackErrors.length ? `${r.reason} (rollback incomplete: ${r.rollbackErrors.join('; ')})` : r.reason;
      return fail('rolled_back', reason, { rolled_back: r.rolledBack });
    }
    saveState({ version: 1, live: v.manifest, proposed: null, last_apply: { status: 'applied', reason: '', time: new Date().toISOString() }, down: false });
    out.end({ status: 'applied', services: v.manifest.services.map((x) => x.name), network: names.network, seconds: Math.round((Date.now() - t0) / 100) / 10 });
  });
}

async function simple(what: 'down' | 'destroy' | 'start' | 'stop' | 'reset', service: string | null, out: ReturnType<typeof progress>): Promise<void> {
  await locked(async () => {
    const s = loadState();
    const live = await readLive([s.live], names);
    let steps: Step[] | null;
    if (what === 'down' || what === 'destroy') {
      steps = what === 'down' ? planDown(live, { names }) : planDestroy(live, { names });
    } else {
      if (!s.live) return out.end({ ok: false, reason: 'no stack is applied' });
      if (s.down && what !== 'stop') return out.end({ ok: false, reason: 'the stack is down (the user runs vibebox stack apply to bring it up)' });
      const svc = service ?? '';
      if (what === 'start') {
        const p = planStart(live, s.live, svc, { vars: vars(), names });
        if (p && !p.ok) return out.end({ ok: false, reason: p.message });
        steps = p === null ? null : p.steps;
      } else if (what === 'stop') steps = planStop(live, s.live, svc, { names });
      else steps = planReset(live, s.live, svc, { vars: vars(), names });
      if (steps === null) return out.end({ ok: false, reason: `${svc} is not a service of the applied stack (${s.live.services.map((x) => x.name).join(', ')}); new services need a proposal the user applies` });
    }
    const r = await runSteps(steps, out.line, { rollback: false });
    if (what === 'down' && r.ok) saveState({ ...s, down: true });
    if (what === 'destroy' && r.ok) saveState({ ...s, live: null, down: false });
    out.end(r.ok ? { ok: true } : { ok: false, reason: r.reason });
  });
}

async function logs(service: string, q: Record<string, string>, res: ServerResponse): Promise<void> {
  const o = LogsQuery.safeParse(q);
  if (!o.success) throw new HttpError(400, 'logs takes follow=0|1 and tail=N');
  const s = loadState();
  if (!s.live?.services.some((x) => x.name === service)) throw new HttpError(404, `${service} is not a service of the applied stack`);
  const stream = await containerLogs(names.container(service), { follow: o.data.follow === '1', tail: o.data.tail });
  res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
  const d = new StreamDemuxer();
  stream.on('data', (c: Buffer) => {
    try {
      for (const f of d.frames(c)) res.write(f.data);
    } catch {
      res.write(c);
    }
  });
  stream.on('end', () => res.end());
  stream.on('error', () => res.end());
  res.on('close', () => stream.destroy());
}

async function handle(listener: Listener, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = req.url ?? '/';
  const r = route(listener, req.method ?? 'GET', url);
  if (!r.ok) {
    if (r.status === 403) log(`refused ${req.method} ${url} from the ${listener} listener`);
    return sendJson(res, r.status, { error: r.message });
  }
  const name: RouteName = r.name;
  switch (name) {
    case 'propose':
      return sendJson(res, 200, await propose(await readBody(req, MAX_MANIFEST_BYTES + 1)));
    case 'status':
      return sendJson(res, 200, await status());
    case 'info':
      return sendJson(res, 200, await info());
    case 'wait':
      return sendJson(res, 200, await waitAnswer());
    case 'diff': {
      const t = diffText(loadState());
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
      return void res.end(t);
    }
    case 'proposal': {
      const s = loadState();
      return sendJson(res, 200, { proposed: s.proposed !== null, hash: s.proposed ? proposalHash(s.proposed) : null, diff: diffText(s), empty: s.proposed ? diffManifests(s.live, s.proposed.manifest).empty : true });
    }
    case 'logs':
      return logs(r.service ?? '', queryOf(url), res);
    case 'apply': {
      let body: unknown;
      try {
        body = JSON.parse((await readBody(req, 4096)) || '{}');
      } catch {
        throw new HttpError(400, 'apply takes a JSON body');
      }
      const a = ApplyRequest.safeParse(body);
      if (!a.success) throw new HttpError(400, `apply: ${a.error.issues[0]?.message ?? 'bad request'}`);
      return apply(a.data, progress(res));
    }
    case 'down':
    case 'destroy':
    case 'start':
    case 'stop':
    case 'reset':
      return simple(name, r.service, progress(res));
  }
}

/** One listener's HTTP server (exported for tests of the host API against a state directory). */
export function server(listener: Listener) {
  return createServer((req, res) => {
    handle(listener, req, res).catch((e: unknown) => {
      const status = e instanceof HttpError ? e.status : 500;
      const extra = e instanceof HttpError ? e.extra : {};
      log(`${req.method} ${req.url}: ${(e as Error).message}`);
      if (!res.headersSent) sendJson(res, status, { error: (e as Error).message, ...extra });
      else res.end(progressLine({ type: 'result', result: { ok: false, status: 'error', reason: (e as Error).message } }));
    });
  });
}

/** At every start (a VM boot restarts this container): bring Docker back to the applied stack. */
export async function reconcile(): Promise<void> {
  await locked(async () => {
    const s = loadState();
    if (!s.live || s.down) return;
    const live = await readLive([s.live], names);
    const plan = planReconcile(live, s.live, { vars: vars(), names });
    if (!plan.ok) return log(`reconcile: ${plan.message}`);
    if (plan.steps.length === 0) return log('reconcile: the stack is as applied');
    const r = await runSteps(plan.steps, (l) => log(`reconcile: ${l}`), { rollback: false });
    log(r.ok ? 'reconcile: done' : `reconcile: ${r.reason}`);
  });
}

export async function controllerMain(): Promise<never> {
  process.on('uncaughtException', (e) => log(`uncaught: ${e.stack ?? e.message}`));
  const hostSock = `${HOST_SOCKET_DIR}/host.sock`;
  mkdirSync(HOST_SOCKET_DIR, { recursive: true });
  rmSync(hostSock, { force: true });
  // Reconcile before answering: a status or an apply then sees the stack as applied.
  await reconcile().catch((e: Error) => log(`reconcile failed: ${e.message}`));
  server('host').listen(hostSock, () => log(`host API on ${hostSock}`));
  server('agent').listen(AGENT_PORT, '0.0.0.0', () => log(`agent API on :${AGENT_PORT}`));
  return new Promise<never>(() => undefined);
}
