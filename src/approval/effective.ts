// The config the supervisor applies: what the project's vibebox.toml asks for, except where it
// reaches beyond the approved grant. Each part on its own: the network policy and the mounts are
// the file's when they ask nothing new, else the approved ones; each resource is the lower of the
// approved and the asked-for value (narrowing applies at once, raising waits for approval).
import { applyEnvOverrides, loadFileConfig, type ResolvedConfig } from '../config/load.js';
import { approvedResources, DEFAULT_RESOURCES, imageWidenings, mountWidenings, portWidenings, widenings } from './diff.js';
import { networkWidenings } from './network-diff.js';
import { defaultGrant, grantOf, readGrant } from './store.js';
import type { Grant } from './diff.js';

export function effectiveConfig(project: string, sessionId: string, env: NodeJS.ProcessEnv = process.env): ResolvedConfig & { unapproved: string[] } {
  return effectiveFrom(project, readGrant(sessionId) ?? defaultGrant(project), env);
}

/** The same against a given grant (`explain` before the first start: the carried or default one). */
export function effectiveFrom(project: string, approved: Grant, env: NodeJS.ProcessEnv = process.env): ResolvedConfig & { unapproved: string[] } {
  const cfg = loadFileConfig(project);
  const wanted = grantOf(cfg);
  const unapproved = widenings(approved, wanted);
  const network = networkWidenings(approved.network, wanted.network).length ? approved.network : cfg.network;
  const mounts = mountWidenings(approved.mounts, wanted.mounts).length
    ? approved.mounts.map((m) => ({ ...m, declared: m.host === project ? '.' : m.host }))
    : cfg.mounts;
  const r = approvedResources(approved.resources ?? DEFAULT_RESOURCES, wanted.resources ?? DEFAULT_RESOURCES);
  const eff: ResolvedConfig = {
    ...cfg,
    vm: { ...cfg.vm, cpus: r.cpus, memory: r.memory, disk: r.disk },
    session: { ...cfg.session, auto_shutdown_ms: r.auto_shutdown_ms },
    network: { mode: network.mode, entries: [...network.entries] },
    mounts,
    // .git stays read-only in the guest unless both the file and the approval say otherwise.
    workspace: { ...cfg.workspace, writable_git_config: wanted.writable_git_config === true && approved.writable_git_config === true },
    // An [image] that adds anything unapproved builds the approved one instead.
    image: imageWidenings(approved.image, wanted.image).length ? { apt: [], npm: [], run: [], ...approved.image } : cfg.image,
    // Unapproved forwards are not opened; the approved ones the file still asks for are.
    ports: (cfg.ports ?? []).filter((p) => portWidenings(approved.ports, [p]).length === 0),
  };
  return { ...applyEnvOverrides(eff, env), unapproved };
}
