// The host's agent store: each npm agent fetched once per machine by the host, shared read-only
// with every VM, checked against its manifest before each run (docs/architecture.md, Agents: the
// shared store).
//   ~/.vibebox/agents/trees/<agent>/<version>-<16 hex>/   the trees (the VMs' read-only share)
//   ~/.vibebox/agents/records/<agent>.json                which tree is current, and its manifest
//   ~/.vibebox/agents/tmp/                                npm's work, renamed into trees/ when whole
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { STORE_TREE, runsFromStore, type AgentDef } from '../../guest/containers/agents.js';
import { shown } from '../../guest/shown.js';
import { VibeboxError } from '../errors.js';
import { withHomeLock } from '../fs/home-lock.js';
import { vibeboxHome } from '../paths.js';
import { mkdirPrivate, PRIVATE_FILE } from '../../qemu/private-file.js';
import { installInto, latestOf, lockedTop, type Published } from './npm-fetch.js';
import { buildManifest, checkTree, manifestDigest, type Manifest } from './tree-manifest.js';

export interface StorePaths {
  root: string;
  trees: string;
  records: string;
  tmp: string;
}

export function storePaths(home: string = vibeboxHome()): StorePaths {
  const root = join(home, 'agents');
  return { root, trees: join(root, 'trees'), records: join(root, 'records'), tmp: join(root, 'tmp') };
}

/**
 * The directory the VMs share read-only. `agents/` is 0700 (no other host user reaches inside);
 * what is shared is readable by all (0755/0644), so root in the container, who has no
 * capability to override modes, can run an agent too.
 */
export function sharedTreesDir(home: string = vibeboxHome()): string {
  return ensureShared(storePaths(home));
}

function ensureShared(p: StorePaths): string {
  mkdirPrivate(p.root);
  mkdirSync(p.trees, { recursive: true, mode: SHARED_DIR });
  chmodSync(p.trees, SHARED_DIR);
  return p.trees;
}

const SHARED_DIR = 0o755;

/** Every directory 0755, every file readable by all (executable by all where its owner may run it); links untouched. */
function openModes(root: string): void {
  const fix = (path: string) => {
    const st = lstatSync(path);
    if (st.isSymbolicLink()) return;
    if (st.isDirectory()) {
      chmodSync(path, SHARED_DIR);
      for (const n of readdirSync(path)) fix(join(path, n));
    } else if (st.isFile()) chmodSync(path, st.mode & 0o100 ? 0o755 : 0o644);
  };
  fix(root);
}

const Entry = z.strictObject({
  path: z.string(),
  kind: z.enum(['file', 'dir', 'link']),
  mode: z.number().int(),
  size: z.number().int().optional(),
  sha256: z.string().optional(),
  target: z.string().optional(),
});

const Record = z.strictObject({
  agent: z.string(),
  pkg: z.string(),
  version: z.string(),
  integrity: z.string(),
  tree: z.string().regex(STORE_TREE),
  digest: z.string(),
  previous: z.string().regex(STORE_TREE).optional(),
  manifest: z.strictObject({ entries: z.array(Entry), seen: z.record(z.string(), z.string()) }),
});
export type AgentRecord = z.infer<typeof Record>;

export type Log = (line: string) => void;

function recordFile(p: StorePaths, agent: string): string {
  return join(p.records, `${agent}.json`);
}

export function readRecord(agent: string, p: StorePaths = storePaths()): AgentRecord | null {
  let text: string;
  try {
    text = readFileSync(recordFile(p, agent), 'utf8');
  } catch {
    return null;
  }
  const r = Record.safeParse(JSON.parse(text));
  return r.success && r.data.agent === agent ? r.data : null;
}

