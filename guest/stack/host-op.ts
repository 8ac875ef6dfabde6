// The host's stack commands in the guest. Everything but `image` goes to the controller's host
// socket, which only the guest agent (root in the VM) reaches. The typed requests (plan, apply,
// status, down, destroy, image: protocol OpRequest) answer with one typed result; `logs` is an
// exec whose output streams until it ends or the user's ^C. Apply carries the identity of the
// proposal the user reviewed on the host, and the controller refuses any other
// (controller.ts applyGate): y/N is asked once, on the host, never through the guest.
import { request, type IncomingMessage } from 'node:http';
import * as z from 'zod';
import { VibeboxError } from '../errors.js';
import { baseTarSha, ensureBaseImage } from '../docker/base-image.js';
import { buildLayerImage, canonicalSpec, imageExists, layerSha } from '../docker/project-image.js';
import { pollUntil } from '../poll.js';
import { socketAnswers } from '../socket-answers.js';
import { parseHostArgv } from './api.js';
import { ensureController } from './controller-container.js';
import { HOST_SOCKET } from './vm-paths.js';
import { readProgress } from './progress-stream.js';
import { MAX_OP_LINE, MAX_OP_TEXT, StackApplyStatus, type OpRequest, type OpResult, type StackStatusResult } from '../protocol.js';

export type StackRequest = Extract<OpRequest, { op: `stack_${string}` }>;

export interface StackDeps {
  dockerd(): Promise<void>;
  /** The controller's host socket (tests point it elsewhere; then nothing is started). */
  socket?: string;
}

const CONTROLLER_HINT = 'see docker logs vibebox-stack-controller in the VM';

function hostRequest(socket: string, method: string, path: string, body?: unknown): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = request({ socketPath: socket, method, path, headers: data ? { 'Content-Type': 'application/json', 'Content-Length': data.length } : {} }, resolve);
    req.on('error', (e) => reject(new VibeboxError('E_CONTAINER', `the stack-controller did not answer: ${e.message}`, CONTROLLER_HINT)));
    req.end(data);
  });
}

async function readAll(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of res as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}

function errorOf(text: string): string {
  try {
    return (JSON.parse(text) as { error?: string }).error ?? text;
  } catch {
    return text;
  }
}

async function getJson(socket: string, path: string): Promise<unknown> {
  const res = await hostRequest(socket, 'GET', path);
  const text = await readAll(res);
  if ((res.statusCode ?? 500) >= 400) throw new VibeboxError('E_CONTAINER', `stack-controller: ${errorOf(text).trim()}`, CONTROLLER_HINT);
  return JSON.parse(text);
}

/** A long operation: its progress lines to `line`, its result returned. */
async function runProgress(socket: string, path: string, body: unknown, line: (s: string) => void) {
  const res = await hostRequest(socket, 'POST', path, body);
  if ((res.statusCode ?? 500) >= 400) throw new VibeboxError('E_CONTAINER', `stack-controller: ${errorOf(await readAll(res)).trim()}`, CONTROLLER_HINT);
  return readProgress(res as AsyncIterable<Buffer>, (l) => line(`  ${l}`));
}

async function controllerUp(line: (s: string) => void, socket?: string): Promise<string> {
  if (socket) return socket;
  await ensureController(line);
  await pollUntil(() => socketAnswers(HOST_SOCKET), { deadline: Date.now() + 180_000, intervalMs: 100, maxIntervalMs: 1000, what: 'the stack-controller answering' });
  return HOST_SOCKET;
}

/** The status as the controller answers it (controller.ts status): only what the host shows is kept. */
const StatusAnswer = z.object({
  live: z.boolean(),
  down: z.boolean(),
  services: z.array(z.object({ name: z.string(), image: z.string(), state: z.string(), health: z.string().nullable() })),
  last_apply: z.object({ status: z.string(), reason: z.string(), time: z.string() }).nullable(),
  proposed: z.object({ time: z.string(), hash: z.string() }).nullable(),
});

const cut = (s: string, n = 1024) => s.slice(0, n);

