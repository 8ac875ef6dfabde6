// What `:explain` and `vibebox explain` show: VM size, mounts, network policy, storage paths, and
// what vibebox.toml asks for that waits for approval (marked, never hidden).
import { relative } from 'node:path';
import { WORKSPACE, type ResolvedConfig } from './config/load.js';
import { localDirOrder } from '../guest/local-dirs.js';
import { projectPaths } from './paths.js';
import { readKeys } from './keys/env-file.js';
import { keyRoutes, loadRules, type KeyRoute } from './keys/inject.js';
import { formatSize } from './config/size.js';
import { shown } from '../guest/shown.js';
import { mountWidenings } from './approval/diff.js';
import { EGRESS_URL } from '../guest/protocol.js';

/** What the project's vibebox.toml asks for beyond the approval (see approval/effective.ts). */
export interface PendingInput {
  /** vibebox.toml as written */
  file: ResolvedConfig;
  /** one line per widening */
  unapproved: string[];
  /** what would run without approval, when it is not the config shown (before the first start
   *  the file's config is shown, measured against the grant a fresh session starts from) */
  approved?: ResolvedConfig;
}

const shutdown = (ms: number) => (Number.isFinite(ms) ? `${ms} ms` : 'never');

export interface Explanation {
  project: string;
  session: string | null;
  /** The VM's size as it runs (approved); a raise waiting for approval is in `pending.vm`. */
  vm: { cpus: number; memory: string; disk: string; auto_shutdown: string };
  mounts: { host: string; guest: string; mode: 'ro' | 'rw' }[];
  /** [workspace] local: guest paths kept on the VM disk, which the host does not see. */
  local: string[];
  network: { mode: 'allowlist' | 'blocklist'; entries: string[]; proxy: string };
  storage: { config: string; state: string };
  /** Port forwards: the live ones of a running session, else the approved [[ports]]. */
  ports: { host: number; guest: number; origin: string; state: string; container?: string; error?: string }[];
  /** The agent container: its project layer and caps, and the key names (never values) a `vibebox run` receives. */
  container: {
    image: { apt: string[]; npm: string[]; run: string[] };
    cpus: number | null;
    memory: string | null;
    keys: string[];
    /** Why no keys are passed, when ~/.vibebox/.env is refused. */
    keysProblem?: string;
    /** Per key name: injected by the host proxy (never in the VM) or passed to the run (in the VM). */
    routes?: KeyRoute[];
  };
  /** What vibebox.toml asks for that is not applied until `vibebox approve` (or a yes at start).
   *  Not in `mounts` and `network.entries` above (those are what applies); the text output lists them marked. */
  pending: {
    items: string[];
    mounts: { host: string; guest: string; mode: 'ro' | 'rw' }[];
    network: { mode?: 'allowlist' | 'blocklist'; entries: string[] };
    vm: { cpus?: number; memory?: string; disk?: string; auto_shutdown?: string };
  };
}

function pendingOf(applied: ResolvedConfig, p: PendingInput | undefined): Explanation['pending'] {
  const out: Explanation['pending'] = { items: [], mounts: [], network: { entries: [] }, vm: {} };
  if (!p || p.unapproved.length === 0) return out;
  const f = p.file;
  const cfg = p.approved ?? applied;
  out.items = [...p.unapproved];
  out.mounts = f.mounts.filter((m) => mountWidenings(cfg.mounts, [m]).length > 0).map((m) => ({ host: m.host, guest: m.guest, mode: m.mode }));
  if (f.network.mode !== cfg.network.mode) out.network = { mode: f.network.mode, entries: [...f.network.entries] };
  else out.network.entries = f.network.entries.filter((e) => !cfg.network.entries.includes(e));
  if (f.vm.cpus > cfg.vm.cpus) out.vm.cpus = f.vm.cpus;
  if (f.vm.memory > cfg.vm.memory) out.vm.memory = formatSize(f.vm.memory);
  if (f.vm.disk > cfg.vm.disk) out.vm.disk = formatSize(f.vm.disk);
  if (f.session.auto_shutdown_ms > cfg.session.auto_shutdown_ms) out.vm.auto_shutdown = shutdown(f.session.auto_shutdown_ms);
  return out;
}

