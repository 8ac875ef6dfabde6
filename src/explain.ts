// What `:explain` and `vibebox explain` show: mounts, network policy, storage paths.
import { relative } from 'node:path';
import { WORKSPACE, type ResolvedConfig } from './config/load.js';
import { localDirOrder } from '../guest/local-dirs.js';
import { projectPaths } from './paths.js';
import { readKeys } from './keys/env-file.js';
import { formatSize } from './config/size.js';
import { shown } from '../guest/shown.js';

export interface Explanation {
  project: string;
  session: string | null;
  mounts: { host: string; guest: string; mode: 'ro' | 'rw' }[];
  /** [workspace] local: guest paths kept on the VM disk, which the host does not see. */
  local: string[];
  network: { mode: 'allowlist' | 'blocklist'; entries: string[]; proxy: string };
  storage: { config: string; state: string };
  /** Port forwards: the live ones of a running session, else the approved [[ports]] (issue 13). */
  ports: { host: number; guest: number; origin: string; state: string; container?: string; error?: string }[];
  /** The agent container: its project layer and caps, and the key names (never values) a `vibebox run` receives. */
  container: {
    image: { apt: string[]; npm: string[]; run: string[] };
    cpus: number | null;
    memory: string | null;
    keys: string[];
    /** Why no keys are passed, when ~/.vibebox/.env is refused. */
    keysProblem?: string;
  };
}

function keyNames(): { keys: string[]; keysProblem?: string } {
  try {
    return { keys: [...readKeys().keys()].sort() };
  } catch (e) {
    return { keys: [], keysProblem: (e as Error).message };
  }
}

export function explain(project: string, sessionId: string | null, cfg: ResolvedConfig, live?: Explanation['ports']): Explanation {
  const p = projectPaths(project);
  const rel = (x: string) => relative(project, x) || '.';
  return {
    project,
    session: sessionId,
    mounts: cfg.mounts.map((m) => ({ host: m.host, guest: m.guest, mode: m.mode })),
    local: localDirOrder(cfg.workspace?.local ?? []).map((n) => `${WORKSPACE}/${n}`),
    network: { mode: cfg.network.mode, entries: cfg.network.entries, proxy: 'http://10.0.2.100:3128' },
    storage: { config: rel(p.config), state: `${rel(p.stateDir)}/` },
    ports: live ?? (cfg.ports ?? []).map((f) => ({ host: f.host, guest: f.guest, origin: 'config', state: 'not running' })),
    container: {
      image: { apt: [...cfg.image.apt], npm: [...cfg.image.npm], run: [...cfg.image.run] },
      cpus: cfg.container.cpus ?? null,
      memory: cfg.container.memory !== undefined ? formatSize(cfg.container.memory) : null,
      ...keyNames(),
    },
  };
}

export function explainText(e: Explanation): string {
  const lines = [`project: ${e.project}`, `session: ${e.session ?? '(none yet)'}`, '', 'mounts:'];
  for (const m of e.mounts) lines.push(`  ${m.host} → ${m.guest} (${m.mode})`);
  if (e.local.length > 0) {
    lines.push('', 'local to the VM ([workspace] local; on the VM disk, shadowing the host directory: the host does not see them):');
    for (const l of e.local) lines.push(`  ${l}`);
  }
  lines.push('', `network: ${e.network.mode} (every connection goes through the proxy ${e.network.proxy})`);
  if (e.network.entries.length === 0) lines.push(e.network.mode === 'allowlist' ? '  (no hosts allowed)' : '  (no hosts blocked)');
  for (const h of e.network.entries) lines.push(`  ${h}`);
  const c = e.container;
  lines.push('', 'agent container (vibebox run): cap_drop ALL, no-new-privileges, on an internal network whose only way out is the proxy');
  const layer = [...c.image.apt.map((x) => `apt ${x}`), ...c.image.npm.map((x) => `npm ${x}`), ...c.image.run.map((x) => `run ${x}`)];
  lines.push(`  image: vibebox/agent:base${layer.length ? ` + ${layer.join(', ')}` : ''}`);
  if (c.cpus !== null || c.memory !== null) lines.push(`  caps: ${c.cpus ?? 'no'} cpus, ${c.memory ?? 'no'} memory limit`);
  lines.push(`  keys from ~/.vibebox/.env passed to each run: ${c.keysProblem ? `none (${c.keysProblem})` : c.keys.length ? c.keys.join(', ') : 'none'}`);
  lines.push('', 'ports (host 127.0.0.1 only → VM, or the agent container when nothing in the VM listens):');
  if (e.ports.length === 0) lines.push('  (none)');
  for (const f of e.ports) lines.push(`  127.0.0.1:${f.host} → ${f.guest}${f.container ? ` (${f.container})` : ''} [${f.origin}]${f.state === 'open' ? '' : ` ${f.state}${f.error ? `: ${f.error}` : ''}`}`);
  lines.push('', 'stack (issue 12): services the agent proposes (vibebox-stack propose) run in the VM on an internal network, caps dropped');
  lines.push('  apply/down/destroy only from the host: vibebox stack diff, apply, status (:explain in the VM shows the live services)');
  lines.push('', 'storage:', `  config: ${e.storage.config}`, `  state:  ${e.storage.state}`);
  // Paths, entries and names come from the project and the guest: each line escaped as printed.
  return lines.map(shown).join('\n') + '\n';
}