function statusOf(a: z.infer<typeof StatusAnswer>): StackStatusResult {
  return {
    live: a.live,
    down: a.down,
    services: a.services.slice(0, 256).map((x) => ({ name: cut(x.name), image: cut(x.image), state: cut(x.state), health: x.health === null ? null : cut(x.health) })),
    last_apply: a.last_apply ? { status: cut(a.last_apply.status), reason: cut(a.last_apply.reason, MAX_OP_LINE), time: cut(a.last_apply.time) } : null,
    proposed: a.proposed ? { time: cut(a.proposed.time), hash: cut(a.proposed.hash) } : null,
  };
}

/** The proposal as the controller's host API answers it (controller.ts, route proposal). */
const ProposalAnswer = z.object({ proposed: z.boolean(), hash: z.string().nullable(), diff: z.string(), empty: z.boolean() });

async function image(r: Extract<StackRequest, { op: 'stack_image' }>, line: (s: string) => void): Promise<OpResult> {
  await ensureBaseImage(line);
  const spec = canonicalSpec({ apt: r.apt, npm: [], run: r.run });
  const baseSha = await baseTarSha();
  const tag = `local/${r.name}:${layerSha(spec, baseSha).slice(0, 16)}`;
  if (await imageExists(tag)) line(`vibebox: ${tag} is built already`);
  else await buildLayerImage(spec, baseSha, tag, line);
  return { kind: 'stack_image', tag };
}

export async function stackRequest(r: StackRequest, line: (s: string) => void, deps: StackDeps): Promise<OpResult> {
  if (!deps.socket) await deps.dockerd();
  if (r.op === 'stack_image') return image(r, line);
  const socket = await controllerUp(line, deps.socket);
  switch (r.op) {
    case 'stack_plan': {
      const p = ProposalAnswer.parse(await getJson(socket, '/v1/proposal'));
      return { kind: 'stack_plan', proposed: p.proposed, hash: p.hash, diff: p.diff, empty: p.empty };
    }
    case 'stack_status':
      return { kind: 'stack_status', status: statusOf(StatusAnswer.parse(await getJson(socket, '/v1/status'))) };
    case 'stack_apply': {
      const o = await runProgress(socket, '/v1/apply', { dryRun: r.dryRun, expect: r.expect }, line);
      const status = StackApplyStatus.safeParse(o.status);
      return {
        kind: 'stack_apply',
        status: status.success ? status.data : 'error',
        ...(o.reason !== undefined ? { reason: cut(o.reason, MAX_OP_TEXT) } : {}),
        ...(o.services ? { services: o.services } : {}),
        ...(o.network !== undefined ? { network: o.network } : {}),
        ...(o.seconds !== undefined ? { seconds: o.seconds } : {}),
        ...(o.steps !== undefined ? { steps: o.steps } : {}),
      };
    }
    case 'stack_down':
    case 'stack_destroy': {
      const o = await runProgress(socket, r.op === 'stack_down' ? '/v1/down' : '/v1/destroy', {}, line);
      return { kind: 'stack_changed', ok: o.ok === true, ...(o.reason !== undefined ? { reason: cut(o.reason, MAX_OP_TEXT) } : {}) };
    }
  }
}

export interface LogsIo {
  stdout(b: Buffer): void;
  line(s: string): void;
  /** Called on a signal from the client (^C): end the stream. */
  onSignal(f: () => void): void;
}

/** `stack logs <service> [-f]` (the exec's argv): the service's output until it ends or a signal. */
export async function stackLogs(argv: string[], io: LogsIo, deps: { dockerd(): Promise<void> } = { dockerd: async () => undefined }): Promise<number> {
  const p = parseHostArgv(argv);
  if (!p.ok || p.value.cmd !== 'logs') {
    io.line(`vibebox: ${p.ok ? `stack ${p.value.cmd} is not a stream (it is a typed request)` : p.message}`);
    return 2;
  }
  const c = p.value;
  await deps.dockerd();
  const socket = await controllerUp(io.line);
  const res = await hostRequest(socket, 'GET', `/v1/logs/${c.service}?follow=${c.follow ? 1 : 0}`);
  if ((res.statusCode ?? 500) >= 400) {
    io.line(`vibebox: ${errorOf(await readAll(res))}`);
    return 1;
  }
  let aborted = false;
  io.onSignal(() => {
    aborted = true;
    res.destroy();
  });
  try {
    for await (const b of res as AsyncIterable<Buffer>) io.stdout(b);
  } catch {
    /* aborted */
  }
  return aborted ? 130 : 0;
}
