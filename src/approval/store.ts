// The grant the user last approved, kept on the host side (~/.vibebox/approved/<id>.json) where
// the guest cannot write.
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as z from 'zod';
import { approvedFile, homePaths } from '../paths.js';
import { DEFAULT_ALLOWLIST } from '../../proxy/policy.js';
import { WORKSPACE, type ResolvedConfig } from '../config/load.js';
import { DEFAULT_RESOURCES, type Grant } from './diff.js';
import { withHomeLock } from '../fs/home-lock.js';

const GrantSchema = z.strictObject({
  network: z.strictObject({ mode: z.enum(['allowlist', 'blocklist']), entries: z.array(z.string()) }),
  mounts: z.array(z.strictObject({ host: z.string(), guest: z.string(), mode: z.enum(['ro', 'rw']) })),
  resources: z
    .strictObject({
      cpus: z.number().int().positive(),
      memory: z.number().int().positive(),
      disk: z.number().int().positive(),
      // "never" (Infinity in memory; JSON has no Infinity)
      auto_shutdown_ms: z.union([z.number().int().nonnegative(), z.literal('never').transform(() => Number.POSITIVE_INFINITY)]),
    })
    .optional(),
  writable_git_config: z.boolean().optional(),
  image: z.strictObject({ apt: z.array(z.string()), npm: z.array(z.string()), run: z.array(z.string()) }).optional(),
  ports: z.array(z.strictObject({ guest: z.number().int(), host: z.number().int() })).optional(),
});

const file = (id: string) => approvedFile(id); // throws for an id that is not a UUID

/** What a config asks for: pass the file's config (loadFileConfig), not one with env overrides. */
export function grantOf(cfg: ResolvedConfig): Grant {
  return {
    network: { mode: cfg.network.mode, entries: [...cfg.network.entries] },
    mounts: cfg.mounts.map((m) => ({ host: m.host, guest: m.guest, mode: m.mode })),
    resources: { cpus: cfg.vm.cpus, memory: cfg.vm.memory, disk: cfg.vm.disk, auto_shutdown_ms: cfg.session.auto_shutdown_ms },
    writable_git_config: cfg.workspace?.writable_git_config === true,
    image: { apt: [...cfg.image.apt], npm: [...cfg.image.npm], run: [...cfg.image.run] },
    ports: (cfg.ports ?? []).map((p) => ({ guest: p.guest, host: p.host })),
  };
}

/** The baseline before any approval: the defaults (project mount, default allowlist, resources). */
export function defaultGrant(project: string): Grant {
  return {
    network: { mode: 'allowlist', entries: [...DEFAULT_ALLOWLIST] },
    mounts: [{ host: project, guest: WORKSPACE, mode: 'rw' }],
    resources: { ...DEFAULT_RESOURCES },
  };
}

function parseGrant(text: string): Grant {
  const g = GrantSchema.parse(JSON.parse(text));
  // a grant from before resources were approved: the defaults were what it allowed
  return { network: g.network, mounts: g.mounts, resources: g.resources ?? { ...DEFAULT_RESOURCES }, writable_git_config: g.writable_git_config === true, ...(g.image ? { image: g.image } : {}), ...(g.ports ? { ports: g.ports } : {}) };
}

export function readGrant(id: string): Grant | null {
  try {
    return parseGrant(readFileSync(file(id), 'utf8'));
  } catch {
    return null;
  }
}

/** JSON of a grant: an auto shutdown of never (Infinity) is written "never". */
function grantText(g: Grant): string {
  return JSON.stringify(g, (k, v: unknown) => (k === 'auto_shutdown_ms' && v === Number.POSITIVE_INFINITY ? 'never' : v), 2) + '\n';
}

export function writeGrant(id: string, g: Grant): void {
  mkdirSync(homePaths().approvedDir, { recursive: true, mode: 0o700 });
  // A temp name of its own: two writers sharing one would rename each other's half-written file.
  const tmp = `${file(id)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    writeFileSync(tmp, grantText(g), { mode: 0o600, flag: 'wx' });
    renameSync(tmp, file(id));
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/**
 * Read, change and write a session's grant holding its lock, so two host commands at once (two
 * `vibebox allow`, an `allow` and an `approve`) both land. `fn` gets the grant (null: none yet)
 * and returns the new one, or null to leave it as it is.
 */
export async function updateGrant(id: string, fn: (g: Grant | null) => Grant | null): Promise<Grant | null> {
  file(id); // a bad id fails before any lock is taken
  return withHomeLock(`grant-${id}`, 'the approved settings of this session', () => {
    const next = fn(readGrant(id));
    if (next !== null) writeGrant(id, next);
    return next;
  });
}

// `:new` replaces a session with a fresh one: what the user approved for the project carries over
// to it (kept host-side by the supervisor, keyed by the project directory), so the fresh session
// neither asks again nor, without a terminal, refuses to start the config the user approved.
const carryFile = (project: string) => join(homePaths().approvedDir, `carry-${createHash('sha256').update(project).digest('hex').slice(0, 16)}.json`);

export function carryGrant(project: string, fromId: string): void {
  const g = readGrant(fromId);
  if (!g) return;
  mkdirSync(homePaths().approvedDir, { recursive: true, mode: 0o700 });
  writeFileSync(carryFile(project), grantText(g), { mode: 0o600 });
}

export function readCarried(project: string): Grant | null {
  try {
    return parseGrant(readFileSync(carryFile(project), 'utf8'));
  } catch {
    return null;
  }
}

export function dropCarried(project: string): void {
  rmSync(carryFile(project), { force: true });
}

/** A deleted session's grant goes with it (`:new` carries it over first, see carryGrant). */
export function dropGrant(id: string): void {
  rmSync(file(id), { force: true });
}
