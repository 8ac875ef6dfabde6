// Storage adapters: how a FileRef becomes bytes (inputs) and how an output file becomes a FileRef.
// inline and url are here; localServer and s3 have their own modules.
import { readFile } from 'node:fs/promises';
import { KitError } from '../errors.js';
import type { FileRef, StorageRule } from '../kit-protocol.js';

export interface OutputFile {
  /** Name relative to the output dir (the key in `complete.outputs`). */
  name: string;
  /** Absolute path of a regular file. */
  path: string;
  size: number;
  mime?: string;
}

export interface GetOptions {
  /** Refuse (E_INPUT_TOO_LARGE) rather than buffer more than this. */
  maxBytes: number;
  signal?: AbortSignal;
}

export interface StorageAdapter {
  readonly name: string;
  readonly writable: boolean;
  /** Store an output file under `rule`; only writable adapters implement it. */
  put?(file: OutputFile, rule: StorageRule): Promise<FileRef>;
  /** Read an input ref's bytes, bounded by maxBytes. */
  get(ref: FileRef, opts: GetOptions): Promise<Buffer>;
}

export function tooLarge(what: string, max: number): KitError {
  return new KitError('E_INPUT_TOO_LARGE', `${what} is larger than the limit of ${max} bytes`);
}

/** Decoded length of base64 text without decoding it (so an oversized inline is refused cheaply). */
export function base64Length(data: string): number {
  const pad = data.endsWith('==') ? 2 : data.endsWith('=') ? 1 : 0;
  return Math.floor((data.length * 3) / 4) - pad;
}

export class InlineStorage implements StorageAdapter {
  readonly name = 'inline';
  readonly writable = true;
  async put(file: OutputFile): Promise<FileRef> {
    const bytes = await readFile(file.path);
    return { kind: 'inline', data: bytes.toString('base64'), size: bytes.length, ...(file.mime ? { mime: file.mime } : {}) };
  }
  async get(ref: FileRef, opts: GetOptions): Promise<Buffer> {
    if (ref.kind !== 'inline') throw new KitError('E_INPUT_REJECTED', `inline adapter cannot read a ${ref.kind} ref`);
    if (base64Length(ref.data) > opts.maxBytes) throw tooLarge('inline input', opts.maxBytes);
    return Buffer.from(ref.data, 'base64');
  }
}

/** Read a response body, aborting once it passes maxBytes (a lying or absent Content-Length is no defence). */
export async function readBounded(body: ReadableStream<Uint8Array> | null, maxBytes: number, what: string): Promise<Buffer> {
  if (!body) return Buffer.alloc(0);
  const reader = body.getReader();
  const chunks: Buffer[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > maxBytes) {
      await reader.cancel();
      throw tooLarge(what, maxBytes);
    }
    chunks.push(Buffer.from(value));
  }
  return Buffer.concat(chunks, total);
}

/** Read-only: fetches a url ref at prompt time. Never an output target (policy validation enforces it). */
export class UrlStorage implements StorageAdapter {
  readonly name = 'url';
  readonly writable = false;
  async get(ref: FileRef, opts: GetOptions): Promise<Buffer> {
    if (ref.kind !== 'url') throw new KitError('E_INPUT_REJECTED', `url adapter cannot read a ${ref.kind} ref`);
    let res: Response;
    try {
      res = await fetch(ref.url, { headers: ref.headers ?? {}, signal: opts.signal ?? null, redirect: 'follow' });
    } catch (e) {
      throw new KitError('E_INPUT_REJECTED', `fetching ${ref.url} failed: ${(e as Error).message}`);
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw new KitError('E_INPUT_REJECTED', `fetching ${ref.url} returned HTTP ${res.status}`);
    }
    const declared = Number(res.headers.get('content-length') ?? NaN);
    if (Number.isFinite(declared) && declared > opts.maxBytes) {
      await res.body?.cancel();
      throw tooLarge(`url input ${ref.url}`, opts.maxBytes);
    }
    return readBounded(res.body, opts.maxBytes, `url input ${ref.url}`);
  }
}
