// The kit server: HTTP routes (/health, /environment, /files/:id) and one WebSocket endpoint per
// client session, hosting one runnable. Prompts on a connection run strictly in order (a promise
// chain); abort cancels the running or a queued prompt; every malformed frame gets an `error`.
import { randomUUID } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { WebSocketServer, WebSocket, type RawData } from 'ws';
import { verifyBearer } from './auth.js';
import { KitError } from './errors.js';
import { emptyDir, listRegularFiles, type Listed } from './fs-util.js';
import {
  ClientMessage,
  FileName,
  KIT_PROTOCOL_VERSION,
  parseFrame,
  type EnvironmentInfo,
  type FileRef,
  type PromptMsg,
  type ServerMessage,
  type StoragePolicy,
} from './kit-protocol.js';
import type { KitEvent, RunContext, RunFn } from './runnable.js';
import { isGloveKit, type GloveKit } from './glove.js';
import { hostGlove } from './glove-host.js';
import { checkTag, stageTag, type Tag } from './output-tags.js';
import { InlineStorage, UrlStorage, type StorageAdapter } from './storage/adapter.js';
import { LocalServerStorage } from './storage/local-server.js';
import { adapterForRef, DEFAULT_INPUTS, DEFAULT_OUTPUTS, pickRule, ruleMatches, validateInputsPolicy, validateOutputsPolicy } from './storage/policy.js';

export interface KitLimits {
  /** Bytes per input file. */
  maxInputBytes: number;
  /** Bytes across all inputs of one prompt. */
  maxTotalInputBytes: number;
  maxInputFiles: number;
  maxOutputFiles: number;
  /** Largest WebSocket frame accepted (ws closes the socket with 1009 above it). */
  maxFrameBytes: number;
  /** 0 = no timeout. */
  promptTimeoutMs: number;
  /** How long an aborted runnable gets to unwind before the next prompt starts anyway. */
  abortGraceMs: number;
}

/** A file tagged with `/output` is copied before it is stored: bounded so a huge one cannot fill the kit's disk. */
const MAX_TAGGED_BYTES = 1024 * 1024 * 1024;

export const DEFAULT_LIMITS: KitLimits = {
  maxInputBytes: 32 * 1024 * 1024,
  maxTotalInputBytes: 64 * 1024 * 1024,
  maxInputFiles: 64,
  maxOutputFiles: 1000,
  maxFrameBytes: 96 * 1024 * 1024,
  promptTimeoutMs: 0,
  abortGraceMs: 2000,
};

export interface KitManifest {
  name: string;
  version: string;
  base?: string;
  packages?: Record<string, string[]>;
}

export interface KitServerOptions {
  /** A run function, or a Glove agent given to wrap() (driven by glove-host.ts). */
  runnable: RunFn | GloveKit;
  key: string;
  manifest: KitManifest;
  /** The agent's view: /input, /output, /work in the VM; temp dirs in tests. */
  fs: { input: string; output: string; work: string };
  /** LocalServer storage (index.sqlite + files/). */
  stateDir: string;
  host?: string;
  port?: number;
  publicBaseUrl?: string;
  storage?: { inputs?: StoragePolicy; outputs?: StoragePolicy };
  /** Merged over the built-ins (inline, url, localServer) by name; s3 comes from here. */
  adapters?: Record<string, StorageAdapter>;
  limits?: Partial<KitLimits>;
  sweepIntervalMs?: number;
  now?: () => number;
}

export interface RunningKit {
  port: number;
  /** ws://host:port/ */
  url: string;
  httpUrl: string;
  files: LocalServerStorage;
  /** Open WebSocket sessions (for tests and shutdown). */
  connections(): number;
  close(): Promise<void>;
}

function sendJson(res: http.ServerResponse, status: number, body: unknown, extra: http.OutgoingHttpHeaders = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...extra });
  res.end(text);
}

