// What `:explain` and `vibebox explain` show: mounts, network policy, storage paths.
import { relative } from 'node:path';
import { WORKSPACE, type ResolvedConfig } from './config/load.js';
import { localDirOrder } from '../guest/local-dirs.js';
import { projectPaths } from './paths.js';

export interface Explanation {
  project: string;
  session: string | null;
  mounts: { host: string; guest: string; mode: 'ro' | 'rw' }[];
  /** [workspace] local: guest paths kept on the VM disk, which the host does not see. */
  local: string[];
  network: { mode: 'allowlist' | 'blocklist'; entries: string[]; proxy: string };
  storage: { config: string; state: string };
}

export function explain(project: string, sessionId: string | null, cfg: ResolvedConfig): Explanation {
  const p = projectPaths(project);
  const rel = (x: string) => relative(project, x) || '.';
  return {
    project,
    session: sessionId,
    mounts: cfg.mounts.map((m) => ({ host: m.host, guest: m.guest, mode: m.mode })),
    local: localDirOrder(cfg.workspace?.local ?? []).map((n) => `${WORKSPACE}/${n}`),
    network: { mode: cfg.network.mode, entries: cfg.network.entries, proxy: 'http://10.0.2.100:3128' },
    storage: { config: rel(p.config), state: `${rel(p.stateDir)}/` },
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
  lines.push('', 'storage:', `  config: ${e.storage.config}`, `  state:  ${e.storage.state}`);
  return lines.join('\n') + '\n';
}
