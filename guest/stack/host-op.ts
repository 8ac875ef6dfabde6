// `vibebox stack …` in the guest: the ContainerOp 'stack' (argv = the subcommand) from a supervisor
// exec. Everything but `image` is forwarded to the controller's host socket, which only this
// process (root in the VM) reaches. apply/destroy with --confirm show what they will do and read
// y/N from the exec's stdin, so the proposal the user saw is the one applied (by its hash).
import { request, type IncomingMessage } from 'node:http';
import { VibeboxError } from '../errors.js';
import { baseTarSha, ensureBaseImage } from '../docker/base-image.js';
import { buildLayerImage, canonicalSpec, imageExists, layerSha } from '../docker/project-image.js';
import { pollUntil } from '../poll.js';
import { socketAnswers } from '../socket-answers.js';
import { hostArgv, parseHostArgv, type HostCommand } from './api.js';
import { ensureController } from './controller-container.js';
import { HOST_SOCKET } from './vm-paths.js';
import { shown } from '../shown.js';

export interface StackIo {
  stdout(b: Buffer): void;
  line(s: string): void;
  /** The next line of the exec's stdin (null at its end). */
  readLine(): Promise<string | null>;
  /** Called on a signal from the client (Ctrl-C): abort what runs. */
  onSignal(f: () => void): void;
}

function hostRequest(method: string, path: string, body?: unknown): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = request({ socketPath: HOST_SOCKET, method, path, headers: data ? { 'Content-Type': 'application/json', 'Content-Length': data.length } : {} }, resolve);
    req.on('error', (e) => reject(new VibeboxError('E_CONTAINER', `the stack-controller did not answer: ${e.message}`, 'see docker logs vibebox-stack-controller in the VM')));
    req.end(data);
  });
}

async function readAll(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of res as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}

async function getJson<T>(path: string): Promise<T> {
  const res = await hostRequest('GET', path);
  const text = await readAll(res);
  const v = JSON.parse(text) as T & { error?: string };
  if ((res.statusCode ?? 500) >= 400) throw new VibeboxError('E_CONTAINER', `stack-controller: ${v.error ?? text}`, 'see docker logs vibebox-stack-controller in the VM');
  return v;
}

/** A progress response: lines to stderr, the RESULT line parsed. */
async function runProgress(path: string, body: unknown, io: StackIo): Promise<Record<string, unknown>> {
  const res = await hostRequest('POST', path, body);
  if ((res.statusCode ?? 500) >= 400) {
    const text = await readAll(res);
    let msg = text;
    try {
      msg = (JSON.parse(text) as { error?: string }).error ?? text;
    } catch {
      /* not JSON */
    }
    throw new VibeboxError('E_CONTAINER', `stack-controller: ${msg.trim()}`, 'see docker logs vibebox-stack-controller in the VM');
  }
  let buf = '';
  let result: Record<string, unknown> = { status: 'error', reason: 'the controller ended without a result' };
  for await (const c of res as AsyncIterable<Buffer>) {
    buf += c.toString('utf8');
    const lines = buf.split('\n');
    buf = lines.pop() ?? '';
    for (const l of lines) {
      if (l.startsWith('RESULT ')) result = JSON.parse(l.slice(7)) as Record<string, unknown>;
      else io.line(`  ${l}`);
    }
  }
  return result;
}

async function confirm(io: StackIo, question: string): Promise<boolean> {
  io.line(`${question} [y/N]`);
  const a = await io.readLine();
  return a !== null && /^y(es)?$/i.test(a.trim());
}

interface Proposal {
  proposed: boolean;
  hash: string | null;
  diff: string;
  empty: boolean;
}

interface Status {
  live: boolean;
  down: boolean;
  services: { name: string; image: string; state: string; health: string | null }[];
  last_apply: { status: string; reason: string; time: string } | null;
  proposed: { time: string; hash: string } | null;
}

/** The controller's answer is text from the stack (names, images, Docker's errors): escaped. */
export function renderStatus(s: Status): string {
  const lines: string[] = [];
  if (!s.live) lines.push('No stack applied.');
  else {
    lines.push(`Stack${s.down ? ' (down: vibebox stack apply brings it up)' : ''}:`);
    const rows = s.services.map((x) => ({ name: shown(x.name), health: shown(x.health ?? x.state), image: shown(x.image) }));
    const w = Math.max(7, ...rows.map((x) => x.name.length));
    for (const x of rows) lines.push(`  ${x.name.padEnd(w)}  ${x.health.padEnd(9)}  ${x.image}`);
  }
  if (s.last_apply) lines.push(`Last apply: ${shown(s.last_apply.status)} at ${shown(s.last_apply.time)}${s.last_apply.reason ? `: ${shown(s.last_apply.reason)}` : ''}`);
  if (s.proposed) lines.push(`Proposal ${shown(s.proposed.hash)} from ${shown(s.proposed.time)} is waiting: vibebox stack diff, then vibebox stack apply`);
  return `${lines.join('\n')}\n`;
}

