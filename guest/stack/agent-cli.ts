// `vibebox-stack`, the agent's CLI in its container: HTTP to the controller's agent API on the
// internal network. It can propose, observe and operate approved services; it cannot apply.
import { readFileSync } from 'node:fs';
import { request, type IncomingMessage } from 'node:http';
import { CONTROLLER_URL, parseAgentArgv } from './api.js';
import { readProgress } from './progress-stream.js';

const BASE = process.env['VIBEBOX_STACK_URL'] ?? CONTROLLER_URL;

function call(method: string, path: string, body?: string, timeoutMs = 60_000): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const u = new URL(path, BASE);
    const req = request(u, { method, headers: body !== undefined ? { 'Content-Type': 'text/yaml', 'Content-Length': Buffer.byteLength(body) } : {} }, resolve);
    const t = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs);
    req.on('response', () => clearTimeout(t));
    req.on('error', (e) => {
      clearTimeout(t);
      reject(new Error(`the stack-controller (${BASE}) did not answer: ${e.message} (the user starts it with any vibebox stack command on the host)`));
    });
    req.end(body);
  });
}

async function text(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of res as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}

async function json(method: string, path: string, body?: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await call(method, path, body);
  const t = await text(res);
  return { status: res.statusCode ?? 500, body: JSON.parse(t) as Record<string, unknown> };
}

const out = (s: string) => process.stdout.write(s.endsWith('\n') ? s : `${s}\n`);
const err = (s: string) => process.stderr.write(s.endsWith('\n') ? s : `${s}\n`);

async function progress(path: string): Promise<number> {
  const res = await call('POST', path, undefined, 600_000);
  if ((res.statusCode ?? 500) >= 400) {
    const t = await text(res);
    err(`vibebox-stack: ${(JSON.parse(t) as { error?: string }).error ?? t}`);
    return 1;
  }
  const result = await readProgress(res as AsyncIterable<Buffer>, (l) => err(`  ${l}`));
  if (result.ok === true) return 0;
  err(`vibebox-stack: ${result.reason ?? 'failed'}`);
  return 1;
}

export async function agentStackMain(argv: string[]): Promise<number> {
  const p = parseAgentArgv(argv);
  if (!p.ok) {
    err(p.message);
    return 2;
  }
  const c = p.value;
  switch (c.cmd) {
    case 'propose': {
      let body: string;
      try {
        body = readFileSync(c.file, 'utf8');
      } catch (e) {
        err(`vibebox-stack: cannot read ${c.file}: ${(e as Error).message}`);
        return 2;
      }
      const r = await json('POST', '/v1/propose', body);
      if (r.status === 422) {
        err(`vibebox-stack: the manifest was not accepted:`);
        for (const e of (r.body['errors'] as { code: string; path: string; message: string; hint_for_agent: string }[]) ?? []) err(`  ${e.code} at ${e.path || '(document)'}: ${e.message}\n    hint: ${e.hint_for_agent}`);
        return 1;
      }
      if (r.status >= 400) {
        err(`vibebox-stack: ${String(r.body['error'])}`);
        return 1;
      }
      out(String(r.body['diff']));
      out(`proposed (${String(r.body['hash'])}). The user reviews and applies it on the host: vibebox stack diff, then vibebox stack apply. Then run: vibebox-stack wait`);
      return 0;
    }
    case 'status': {
      const r = await json('GET', '/v1/status');
      out(JSON.stringify(r.body, null, 2));
      return 0;
    }
    case 'info': {
      const r = await json('GET', '/v1/info');
      out(JSON.stringify(r.body, null, 2));
      return 0;
    }
    case 'diff': {
      const res = await call('GET', '/v1/diff');
      out(await text(res));
      return 0;
    }
    case 'wait': {
      const deadline = Date.now() + c.timeoutS * 1000;
      let last = '';
      for (;;) {
        // The controller may be starting (a boot: it reconciles first): not answering yet is waiting too.
        const r = await json('GET', '/v1/wait').then(
          (x) => x.body,
          (e: Error) => ({ state: 'starting', reason: e.message }) as Record<string, unknown>,
        );
        const state = String(r['state']);
        if (state === 'applied' && r['ready'] === true) {
          out('ready');
          return 0;
        }
        if (state === 'rejected' || state === 'rolled_back' || state === 'none') {
          out(JSON.stringify(r));
          err(`vibebox-stack: ${state}: ${String(r['reason'] ?? '')}`);
          return 1;
        }
        if (state !== last) err(`vibebox-stack: ${state === 'pending' ? 'waiting for the user to apply the proposal' : state === 'down' || state === 'starting' ? String(r['reason']) : 'waiting for the services to be healthy'}…`);
        last = state;
        if (Date.now() > deadline) {
          err(`vibebox-stack: still ${state} after ${c.timeoutS} s`);
          return 1;
        }
        await new Promise((res) => setTimeout(res, 2000));
      }
    }
    case 'start':
    case 'stop':
    case 'reset':
      return progress(`/v1/${c.cmd}/${c.service}`);
    case 'logs': {
      const res = await call('GET', `/v1/logs/${c.service}?follow=${c.follow ? 1 : 0}`, undefined, c.follow ? 24 * 3600_000 : 60_000);
      if ((res.statusCode ?? 500) >= 400) {
        err(`vibebox-stack: ${(JSON.parse(await text(res)) as { error?: string }).error ?? 'failed'}`);
        return 1;
      }
      for await (const b of res as AsyncIterable<Buffer>) process.stdout.write(b);
      return 0;
    }
  }
}