export async function startKitServer(opts: KitServerOptions): Promise<RunningKit> {
  if (opts.key.length < 16) throw new KitError('E_KEY_INVALID', 'the kit key must be at least 16 characters');
  const limits: KitLimits = { ...DEFAULT_LIMITS, ...opts.limits };
  const host = opts.host ?? '127.0.0.1';
  let baseUrl = opts.publicBaseUrl?.replace(/\/$/, '') ?? '';
  const files = new LocalServerStorage({ dir: opts.stateDir, baseUrl: () => baseUrl, ...(opts.now ? { now: opts.now } : {}) });
  const registry: Record<string, StorageAdapter> = { inline: new InlineStorage(), url: new UrlStorage(), localServer: files, ...opts.adapters };
  // Fail at boot, before listening, on a policy that could leave some output without a home.
  let outputsPolicy: StoragePolicy;
  let inputsPolicy: StoragePolicy;
  try {
    outputsPolicy = validateOutputsPolicy(opts.storage?.outputs ?? DEFAULT_OUTPUTS, registry);
    inputsPolicy = validateInputsPolicy(opts.storage?.inputs ?? DEFAULT_INPUTS, registry);
  } catch (e) {
    files.close();
    throw e;
  }
  for (const d of Object.values(opts.fs)) await mkdir(d, { recursive: true });

  const environment: EnvironmentInfo = {
    name: opts.manifest.name,
    version: opts.manifest.version,
    base: opts.manifest.base ?? 'vibebox/kit',
    fs: {
      input: { path: opts.fs.input, writable: false },
      output: { path: opts.fs.output, writable: true },
      work: { path: opts.fs.work, writable: true },
    },
    packages: opts.manifest.packages ?? {},
    limits: {
      max_input_bytes: limits.maxInputBytes,
      max_total_input_bytes: limits.maxTotalInputBytes,
      max_input_files: limits.maxInputFiles,
      max_frame_bytes: limits.maxFrameBytes,
      prompt_timeout_ms: limits.promptTimeoutMs,
    },
    protocol_version: KIT_PROTOCOL_VERSION,
  };

  // A wrapped Glove agent gets its injections here, once, before the kit listens.
  let run: RunFn;
  try {
    run = isGloveKit(opts.runnable) ? hostGlove(opts.runnable, { environment, fs: opts.fs }) : opts.runnable;
  } catch (e) {
    files.close();
    throw e;
  }
  const stagingRoot = join(opts.stateDir, 'tagged');
  await mkdir(stagingRoot, { recursive: true, mode: 0o700 });

  const server = http.createServer((req, res) => {
    handleHttp(req, res).catch((e: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { error: (e as Error).message });
      else res.destroy();
    });
  });

  async function handleHttp(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://kit');
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendJson(res, 405, { error: 'method not allowed' }, { allow: 'GET' });
    if (url.pathname === '/health') return sendJson(res, 200, { ok: true, name: opts.manifest.name, version: opts.manifest.version });
    if (!verifyBearer(req.headers.authorization, opts.key))
      return sendJson(res, 401, { error: 'unauthorized' }, { 'www-authenticate': 'Bearer' });
    if (url.pathname === '/environment') return sendJson(res, 200, environment);
    const m = /^\/files\/([^/]+)$/.exec(url.pathname);
    if (!m) return sendJson(res, 404, { error: 'not found' });
    // HEAD only looks: it must never spend a one-shot download.
    const consume = req.method === 'GET' && url.searchParams.get('consume') === '1';
    let id: string;
    try {
      id = decodeURIComponent(m[1]!);
    } catch {
      return sendJson(res, 404, { error: 'no such file' }); // bad percent-encoding names no file
    }
    const opened = await files.open(id, consume);
    if (opened.status === 'unknown') return sendJson(res, 404, { error: 'no such file' });
    if (opened.status === 'gone') return sendJson(res, 410, { error: `file is gone (${opened.reason})` });
    res.writeHead(200, {
      'content-type': opened.mime ?? 'application/octet-stream',
      'content-length': opened.size,
      'cache-control': 'no-store',
    });
    await pipeline(opened.stream, res);
  }

  const wss = new WebSocketServer({ noServer: true, maxPayload: limits.maxFrameBytes });
  server.on('upgrade', (req, socket, head) => {
    const path = new URL(req.url ?? '/', 'http://kit').pathname;
    // Refuse before any frame: a wrong or missing key never reaches the WebSocket layer.
    socket.on('error', () => socket.destroy()); // a client resetting mid-handshake must not crash the kit
    const refuse = (status: string): void => {
      // Destroy once the reply is flushed; destroying right after end() could drop the 401.
      socket.once('finish', () => socket.destroy());
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n${status.startsWith('401') ? 'WWW-Authenticate: Bearer\r\n' : ''}\r\n`);
    };
    if (path !== '/') return refuse('404 Not Found');
    if (!verifyBearer(req.headers.authorization, opts.key)) return refuse('401 Unauthorized');
    wss.handleUpgrade(req, socket, head, (ws) => {
      new Session(ws).start();
    });
  });

  class Session {
    private chain: Promise<void> = Promise.resolve();
    /** Queued and running prompts by id. */
    private readonly pending = new Map<string, AbortController>();
    private readonly slots = new Map<string, { promptId: string; resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
    constructor(private readonly ws: WebSocket) {}

    start(): void {
      this.ws.on('message', (data: RawData, isBinary: boolean) => this.onMessage(data, isBinary));
      this.ws.on('close', () => {
        for (const c of this.pending.values()) c.abort(new KitError('E_ABORTED', 'connection closed'));
      });
      this.ws.on('error', () => undefined); // e.g. 1009 frame too large; 'close' follows
    }

    send(m: ServerMessage): void {
      if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(m));
    }

    error(id: string | null, code: string, message: string): void {
      this.send({ type: 'error', id, error: { code, message } });
    }

    onMessage(data: RawData, isBinary: boolean): void {
      if (isBinary) return this.error(null, 'E_BAD_FRAME', 'binary frames are not accepted');
      const raw = Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data as ArrayBuffer).toString('utf8');
      const parsed = parseFrame(ClientMessage, raw);
      if (!parsed.ok) return this.error(parsed.id, 'E_BAD_FRAME', parsed.message);
      const msg = parsed.value;
      switch (msg.type) {
        case 'ping':
          return this.send({ type: 'pong', ...(msg.ts !== undefined ? { ts: msg.ts } : {}) });
        case 'prompt': {
          if (this.pending.has(msg.id)) return this.error(msg.id, 'E_DUPLICATE_ID', `prompt ${msg.id} is already queued or running`);
          const ctrl = new AbortController();
          this.pending.set(msg.id, ctrl);
          // The catch keeps the chain alive: one prompt's failure must never stall the ones after it.
          this.chain = this.chain
            .then(() => this.runPrompt(msg, ctrl))
            .catch(() => undefined)
            .finally(() => this.pending.delete(msg.id));
          return;
        }
        case 'abort':
          // Unknown ids are ignored: abort racing a completion is normal.
          this.pending.get(msg.id)?.abort(new KitError('E_ABORTED', 'aborted by the client'));
          return;
        case 'display_resolve':
        case 'display_reject': {
          const slot = this.slots.get(msg.slot_id);
          if (!slot) return this.error(null, 'E_BAD_FRAME', `no open display slot ${msg.slot_id}`);
          this.slots.delete(msg.slot_id);
          if (msg.type === 'display_resolve') slot.resolve(msg.value);
          else slot.reject(msg.error);
          return;
        }
      }
    }

    async runPrompt(msg: PromptMsg, ctrl: AbortController): Promise<void> {
      const { signal } = ctrl;
      if (signal.aborted) return this.error(msg.id, 'E_ABORTED', 'aborted before it started');
      const timer = limits.promptTimeoutMs > 0 ? setTimeout(() => ctrl.abort(new KitError('E_TIMEOUT', `prompt exceeded ${limits.promptTimeoutMs} ms`)), limits.promptTimeoutMs) : undefined;
      let iterator: AsyncIterator<KitEvent, string | void | undefined> | undefined;
      const tags = new Map<string, Tag>();
      try {
        await emptyDir(opts.fs.input);
        await emptyDir(opts.fs.output);
        const inputNames = await this.materialiseInputs(msg, signal);
        const policy = msg.outputs_policy ? validateOutputsPolicy(msg.outputs_policy, registry) : outputsPolicy;
        const ctx: RunContext = {
          signal,
          inputDir: opts.fs.input,
          outputDir: opts.fs.output,
          workDir: opts.fs.work,
          display: {
            push: (slot) => {
              const id = slot.id ?? randomUUID();
              return new Promise((resolve, reject) => {
                this.slots.set(id, { promptId: msg.id, resolve, reject });
                this.send({ type: 'display_push', id: msg.id, slot: { ...slot, id } });
              });
            },
            clear: (slotId) => {
              this.slots.delete(slotId);
              this.send({ type: 'display_clear', id: msg.id, slot_id: slotId });
            },
          },
          tagOutput: (path) => {
            const t = checkTag(path, { input: opts.fs.input, work: opts.fs.work });
            if (tags.size >= limits.maxOutputFiles) throw new KitError('E_OUTPUT_FAILED', `more than ${limits.maxOutputFiles} tagged outputs`);
            tags.set(t.name, t);
          },
        };
        iterator = run({ id: msg.id, text: msg.text, inputs: inputNames }, ctx);
        const aborted = new Promise<never>((_, reject) => {
          if (signal.aborted) reject(signal.reason);
          signal.addEventListener('abort', () => reject(signal.reason), { once: true });
        });
        aborted.catch(() => undefined);
        let message = '';
        for (;;) {
          // Race each step with the signal so a runnable that ignores it still ends the turn.
          const step = await Promise.race([iterator.next(), aborted]);
          if (step.done) {
            message = typeof step.value === 'string' ? step.value : '';
            break;
          }
          const ev = step.value;
          if (!ev || typeof ev.event_type !== 'string' || ev.event_type.length === 0 || ev.event_type.length > 128)
            throw new KitError('E_RUN_FAILED', 'the runnable yielded an event without a valid event_type');
          this.send({ type: 'event', id: msg.id, event_type: ev.event_type, data: ev.data ?? null });
        }
        iterator = undefined;
        if (signal.aborted) throw signal.reason;
        const outputs = await this.collectOutputs(policy, [...tags.values()]);
        this.send({ type: 'complete', id: msg.id, message, outputs });
      } catch (e) {
        // Once aborted, the reason (abort, timeout, disconnect) is the truthful cause, whatever threw.
        const err: unknown = signal.aborted ? signal.reason : e;
        const code = err instanceof KitError ? err.code : 'E_RUN_FAILED';
        this.error(msg.id, code, err instanceof Error ? err.message : String(err));
      } finally {
        if (timer) clearTimeout(timer);
        for (const [sid, s] of this.slots) {
          if (s.promptId === msg.id) {
            this.slots.delete(sid);
            s.reject(new KitError('E_ABORTED', 'prompt ended'));
          }
        }
        // Let an interrupted runnable unwind (finally blocks, child processes) before the next
        // prompt empties the dirs under it, but never wait forever on one that ignores the signal.
        if (iterator?.return) {
          const ret = Promise.resolve(iterator.return(undefined)).catch(() => undefined);
          await Promise.race([ret, new Promise((r) => setTimeout(r, limits.abortGraceMs).unref())]);
        }
      }
    }

    async materialiseInputs(msg: PromptMsg, signal: AbortSignal): Promise<string[]> {
      const entries = Object.entries(msg.inputs ?? {});
      if (entries.length > limits.maxInputFiles)
        throw new KitError('E_INPUT_TOO_LARGE', `${entries.length} inputs; at most ${limits.maxInputFiles} are accepted`);
      let total = 0;
      for (const [name, ref] of entries) {
        const kind = adapterForRef(ref.kind);
        const adapter = registry[kind];
        if (!adapter || !inputsPolicy.rules.some((r) => r.kind === kind))
          throw new KitError('E_INPUT_REJECTED', `input ${name}: ${ref.kind} refs are not accepted by the inputs policy`);
        const budget = Math.min(limits.maxInputBytes, limits.maxTotalInputBytes - total);
        const bytes = await adapter.get(ref, { maxBytes: budget, signal });
        if (!inputsPolicy.rules.some((r) => r.kind === kind && ruleMatches(r, bytes.length)))
          throw new KitError('E_INPUT_REJECTED', `input ${name}: ${bytes.length} bytes is outside the inputs policy's bounds for ${ref.kind}`);
        total += bytes.length;
        const dest = join(opts.fs.input, name);
        try {
          await mkdir(dirname(dest), { recursive: true });
          await writeFile(dest, bytes, { flag: 'wx' });
        } catch (e) {
          // e.g. inputs "a" and "a/b" in one prompt: a client mistake, not a runnable failure.
          throw new KitError('E_INPUT_REJECTED', `input ${name}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
        }
      }
      return entries.map(([n]) => n);
    }

    async collectOutputs(policy: StoragePolicy, tags: Tag[]): Promise<Record<string, FileRef>> {
      const out: Record<string, FileRef> = {};
      const { files: list } = await listRegularFiles(opts.fs.output, limits.maxOutputFiles).catch((e: Error) => {
        throw new KitError('E_OUTPUT_FAILED', e.message);
      });
      if (list.length + tags.length > limits.maxOutputFiles) throw new KitError('E_OUTPUT_FAILED', `more than ${limits.maxOutputFiles} output files`);
      // Tagged files are first copied (through a descriptor, see output-tags.ts) into the kit's own state dir, then stored like the rest.
      const staging = join(stagingRoot, randomUUID());
      await mkdir(staging, { mode: 0o700 });
      try {
        const names = new Set(list.map((f) => f.name));
        for (const t of tags) {
          if (names.has(t.name)) throw new KitError('E_OUTPUT_FAILED', `/output ${t.name}: the output dir already has a file of that name`);
          list.push(await stageTag(t, { input: opts.fs.input, work: opts.fs.work }, staging, MAX_TAGGED_BYTES));
        }
        return await this.storeOutputs(policy, list, out);
      } finally {
        await rm(staging, { recursive: true, force: true });
      }
    }

    async storeOutputs(policy: StoragePolicy, list: Listed[], out: Record<string, FileRef>): Promise<Record<string, FileRef>> {
      for (const f of list) {
        // A name the client's schema would refuse would leave the client waiting forever.
        if (!FileName.safeParse(f.name).success) throw new KitError('E_OUTPUT_FAILED', `output name ${JSON.stringify(f.name)} is not a valid file name`);
        const rule = pickRule(policy, f.size);
        const adapter = rule ? registry[rule.kind] : undefined;
        if (!rule || !adapter?.put) throw new KitError('E_OUTPUT_FAILED', `no storage rule takes ${f.name} (${f.size} bytes)`);
        out[f.name] = await adapter.put(f, rule);
      }
      return out;
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const hostForUrl = host.includes(':') ? `[${host}]` : host;
  if (!baseUrl) baseUrl = `http://${hostForUrl}:${port}`;
  files.startSweeper(opts.sweepIntervalMs ?? 60_000);

  return {
    port,
    url: `ws://${hostForUrl}:${port}/`,
    httpUrl: `http://${hostForUrl}:${port}`,
    files,
    connections: () => wss.clients.size,
    async close() {
      for (const c of wss.clients) c.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      files.close();
    },
  };
}