function writeRecord(p: StorePaths, rec: AgentRecord): void {
  mkdirPrivate(p.records);
  const tmp = `${recordFile(p, rec.agent)}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(rec) + '\n', { mode: PRIVATE_FILE, flag: 'wx' });
  renameSync(tmp, recordFile(p, rec.agent));
}

/** `trees/<agent>/current`: the version the VMs list (`vibebox agents`); the record stays the host's. */
function writeCurrent(p: StorePaths, rec: AgentRecord): void {
  const file = join(p.trees, rec.agent, 'current');
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `version=${rec.version}\ntree=${rec.tree}\n`, { mode: 0o644, flag: 'wx' });
  chmodSync(tmp, 0o644);
  renameSync(tmp, file);
}

/** The tree's directory name: the version and the top package's sha512, first 16 hex digits (pure). */
export function treeName(agent: string, pub: Published): string {
  const hex = Buffer.from(pub.integrity.replace(/^sha512-/, ''), 'base64').toString('hex').slice(0, 16);
  const t = `${agent}/${pub.version}-${hex}`;
  if (!STORE_TREE.test(t)) throw new Error(`not a store tree name: ${JSON.stringify(t)}`);
  return t;
}

/** The tree matches its record, or E_AGENT_STORE naming the first difference. */
async function verify(p: StorePaths, rec: AgentRecord): Promise<void> {
  const before = JSON.stringify(rec.manifest.seen);
  const bad = manifestDigest(rec.manifest) !== rec.digest ? { path: '(record)', why: 'the record does not match its digest' } : await checkTree(join(p.trees, rec.tree), rec.manifest);
  if (bad) {
    throw new VibeboxError('E_AGENT_STORE', `the host's copy of ${rec.agent} ${shown(rec.version)} changed since it was fetched (${shown(bad.path)}: ${bad.why}); it is not run`, `vibebox update ${rec.agent} fetches it again`);
  }
  // Files hashed again because their stat moved (a copy, a restore): remember them.
  if (JSON.stringify(rec.manifest.seen) !== before) writeRecord(p, rec);
}

