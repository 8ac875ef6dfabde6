// The config the supervisor applies: the project's vibebox.toml if it asks for nothing beyond
// the approved grant (narrowing applies at once); otherwise the approved grant itself.
import { loadConfig, type ResolvedConfig } from '../config/load.js';
import { widenings } from './diff.js';
import { defaultGrant, grantOf, readGrant } from './store.js';

export function effectiveConfig(project: string, sessionId: string): ResolvedConfig & { unapproved: string[] } {
  const cfg = loadConfig(project);
  const approved = readGrant(sessionId) ?? defaultGrant(project);
  const wider = widenings(approved, grantOf(cfg));
  if (wider.length === 0) return { ...cfg, unapproved: [] };
  const mounts = approved.mounts.map((m) => ({ ...m, declared: m.host === project ? '.' : m.host }));
  return { ...cfg, network: approved.network, mounts, unapproved: wider };
}
