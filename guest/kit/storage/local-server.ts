// LocalServer storage: outputs parked on the box's own disk, fetched by the client through
// GET /files/:id. The index lives in SQLite (WAL, so readers never wait on the sweeper's writes)
// and survives a restart; the binding is @photostructure/sqlite (node:sqlite's API, a Node-API
// addon whose prebuilt Linux binaries ship in its npm package: it loads in whatever Node the kit's
// container runs, unlike an addon built for one Node ABI). A removed file leaves a tombstone row so the route can tell
// "expired or consumed" (410) from "never existed" (404); tombstones are purged after a while.
import { DatabaseSync, type DatabaseSyncInstance } from '@photostructure/sqlite';
import { randomUUID } from 'node:crypto';
import { mkdirSync, type ReadStream } from 'node:fs';
import { copyFile, open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { KitError } from '../errors.js';
import type { FileRef, StorageRule } from '../kit-protocol.js';
import { tooLarge, type GetOptions, type OutputFile, type StorageAdapter } from './adapter.js';
import { parseDuration } from './policy.js';

export const DEFAULT_TTL_MS = 3_600_000;
const ID_RE = /^[A-Za-z0-9-]{1,64}$/;

export interface LocalServerOptions {
  /** Holds index.sqlite and files/. */
  dir: string;
  /** Base for minted refs, e.g. http://127.0.0.1:8080; a function because the port may be known only after listen. */
  baseUrl: () => string;
  defaultTtlMs?: number;
  /** How long a tombstone answers 410 before the id becomes unknown (404). */
  tombstoneMs?: number;
  now?: () => number;
}

interface Row {
  id: string;
  name: string;
  mime: string | null;
  size: number;
  created_at: number;
  expires_at: number;
  gone: string | null;
}

export type Lookup =
  | { status: 'ok'; id: string; name: string; mime: string | null; size: number; expiresAt: number; path: string }
  | { status: 'gone'; reason: string }
  | { status: 'unknown' };

export type Opened = Exclude<Lookup, { status: 'ok' }> | (Extract<Lookup, { status: 'ok' }> & { stream: ReadStream });

export class LocalServerStorage implements StorageAdapter {
  readonly name = 'localServer';
  readonly writable = true;
  private readonly db: DatabaseSyncInstance;
  private readonly filesDir: string;
  private readonly now: () => number;
  private readonly defaultTtlMs: number;
  private readonly tombstoneMs: number;
  private sweeper: NodeJS.Timeout | undefined;

  constructor(private readonly opts: LocalServerOptions) {
    this.filesDir = join(opts.dir, 'files');
    mkdirSync(this.filesDir, { recursive: true, mode: 0o700 });
    this.db = new DatabaseSync(join(opts.dir, 'index.sqlite'));
    this.db.exec('PRAGMA journal_mode = WAL');
    this.db.exec('PRAGMA busy_timeout = 5000');
    this.db.exec(`CREATE TABLE IF NOT EXISTS files (
      id TEXT PRIMARY KEY, name TEXT NOT NULL, mime TEXT, size INTEGER NOT NULL,
      created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, gone TEXT);
      CREATE INDEX IF NOT EXISTS files_expires ON files(expires_at);`);
    this.now = opts.now ?? Date.now;
    this.defaultTtlMs = opts.defaultTtlMs ?? DEFAULT_TTL_MS;
    this.tombstoneMs = opts.tombstoneMs ?? 7 * 86_400_000;
  }

  journalMode(): string {
    return String((this.db.prepare('PRAGMA journal_mode').get() as { journal_mode?: unknown } | undefined)?.journal_mode);
  }

  private pathOf(id: string): string {
    return join(this.filesDir, id);
  }

  /** Park bytes already on disk; the TTL comes from the rule, else the adapter default. */
  async put(file: OutputFile, rule?: StorageRule): Promise<FileRef> {
    const ttl = rule?.kind === 'localServer' && rule.ttl !== undefined ? parseDuration(rule.ttl) : this.defaultTtlMs;
    const id = randomUUID();
    await copyFile(file.path, this.pathOf(id));
    const created = this.now();
    const expires = created + ttl;
    this.db
      .prepare('INSERT INTO files (id, name, mime, size, created_at, expires_at, gone) VALUES (?, ?, ?, ?, ?, ?, NULL)')
      .run(id, file.name, file.mime ?? null, file.size, created, expires);
    return {
      kind: 'server',
      id,
      url: `${this.opts.baseUrl()}/files/${id}`,
      size: file.size,
      expires_at: expires,
      ...(file.mime ? { mime: file.mime } : {}),
    };
  }

  lookup(id: string): Lookup {
    if (!ID_RE.test(id)) return { status: 'unknown' };
    const row = this.db.prepare('SELECT * FROM files WHERE id = ?').get(id) as unknown as Row | undefined;
    if (!row) return { status: 'unknown' };
    if (row.gone) return { status: 'gone', reason: row.gone };
    if (row.expires_at <= this.now()) return { status: 'gone', reason: 'expired' };
    return { status: 'ok', id, name: row.name, mime: row.mime, size: row.size, expiresAt: row.expires_at, path: this.pathOf(id) };
  }

  /**
   * Open a file for streaming. With consume, the row is claimed atomically (one UPDATE) and the
   * file unlinked before streaming from the already-open descriptor, so of two racing consumers
   * exactly one gets the bytes and the other gets 410.
   */
  async open(id: string, consume: boolean): Promise<Opened> {
    const first = this.lookup(id);
    if (first.status !== 'ok') return first;
    let fh;
    try {
      fh = await open(first.path, 'r');
    } catch {
      return { status: 'gone', reason: 'expired' }; // the sweeper won the race
    }
    if (consume) {
      const claimed = this.db.prepare("UPDATE files SET gone = 'consumed' WHERE id = ? AND gone IS NULL AND expires_at > ?").run(id, this.now());
      if (Number(claimed.changes) !== 1) {
        await fh.close();
        const now = this.lookup(id);
        return now.status === 'ok' ? { status: 'gone', reason: 'consumed' } : now;
      }
      await rm(first.path, { force: true });
    }
    const stream = fh.createReadStream();
    return { ...first, stream };
  }

  async get(ref: FileRef, opts: GetOptions): Promise<Buffer> {
    if (ref.kind !== 'server') throw new KitError('E_INPUT_REJECTED', `localServer adapter cannot read a ${ref.kind} ref`);
    const l = this.lookup(ref.id);
    if (l.status === 'unknown') throw new KitError('E_INPUT_REJECTED', `server file ${ref.id} is unknown`);
    if (l.status === 'gone') throw new KitError('E_INPUT_REJECTED', `server file ${ref.id} is gone (${l.reason})`);
    if (l.size > opts.maxBytes) throw tooLarge(`server input ${ref.id}`, opts.maxBytes);
    return readFile(l.path);
  }

  /** Remove expired files (leaving tombstones) and purge old tombstones. Returns files removed. */
  async sweep(): Promise<number> {
    const now = this.now();
    const expired = this.db.prepare('SELECT id FROM files WHERE gone IS NULL AND expires_at <= ?').all(now) as unknown as { id: string }[];
    const mark = this.db.prepare("UPDATE files SET gone = 'expired' WHERE id = ? AND gone IS NULL");
    let removed = 0;
    for (const { id } of expired) {
      if (Number(mark.run(id).changes) === 1) {
        await rm(this.pathOf(id), { force: true });
        removed++;
      }
    }
    this.db.prepare('DELETE FROM files WHERE gone IS NOT NULL AND expires_at <= ?').run(now - this.tombstoneMs);
    return removed;
  }

  startSweeper(intervalMs: number): void {
    this.stopSweeper();
    this.sweeper = setInterval(() => {
      this.sweep().catch(() => undefined); // a failed sweep is retried next tick
    }, intervalMs);
    this.sweeper.unref();
  }

  stopSweeper(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  close(): void {
    this.stopSweeper();
    this.db.close();
  }
}