/** Fetch `pub` into the store (npm in a private temp dir, checked, renamed into place); its record. */
async function fetchInto(p: StorePaths, a: AgentDef & { install: { kind: 'npm' } }, pub: Published, previous: AgentRecord | null): Promise<AgentRecord | { error: string }> {
  mkdirPrivate(p.tmp);
  const work = mkdtempSync(join(p.tmp, `${a.name}-`));
  try {
    const failed = await installInto(work, a.install.pkg, pub.version, process.arch);
    if (failed) return failed;
    // npm checked each tarball against the registry's integrity; the top one must be the one we asked for.
    const top = lockedTop(work, a.install.pkg);
    if (top.integrity !== pub.integrity) return { error: `npm installed ${a.install.pkg} with integrity ${top.integrity ?? 'none'}, the registry lists ${pub.integrity}` };
    // A version that gained an install script may not run without it: unless the agent's entry
    // says how it runs without (claude), it installs in the container, where scripts may run.
    if (top.hasInstallScript && a.install.entry === undefined) return { error: `${a.install.pkg} ${pub.version} has an install script, which never runs on the host` };
    rmSync(join(work, 'package.json'));
    // Setuid or setgid bits never survive (0755/0644 only), whatever a tarball asked for.
    openModes(work);
    const manifest: Manifest = await buildManifest(work);
    const tree = treeName(a.name, pub);
    const dest = join(ensureShared(p), tree);
    mkdirSync(join(p.trees, a.name), { recursive: true, mode: SHARED_DIR });
    chmodSync(join(p.trees, a.name), SHARED_DIR);
    // A tree of this name that failed its check is replaced whole.
    if (existsSync(dest)) rmSync(dest, { recursive: true, force: true });
    renameSync(work, dest);
    const rec: AgentRecord = {
      agent: a.name,
      pkg: a.install.pkg,
      version: pub.version,
      integrity: pub.integrity,
      tree,
      digest: manifestDigest(manifest),
      ...(previous && previous.tree !== tree ? { previous: previous.tree } : {}),
      manifest,
    };
    writeRecord(p, rec);
    writeCurrent(p, rec);
    pruneTrees(p, a.name, [rec.tree, ...(rec.previous ? [rec.previous] : [])]);
    return rec;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Keep only the current tree and the one before it (a running VM may still use it). */
function pruneTrees(p: StorePaths, agent: string, keep: string[]): void {
  let names: string[];
  try {
    names = readdirSync(join(p.trees, agent));
  } catch {
    return;
  }
  for (const n of names) if (n !== 'current' && !keep.includes(`${agent}/${n}`)) rmSync(join(p.trees, agent, n), { recursive: true, force: true });
}

const LOCK = {
  stale: 30_000,
  update: 5_000,
  // Another vibebox may be fetching this agent (minutes for a large one): wait for it.
  retries: { retries: 2000, factor: 1.3, minTimeout: 20, maxTimeout: 1000 },
  refused: (_path: string, s: string, why: string) => new VibeboxError('E_LOCKED', `another vibebox is fetching this agent and did not finish in ${s} s (${why})`, 'wait for it and run again'),
};

function isNpmAgent(a: AgentDef): a is AgentDef & { install: { kind: 'npm' } } {
  return a.install.kind === 'npm' && runsFromStore(a);
}

/**
 * The tree `vibebox run <agent>` runs: the current one, checked; fetched first when there is
 * none. null: the agent installs in the container (pip, an install script, the host cannot
 * fetch it: offline, no npm), with a line saying why when it was tried.
 */
export async function treeForRun(a: AgentDef, log: Log, p: StorePaths = storePaths()): Promise<string | null> {
  if (!isNpmAgent(a)) return null;
  return withHomeLock(`agent-${a.name}`, `the agent store (${a.name})`, async () => {
    const rec = readRecord(a.name, p);
    if (rec) {
      await verify(p, rec);
      return rec.tree;
    }
    const got = await fetchLatest(p, a, null, log);
    return 'error' in got ? null : got.tree;
  }, LOCK);
}

export type UpdateResult = { kind: 'updated'; rec: AgentRecord; from: string | null } | { kind: 'current'; rec: AgentRecord } | { kind: 'unavailable'; why: string };

/** `vibebox update <agent>`: the newest version into the store, unless it is there and intact. */
export async function updateAgent(a: AgentDef, log: Log, p: StorePaths = storePaths()): Promise<UpdateResult> {
  if (!isNpmAgent(a)) return { kind: 'unavailable', why: `${a.name} installs in the container` };
  return withHomeLock(`agent-${a.name}`, `the agent store (${a.name})`, async () => {
    const rec = readRecord(a.name, p);
    const pub = await latestOf(a.install.pkg, p.root);
    if ('error' in pub) {
      log(`vibebox: the host could not ask the registry for ${a.name} (${shown(pub.error)})`);
      return { kind: 'unavailable', why: pub.error };
    }
    if (rec && rec.version === pub.version && rec.integrity === pub.integrity) {
      const intact = await verify(p, rec).then(
        () => true,
        () => false,
      );
      if (intact) return { kind: 'current', rec };
      log(`vibebox: the host's copy of ${a.name} ${shown(rec.version)} changed since it was fetched; fetching it again`);
    }
    const got = await fetchPublished(p, a, pub, rec, log);
    return 'error' in got ? { kind: 'unavailable', why: got.error } : { kind: 'updated', rec: got, from: rec?.version ?? null };
  }, LOCK);
}

async function fetchLatest(p: StorePaths, a: AgentDef & { install: { kind: 'npm' } }, previous: AgentRecord | null, log: Log): Promise<AgentRecord | { error: string }> {
  mkdirPrivate(p.root);
  const pub = await latestOf(a.install.pkg, p.root);
  if ('error' in pub) {
    log(`vibebox: the host could not fetch ${a.name} (${shown(pub.error)}); installing it in the container`);
    return pub;
  }
  return fetchPublished(p, a, pub, previous, log);
}

async function fetchPublished(p: StorePaths, a: AgentDef & { install: { kind: 'npm' } }, pub: Published, previous: AgentRecord | null, log: Log): Promise<AgentRecord | { error: string }> {
  log(`vibebox: fetching ${a.name} ${shown(pub.version)} (${a.install.pkg}) on the host, once for every project (no package scripts run)`);
  const t0 = Date.now();
  const got = await fetchInto(p, a, pub, previous);
  if ('error' in got) log(`vibebox: the host could not fetch ${a.name} (${shown(got.error)}); installing it in the container`);
  else log(`vibebox: ${a.name} ${shown(pub.version)} is in the host's agent store (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  return got;
}