function keyNames(policy: ResolvedConfig['network']): { keys: string[]; keysProblem?: string; routes?: KeyRoute[] } {
  let keys: string[];
  try {
    keys = [...readKeys().keys()].sort();
  } catch (e) {
    return { keys: [], keysProblem: (e as Error).message };
  }
  try {
    return { keys, routes: keyRoutes(keys, loadRules(), policy) };
  } catch (e) {
    return { keys, keysProblem: (e as Error).message };
  }
}

/** `cfg` is what runs (the approved config); `pending`, what the file asks for beyond it. */
export function explain(project: string, sessionId: string | null, cfg: ResolvedConfig, live?: Explanation['ports'], pending?: PendingInput): Explanation {
  const p = projectPaths(project);
  const rel = (x: string) => relative(project, x) || '.';
  const waiting = pendingOf(cfg, pending);
  const run = pending?.approved ?? cfg;
  const mounts = cfg.mounts.map((m) => ({ host: m.host, guest: m.guest, mode: m.mode }));
  return {
    project,
    session: sessionId,
    vm: { cpus: run.vm.cpus, memory: formatSize(run.vm.memory), disk: formatSize(run.vm.disk), auto_shutdown: shutdown(run.session.auto_shutdown_ms) },
    // What applies; what vibebox.toml asks for beyond it is in `pending` (scripts read these lists as the VM's).
    mounts,
    local: localDirOrder(cfg.workspace?.local ?? []).map((n) => `${WORKSPACE}/${n}`),
    network: { mode: cfg.network.mode, entries: [...cfg.network.entries], proxy: EGRESS_URL },
    storage: { config: rel(p.config), state: `${rel(p.stateDir)}/` },
    ports: [
      ...(live ?? (cfg.ports ?? []).map((f) => ({ host: f.host, guest: f.guest, origin: 'config', state: 'not running' }))),
      ...(pending && waiting.items.length ? (pending.file.ports ?? []).filter((f) => !(cfg.ports ?? []).some((c) => c.host === f.host && c.guest === f.guest)).map((f) => ({ host: f.host, guest: f.guest, origin: 'config', state: 'pending approval' })) : []),
    ],
    container: {
      image: { apt: [...cfg.image.apt], npm: [...cfg.image.npm], run: [...cfg.image.run] },
      cpus: cfg.container.cpus ?? null,
      memory: cfg.container.memory !== undefined ? formatSize(cfg.container.memory) : null,
      ...keyNames(cfg.network),
    },
    pending: waiting,
  };
}

