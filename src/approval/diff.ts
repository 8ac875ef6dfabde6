// What a vibebox.toml asks for beyond what the user approved (pure). Narrowing is free; widening
// needs the user's yes on the host, because the guest can write the project's vibebox.toml.
// Every string from the project goes into a line through shown(): a line must not be able to move
// the cursor or erase the line above it (docs/architecture.md, "Hostile text").
import type { NetworkPolicy } from '../../proxy/policy.js';
import { ConfigSchema } from '../config/schema.js';
import { formatSize } from '../config/size.js';
import { networkWidenings } from './network-diff.js';
import type { ImageLayerSpec } from '../../guest/protocol.js';
import { shown } from '../../guest/shown.js';

/** The host resources a session may take; raising any of them is a widening. */
export interface Resources {
  cpus: number;
  /** bytes */
  memory: number;
  /** bytes */
  disk: number;
  /** how long the VM outlives its last client */
  auto_shutdown_ms: number;
}

export interface Grant {
  network: NetworkPolicy;
  mounts: { host: string; guest: string; mode: 'ro' | 'rw' }[];
  /** absent in grants written before resources were approved: the defaults */
  resources?: Resources;
  /** [workspace] writable_git_config: the guest may write git config, hooks and .git pointers, submodules' too (absent: no) */
  writable_git_config?: boolean;
  /** [image]: what the project layer installs and runs (absent in older grants: nothing) */
  image?: ImageLayerSpec;
  /** [[ports]]: host 127.0.0.1 port → guest port (absent in older grants: none) */
  ports?: { guest: number; host: number }[];
}

const EMPTY_IMAGE: ImageLayerSpec = { apt: [], npm: [], run: [] };

/**
 * What an [image] adds beyond the approved one: a package not approved, or a `run` line not
 * approved (code that runs as root at build time with the proxy's reach). Removing is free.
 */
export function imageWidenings(approved: ImageLayerSpec | undefined, wanted: ImageLayerSpec | undefined): string[] {
  const a = approved ?? EMPTY_IMAGE;
  const w = wanted ?? EMPTY_IMAGE;
  return [
    ...w.apt.filter((p) => !a.apt.includes(p)).map((p) => `+ image.apt: ${shown(p)}`),
    ...w.npm.filter((p) => !a.npm.includes(p)).map((p) => `+ image.npm: ${shown(p)}`),
    ...w.run.filter((l) => !a.run.includes(l)).map((l) => `+ image.run: ${shown(l)}`),
  ];
}

const d = ConfigSchema.parse({});
/** What a project gets without asking: the vibebox.toml defaults. */
export const DEFAULT_RESOURCES: Readonly<Resources> = Object.freeze({
  cpus: d.vm.cpus,
  memory: d.vm.memory,
  disk: d.vm.disk,
  auto_shutdown_ms: d.session.auto_shutdown_ms,
});

const RESOURCE_KEYS: { key: keyof Resources; name: string; show: (n: number) => string }[] = [
  { key: 'cpus', name: 'vm.cpus', show: String },
  { key: 'memory', name: 'vm.memory', show: formatSize },
  { key: 'disk', name: 'vm.disk', show: formatSize },
  { key: 'auto_shutdown_ms', name: 'session.auto_shutdown_ms', show: (n) => (Number.isFinite(n) ? String(n) : 'never') },
];

export function mountWidenings(approved: Grant['mounts'], wanted: Grant['mounts']): string[] {
  const out: string[] = [];
  for (const m of wanted) {
    const same = approved.find((a) => a.host === m.host && a.guest === m.guest);
    if (!same) out.push(`+ mount ${shown(m.host)} → ${shown(m.guest)} (${m.mode})`);
    else if (same.mode === 'ro' && m.mode === 'rw') out.push(`+ mount ${shown(m.host)} → ${shown(m.guest)} becomes writable (rw)`);
  }
  return out;
}

export function resourceWidenings(approved: Resources, wanted: Resources): string[] {
  const out: string[] = [];
  for (const { key, name, show } of RESOURCE_KEYS) {
    if (wanted[key] > approved[key]) out.push(`+ ${name}: ${show(approved[key])} → ${show(wanted[key])}`);
  }
  return out;
}

/** Resources within both: each value the lower of the approved and the wanted (narrowing applies). */
export function approvedResources(approved: Resources, wanted: Resources): Resources {
  return {
    cpus: Math.min(approved.cpus, wanted.cpus),
    memory: Math.min(approved.memory, wanted.memory),
    disk: Math.min(approved.disk, wanted.disk),
    auto_shutdown_ms: Math.min(approved.auto_shutdown_ms, wanted.auto_shutdown_ms),
  };
}

/** A forward not approved (same host port to the same guest port) is a new way in. Dropping one is free. */
export function portWidenings(approved: Grant['ports'], wanted: Grant['ports']): string[] {
  const a = approved ?? [];
  return (wanted ?? []).filter((w) => !a.some((p) => p.host === w.host && p.guest === w.guest)).map((w) => `+ port 127.0.0.1:${w.host} → guest ${w.guest}`);
}

const count = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/**
 * One line counting the widenings by kind, printed right above the y/N: a long list (300 `run`
 * lines) can scroll the one that matters (a writable home-file mount) off the screen, this line
 * cannot. Counted from the grants, not from the lines, so no path can fake a "(rw)".
 */
export function wideningSummary(approved: Grant, wanted: Grant): string {
  const parts: string[] = [];
  const mounts = mountWidenings(approved.mounts, wanted.mounts).length;
  const writable = wanted.mounts.filter((m) => m.mode === 'rw' && !approved.mounts.some((a) => a.host === m.host && a.guest === m.guest && a.mode === 'rw')).length;
  if (mounts) parts.push(`${count(mounts, 'mount')}${writable ? ` (${writable} writable)` : ''}`);
  const net = networkWidenings(approved.network, wanted.network).length;
  if (net) parts.push(count(net, 'network destination'));
  const res = resourceWidenings(approved.resources ?? DEFAULT_RESOURCES, wanted.resources ?? DEFAULT_RESOURCES).length;
  if (res) parts.push(count(res, 'raised resource limit'));
  if (wanted.writable_git_config && !approved.writable_git_config) parts.push('a writable .git config');
  const image = imageWidenings(approved.image, wanted.image).length;
  if (image) parts.push(count(image, 'image line'));
  const ports = portWidenings(approved.ports, wanted.ports).length;
  if (ports) parts.push(count(ports, 'port forward'));
  return parts.join(', ');
}

export function widenings(approved: Grant, wanted: Grant): string[] {
  return [
    ...mountWidenings(approved.mounts, wanted.mounts),
    ...networkWidenings(approved.network, wanted.network),
    ...resourceWidenings(approved.resources ?? DEFAULT_RESOURCES, wanted.resources ?? DEFAULT_RESOURCES),
    ...(wanted.writable_git_config && !approved.writable_git_config ? ['workspace.writable_git_config = true (the guest may write the project git config, hooks and .git pointers, submodules included, which git on the host runs)'] : []),
    ...imageWidenings(approved.image, wanted.image),
    ...portWidenings(approved.ports, wanted.ports),
  ];
}
