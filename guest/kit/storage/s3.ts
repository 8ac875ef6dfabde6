// S3 as hooks: the host supplies upload/download, so the kit carries no cloud SDK and no
// credentials of its own. Rule fields (bucket, prefix, region) decide where outputs go.
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { KitError } from '../errors.js';
import type { FileRef, StorageRule } from '../kit-protocol.js';
import { tooLarge, type GetOptions, type OutputFile, type StorageAdapter } from './adapter.js';

export interface S3Hooks {
  uploadObject(o: { bucket: string; key: string; region?: string; body: Buffer; contentType?: string }): Promise<void>;
  downloadObject(o: { bucket: string; key: string; region?: string; signal?: AbortSignal }): Promise<Buffer>;
}

export class S3Storage implements StorageAdapter {
  readonly name = 's3';
  readonly writable = true;
  constructor(private readonly hooks: S3Hooks) {}

  async put(file: OutputFile, rule: StorageRule): Promise<FileRef> {
    if (rule.kind !== 's3') throw new KitError('E_OUTPUT_FAILED', `s3 adapter given a ${rule.kind} rule`);
    const prefix = rule.prefix ? rule.prefix.replace(/\/?$/, '/') : '';
    const key = `${prefix}${randomUUID()}/${file.name}`;
    const body = await readFile(file.path);
    await this.hooks.uploadObject({
      bucket: rule.bucket,
      key,
      body,
      ...(rule.region ? { region: rule.region } : {}),
      ...(file.mime ? { contentType: file.mime } : {}),
    });
    return { kind: 's3', bucket: rule.bucket, key, size: body.length, ...(rule.region ? { region: rule.region } : {}), ...(file.mime ? { mime: file.mime } : {}) };
  }

  async get(ref: FileRef, opts: GetOptions): Promise<Buffer> {
    if (ref.kind !== 's3') throw new KitError('E_INPUT_REJECTED', `s3 adapter cannot read a ${ref.kind} ref`);
    if (ref.size !== undefined && ref.size > opts.maxBytes) throw tooLarge(`s3 input ${ref.key}`, opts.maxBytes);
    const body = await this.hooks.downloadObject({
      bucket: ref.bucket,
      key: ref.key,
      ...(ref.region ? { region: ref.region } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    if (body.length > opts.maxBytes) throw tooLarge(`s3 input ${ref.key}`, opts.maxBytes);
    return body;
  }
}