export function explainText(e: Explanation): string {
  const P = '  + pending approval';
  const pv = e.pending.vm;
  const lines = [`project: ${e.project}`, `session: ${e.session ?? '(none yet)'}`, ''];
  lines.push(`vm: ${e.vm.cpus} cpus, ${e.vm.memory} memory, ${e.vm.disk} disk; stops ${e.vm.auto_shutdown === 'never' ? 'never on its own' : `${e.vm.auto_shutdown} after the last client leaves`}`);
  const raise = [pv.cpus !== undefined ? `${pv.cpus} cpus` : '', pv.memory ? `${pv.memory} memory` : '', pv.disk ? `${pv.disk} disk` : '', pv.auto_shutdown ? `auto shutdown ${pv.auto_shutdown}` : ''].filter(Boolean);
  if (raise.length) lines.push(`  asks for ${raise.join(', ')}${P}`);
  lines.push('', 'mounts:');
  const same = (a: Explanation['mounts'][number], b: Explanation['mounts'][number]) => a.host === b.host && a.guest === b.guest && a.mode === b.mode;
  for (const m of e.mounts) lines.push(`  ${m.host} → ${m.guest} (${m.mode})`);
  for (const m of e.pending.mounts.filter((w) => !e.mounts.some((x) => same(x, w)))) lines.push(`  ${m.host} → ${m.guest} (${m.mode})${P}`);
  if (e.local.length > 0) {
    lines.push('', 'local to the VM ([workspace] local; on the VM disk, shadowing the host directory: the host does not see them):');
    for (const l of e.local) lines.push(`  ${l}`);
  }
  lines.push('', `network: ${e.network.mode} (every connection goes through the proxy ${e.network.proxy})`);
  if (e.network.entries.length === 0) lines.push(e.network.mode === 'allowlist' ? '  (no hosts allowed)' : '  (no hosts blocked)');
  for (const h of e.network.entries) lines.push(`  ${h}`);
  if (!e.pending.network.mode) for (const h of e.pending.network.entries.filter((x) => !e.network.entries.includes(x))) lines.push(`  ${h}${P}`);
  if (e.pending.network.mode) lines.push(`  asks for ${e.pending.network.mode} mode: ${e.pending.network.entries.join(', ') || '(no entries)'}${P}`);
  const c = e.container;
  lines.push('', 'agent container (vibebox run): cap_drop ALL, no-new-privileges, on an internal network whose only way out is the proxy');
  const layer = [...c.image.apt.map((x) => `apt ${x}`), ...c.image.npm.map((x) => `npm ${x}`), ...c.image.run.map((x) => `run ${x}`)];
  lines.push(`  image: vibebox/agent:base${layer.length ? ` + ${layer.join(', ')}` : ''}`);
  if (c.cpus !== null || c.memory !== null) lines.push(`  caps: ${c.cpus ?? 'no'} cpus, ${c.memory ?? 'no'} memory limit`);
  if (c.keysProblem || !c.routes || c.keys.length === 0) {
    lines.push(`  keys from ~/.vibebox/.env passed to each run: ${c.keysProblem ? `none (${c.keysProblem})` : c.keys.length ? c.keys.join(', ') : 'none'}`);
  } else {
    lines.push('  keys from ~/.vibebox/.env:');
    for (const r of c.routes) {
      if (r.way === 'passed') lines.push(`    ${r.name}: passed to the run (its value goes into the VM)`);
      else {
        const refused = r.refused.length ? `; not for ${r.refused.join(', ')}: not allowed by the network policy` : '';
        lines.push(`    ${r.name}: injected by the host proxy for ${r.hosts.join(', ') || '(no allowed host)'} (the VM holds a placeholder)${refused}`);
      }
    }
  }
  lines.push('', 'ports (host 127.0.0.1 only → VM, or the agent container when nothing in the VM listens):');
  if (e.ports.length === 0) lines.push('  (none)');
  for (const f of e.ports) lines.push(`  127.0.0.1:${f.host} → ${f.guest}${f.container ? ` (${f.container})` : ''} [${f.origin}]${f.state === 'open' ? '' : ` ${f.state}${f.error ? `: ${f.error}` : ''}`}`);
  lines.push('', 'stack: services the agent proposes (vibebox-stack propose) run in the VM on an internal network, caps dropped');
  lines.push('  apply/down/destroy only from the host: vibebox stack diff, apply, status (:explain in the VM shows the live services)');
  lines.push('', 'storage:', `  config: ${e.storage.config}`, `  state:  ${e.storage.state}`);
  if (e.pending.items.length > 0) {
    lines.push('', 'pending approval (vibebox.toml asks for it; not applied until `vibebox approve`):');
    for (const i of e.pending.items) lines.push(`  ${i}`);
  }
  // Paths, entries and names come from the project and the guest: each line escaped as printed.
  return lines.map(shown).join('\n') + '\n';
}