async function image(c: Extract<HostCommand, { cmd: 'image' }>, io: StackIo): Promise<number> {
  await ensureBaseImage(io.line);
  const spec = canonicalSpec({ apt: c.apt, npm: [], run: c.run });
  const baseSha = await baseTarSha();
  const tag = `local/${c.name}:${layerSha(spec, baseSha).slice(0, 16)}`;
  if (await imageExists(tag)) io.line(`vibebox: ${tag} is built already`);
  else await buildLayerImage(spec, baseSha, tag, io.line);
  io.stdout(Buffer.from(`${tag}\n`));
  return 0;
}

const ended = (r: Record<string, unknown>) => (r['reason'] ? `: ${String(r['reason'])}` : '');

export async function stackOp(argv: string[], io: StackIo, deps: { dockerd(): Promise<void> }): Promise<number> {
  const p = parseHostArgv(argv);
  if (!p.ok) {
    io.line(`vibebox: ${p.message}`);
    return 2;
  }
  const c = p.value;
  await deps.dockerd();
  if (c.cmd === 'image') return image(c, io);
  await ensureController(io.line);
  await pollUntil(() => socketAnswers(HOST_SOCKET), { deadline: Date.now() + 180_000, intervalMs: 100, maxIntervalMs: 1000, what: 'the stack-controller answering' });
  switch (c.cmd) {
    case 'diff': {
      const pr = await getJson<Proposal>('/v1/proposal');
      io.stdout(Buffer.from(pr.diff + (pr.hash ? `(proposal ${pr.hash}: vibebox stack apply applies it)\n` : '')));
      return 0;
    }
    case 'status':
      io.stdout(Buffer.from(renderStatus(await getJson<Status>('/v1/status'))));
      return 0;
    case 'apply': {
      const pr = await getJson<Proposal>('/v1/proposal');
      if (!pr.proposed || !pr.hash) {
        io.line('vibebox: nothing is proposed (the agent runs vibebox-stack propose <file> in its container)');
        return 1;
      }
      io.stdout(Buffer.from(pr.diff));
      if (c.confirm && !c.dryRun && !(await confirm(io, 'Apply these changes?'))) {
        io.line('vibebox: nothing applied');
        return 1;
      }
      const r = await runProgress('/v1/apply', { dryRun: c.dryRun, expect: pr.hash }, io);
      if (r['status'] === 'applied') {
        io.stdout(Buffer.from(`applied: ${(r['services'] as string[]).join(', ')} on ${String(r['network'])} in ${String(r['seconds'])} s\n`));
        return 0;
      }
      if (r['status'] === 'dry_run') {
        io.stdout(Buffer.from(`dry run: ${String(r['steps'])} step(s), nothing changed\n`));
        return 0;
      }
      io.line(`vibebox: apply ${String(r['status'])}${ended(r)}`);
      return 1;
    }
    case 'down':
    case 'destroy': {
      if (c.cmd === 'destroy' && c.confirm) {
        io.stdout(Buffer.from(renderStatus(await getJson<Status>('/v1/status'))));
        if (!(await confirm(io, 'Destroy the stack, its containers, network AND volumes (data is lost)?'))) {
          io.line('vibebox: nothing destroyed');
          return 1;
        }
      }
      const r = await runProgress(`/v1/${c.cmd}`, {}, io);
      if (r['ok'] === true) {
        io.stdout(Buffer.from(c.cmd === 'down' ? 'the stack is down (volumes kept; vibebox stack apply brings it back)\n' : 'the stack is destroyed (containers, network and volumes removed)\n'));
        return 0;
      }
      io.line(`vibebox: ${c.cmd} failed${ended(r)}`);
      return 1;
    }
    case 'logs': {
      const res = await hostRequest('GET', `/v1/logs/${c.service}?follow=${c.follow ? 1 : 0}`);
      if ((res.statusCode ?? 500) >= 400) {
        const t = await readAll(res);
        io.line(`vibebox: ${(() => { try { return (JSON.parse(t) as { error?: string }).error ?? t; } catch { return t; } })()}`);
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
  }
}

export { hostArgv };
